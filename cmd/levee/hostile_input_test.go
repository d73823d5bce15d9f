package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee/input"
)

// textRoutes is one representative body for every route that takes text in
// JSON, with who may call it: "admin", "anyone" or "omni" (an account with
// every role but admin). The ids in paths need not exist: a body is decoded
// before any service looks the id up.
var textRoutes = []struct{ who, method, path, body string }{
	{"anyone", "POST", "/api/v1/session", `{"name":"alice","password":"secret"}`},
	{"anyone", "POST", "/api/v1/session", `{"token":"lv_x"}`},
	{"omni", "POST", "/api/v1/me/tokens", `{"label":"laptop"}`},
	{"admin", "POST", "/api/v1/admin/districts", `{"name":"south"}`},
	{"admin", "POST", "/api/v1/admin/accounts", `{"name":"zoe","kind":"person","roles":["resident"],"district":"north","credit":"10","password":"a long password"}`},
	{"admin", "POST", "/api/v1/admin/organisations/1/members", `{"account":"2"}`},
	{"admin", "POST", "/api/v1/admin/treasury/issue", `{"amount":"5","memo":"opening\nbalance"}`},
	{"admin", "PUT", "/api/v1/admin/charter", `{"districts":["north"],"stewards":["sam"],"neighbours":[{"name":"Delta","url":"http://127.0.0.1:1","public_key":"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"}],"vote_window":"72h","max_emergency":"7d","renewal_step":"7d","renewal_cap":"42d","cooldown":"30d","spending_cap":"5000"}`},
	{"omni", "POST", "/api/v1/markets", `{"question":"Will it flood?","outcomes":["yes","no"],"liquidity":"10","initial_probabilities":["0.5","0.5"],"closes_at":"2030-01-01T00:00:00Z","district":"north"}`},
	{"omni", "POST", "/api/v1/markets/1/orders", `{"outcome":0,"side":"buy","shares":"1","limit_price":"0.9","max_cost":"5"}`},
	{"omni", "POST", "/api/v1/markets/1/proposal", `{"verdict":"yes","evidence":"the gauge read 3.1 m"}`},
	{"omni", "POST", "/api/v1/markets/1/dispute", `{"reason":"the gauge was broken"}`},
	{"omni", "POST", "/api/v1/contracts/1/milestones/1/claim", `{"evidence":"done, photos attached"}`},
	{"omni", "POST", "/api/v1/contracts/1/milestones/1/dispute", `{"reason":"not done"}`},
	{"omni", "POST", "/api/v1/cases/1/evidence", `{"body":"a statement"}`},
	{"omni", "POST", "/api/v1/cases/1/commit", `{"commitment":"abcdef"}`},
	{"omni", "POST", "/api/v1/cases/1/reveal", `{"verdict":"yes","salt":"s"}`},
	{"omni", "POST", "/api/v1/cases/1/appeal", `{"reason":"the jury erred"}`},
	{"omni", "POST", "/api/v1/quorum/proposals", `{"kind":"reallocation","payload":{"from_line":"1","to_line":"2","amount":"10"},"reason":"routine"}`},
	{"omni", "POST", "/api/v1/emergencies", `{"reason":"Storm","districts":["north"],"duration":"3d","cap":"500"}`},
	{"omni", "POST", "/api/v1/emergencies/1/acts", `{"kind":"direct_award","reason":"r","budget_line":"1","contractor":"2","title":"Sandbags","scope":"s","acceptance_criteria":"a","price":"10","completion_at":"2030-01-01T00:00:00Z","milestones":[{"title":"Delivered","share":"1","due_at":"2030-01-01T00:00:00Z"}]}`},
	{"omni", "POST", "/api/v1/qf/rounds", `{"title":"Parks","pool":"100","cap_share":"0.5","eligibility_rules":"parks only","opens_at":"2029-01-01T00:00:00Z","closes_at":"2030-01-01T00:00:00Z"}`},
	{"omni", "POST", "/api/v1/qf/rounds/1/projects", `{"title":"Bench","description":"a bench","district":"north","estimated_cost":"50"}`},
	{"omni", "POST", "/api/v1/qf/projects/1/eligibility", `{"eligible":true,"reason":"fits"}`},
	{"omni", "POST", "/api/v1/qf/projects/1/contributions", `{"amount":"1"}`},
	{"omni", "POST", "/api/v1/tenders", `{"budget_line":"1","title":"Dyke","scope":"raise it","districts":["north"],"budget_cap":"100","opens_at":"2029-01-01T00:00:00Z","closes_at":"2030-01-01T00:00:00Z","decision_at":"2030-02-01T00:00:00Z","min_confidence":"0.6","twap_window":"24h","dispute_window":"48h","liquidity":"10","acceptance_criteria":"inspected","milestones":[{"title":"Foundations","share":"0.4"},{"title":"Finish","share":"0.6"}]}`},
	{"omni", "PATCH", "/api/v1/tenders/1", `{"title":"Dyke","scope":"raise it","acceptance_criteria":"inspected","budget_cap":"100","min_confidence":"0.6","reason":"clarified"}`},
	{"omni", "POST", "/api/v1/tenders/1/bids", `{"organisation":"2","price":"90","completion_at":"2030-06-01T00:00:00Z","milestone_dates":["2030-03-01T00:00:00Z"],"method_statement":"we dig"}`},
	{"omni", "PUT", "/api/v1/bids/1", `{"price":"90","completion_at":"2030-06-01T00:00:00Z","milestone_dates":["2030-03-01T00:00:00Z"],"method_statement":"we dig"}`},
}

