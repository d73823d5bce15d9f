package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"levee"
)

// TestHostileIssueTooMuch sends the request that used to break the treasury
// for good: an issue of a trillion units on top of the money already there.
// It must be refused with a 409 naming the bound, and then the census,
// market creation, voids, account creation, further issues and ledger
// verification (over HTTP and `levee ledger verify`) must all still work.
// An issue exactly up to the bound is taken, and one micro-unit more is not.
func TestHostileIssueTooMuch(t *testing.T) {
	m, url := MustRunMain(t)
	tess, alice, _ := MustCity(t, m)
	admin := newClient(t, m, testAdminToken)
	anon := newClient(t, m, "")

	st, body := admin.do("POST", "/api/v1/admin/treasury/issue", `{"amount":"1000000000000"}`)
	if code, _ := errField(body); st != 409 || code != "conflict" || !strings.Contains(body["error"].(map[string]any)["message"].(string), "bound on money") {
		t.Fatalf("issue past the bound: %d %v", st, body)
	}

	stillWorks := func(step string) {
		t.Helper()
		if st, body := anon.do("GET", "/api/v1/census", ""); st != 200 {
			t.Fatalf("%s: census: %d %v", step, st, body)
		}
		closes := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		st, mk := tess.do("POST", "/api/v1/markets", `{"question":"q?","outcomes":["y","n"],"liquidity":"10","closes_at":"`+closes+`"}`)
		if st != 201 {
			t.Fatalf("%s: create market: %d %v", step, st, mk)
		}
		id := mk["id"].(string)
		if st, body := alice.do("POST", "/api/v1/markets/"+id+"/orders", `{"outcome":0,"side":"buy","shares":"5"}`); st != 201 {
			t.Fatalf("%s: order: %d %v", step, st, body)
		}
		if st, body := tess.do("POST", "/api/v1/markets/"+id+"/void", ``); st != 200 && st != 204 {
			t.Fatalf("%s: void: %d %v", step, st, body)
		}
		name := strings.ReplaceAll(step, " ", "-")
		if st, body := admin.do("POST", "/api/v1/admin/accounts", `{"name":"n-`+name+`","roles":["resident"],"district":"north","credit":"1"}`); st != 201 {
			t.Fatalf("%s: create account: %d %v", step, st, body)
		}
		st, rep := anon.do("GET", "/api/v1/ledger/verify", "")
		if st != 200 || rep["ok"] != true || rep["trial_balance"] != "0.000000" {
			t.Fatalf("%s: ledger verify: %d %v", step, st, rep)
		}
		if st, body := admin.do("GET", "/api/v1/me", ""); st != 200 {
			t.Fatalf("%s: me: %d %v", step, st, body)
		}
	}
	stillWorks("after the refusal")
	if st, body := admin.do("POST", "/api/v1/admin/treasury/issue", `{"amount":"1"}`); st != 201 {
		t.Fatalf("a modest issue: %d %v", st, body)
	}

	// Issue exactly up to the bound: the money in circulation is minus the
	// issuance account's balance.
	var issuance levee.Micros
	if err := m.DB.GetContext(context.Background(), &issuance, `SELECT balance FROM ledger_accounts WHERE key = 'treasury:issuance'`); err != nil {
		t.Fatal(err)
	}
	rest := levee.MaxMoney + issuance - levee.Units(100) // room for stillWorks' credits and subsidies
	if st, body := admin.do("POST", "/api/v1/admin/treasury/issue", `{"amount":"`+rest.String()+`"}`); st != 201 {
		t.Fatalf("issue up to the bound: %d %v", st, body)
	}
	stillWorks("near the bound")
	if err := m.DB.GetContext(context.Background(), &issuance, `SELECT balance FROM ledger_accounts WHERE key = 'treasury:issuance'`); err != nil {
		t.Fatal(err)
	}
	if st, body := admin.do("POST", "/api/v1/admin/treasury/issue", `{"amount":"`+(levee.MaxMoney+issuance).String()+`"}`); st != 201 {
		t.Fatalf("issue exactly to the bound: %d %v", st, body)
	}
	if st, body := admin.do("POST", "/api/v1/admin/treasury/issue", `{"amount":"0.000001"}`); st != 409 {
		t.Fatalf("one micro-unit past the bound: %d %v", st, body)
	}
	if st, body := admin.do("POST", "/api/v1/admin/accounts", `{"name":"over","roles":["resident"],"district":"north","credit":"1"}`); st != 409 {
		t.Fatalf("an account credited past the bound: %d %v", st, body)
	}
	if st, body := anon.do("GET", "/api/v1/census", ""); st != 200 {
		t.Fatalf("census at the bound: %d %v", st, body)
	}
	if st, rep := anon.do("GET", "/api/v1/ledger/verify", ""); st != 200 || rep["ok"] != true {
		t.Fatalf("ledger verify at the bound: %d %v", st, rep)
	}
	t.Setenv("DATABASE_URL", url)
	var out strings.Builder
	if code, err := run(context.Background(), []string{"ledger", "verify", "--data", t.TempDir()}, &out, &out); code != 0 || err != nil || !strings.Contains(out.String(), "ledger OK") {
		t.Fatalf("levee ledger verify: %d %v %s", code, err, out.String())
	}
}
