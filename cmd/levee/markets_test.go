package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// MustCity creates a district, a treasurer and two residents over HTTP.
func MustCity(t *testing.T, m *Main) (treasurer, alice, bob *client) {
	t.Helper()
	return cityAt(t, "http://"+m.Addr())
}

// cityAt is MustCity for a server at base.
func cityAt(t *testing.T, base string) (treasurer, alice, bob *client) {
	t.Helper()
	jar := func() *http.Client { return &http.Client{} }
	admin := &client{t: t, base: base, token: testAdminToken, http: jar()}
	admin.do("POST", "/api/v1/admin/districts", `{"name":"north"}`)
	if st, _ := admin.do("POST", "/api/v1/admin/treasury/issue", `{"amount":"100000","memo":"opening balance"}`); st != 201 {
		t.Fatalf("fund treasury: %d", st)
	}
	mk := func(body string) *client {
		st, a := admin.do("POST", "/api/v1/admin/accounts", body)
		if st != 201 {
			t.Fatalf("create account: %d %v", st, a)
		}
		return &client{t: t, base: base, token: a["token"].(string), http: jar()}
	}
	return mk(`{"name":"tess","roles":["treasurer"]}`),
		mk(`{"name":"alice","roles":["resident"],"district":"north","credit":"1000"}`),
		mk(`{"name":"bob","roles":["resident"],"district":"north","credit":"1000"}`)
}