// textLeaf is one string in a JSON body: its path as refusals name it, its
// JSON name, and how to set it.
type textLeaf struct {
	path, name string
	set        func(string)
}

// textLeaves lists the strings of the decoded JSON value v, in a stable order.
func textLeaves(v any, path, name string, set func(any)) []textLeaf {
	switch x := v.(type) {
	case string:
		return []textLeaf{{path, name, func(s string) { set(s) }}}
	case map[string]any:
		var out []textLeaf
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			out = append(out, textLeaves(x[k], p, k, func(nv any) { x[k] = nv })...)
		}
		return out
	case []any:
		var out []textLeaf
		for i := range x {
			out = append(out, textLeaves(x[i], path+"["+strconv.Itoa(i)+"]", name, func(nv any) { x[i] = nv })...)
		}
		return out
	}
	return nil
}

// hostileClients starts a server and returns a client per caller kind.
func hostileClients(t *testing.T) (*Main, map[string]*client) {
	m, _ := MustRunMain(t)
	admin := newClient(t, m, testAdminToken)
	admin.do("POST", "/api/v1/admin/districts", `{"name":"north"}`)
	admin.do("POST", "/api/v1/admin/treasury/issue", `{"amount":"100000"}`)
	st, a := admin.do("POST", "/api/v1/admin/accounts",
		`{"name":"omni","kind":"person","roles":["resident","treasurer","steward"],"district":"north","credit":"100"}`)
	if st != 201 {
		t.Fatalf("omni: %d %v", st, a)
	}
	return m, map[string]*client{"admin": admin, "anyone": anonymous(t, m), "omni": newClient(t, m, a["token"].(string))}
}

// TestHostileControlCharactersInText puts a NUL, an escape, DEL, a C1
// control and a line break into every text of every route that takes text
// in JSON: each is refused with a 400 naming the field (a line break only
// where the text is a single line), never a 500 from PostgreSQL.
func TestHostileControlCharactersInText(t *testing.T) {
	_, clients := hostileClients(t)
	checked := 0
	for _, r := range textRoutes {
		var probe any
		json.Unmarshal([]byte(r.body), &probe)
		for i := range textLeaves(probe, "", "", nil) {
			for _, bad := range []string{"\x00", "\x1b[2J", "\x7f", "\u0085", "\n"} {
				var v any
				json.Unmarshal([]byte(r.body), &v)
				leaf := textLeaves(v, "", "", nil)[i]
				if bad == "\n" && input.Multiline(leaf.name) {
					continue
				}
				// Sign-in allows 10 attempts a minute per address.
				if r.path == "/api/v1/session" && bad != "\x00" && bad != "\n" {
					continue
				}
				leaf.set("a" + bad + "b")
				body, _ := json.Marshal(v)
				st, resp := clients[r.who].do(r.method, r.path, string(body))
				code, field := errField(resp)
				if st != 400 || code != "invalid" || field != leaf.path {
					t.Errorf("%s %s with %q in %s: %d %v, want 400 naming %s", r.method, r.path, bad, leaf.path, st, resp, leaf.path)
				}
				checked++
			}
		}
	}
	// Bytes that are not UTF-8, which json.Marshal would have replaced.
	st, resp := clients["anyone"].do("POST", "/api/v1/session", "{\"name\":\"\xff\xfe\",\"password\":\"x\"}")
	if code, field := errField(resp); st != 400 || code != "invalid" || field != "name" {
		t.Errorf("invalid UTF-8 name: %d %v", st, resp)
	}
	t.Logf("%d bodies refused", checked)
}

