package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// screenshotDir keeps the browser test's screenshots (git-ignored), also on
// failure, so a person can look at what the pages showed.
const screenshotDir = "../../test-output"

// MustChromium returns Debian's Chromium, or fails saying how to install it:
// the browser test is part of `make test` and is never skipped.
func MustChromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("Chromium is not installed, so the browser test cannot run. Install it with `make chromium` " +
		"(it runs `apt-get install -y chromium` as root; otherwise run `sudo apt-get install -y chromium`).")
	return ""
}

// MustBrowser starts a headless Chromium with a fresh profile and returns a
// context whose children each get their own browser context (cookie jar).
// A Chromium that exits as it starts (seen on a loaded machine: "chrome
// failed to start" within 0.2 s) is started again, up to three times.
func MustBrowser(t *testing.T) context.Context {
	t.Helper()
	chrome := MustChromium(t)
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var root context.Context
		if root, err = startBrowser(t, chrome); err == nil {
			return root
		}
		t.Logf("start Chromium (%s), attempt %d: %v", chrome, attempt, err)
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("start Chromium (%s): %v", chrome, err)
	return nil
}

// startBrowser starts one headless Chromium; on error it is stopped.
func startBrowser(t *testing.T, chrome string) (context.Context, error) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	root, cancelRoot := chromedp.NewContext(alloc)
	stop := func() { cancelRoot(); cancelAlloc(); cancel() }
	if err := chromedp.Do(root); err != nil {
		stop()
		return nil, err
	}
	t.Cleanup(stop)
	return root, nil
}

// browser is one person's browser: its own cookie jar and viewport.
type browser struct {
	t    *testing.T
	name string
	base string
	ctx  context.Context
	shot int

	mu       sync.Mutex
	problems []string // uncaught exceptions and CSP violations
}

func newBrowser(t *testing.T, root context.Context, name, base string, width, height int64) *browser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(root, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	b := &browser{t: t, name: name, base: base, ctx: ctx}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatalf("%s: open a tab: %v", name, err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("%s: enable the log: %v", name, err)
	}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	entries := chromedp.Events(ctx, cdplog.EntryAdded)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.problem(fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		}
	}()
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			if strings.Contains(ev.Entry.Text, "Content Security Policy") {
				b.problem("CSP violation: " + ev.Entry.Text)
			} else {
				t.Logf("%s console %s: %s", name, ev.Entry.Level, ev.Entry.Text)
			}
		}
	}()
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.problems {
			t.Errorf("%s: %s", name, p)
		}
	})
	return b
}

func (b *browser) problem(p string) {
	b.mu.Lock()
	b.problems = append(b.problems, p)
	b.mu.Unlock()
}

// do runs steps, failing the test (with a screenshot) on error.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.screenshot("failed")
		b.t.Fatalf("%s: %s: %v", b.name, what, err)
	}
}

// screenshot saves the whole page as test-output/ui-<browser>-<n>-<step>.png.
func (b *browser) screenshot(step string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("%s: screenshot %s: %v", b.name, step, err)
		return
	}
	b.shot++
	path := filepath.Join(screenshotDir, fmt.Sprintf("ui-%s-%d-%s.png", b.name, b.shot, step))
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil { // a clean clone has none yet
		b.t.Errorf("save screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Errorf("save screenshot: %v", err)
	}
}

// js evaluates expr and returns its string value.
func (b *browser) js(expr string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.screenshot("failed-js")
		b.t.Fatalf("%s: evaluate %s: %v", b.name, expr, err)
	}
	return v
}

