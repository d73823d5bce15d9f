package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// hostileDecimals are amount strings that must never be accepted.
var hostileDecimals = []string{"1e3", "NaN", "Infinity", "0x10", "1.2.3", "١٢", "１", "--1", " 1", "1 ", "1,5", "0.0000001", "99999999999999999999"}

// mutate breaks a valid JSON object body in one of several ways, each of
// which makes it invalid whatever the endpoint.
func mutate(r *rand.Rand, body string) string {
	var obj map[string]any
	json.Unmarshal([]byte(body), &obj)
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	switch r.IntN(6) {
	case 0: // an unknown field
		obj[fmt.Sprintf("zz_%d", r.IntN(1000))] = 1
	case 1: // a proper prefix of the JSON
		return body[:r.IntN(len(body)-1)]
	case 2: // trailing garbage
		return body + []string{" x", "{}", ",", "]"}[r.IntN(4)]
	case 3: // random bytes
		b := make([]byte, 1+r.IntN(64))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return "{" + string(b)
	case 4: // a field of the wrong type
		if len(keys) == 0 {
			return "[]"
		}
		k := keys[r.IntN(len(keys))]
		switch obj[k].(type) {
		case string:
			obj[k] = []any{7, map[string]any{}, []any{}, true}[r.IntN(4)]
		case float64:
			obj[k] = "seven"
		case bool:
			obj[k] = "yes"
		default:
			obj[k] = "not-a-list"
		}
	case 5: // a hostile decimal in an amount-like field, else wrong type
		for _, k := range keys {
			if s, ok := obj[k].(string); ok && s != "" && strings.Trim(s, "0123456789.") == "" {
				obj[k] = hostileDecimals[r.IntN(len(hostileDecimals))]
				b, _ := json.Marshal(obj)
				return string(b)
			}
		}
		return "null"
	}
	b, _ := json.Marshal(obj)
	return string(b)
}

// stateOf counts the rows a request could have created or changed.
func stateOf(t *testing.T, db *sqlx.DB) string {
	t.Helper()
	var s string
	err := db.Get(&s, `SELECT concat_ws(',',
		(SELECT count(*) FROM districts), (SELECT count(*) FROM accounts), (SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL),
		(SELECT count(*) FROM sessions), (SELECT count(*) FROM organisation_members), (SELECT count(*) FROM markets),
		(SELECT string_agg(status, '') FROM markets), (SELECT count(*) FROM trades), (SELECT count(*) FROM positions),
		(SELECT seq FROM ledger_head), (SELECT sum(balance) FILTER (WHERE balance > 0) FROM ledger_accounts),
		(SELECT count(*) FROM audit_log))`)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMalformedRequestsChangeNothing sends thousands of broken requests to
// every state-changing endpoint, as a caller allowed to use it: each gets a
// 4xx with a coded error, never a 5xx, and the database is unchanged.
func TestMalformedRequestsChangeNothing(t *testing.T) {
	m, url := MustRunMain(t)
	tess, alice, _ := MustCity(t, m)
	admin := newClient(t, m, testAdminToken)
	closes := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	_, mk := tess.do("POST", "/api/v1/markets", `{"question":"q?","outcomes":["y","n"],"liquidity":"10","closes_at":"`+closes+`"}`)
	id := mk["id"].(string)
	_, org := admin.do("POST", "/api/v1/admin/accounts", `{"name":"dykeworks","roles":["contractor"]}`)
	_, dave := admin.do("POST", "/api/v1/admin/accounts", `{"name":"dave","kind":"person","roles":["contractor"]}`)
	db := sqlx.MustOpen("postgres", url)
	defer db.Close()

	templates := []struct {
		c          *client
		path, body string
	}{
		{admin, "/api/v1/admin/districts", `{"name":"south"}`},
		{admin, "/api/v1/admin/accounts", `{"name":"zoe","roles":["resident"],"district":"north","credit":"10","password":"a long password"}`},
		{admin, "/api/v1/admin/treasury/issue", `{"amount":"5","memo":"x"}`},
		{admin, "/api/v1/admin/organisations/" + org["id"].(string) + "/members", `{"account":"` + dave["id"].(string) + `"}`},
		{tess, "/api/v1/markets", `{"question":"q2?","outcomes":["a","b"],"liquidity":"10","initial_probabilities":["0.5","0.5"],"closes_at":"` + closes + `","district":"north"}`},
		{tess, "/api/v1/markets/" + id + "/proposal", `{"verdict":"a","evidence":"the gauge read 3.1 m"}`},
		{alice, "/api/v1/markets/" + id + "/dispute", `{"reason":"the gauge was broken"}`},
		{alice, "/api/v1/markets/" + id + "/orders", `{"outcome":0,"side":"buy","shares":"1","limit_price":"0.9","max_cost":"5"}`},
		{alice, "/api/v1/markets/" + id + "/orders", `{"outcome":1,"side":"sell","all":true,"min_proceeds":"0.1"}`},
		{alice, "/api/v1/me/tokens", `{"label":"laptop"}`},
	}
	before := stateOf(t, db)
	r := rand.New(rand.NewPCG(11, 23))
	const n = 1500
	for i := 0; i < n; i++ {
		tpl := templates[r.IntN(len(templates))]
		body := mutate(r, tpl.body)
		st, resp := tpl.c.do("POST", tpl.path, body)
		code, _ := errField(resp)
		if st < 400 || st >= 500 || code == "" {
			t.Fatalf("POST %s %q: status %d %v, want a coded 4xx", tpl.path, body, st, resp)
		}
	}
	for _, q := range []string{"outcome=x&side=buy&shares=1", "outcome=0&side=up&shares=1", "outcome=0&side=buy&shares=1e3",
		"outcome=0&side=buy&amount=NaN", "outcome=99&side=buy&shares=1", "outcome=0&side=buy&all=maybe", "outcome=-1&side=sell&shares=1"} {
		if st, resp := alice.do("GET", "/api/v1/markets/"+id+"/quote?"+q, ""); st < 400 || st >= 500 {
			t.Fatalf("quote %s: %d %v", q, st, resp)
		}
	}
	for _, p := range []string{"/api/v1/ledger/entries?limit=-1", "/api/v1/ledger/entries?after=abc", "/api/v1/markets?status=bogus",
		"/api/v1/markets?limit=100000", "/api/v1/markets/abc", "/api/v1/markets/" + id + "/history?from=yesterday",
		"/api/v1/markets/" + id + "/trades?before=-5", "/api/v1/markets/99999999999999999999"} {
		if st, resp := anonymous(t, m).do("GET", p, ""); st < 400 || st >= 500 {
			t.Fatalf("GET %s: %d %v", p, st, resp)
		}
	}
	if after := stateOf(t, db); after != before {
		t.Fatalf("malformed requests changed the database:\nbefore %s\nafter  %s", before, after)
	}
}