func TestMarketsOverHTTP(t *testing.T) {
	m, _, clk := MustRunMainClock(t)
	const outcome0 = "yes"
	tess, alice, bob := MustCity(t, m)
	closes := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)

	if st, _ := alice.do("POST", "/api/v1/markets", `{"question":"q?","outcomes":["yes","no"],"liquidity":"100","closes_at":"`+closes+`"}`); st != 403 {
		t.Fatalf("resident created a market: %d", st)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"question":"q?","outcomes":["yes"],"liquidity":"100","closes_at":"` + closes + `"}`, "outcomes"},
		{`{"question":"q?","outcomes":["yes","no"],"liquidity":"-1","closes_at":"` + closes + `"}`, "liquidity"},
		{`{"question":"q?","outcomes":["yes","no"],"liquidity":"100","closes_at":"tomorrow"}`, "closes_at"},
		{`{"question":"q?","outcomes":["yes","no"],"liquidity":"100","closes_at":"2001-01-01T00:00:00Z"}`, "closes_at"},
		{`{"question":"","outcomes":["yes","no"],"liquidity":"100","closes_at":"` + closes + `"}`, "question"},
		{`{"question":"q?","outcomes":["yes","no"],"liquidity":"100","closes_at":"` + closes + `","district":"atlantis"}`, "district"},
		{`{"question":"q?","outcomes":["yes","no"],"liquidity":"100","initial_probabilities":["0.5","0.6"],"closes_at":"` + closes + `"}`, "probabilities"},
	} {
		st, body := tess.do("POST", "/api/v1/markets", tc.body)
		if _, field := errField(body); st != 400 || !strings.HasPrefix(field, strings.Split(tc.field, "_")[0]) && field != tc.field {
			t.Errorf("%s: %d %v, want 400 on %s", tc.body, st, body, tc.field)
		}
	}
	st, mk := tess.do("POST", "/api/v1/markets", `{"question":"Will the pump station repair be accepted by 1 March?","outcomes":["yes","no"],"liquidity":"100","closes_at":"`+closes+`","district":"north"}`)
	if st != 201 || mk["subsidy"] != "69.314719" || mk["status"] != "open" {
		t.Fatalf("create market: %d %v", st, mk)
	}
	id := mk["id"].(string)
	base := "/api/v1/markets/" + id

	st, q := alice.do("GET", base+"/quote?outcome=0&side=buy&amount=10", "")
	if st != 200 {
		t.Fatalf("quote: %d %v", st, q)
	}
	// The same order, retried with one key, trades once and returns the original.
	var first map[string]any
	for i := 0; i < 3; i++ {
		req := alice.withHeader("Idempotency-Key", "order-1")
		st, r := req.do("POST", base+"/orders", `{"outcome":0,"side":"buy","amount":"10"}`)
		if st != 201 {
			t.Fatalf("order: %d %v", st, r)
		}
		if first == nil {
			first = r
		} else if r["trade_id"] != first["trade_id"] {
			t.Fatalf("retry traded again: %v vs %v", r, first)
		}
	}
	if first["shares"] != q["shares"] || first["cost"] != q["cost"] {
		t.Fatalf("order %v differs from its quote %v", first, q)
	}
	st, me := alice.do("GET", "/api/v1/me", "")
	if me["cash"] != fmt.Sprintf("%.6f", 990.0) || st != 200 {
		t.Fatalf("cash after spending 10: %v", me)
	}
	for _, tc := range []struct {
		body   string
		status int
		field  string
	}{
		{`{"outcome":0,"side":"sell","shares":"1000"}`, 409, ""},
		{`{"outcome":5,"side":"buy","shares":"1"}`, 400, "outcome"},
		{`{"outcome":0,"side":"hold","shares":"1"}`, 400, "side"},
		{`{"outcome":0,"side":"buy","shares":"1.0000001"}`, 400, "shares"},
		{`{"outcome":0,"side":"buy","shares":"NaN"}`, 400, "shares"},
		{`{"outcome":0,"side":"buy","shares":"1","max_cost":"0.1"}`, 409, ""},
		{`{"side":"buy","shares":"1"}`, 400, "outcome"},
		{`{"outcome":0,"side":"buy","amount":"5000"}`, 409, ""},
	} {
		st, body := bob.do("POST", base+"/orders", tc.body)
		if _, field := errField(body); st != tc.status || field != tc.field {
			t.Errorf("%s: %d %v, want %d %q", tc.body, st, body, tc.status, tc.field)
		}
	}
	if st, _ := tess.do("POST", base+"/orders", `{"outcome":0,"side":"buy","shares":"1"}`); st != 403 {
		t.Fatalf("treasurer traded: %d", st)
	}
	if st, _ := bob.do("POST", base+"/orders", `{"outcome":1,"side":"buy","shares":"4"}`); st != 201 {
		t.Fatalf("bob's order: %d", st)
	}
	st, got := anonymous(t, m).do("GET", base, "")
	if st != 200 || got["seq"] != float64(2) || len(got["prices"].([]any)) != 2 {
		t.Fatalf("get market: %d %v", st, got)
	}
	st, trades := anonymous(t, m).do("GET", base+"/trades", "")
	if st != 200 || len(trades["trades"].([]any)) != 2 {
		t.Fatalf("trades: %d %v", st, trades)
	}
	if strings.Contains(fmt.Sprint(trades), "order-1") {
		t.Fatal("trades leak idempotency keys")
	}
	st, hist := anonymous(t, m).do("GET", base+"/history?points=10", "")
	if st != 200 || len(hist["points"].([]any)) == 0 {
		t.Fatalf("history: %d %v", st, hist)
	}
	st, list := anonymous(t, m).do("GET", "/api/v1/markets?status=open&district=north", "")
	if st != 200 || len(list["markets"].([]any)) != 1 {
		t.Fatalf("list: %d %v", st, list)
	}
	st, pos := alice.do("GET", "/api/v1/me/positions", "")
	if st != 200 || len(pos["positions"].([]any)) != 1 {
		t.Fatalf("positions: %d %v", st, pos)
	}
	// Resolution is optimistic: a treasurer proposes once the market has
	// closed, and the proposal is final after its dispute window.
	if st, r := tess.do("POST", base+"/proposal", `{"verdict":"`+outcome0+`","evidence":"the gauge read 3.1 m"}`); st != 409 {
		t.Fatalf("proposal on an open market: %d %v", st, r)
	}
	if st, _ := tess.do("POST", base+"/close", ""); st != 200 {
		t.Fatalf("close: %d", st)
	}
	if st, _ := alice.do("POST", base+"/proposal", `{"verdict":"`+outcome0+`","evidence":"x"}`); st != 403 {
		t.Fatalf("resident proposed: %d", st)
	}
	if st, r := tess.do("POST", base+"/proposal", `{"verdict":"maybe","evidence":"x"}`); st != 400 || !hasField(r, "verdict") {
		t.Fatalf("unknown verdict: %d %v", st, r)
	}
	if st, r := tess.do("POST", base+"/proposal", `{"verdict":"`+outcome0+`","evidence":"the gauge read 3.1 m"}`); st != 201 || r["status"] != "pending" {
		t.Fatalf("propose: %d %v", st, r)
	}
	if st, r := tess.do("POST", base+"/proposal", `{"verdict":"void","evidence":"again"}`); st != 409 {
		t.Fatalf("second proposal: %d %v", st, r)
	}
	clk.Skip(49 * time.Hour)
	if st, r := anonymous(t, m).do("GET", base+"/proposal", ""); st != 200 || r["status"] != "settled" {
		t.Fatalf("proposal after its window: %d %v", st, r)
	}
	if st, r := anonymous(t, m).do("GET", base, ""); st != 200 || r["status"] != "resolved" || r["resolved_outcome"] != 0.0 {
		t.Fatalf("resolved: %d %v", st, r)
	}
	_, me = alice.do("GET", "/api/v1/me", "")
	if me["cash"] == "990.000000" {
		t.Fatal("winner not paid")
	}
	if st, r := anonymous(t, m).do("GET", "/api/v1/ledger/verify", ""); r["ok"] != true {
		t.Fatalf("ledger: %d %v", st, r)
	}
}

func TestConcurrentOrdersOverHTTP(t *testing.T) {
	m, _ := MustRunMain(t)
	tess, alice, _ := MustCity(t, m)
	closes := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	_, mk := tess.do("POST", "/api/v1/markets", `{"question":"q?","outcomes":["a","b","c"],"liquidity":"50","closes_at":"`+closes+`"}`)
	base := "/api/v1/markets/" + mk["id"].(string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seqs := map[float64]bool{}
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, r := alice.do("POST", base+"/orders", fmt.Sprintf(`{"outcome":%d,"side":"buy","shares":"1"}`, i%3))
			if st != http.StatusCreated {
				t.Errorf("order: %d %v", st, r)
				return
			}
			mu.Lock()
			seqs[r["seq"].(float64)] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	for s := 1; s <= 50; s++ {
		if !seqs[float64(s)] {
			t.Fatalf("seq %d missing: sequence numbers are not gap-free", s)
		}
	}
}

func anonymous(t *testing.T, m *Main) *client { return newClient(t, m, "") }

// withHeader returns a copy of c that also sends header k: v.
func (c *client) withHeader(k, v string) *client {
	cc := *c
	cc.headers = map[string]string{k: v}
	return &cc
}
