package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"levee/migrations/dbtest"
	"levee/web"
)

// rawPost sends body with the given headers and returns the status and the
// Set-Cookie header.
func rawPost(t *testing.T, m *Main, path, body string, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+m.Addr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Set-Cookie")
}

// TestRotatingForwardedForBuysNothing: without a trusted proxy, a new
// X-Forwarded-For on every request is still the same caller, for password
// guesses, bad bearer tokens and the anonymous request rate alike.
func TestRotatingForwardedForBuysNothing(t *testing.T) {
	m, _, _ := MustRunMainClock(t, func(c *Config) { c.RatePerAddress = 10 })
	c := newClient(t, m, "")
	c.headers = map[string]string{}
	rotate := func(i int) { c.headers["X-Forwarded-For"] = fmt.Sprintf("198.51.%d.%d", i/250, i%250+1) }

	// Each bucket refills one token a second (ten for requests), so what
	// the loop may get is its burst plus what refilled while it ran.
	guesses, start := 0, time.Now()
	for i := range 30 {
		rotate(i)
		st, _ := c.do("POST", "/api/v1/session", `{"name":"admin","password":"guessing password"}`)
		if st == http.StatusTooManyRequests {
			break
		}
		guesses++
	}
	if most := 10 + int(time.Since(start).Seconds()) + 1; guesses > most {
		t.Errorf("rotating X-Forwarded-For bought %d password guesses, want at most the burst of 10 + 1/s (%d)", guesses, most)
	}

	served, start := 0, time.Now()
	for i := range 100 {
		rotate(100 + i)
		if st, _ := c.do("GET", "/api/v1/districts", ""); st == http.StatusOK {
			served++
		}
	}
	if most := 20 + 10*(int(time.Since(start).Seconds())+1); served > most {
		t.Errorf("rotating X-Forwarded-For: %d of 100 anonymous requests served at 10/s, burst 20 (at most %d)", served, most)
	}

	// Bad tokens: after the burst, every bearer call from the address is
	// refused before any lookup, so a good token not seen yet is refused
	// too. A token already in use from there (in the token cache, no
	// query) goes on working: one guesser behind a shared address (a
	// shelter's wifi) must not lock out everyone else there.
	admin := newClient(t, m, testAdminToken)
	admin.headers = c.headers
	_, fresh := admin.do("POST", "/api/v1/admin/accounts", `{"name":"fresh","roles":["treasurer"]}`)
	freshToken, _ := fresh["token"].(string)
	if freshToken == "" {
		t.Fatalf("new account: %v", fresh)
	}
	bad, start := 0, time.Now()
	for i := range 40 {
		rotate(200 + i)
		c.token = fmt.Sprintf("lv_guess%032d", i)
		st, _ := c.do("GET", "/api/v1/me", "")
		if st == http.StatusTooManyRequests {
			break
		}
		if st != http.StatusUnauthorized {
			t.Fatalf("bad token: status %d", st)
		}
		bad++
	}
	if most := 20 + int(time.Since(start).Seconds()) + 1; bad > most {
		t.Errorf("rotating X-Forwarded-For bought %d bad-token lookups, want at most the burst of 20 + 1/s (%d)", bad, most)
	}
	c.token = freshToken
	if st, _ := c.do("GET", "/api/v1/me", ""); st != http.StatusTooManyRequests {
		t.Errorf("a good token not seen yet from an address throttled for bad ones: %d, want 429 before the lookup", st)
	}
	c.token = testAdminToken
	if st, _ := c.do("GET", "/api/v1/me", ""); st != http.StatusOK {
		t.Errorf("a token in use from an address throttled for someone's bad ones: %d, want 200", st)
	}
}

// TestTrustedProxyNamesTheClient: behind a proxy named in
// LEVEE_TRUSTED_PROXIES, each client is throttled on its own address from
// X-Forwarded-For, not all together on the proxy's.
func TestTrustedProxyNamesTheClient(t *testing.T) {
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	m, _, _ := MustRunMainClock(t, func(c *Config) { c.TrustedProxies = []*net.IPNet{loopback} })
	c := newClient(t, m, "")
	c.headers = map[string]string{}
	for i := range 15 {
		c.headers["X-Forwarded-For"] = fmt.Sprintf("6.6.6.6, 198.51.100.%d", i+1)
		if st, _ := c.do("POST", "/api/v1/session", `{"name":"admin","password":"guessing password"}`); st != http.StatusUnauthorized {
			t.Fatalf("client %d behind the proxy, first attempt: %d, want 401", i, st)
		}
	}
	last := 0
	for range 25 { // 10 at once, then one every 2 s: 25 even at a second each (-race, a busy machine)
		c.headers["X-Forwarded-For"] = "6.6.6.7, 198.51.100.200"
		last, _ = c.do("POST", "/api/v1/session", `{"name":"admin","password":"guessing password"}`)
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("25 attempts from one client behind the proxy: last %d, want 429", last)
	}
}