// waitJS polls expr until it returns a non-empty string, for at most d.
func (b *browser) waitJS(what, expr string, d time.Duration) string {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		if v := b.js(expr); v != "" {
			return v
		}
		if time.Now().After(deadline) {
			b.screenshot("failed")
			b.t.Fatalf("%s: waited %s for %s", b.name, d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// text is the trimmed text of the element matching css, or "" if none.
func text(css string) string {
	return fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? '').trim()`, css)
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitReady(chromedp.CSS("body")))
	if b.js(`document.querySelector('footer.site') ? '' : document.body.textContent`) != "" {
		b.screenshot("failed-open")
		b.t.Fatalf("%s: %s is not a page: %s", b.name, path, b.js(`document.body.textContent.slice(0, 500)`))
	}
}

// signIn signs in through the page's name-and-password form.
func (b *browser) signIn(name, password string) {
	b.t.Helper()
	b.open("/signin")
	b.do("fill the sign-in form",
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("password"), password))
	b.screenshot("signin")
	b.do("sign in", chromedp.Click(chromedp.ID("signin-submit")))
	b.waitJS("the header to name "+name, `(`+text("#signed-in-as")+`.includes(`+fmt.Sprintf("%q", name)+`) && location.pathname === '/markets') ? 'yes' : ''`, 10*time.Second)
}

func TestUI(t *testing.T) {
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	root := MustBrowser(t)
	m, _ := MustRunMain(t)
	tess, _, _ := MustCity(t, m)
	admin := newClient(t, m, testAdminToken)
	tokens := map[string]string{}
	for _, name := range []string{"carol", "dave"} {
		st, a := admin.do("POST", "/api/v1/admin/accounts", `{"name":"`+name+`","roles":["resident"],"district":"north","credit":"1000","password":"`+name+`'s long password"}`)
		if st != 201 {
			t.Fatalf("create %s: %d %v", name, st, a)
		}
		tokens[name] = a["token"].(string)
	}
	question := "Will the pump-station repair be accepted by 1 March?"
	closes := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	st, mk := tess.do("POST", "/api/v1/markets", `{"question":"`+question+`","outcomes":["yes","no"],"liquidity":"100","closes_at":"`+closes+`","district":"north"}`)
	if st != 201 {
		t.Fatalf("create market: %d %v", st, mk)
	}
	id := mk["id"].(string)
	marketPath := "/markets/" + id
	base := "http://" + m.Addr()

	phone := newBrowser(t, root, "phone", base, 360, 740)      // carol trades
	desktop := newBrowser(t, root, "desktop", base, 1280, 900) // dave watches

	desktop.signIn("dave", "dave's long password")
	desktop.waitJS("the market in the list", text("#market-list")+`.includes("pump-station") ? 'yes' : ''`, 5*time.Second)
	desktop.screenshot("markets")
	phone.signIn("carol", "carol's long password")
	phone.screenshot("markets")

	// An anonymous visitor whose browser has no websocket follows the market
	// by polling.
	poller := newBrowser(t, root, "poller", base, 1024, 768)
	if _, err := chromedp.Call(poller.ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: "delete window.WebSocket;"}); err != nil {
		t.Fatal(err)
	}
	poller.open(marketPath)
	if mode := poller.js(text("#live-mode")); !strings.Contains(mode, "every 3 seconds") {
		t.Fatalf("without websockets the page says %q", mode)
	}

	// dave has the market open before carol trades.
	desktop.open(marketPath)
	before := desktop.waitJS("outcome 0's price", text("#price-0"), 5*time.Second)
	if before != "0.500" {
		t.Fatalf("opening price of outcome 0 shows %q, want 0.500", before)
	}
	desktop.screenshot("market-before")

	// carol types an amount; the preview shows exactly what the quote API says.
	phone.open(marketPath)
	phone.do("type an amount", chromedp.SendKeys(chromedp.ID("qty"), "25"))
	carol := newClient(t, m, tokens["carol"])
	st, q := carol.do("GET", "/api/v1/markets/"+id+"/quote?outcome=0&side=buy&amount=25", "")
	if st != 200 {
		t.Fatalf("quote: %d %v", st, q)
	}
	got := phone.waitJS("the preview cost", text("#preview-cost"), 5*time.Second)
	if got != q["cost"] {
		t.Fatalf("preview shows cost %q, the quote API says %v", got, q["cost"])
	}
	phone.screenshot("market-preview")
	// The void rule is on the page before anyone trades.
	if rule := phone.js(text("#void-rule")); !strings.Contains(rule, "unwound as if it never happened") {
		t.Errorf("the market page does not state the void rule: %q", rule)
	}

	// Two clicks in a row place one order.
	phone.do("double-click place order", chromedp.Evaluate[chromedp.Void](
		`(() => { const b = document.getElementById('place-order'); b.click(); b.click(); })()`))
	result := phone.waitJS("the order result", text("#order-result"), 10*time.Second)
	if !strings.HasPrefix(result, "Bought") {
		t.Fatalf("order result: %q", result)
	}
	shares := phone.waitJS("the position", `(() => {
		const row = document.querySelector('#position-body tr');
		return row && row.cells.length === 5 && row.cells[0].textContent === 'yes' ? row.cells[1].textContent : '';
	})()`, 10*time.Second)
	st, pos := carol.do("GET", "/api/v1/me/positions", "")
	ps, _ := pos["positions"].([]any)
	if st != 200 || len(ps) != 1 {
		t.Fatalf("positions after one order: %d %v", st, pos)
	}
	if p := ps[0].(map[string]any); p["shares"] != q["shares"] || !strings.HasPrefix(p["shares"].(string), shares) {
		t.Fatalf("position %v: page shows %s shares, quote said %v", p, shares, q["shares"])
	}
	st, trades := carol.do("GET", "/api/v1/markets/"+id+"/trades", "")
	if n := len(trades["trades"].([]any)); st != 200 || n != 1 {
		t.Fatalf("a double click made %d trades, want 1", n)
	}
	phone.screenshot("market-bought")

	// dave sees the new price without reloading.
	start := time.Now()
	after := desktop.waitJS("outcome 0's price to move", `(() => {
		const p = `+text("#price-0")+`;
		return p !== `+fmt.Sprintf("%q", before)+` ? p : '';
	})()`, 10*time.Second)
	t.Logf("dave saw outcome 0 move %s → %s after %s (%s)", before, after, time.Since(start).Round(time.Millisecond), desktop.js(text("#live-mode")))
	desktop.waitJS("the trade in the recent trades", text("#trades-body")+`.includes('buy') ? 'yes' : ''`, 5*time.Second)
	desktop.screenshot("market-after")
	polled := poller.waitJS("outcome 0's price to move by polling", `(() => {
		const p = `+text("#price-0")+`;
		return p !== `+fmt.Sprintf("%q", before)+` ? p : '';
	})()`, 10*time.Second)
	if polled != after {
		t.Fatalf("the polling page shows %s, the live one %s", polled, after)
	}
	poller.waitJS("the trade in the polling page's history table", text("#history-table tbody")+`.includes(`+fmt.Sprintf("%q", after)+`) ? 'yes' : ''`, 5*time.Second)
	poller.waitJS("the trade in the polling page's recent trades", text("#trades-body")+`.includes('buy') ? 'yes' : ''`, 5*time.Second)
	poller.screenshot("market-polled")

	// The market page stays light: everything it loaded, uncompressed.
	weight := phone.js(`(() => {
		const all = [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')];
		const sum = (k) => all.reduce((n, e) => n + (e[k] || 0), 0);
		return sum('decodedBodySize') + ' ' + sum('transferSize');
	})()`)
	var decoded, transferred int
	fmt.Sscan(weight, &decoded, &transferred)
	t.Logf("market page: %d bytes uncompressed, %d transferred (%s)", decoded, transferred, phone.js(`[performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')].map(e => e.name.replace(location.origin, '') + ' ' + e.decodedBodySize + '/' + e.transferSize).join(', ')`))
	if decoded == 0 || decoded > 150*1024 {
		t.Fatalf("market page weighs %d bytes, want under 150 KB", decoded)
	}

	// An API error shows in the banner with its field.
	phone.do("type a bad amount",
		chromedp.SendKeys(chromedp.ID("qty"), "1.0000001"),
		chromedp.Click(chromedp.ID("place-order")))
	banner := phone.waitJS("the error banner", `document.getElementById('error-banner').hidden ? '' : `+text("#error-banner"), 5*time.Second)
	if !strings.Contains(banner, "amount") {
		t.Fatalf("error banner: %q", banner)
	}
	phone.screenshot("market-error")

	phone.open("/portfolio")
	phone.waitJS("the position in the portfolio", text("#positions")+`.includes("pump-station") ? 'yes' : ''`, 5*time.Second)
	phone.screenshot("portfolio")

	// Residents may not open markets; the treasurer can, signed in by token.
	phone.open("/markets/new")
	if b := phone.js(text("#error-banner")); !strings.Contains(b, "treasurer") {
		t.Fatalf("resident on /markets/new: banner %q", b)
	}
	desktop.do("sign out", chromedp.Click(chromedp.CSS("form.signout button")))
	desktop.waitJS("the sign-in link", `document.querySelector('#signed-in-as') ? '' : `+text("header .who"), 5*time.Second)
	desktop.open("/signin")
	desktop.do("sign in with a token",
		chromedp.Click(chromedp.CSS("details.alt summary")),
		chromedp.SendKeys(chromedp.ID("token"), tess.token),
		chromedp.Click(chromedp.ID("signin-token-submit")))
	desktop.waitJS("the header to name tess", text("#signed-in-as")+`.includes('tess') ? 'yes' : ''`, 10*time.Second)
	desktop.open("/markets/new")
	desktop.do("fill the new market form",
		chromedp.SendKeys(chromedp.ID("question"), "Will the Elm Street culvert reopen by 1 June?"))
	desktop.screenshot("new-market")
	desktop.do("open the market", chromedp.Click(chromedp.ID("create-market")))
	desktop.waitJS("the new market's page", `location.pathname.startsWith('/markets/') && `+text("h1")+`.includes('culvert') ? 'yes' : ''`, 10*time.Second)
	desktop.screenshot("new-market-opened")
}

// TestPageAccess checks who gets which page, without a browser: pages that
// need a caller answer 401 with the sign-in form, the treasurer's form 403s
// everyone else, and errors are pages with the API's status.
func TestPageAccess(t *testing.T) {
	m, _ := MustRunMain(t)
	tess, alice, _ := MustCity(t, m)
	closes := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	_, mk := tess.do("POST", "/api/v1/markets", `{"question":"q?","outcomes":["y","n"],"liquidity":"10","closes_at":"`+closes+`"}`)
	id := mk["id"].(string)
	callers := map[string]*client{"anonymous": anonymous(t, m), "resident": alice, "treasurer": tess}
	for _, tc := range []struct {
		method, path string
		want         map[string]int // by caller; missing callers get want[""]
	}{
		{"GET", "/", map[string]int{"": 200}},
		{"GET", "/markets?status=open&district=north", map[string]int{"": 200}},
		{"GET", "/markets?status=bogus", map[string]int{"": 400}},
		{"GET", "/markets/" + id, map[string]int{"": 200}},
		{"GET", "/markets/999999", map[string]int{"": 404}},
		{"GET", "/markets/abc", map[string]int{"": 404}},
		{"GET", "/signin", map[string]int{"": 200}},
		{"GET", "/portfolio", map[string]int{"": 200, "anonymous": 401}},
		{"GET", "/markets/new", map[string]int{"treasurer": 200, "resident": 403, "anonymous": 401}},
		{"GET", "/api/v1/session", map[string]int{"": 200, "anonymous": 401}},
		{"POST", "/signout", map[string]int{"": 200}}, // a redirect to the markets
		{"GET", "/assets/app.js", map[string]int{"": 200}},
		{"GET", "/assets/nope.js", map[string]int{"": 404}},
	} {
		for who, c := range callers {
			want, ok := tc.want[who]
			if !ok {
				want = tc.want[""]
			}
			if st, body := c.do(tc.method, tc.path, ""); st != want {
				t.Errorf("%s %s as %s: %d %v, want %d", tc.method, tc.path, who, st, body, want)
			}
		}
	}
	if _, s := tess.do("GET", "/api/v1/session", ""); s["name"] != "tess" || s["csrf_token"] != "" {
		t.Errorf("session of a token caller: %v", s)
	}

	// Assets: cached for a year under their version, revalidated otherwise.
	resp, err := http.Get("http://" + m.Addr() + "/markets/" + id)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("page headers: %v", resp.Header)
	}
	i := bytes.Index(page, []byte(`/assets/market.js?v=`))
	if i < 0 {
		t.Fatalf("market page names no versioned market.js:\n%s", page)
	}
	url := "http://" + m.Addr() + string(page[i:i+bytes.IndexByte(page[i:], '"')])
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("versioned asset: %d %v", resp.StatusCode, resp.Header)
	}
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidated asset: %d", resp.StatusCode)
	}
}
