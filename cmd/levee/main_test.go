package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"levee/migrations/dbtest"
)

const testAdminToken = "test-admin-token-0123456789"

// MustRunMain starts the real program on port 0 against a fresh database.
func MustRunMain(t *testing.T) (*Main, string) {
	t.Helper()
	m, url, _ := MustRunMainClock(t)
	return m, url
}

// testClock is the drill's skipClock: real time plus an offset a test
// pushes forward, so that windows and deadlines pass without sleeping.
type testClock = skipClock

// MustRunMainClock is MustRunMain with every service on a testClock.
// Options may change the config (for example to seed the demo city).
func MustRunMainClock(t *testing.T, options ...func(*Config)) (*Main, string, *testClock) {
	t.Helper()
	url := dbtest.NewURL(t)
	cfg := Config{Addr: "127.0.0.1:0", DatabaseURL: url, AdminToken: testAdminToken, DataDir: t.TempDir(), LogFormat: "text"}
	for _, o := range options {
		o(&cfg)
	}
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("LEVEE_TEST_LOG") != "" { // see what the server says while debugging a test
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	m := NewMain(cfg, logger, io.Discard)
	clk := &testClock{}
	m.Clock = clk.Now
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m, url, clk
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("not an id: %q", s)
	}
	return n
}

type client struct {
	t       *testing.T
	base    string
	token   string
	csrf    string
	headers map[string]string
	http    *http.Client
}

func newClient(t *testing.T, m *Main, token string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: "http://" + m.Addr(), token: token, http: &http.Client{Jar: jar}}
}