// TestLoginCSRF: a cross-site page cannot sign a visitor into the
// attacker's account: a text/plain or form post, or a foreign Origin, opens
// no session.
func TestLoginCSRF(t *testing.T) {
	m, _ := MustRunMain(t)
	admin := newClient(t, m, testAdminToken)
	admin.do("POST", "/api/v1/admin/districts", `{"name":"north"}`)
	if st, _ := admin.do("POST", "/api/v1/admin/accounts", `{"name":"mallory","roles":["resident"],"district":"north","password":"mallory's long password"}`); st != 201 {
		t.Fatal(st)
	}
	body := `{"name":"mallory","password":"mallory's long password"}`
	self := "http://" + m.Addr()
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"text/plain form from another site", map[string]string{"Content-Type": "text/plain", "Origin": "https://evil.example"}, 400},
		{"text/plain without Origin", map[string]string{"Content-Type": "text/plain"}, 400},
		{"urlencoded form", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 400},
		{"no content type", map[string]string{}, 400},
		{"JSON from another site", map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, 403},
		{"JSON from another port", map[string]string{"Content-Type": "application/json", "Origin": "http://127.0.0.1:1"}, 403},
		{"JSON from an opaque origin", map[string]string{"Content-Type": "application/json", "Origin": "null"}, 403},
		{"JSON from this site", map[string]string{"Content-Type": "application/json; charset=utf-8", "Origin": self}, 201},
		{"JSON without Origin (a program)", map[string]string{"Content-Type": "application/json"}, 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, cookie := rawPost(t, m, "/api/v1/session", body, tc.headers)
			if st != tc.want {
				t.Errorf("status %d, want %d", st, tc.want)
			}
			if signedIn := strings.Contains(cookie, "levee_session=lv_"); signedIn != (tc.want == 201) {
				t.Errorf("session cookie set: %v (%q)", signedIn, cookie)
			}
		})
	}
}

// TestCSRFTokenOnlyInHeader: the session's CSRF token in a form field does
// not count; only X-CSRF-Token does.
func TestCSRFTokenOnlyInHeader(t *testing.T) {
	m, _ := MustRunMain(t)
	browser := newClient(t, m, "")
	st, sess := browser.do("POST", "/api/v1/session", `{"token":"`+testAdminToken+`"}`)
	if st != 201 {
		t.Fatal(st)
	}
	csrf := sess["csrf_token"].(string)
	req, _ := http.NewRequest("POST", browser.base+"/api/v1/me/tokens?_csrf="+csrf, strings.NewReader("_csrf="+csrf))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := browser.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("CSRF token in the form and query: %d, want 403", resp.StatusCode)
	}
}

