package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBudgetsOverHTTP runs the worked example through the real
// program: a round with a pool of 100, three projects, seven residents,
// matches of 13.6, 21.6 and 64.8.
func TestBudgetsOverHTTP(t *testing.T) {
	m, _ := MustRunMain(t)
	base := "http://" + m.Addr()
	admin := newClient(t, m, testAdminToken)
	anon := newClient(t, m, "")
	admin.do("POST", "/api/v1/admin/districts", `{"name":"north"}`)
	if st, body := admin.do("POST", "/api/v1/admin/treasury/issue", `{"amount":"1000","memo":"opening balance"}`); st != 201 {
		t.Fatalf("fund treasury: %d %v", st, body)
	}
	mk := func(body string) (*client, string) {
		st, a := admin.do("POST", "/api/v1/admin/accounts", body)
		if st != 201 {
			t.Fatalf("create account: %d %v", st, a)
		}
		return &client{t: t, base: base, token: a["token"].(string), http: &http.Client{}}, a["id"].(string)
	}
	tess, _ := mk(`{"name":"tess","roles":["treasurer"]}`)
	contractor, _ := mk(`{"name":"dykeworks","roles":["contractor"],"credit":"10"}`)
	var residents []*client
	for i := 1; i <= 7; i++ {
		c, _ := mk(fmt.Sprintf(`{"name":"r%d","roles":["resident"],"district":"north","credit":"100"}`, i))
		residents = append(residents, c)
	}

	closes := time.Now().Add(6 * time.Second).UTC().Format(time.RFC3339Nano)
	st, round := tess.do("POST", "/api/v1/qf/rounds", `{"title":"Flood works","pool":"100","eligibility_rules":"Public works only.","closes_at":"`+closes+`"}`)
	if st != 201 || round["pool_account"] != "qf:"+round["id"].(string)+":pool" || round["phase"] != "contributing" {
		t.Fatalf("open round: %d %v", st, round)
	}
	rid := round["id"].(string)
	if st, _ := residents[0].do("POST", "/api/v1/qf/rounds", `{"title":"x","pool":"1","closes_at":"`+closes+`"}`); st != 403 {
		t.Fatalf("resident opened a round: %d", st)
	}
	if st, body := tess.do("POST", "/api/v1/qf/rounds", `{"title":"x","pool":"1e2","closes_at":"`+closes+`"}`); st != 400 {
		t.Fatalf("bad pool: %d %v", st, body)
	}
	var projects []string
	for i, title := range []string{"Pumps", "Dyke path", "Sluice gate"} {
		st, p := residents[i].do("POST", "/api/v1/qf/rounds/"+rid+"/projects", `{"title":"`+title+`","description":"d","district":"north","estimated_cost":"500"}`)
		if st != 201 {
			t.Fatalf("propose: %d %v", st, p)
		}
		projects = append(projects, p["id"].(string))
	}
	for _, id := range projects {
		if st, p := tess.do("POST", "/api/v1/qf/projects/"+id+"/eligibility", `{"eligible":true,"reason":"public works"}`); st != 200 || p["eligible"] != true {
			t.Fatalf("eligibility: %d %v", st, p)
		}
	}
	if st, body := contractor.do("POST", "/api/v1/qf/projects/"+projects[0]+"/contributions", `{"amount":"1"}`); st != 403 {
		t.Fatalf("contractor contributed: %d %v", st, body)
	}
	if st, body := tess.do("POST", "/api/v1/qf/projects/"+projects[0]+"/contributions", `{"amount":"1"}`); st != 403 {
		t.Fatalf("treasurer contributed: %d %v", st, body)
	}
	worked := [][]string{{"1", "4", "1", "9"}, {"1", "1", "1", "1", "1", "1", "4"}, {"1", "9", "1", "9", "1", "9", "4"}}
	for pi, amounts := range worked {
		for ri, a := range amounts {
			c := residents[ri].withHeader("Idempotency-Key", fmt.Sprintf("p%d", pi))
			for try := 0; try < 2; try++ { // a retry with the same key moves money once
				if st, body := c.do("POST", "/api/v1/qf/projects/"+projects[pi]+"/contributions", `{"amount":"`+a+`"}`); st != 201 {
					t.Fatalf("contribute %s to %d as r%d: %d %v", a, pi, ri+1, st, body)
				}
			}
		}
	}
	if st, body := tess.do("POST", "/api/v1/qf/rounds/"+rid+"/finalize", ``); st != 409 {
		t.Fatalf("finalise before closing: %d %v", st, body)
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		_, r := anon.do("GET", "/api/v1/qf/rounds/"+rid, "")
		if r["phase"] == "closed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("round never closed: %v", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st, body := residents[0].do("POST", "/api/v1/qf/projects/"+projects[0]+"/contributions", `{"amount":"1"}`); st != 409 {
		t.Fatalf("contribution after closing: %d %v", st, body)
	}
	st, final := tess.do("POST", "/api/v1/qf/rounds/"+rid+"/finalize", ``)
	if st != 200 || final["status"] != "final" || final["returned"] != "0.000000" {
		t.Fatalf("finalise: %d %v", st, final)
	}
	want := []struct{ match, raw, contributed, sumSqrt string }{
		{"13.600000", "34.000000", "15.000000", "7000"}, {"21.600000", "54.000000", "10.000000", "8000"}, {"64.800000", "162.000000", "34.000000", "14000"}}
	results := final["results"].([]any)
	for i, r := range results {
		r := r.(map[string]any)
		if r["match"] != want[i].match || r["raw_match"] != want[i].raw || r["contributed"] != want[i].contributed || r["sum_sqrt"] != want[i].sumSqrt {
			t.Errorf("result %d: %v, want %+v", i, r, want[i])
		}
	}
	if st, body := tess.do("POST", "/api/v1/qf/rounds/"+rid+"/finalize", ``); st != 409 {
		t.Fatalf("finalise twice: %d %v", st, body)
	}

	_, lines := anon.do("GET", "/api/v1/budget-lines", "")
	wantLines := []string{"28.600000", "31.600000", "98.800000"}
	ls := lines["budget_lines"].([]any)
	if len(ls) != 3 {
		t.Fatalf("budget lines: %v", lines)
	}
	for i, l := range ls {
		l := l.(map[string]any)
		if l["balance"] != wantLines[i] || l["funded"] != wantLines[i] || l["ledger_key"] != "budget:"+l["id"].(string) {
			t.Errorf("line %d: %v, want %s", i, l, wantLines[i])
		}
	}

	if st, _ := anon.do("GET", "/api/v1/qf/rounds/"+rid+"/explain", ""); st != 401 {
		t.Fatalf("anonymous explain: %d", st)
	}
	st, ex := residents[3].do("GET", "/api/v1/qf/rounds/"+rid+"/explain", "")
	if st != 200 {
		t.Fatalf("explain: %d %v", st, ex)
	}
	exps := ex["projects"].([]any)
	if first := exps[0].(map[string]any); len(exps) != 3 || first["added"] != "24.000000" || first["raw_match_without"] != "10.000000" || first["contributed"] != "9.000000" {
		t.Fatalf("explain for r4: %v", ex)
	}
	_, me := residents[3].do("GET", "/api/v1/me", "")
	if me["cash"] != "81.000000" { // 100 − (9 + 1 + 9), retries moved nothing
		t.Fatalf("r4 cash: %v", me)
	}

	st, census := anon.do("GET", "/api/v1/census", "")
	if st != 200 {
		t.Fatalf("census: %d %v", st, census)
	}
	residentsFig := census["residents"].(map[string]any)
	linesFig := census["budget_lines"].(map[string]any)
	ledgerFig := census["ledger_verification"].(map[string]any)
	treasury := census["treasury"].(map[string]any)
	if residentsFig["total"] != 7.0 || linesFig["total_balance"] != "159.000000" || ledgerFig["report"].(map[string]any)["ok"] != true ||
		treasury["balance"] != "900.000000" || linesFig["source"] != "/api/v1/budget-lines" || len(census["not_yet_available"].([]any)) != 0 || census["contracting"] == nil ||
		census["forecast_accuracy"].(map[string]any)["source"] != "/api/v1/markets?status=resolved" {
		t.Fatalf("census: %v", census)
	}
	resp, err := http.Get(base + "/api/v1/census.csv")
	if err != nil {
		t.Fatal(err)
	}
	csvBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(csvBody), "budget_line,budget:1,28.600000,/api/v1/budget-lines") {
		t.Fatalf("census.csv: %d\n%s", resp.StatusCode, csvBody)
	}
	if st, r := anon.do("GET", "/api/v1/ledger/verify", ""); st != 200 || r["ok"] != true {
		t.Fatalf("ledger verify: %d %v", st, r)
	}
}