// do sends a request and decodes the JSON answer into a map.
func (c *client) do(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	validateExchange(c.t, req, []byte(body), resp, b) // openapi_test.go
	var out map[string]any
	if len(bytes.TrimSpace(b)) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &out); err != nil {
			c.t.Fatalf("%s %s: bad JSON %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, out
}

func errField(body map[string]any) (code, field string) {
	e, _ := body["error"].(map[string]any)
	code, _ = e["code"].(string)
	field, _ = e["field"].(string)
	return
}

func TestEndToEnd(t *testing.T) {
	m, _ := MustRunMain(t)
	admin := newClient(t, m, testAdminToken)
	anon := newClient(t, m, "")

	for _, path := range []string{"/healthz", "/readyz"} {
		if st, _ := anon.do("GET", path, ""); st != 200 {
			t.Fatalf("%s: %d", path, st)
		}
	}

	st, body := admin.do("POST", "/api/v1/admin/districts", `{"name":"north"}`)
	if st != 201 || body["name"] != "north" {
		t.Fatalf("create district: %d %v", st, body)
	}
	st, alice := admin.do("POST", "/api/v1/admin/accounts", `{"name":"alice","roles":["resident"],"district":"north","credit":"1000","password":"alice's long password"}`)
	if st != 201 || alice["token"] == "" || alice["id"] == "" {
		t.Fatalf("create account: %d %v", st, alice)
	}

	// Bad input is a 4xx naming the field, and changes nothing.
	bad := []struct {
		method, path, body string
		status             int
		field              string
	}{
		{"POST", "/api/v1/admin/districts", `{"name":"north"}`, 409, ""},
		{"POST", "/api/v1/admin/districts", `{"name":"North Side"}`, 400, "name"},
		{"POST", "/api/v1/admin/districts", `{"nme":"x"}`, 400, "nme"},
		{"POST", "/api/v1/admin/districts", `{"name":`, 400, "body"},
		{"POST", "/api/v1/admin/districts", ``, 400, "body"},
		{"POST", "/api/v1/admin/districts", `[1,2]`, 400, "body"},
		{"POST", "/api/v1/admin/districts", `{"name":"a"} {"name":"b"}`, 400, "body"},
		{"POST", "/api/v1/admin/districts", `{"name":7}`, 400, "name"},
		{"POST", "/api/v1/admin/accounts", `{"name":"bob","roles":["resident"],"district":"atlantis"}`, 400, "district"},
		{"POST", "/api/v1/admin/accounts", `{"name":"bob","roles":["mayor"],"district":"north"}`, 400, "roles"},
		{"POST", "/api/v1/admin/accounts", `{"name":"bob","roles":["resident"],"district":"north","credit":"1e3"}`, 400, "credit"},
		{"POST", "/api/v1/admin/accounts", `{"name":"bob","roles":["resident"],"district":"north","credit":"-5"}`, 400, "credit"},
		{"POST", "/api/v1/admin/accounts", `{"name":"bob","roles":["resident"],"district":"north","credit":"0.0000001"}`, 400, "credit"},
		{"POST", "/api/v1/admin/accounts", `{"name":"bob","roles":["resident"],"district":"north","credit":1000}`, 400, "credit"},
		{"POST", "/api/v1/admin/accounts", `{"name":"alice","roles":["resident"],"district":"north"}`, 409, "name"},
		{"GET", "/api/v1/ledger/entries?limit=0", ``, 400, "limit"},
		{"GET", "/api/v1/ledger/entries?after=x", ``, 400, "after"},
		{"GET", "/api/v1/nowhere", ``, 404, ""},
		{"DELETE", "/api/v1/me/tokens/abc", ``, 404, ""},
	}
	for _, b := range bad {
		st, body := admin.do(b.method, b.path, b.body)
		code, field := errField(body)
		if st != b.status || field != b.field || code == "" {
			t.Errorf("%s %s %s: got %d %v, want %d field %q", b.method, b.path, b.body, st, body, b.status, b.field)
		}
	}
	if st, body := admin.do("POST", "/api/v1/admin/districts", `{"name":"`+strings.Repeat("x", 2<<20)+`"}`); st != 413 {
		t.Errorf("huge body: %d %v", st, body)
	}

	// alice sees herself, and only herself.
	ac := newClient(t, m, alice["token"].(string))
	st, me := ac.do("GET", "/api/v1/me", "")
	if st != 200 || me["name"] != "alice" || me["cash"] != "1000.000000" || me["district"] != "north" {
		t.Fatalf("me: %d %v", st, me)
	}
	if st, _ := ac.do("POST", "/api/v1/admin/districts", `{"name":"south"}`); st != 403 {
		t.Fatalf("resident reached an admin route: %d", st)
	}
	if st, _ := anon.do("GET", "/api/v1/me", ""); st != 401 {
		t.Fatalf("anonymous /me: %d", st)
	}
	if st, _ := newClient(t, m, "lv_not-a-token").do("GET", "/api/v1/me", ""); st != 401 {
		t.Fatalf("bad token /me: %d", st)
	}

	// The ledger is public and verifies.
	st, entries := anon.do("GET", "/api/v1/ledger/entries?after=0&limit=10", "")
	if st != 200 || len(entries["entries"].([]any)) != 1 {
		t.Fatalf("ledger entries: %d %v", st, entries)
	}
	st, report := anon.do("GET", "/api/v1/ledger/verify", "")
	if st != 200 || report["ok"] != true {
		t.Fatalf("ledger verify: %d %v", st, report)
	}

	// Metrics count the requests above.
	resp, err := http.Get("http://" + m.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(mb, []byte(`levee_http_requests_total{method="GET",route="/api/v1/me",status="200"}`)) || !bytes.Contains(mb, []byte("levee_journal_commit_seconds")) {
		t.Fatalf("metrics lack the /me counter:\n%s", mb)
	}
	// Where a commit's time goes, and how long goroutines wait for a thread.
	for _, series := range []string{`levee_journal_phase_seconds_count{phase="begin"}`, `levee_journal_phase_seconds_count{phase="commit"}`, `levee_go_sched_wait_seconds_bucket{le="0.001"}`} {
		if !bytes.Contains(mb, []byte(series)) {
			t.Fatalf("metrics lack %s:\n%s", series, mb)
		}
	}
}

func TestBrowserSessionNeedsCSRF(t *testing.T) {
	m, _ := MustRunMain(t)
	admin := newClient(t, m, testAdminToken)
	admin.do("POST", "/api/v1/admin/districts", `{"name":"north"}`)
	if st, _ := admin.do("POST", "/api/v1/admin/accounts", `{"name":"alice","roles":["resident"],"district":"north","password":"alice's long password"}`); st != 201 {
		t.Fatal(st)
	}
	browser := newClient(t, m, "")
	if st, _ := browser.do("POST", "/api/v1/session", `{"name":"alice","password":"wrong password!"}`); st != 401 {
		t.Fatalf("wrong password: %d", st)
	}
	st, sess := browser.do("POST", "/api/v1/session", `{"name":"alice","password":"alice's long password"}`)
	if st != 201 || sess["csrf_token"] == "" {
		t.Fatalf("login: %d %v", st, sess)
	}
	if st, me := browser.do("GET", "/api/v1/me", ""); st != 200 || me["name"] != "alice" {
		t.Fatalf("me via cookie: %d %v", st, me)
	}
	if st, _ := browser.do("POST", "/api/v1/me/tokens", `{"label":"x"}`); st != 403 {
		t.Fatalf("state change without CSRF token: %d", st)
	}
	browser.csrf = sess["csrf_token"].(string)
	if st, _ := browser.do("POST", "/api/v1/me/tokens", `{"label":"x"}`); st != 201 {
		t.Fatalf("state change with CSRF token: %d", st)
	}
	if st, _ := browser.do("DELETE", "/api/v1/session", ""); st != 204 {
		t.Fatalf("logout: %d", st)
	}
	if st, _ := browser.do("GET", "/api/v1/me", ""); st != 401 {
		t.Fatalf("me after logout: %d", st)
	}
}

func TestLoginIsThrottled(t *testing.T) {
	m, _ := MustRunMain(t)
	c := newClient(t, m, "")
	var last int
	for i := 0; i < 15; i++ {
		last, _ = c.do("POST", "/api/v1/session", `{"name":"nobody","password":"guessing password"}`)
	}
	if last != 429 {
		t.Fatalf("15 quick failed logins: last status %d, want 429", last)
	}
}

func TestDemoAndLedgerVerifyCommands(t *testing.T) {
	ctx := context.Background()
	url := dbtest.NewURL(t)
	t.Setenv("DATABASE_URL", url)
	t.Setenv("LEVEE_ADMIN_TOKEN", "")
	data := t.TempDir()
	var out bytes.Buffer
	if code, err := run(ctx, []string{"demo", "--data", data}, &out, io.Discard); code != 0 || err != nil {
		t.Fatalf("demo: %d %v", code, err)
	}
	for _, want := range []string{"alice", "dykeworks", "tess", "sam", "lv_"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code, err := run(ctx, []string{"demo", "--data", data}, &out, io.Discard); code != 0 || err != nil || !strings.Contains(out.String(), "alice") {
		t.Fatalf("second demo: %d %v %s", code, err, out.String())
	}
	out.Reset()
	if code, err := run(ctx, []string{"ledger", "verify", "--data", data}, &out, io.Discard); code != 0 || err != nil || !strings.Contains(out.String(), "ledger OK") {
		t.Fatalf("verify demo city: %d %v %s", code, err, out.String())
	}

	db := sqlx.MustOpen("postgres", url)
	defer db.Close()
	// A determined insider bypasses the append-only triggers.
	tx := db.MustBegin()
	tx.MustExec(`SET LOCAL session_replication_role = replica`)
	tx.MustExec(`UPDATE ledger_postings SET amount = amount + 1 WHERE entry_seq = 3 AND amount > 0`)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	code, _ := run(ctx, []string{"ledger", "verify", "--data", data}, &out, io.Discard)
	if code == 0 || !strings.Contains(out.String(), "BROKEN at entry 3") {
		t.Fatalf("verify tampered ledger: %d %s", code, out.String())
	}
}

func TestUsageErrors(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{{}, {"frobnicate"}, {"ledger"}, {"serve", "--addr", "nonsense"}, {"serve", "--nope"}} {
		if code, _ := run(ctx, args, io.Discard, io.Discard); code != 2 {
			t.Errorf("levee %v: exit %d, want 2", args, code)
		}
	}
}

// hasField reports whether an error body names field.
func hasField(body map[string]any, field string) bool {
	_, f := errField(body)
	return f == field
}