// TestOversizedUploadRefusedBeforeTemp streams a 64 MiB multipart body,
// with no Content-Length, from a signed-in browser session to an evidence
// route and to an unknown path ending in /evidence: the server reads about
// its body limit and no more, answers 413 on the route, and writes nothing
// large to the temporary directory.
func TestOversizedUploadRefusedBeforeTemp(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	m, _ := MustRunMain(t)
	browser := newClient(t, m, "")
	st, sess := browser.do("POST", "/api/v1/session", `{"token":"`+testAdminToken+`"}`)
	if st != 201 {
		t.Fatal(st)
	}
	csrf := sess["csrf_token"].(string)

	var tempMax atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() { // the largest the temporary directory gets while we send
		defer close(watched)
		for {
			var n int64
			filepath.WalkDir(tmp, func(_ string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if fi, err := d.Info(); err == nil {
						n += fi.Size()
					}
				}
				return nil
			})
			if n > tempMax.Load() {
				tempMax.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	const total = 64 << 20
	send := func(path string, withCSRF bool) (status int, sent int64) {
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		var written atomic.Int64
		go func() {
			part, err := mw.CreateFormFile("file", "big.pdf")
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			chunk := bytes.Repeat([]byte("%PDF-1.4 "), 8<<10)
			for written.Load() < total {
				n, err := part.Write(chunk)
				written.Add(int64(n))
				if err != nil {
					return
				}
			}
			mw.Close()
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", browser.base+path, pr)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		if withCSRF {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := browser.http.Do(req)
		pr.CloseWithError(io.ErrClosedPipe)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, written.Load()
	}
	// What the server may read: the 5 MiB upload limit, plus what the
	// kernel's socket buffers and the server's post-handler drain hold.
	const bound = 24 << 20
	if st, sent := send("/api/v1/contracts/1/milestones/1/evidence", true); st != http.StatusRequestEntityTooLarge || sent > bound {
		t.Errorf("64 MiB to an evidence route: status %d after %d bytes sent, want 413 within %d", st, sent, bound)
	}
	if st, sent := send("/api/v1/anything/evidence", false); st < 400 || st >= 500 || sent > bound {
		t.Errorf("64 MiB to an unknown .../evidence path: status %d after %d bytes sent, want a 4xx within %d", st, sent, bound)
	}
	// A declared length over the limit is refused before reading.
	big := bytes.Repeat([]byte("x"), 6<<20)
	req, _ := http.NewRequest("POST", browser.base+"/api/v1/cases/1/evidence", bytes.NewReader(big))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	req.Header.Set("X-CSRF-Token", csrf)
	if resp, err := browser.http.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("6 MiB declared to case evidence: %d, want 413", resp.StatusCode)
		}
	}
	close(stop)
	<-watched
	if n := tempMax.Load(); n > 1<<20 {
		t.Errorf("the temporary directory reached %d bytes during the uploads", n)
	}
}

// TestRevokedTokenEndsBrowserSession: a browser session opened with an API
// token ends when the token is revoked through the API.
func TestRevokedTokenEndsBrowserSession(t *testing.T) {
	m, _ := MustRunMain(t)
	admin := newClient(t, m, testAdminToken)
	st, tok := admin.do("POST", "/api/v1/me/tokens", `{"label":"laptop"}`)
	if st != 201 {
		t.Fatal(st)
	}
	browser := newClient(t, m, "")
	if st, _ := browser.do("POST", "/api/v1/session", `{"token":"`+tok["token"].(string)+`"}`); st != 201 {
		t.Fatal(st)
	}
	if st, _ := browser.do("GET", "/api/v1/me", ""); st != 200 {
		t.Fatalf("me in the session: %d", st)
	}
	id := tok["id"].(string)
	if st, _ := admin.do("DELETE", "/api/v1/me/tokens/"+id, ""); st != 204 {
		t.Fatalf("revoke: %d", st)
	}
	if st, _ := browser.do("GET", "/api/v1/me", ""); st != 401 {
		t.Fatalf("me in a session opened with a revoked token: %d, want 401", st)
	}
}

// TestRestartWithNewAdminToken: restarting with a new LEVEE_ADMIN_TOKEN
// revokes the old one.
func TestRestartWithNewAdminToken(t *testing.T) {
	url := dbtest.NewURL(t)
	start := func(token string) *Main {
		cfg := Config{Addr: "127.0.0.1:0", DatabaseURL: url, AdminToken: token, DataDir: t.TempDir(), LogFormat: "text"}
		m := NewMain(cfg, slog.New(slog.DiscardHandler), io.Discard)
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return m
	}
	const old, next = "the-leaked-admin-token-0123", "the-fresh-admin-token-45678"
	m := start(old)
	if st, _ := newClient(t, m, old).do("GET", "/api/v1/me", ""); st != 200 {
		t.Fatalf("first token: %d", st)
	}
	m.Close()
	m = start(next)
	defer m.Close()
	if st, _ := newClient(t, m, old).do("GET", "/api/v1/me", ""); st != 401 {
		t.Errorf("old admin token after a restart with a new one: %d, want 401", st)
	}
	if st, _ := newClient(t, m, next).do("GET", "/api/v1/me", ""); st != 200 {
		t.Errorf("new admin token: %d, want 200", st)
	}
}

// TestStaleSessionCookies: a session ended elsewhere is cleared from the
// browser at its next request, and guessing session ids costs no query past
// the per-address budget of bad credentials (the guesses are served as
// anonymous, never a 5xx or a 429, and a good cookie from that address
// waits for the budget like a bad one).
func TestStaleSessionCookies(t *testing.T) {
	m, _ := MustRunMain(t)
	admin := newClient(t, m, testAdminToken)
	admin.do("POST", "/api/v1/admin/districts", `{"name":"north"}`)
	st, a := admin.do("POST", "/api/v1/admin/accounts", `{"name":"alice","roles":["resident"],"district":"north","password":"alice's long password"}`)
	if st != 201 {
		t.Fatal(st)
	}
	token := newClient(t, m, a["token"].(string))
	browser := signIn(t, m, "alice", "alice's long password")
	mustMe(t, browser, 200)
	if st, _ := token.do("POST", "/api/v1/me/sign-out-everywhere", ""); st != 200 {
		t.Fatal(st)
	}
	if st, _ := browser.do("GET", "/api/v1/markets", ""); st != 200 {
		t.Fatalf("a public read with a stale cookie: %d", st)
	}
	u, _ := url.Parse(browser.base)
	for _, ck := range browser.http.Jar.Cookies(u) {
		if ck.Name == web.SessionCookie {
			t.Fatalf("the stale cookie was not cleared: %v", ck)
		}
	}

	good := signIn(t, m, "alice", "alice's long password")
	for i := range 40 {
		req, _ := http.NewRequest("GET", browser.base+"/api/v1/markets", nil)
		req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: fmt.Sprintf("guess-%d", i)})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("guess %d: %d", i, resp.StatusCode)
		}
	}
	mustMe(t, good, 401) // not looked up: the address spent its budget
	time.Sleep(1100 * time.Millisecond)
	mustMe(t, good, 200)
}