// TestHostileControlCharactersOutsideJSON: queries, path parameters, an
// Idempotency-Key and multipart form text get the same check.
func TestHostileControlCharactersOutsideJSON(t *testing.T) {
	m, clients := hostileClients(t)
	omni := clients["omni"]
	for _, tt := range []struct{ path, field string }{
		{"/api/v1/markets?district=%00", "district"},
		{"/api/v1/markets?district=%FF", "district"},
		{"/api/v1/markets?status=open%0A", "status"},
		{"/api/v1/markets?x%00=1", "query"},
		{"/api/v1/cases?status=%1B", "status"},
		{"/api/v1/quorum/proposals?status=%C2%85", "status"},
		{"/api/v1/markets/1/quote?outcome=0&side=buy%00&shares=1", "side"},
		{"/api/v1/markets/1/history?from=%00", "from"},
		{"/markets?district=%00", "district"},
		{"/api/v1/markets/%00", "id"},
	} {
		st, resp := omni.do("GET", tt.path, "")
		if code, field := errField(resp); st != 400 || code != "invalid" || field != tt.field {
			t.Errorf("GET %s: %d %v, want 400 naming %s", tt.path, st, resp, tt.field)
		}
	}

	req, _ := http.NewRequest("POST", omni.base+"/api/v1/qf/projects/1/contributions", strings.NewReader(`{"amount":"1"}`))
	req.Header.Set("Authorization", "Bearer "+omni.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "k\xff")
	if st, resp := send(t, req); st != 400 || resp["error"].(map[string]any)["field"] != "Idempotency-Key" {
		t.Errorf("Idempotency-Key not UTF-8: %d %v", st, resp)
	}

	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("body", "statement\x00")
	w.Close()
	req, _ = http.NewRequest("POST", "http://"+m.Addr()+"/api/v1/cases/1/evidence", &buf)
	req.Header.Set("Authorization", "Bearer "+omni.token)
	req.Header.Set("Content-Type", w.FormDataContentType())
	if st, resp := send(t, req); st != 400 || resp["error"].(map[string]any)["field"] != "body" {
		t.Errorf("multipart body with NUL: %d %v", st, resp)
	}

	buf.Reset()
	w = multipart.NewWriter(&buf)
	// Raw control bytes in a part header are refused by Go's parser, but
	// RFC 2231's percent-encoding carries them through.
	fw, _ := w.CreatePart(textproto.MIMEHeader{"Content-Disposition": {`form-data; name="file"; filename*=UTF-8''photo%1B%5B2J.png`}})
	fw.Write([]byte("\x89PNG\r\n\x1a\n"))
	w.Close()
	req, _ = http.NewRequest("POST", "http://"+m.Addr()+"/api/v1/contracts/1/milestones/1/evidence", &buf)
	req.Header.Set("Authorization", "Bearer "+omni.token)
	req.Header.Set("Content-Type", w.FormDataContentType())
	if st, resp := send(t, req); st != 400 || resp["error"].(map[string]any)["field"] != "file" {
		t.Errorf("file name with an escape: %d %v", st, resp)
	} else if !strings.Contains(fmt.Sprint(resp), "U+001B") {
		t.Errorf("file name with an escape refused for another reason: %v", resp)
	}
}

func send(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %d %q", req.Method, req.URL, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// TestHostileNumbersInPaths calls every route with a numeric path parameter
// with ids out of their column's range or not written the one canonical way
// (leading zeros, signs, spaces, fractions): each answers 404, as an id
// that does not exist, never a 500 ("integer out of range") or a 200 for
// another spelling of an existing id. Query numbers answer 400.
func TestHostileNumbersInPaths(t *testing.T) {
	m, clients := hostileClients(t)
	omni, admin := clients["omni"], clients["admin"]
	// Something real at id 1 and milestone 1 would be found by a lenient
	// parser: a token (id 1 is the admin's or omni's) and a market.
	closes := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if st, r := omni.do("POST", "/api/v1/markets", `{"question":"q?","outcomes":["y","n"],"liquidity":"10","closes_at":"`+closes+`"}`); st != 201 {
		t.Fatalf("market: %d %v", st, r)
	}
	_, tok := omni.do("POST", "/api/v1/me/tokens", `{"label":"spare"}`)
	tokenID := tok["id"].(string)

	// 2147483648 is out of range only for milestone numbers (integer);
	// every id is a bigint.
	bad := []string{"9223372036854775808", "99999999999999999999", "-1", "0", "+1", "01", "001", "1.0", "1e0", "%201", "1%20", "0x1", "%EF%BC%91"}
	routes := 0
	for _, r := range m.web.Routes() {
		if !strings.Contains(r.Path, "/:") || r.Method == "echo_route_not_found" {
			continue
		}
		c := omni
		if strings.HasPrefix(r.Path, "/api/v1/admin/") {
			c = admin
		}
		var params []string
		for _, seg := range strings.Split(r.Path, "/") {
			if strings.HasPrefix(seg, ":") {
				params = append(params, seg)
			}
		}
		routes++
		for _, p := range params {
			for _, b := range append(bad, map[bool]string{true: "2147483648", false: "00"}[p == ":n"]) {
				path := r.Path
				for _, q := range params {
					v := "1"
					if q == p {
						v = b
					}
					path = strings.Replace(path, q, v, 1)
				}
				body := ""
				if r.Method != "GET" && r.Method != "DELETE" {
					body = "{}"
				}
				st, resp := c.do(r.Method, path, body)
				if st != 404 {
					t.Errorf("%s %s: %d %v, want 404", r.Method, path, st, resp)
				}
			}
		}
	}
	// A token's id with a leading zero names nothing; the token survives.
	if st, _ := omni.do("DELETE", "/api/v1/me/tokens/0"+tokenID, ""); st != 404 {
		t.Errorf("DELETE /me/tokens/0%s: %d", tokenID, st)
	}
	if _, ts := omni.do("GET", "/api/v1/me/tokens", ""); !strings.Contains(fmt.Sprint(ts), tokenID) {
		t.Errorf("the token went: %v", ts)
	}
	if routes < 40 {
		t.Errorf("only %d routes with path parameters", routes)
	}

	for _, q := range []string{"/api/v1/ledger/entries?after=9223372036854775808", "/api/v1/ledger/entries?limit=010",
		"/api/v1/ledger/entries?after=+1", "/api/v1/markets?before=%201", "/api/v1/markets?limit=1.0",
		"/api/v1/markets/1/trades?before=-0", "/api/v1/markets/1/history?points=0x10", "/api/v1/markets/1/quote?outcome=32768&side=buy&shares=1",
		"/api/v1/markets/1/quote?outcome=00&side=buy&shares=1", "/api/v1/admin/audit?limit=99999999999999999999"} {
		c := omni
		if strings.HasPrefix(q, "/api/v1/admin/") {
			c = admin
		}
		u, _ := url.Parse(q)
		var name string
		for k := range u.Query() {
			if k != "side" && k != "shares" {
				name = k
			}
		}
		st, resp := c.do("GET", q, "")
		if code, field := errField(resp); st != 400 || code != "invalid" || field != name {
			t.Errorf("GET %s: %d %v, want 400 naming %s", q, st, resp, name)
		}
	}
}

// TestHostileConcurrentIdempotencyKeys sends 16 identical requests with one
// Idempotency-Key at once to every keyed route: exactly one takes effect and
// every caller gets its answer, the same status and body.
func TestHostileConcurrentIdempotencyKeys(t *testing.T) {
	m, url := MustRunMain(t)
	tess, alice, _ := MustCity(t, m)
	closes := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	_, mk := tess.do("POST", "/api/v1/markets", `{"question":"q?","outcomes":["y","n"],"liquidity":"10","closes_at":"`+closes+`"}`)
	_, round := tess.do("POST", "/api/v1/qf/rounds", `{"title":"Parks","pool":"100","closes_at":"`+closes+`"}`)
	st, project := alice.do("POST", "/api/v1/qf/rounds/"+round["id"].(string)+"/projects", `{"title":"Bench","description":"a bench","district":"north","estimated_cost":"50"}`)
	if st != 201 {
		t.Fatalf("project: %d %v", st, project)
	}
	if st, r := tess.do("POST", "/api/v1/qf/projects/"+project["id"].(string)+"/eligibility", `{"eligible":true,"reason":"fits"}`); st != 200 {
		t.Fatalf("eligibility: %d %v", st, r)
	}
	db := sqlx.MustOpen("postgres", url)
	defer db.Close()

	for _, r := range []struct {
		path, body, count string
	}{
		{"/api/v1/qf/projects/" + project["id"].(string) + "/contributions", `{"amount":"2.5"}`, `SELECT count(*) FROM qf_contributions`},
		{"/api/v1/markets/" + mk["id"].(string) + "/orders", `{"outcome":0,"side":"buy","shares":"1"}`, `SELECT count(*) FROM trades`},
	} {
		for round := range 3 {
			key := fmt.Sprintf("key-%d", round)
			var before int
			db.Get(&before, r.count)
			type answer struct {
				status int
				body   string
			}
			answers := make([]answer, 16)
			var wg sync.WaitGroup
			for i := range answers {
				wg.Go(func() {
					req, _ := http.NewRequest("POST", alice.base+r.path, strings.NewReader(r.body))
					req.Header.Set("Authorization", "Bearer "+alice.token)
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Idempotency-Key", key)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					defer resp.Body.Close()
					b, _ := io.ReadAll(resp.Body)
					answers[i] = answer{resp.StatusCode, string(b)}
				})
			}
			wg.Wait()
			for i, a := range answers {
				if a != answers[0] || a.status != 201 {
					t.Fatalf("%s #%d: %d %s; first: %d %s", r.path, i, a.status, a.body, answers[0].status, answers[0].body)
				}
			}
			var after int
			db.Get(&after, r.count)
			if after != before+1 {
				t.Fatalf("%s: %d rows made by one key, want 1", r.path, after-before)
			}
		}
	}
}

// TestHostileMessagesForPeople: a payload of the wrong shape is answered in
// words naming the field, never with encoding/json's Go types and struct
// names.
func TestHostileMessagesForPeople(t *testing.T) {
	_, clients := hostileClients(t)
	omni := clients["omni"]
	for _, tt := range []struct{ path, body, field, message string }{
		{"/api/v1/quorum/proposals", `{"kind":"end","payload":{"emergency":1.5},"reason":"over"}`,
			"payload.emergency", `payload.emergency: a whole number in quotes, like "12"`},
		{"/api/v1/quorum/proposals", `{"kind":"end","payload":{"emergency":"1.5"},"reason":"over"}`,
			"payload.emergency", `payload.emergency: a whole number in quotes, like "12"`},
		{"/api/v1/quorum/proposals", `{"kind":"reallocation","payload":{"from_line":"1","to_line":"2","amount":1.5},"reason":"r"}`,
			"payload.amount", `payload.amount: a decimal string with up to 6 places, like "12.5"`},
		{"/api/v1/emergencies", `{"reason":"Storm","districts":"north","duration":"3d","cap":"500"}`,
			"districts", "districts: a list of strings"},
		{"/api/v1/emergencies", `{"reason":"Storm","districts":["north"],"duration":"3d","cap":"1.1234567"}`,
			"cap", `cap: a decimal string with up to 6 places, like "12.5" (amount has more than 6 decimal places)`},
		{"/api/v1/emergencies/1/acts", `{"kind":"direct_award","reason":"r","completion_at":"soon"}`,
			"completion_at", `completion_at: an RFC 3339 time, like "2027-03-01T00:00:00Z"`},
		{"/api/v1/markets", `{"question":"q?","outcomes":[1,2],"liquidity":"10","closes_at":"2030-01-01T00:00:00Z"}`,
			"outcomes", "outcomes: a list of strings"},
		{"/api/v1/markets/1/orders", `{"outcome":1.5,"side":"buy","shares":"1"}`, "outcome", "outcome: a whole number"},
	} {
		st, resp := omni.do("POST", tt.path, tt.body)
		e, _ := resp["error"].(map[string]any)
		if st != 400 || e["field"] != tt.field || e["message"] != tt.message {
			t.Errorf("POST %s %s: %d %v\nwant 400 %s %q", tt.path, tt.body, st, resp, tt.field, tt.message)
		}
	}
}
