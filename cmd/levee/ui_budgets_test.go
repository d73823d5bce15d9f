package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestUIBudgets runs a quadratic funding round through the pages: a
// treasurer opens a round with a short window, a resident proposes a
// project, the treasurer marks it eligible, two residents contribute while
// the page estimates their match, the treasurer finalises, a contributor
// reads "explain my match", and an anonymous visitor reads the census.
func TestUIBudgets(t *testing.T) {
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	root := MustBrowser(t)
	m, _ := MustRunMain(t)
	MustCity(t, m) // the north district and a funded treasury
	admin := newClient(t, m, testAdminToken)
	for _, a := range []string{
		`{"name":"trudy","roles":["treasurer"],"password":"trudy's long password"}`,
		`{"name":"carol","roles":["resident"],"district":"north","credit":"1000","password":"carol's long password"}`,
		`{"name":"dave","roles":["resident"],"district":"north","credit":"1000","password":"dave's long password"}`,
	} {
		if st, body := admin.do("POST", "/api/v1/admin/accounts", a); st != 201 {
			t.Fatalf("create account %s: %d %v", a, st, body)
		}
	}
	base := "http://" + m.Addr()
	treasurer := newBrowser(t, root, "qf-treasurer", base, 1280, 900)
	carol := newBrowser(t, root, "qf-carol", base, 360, 740)
	dave := newBrowser(t, root, "qf-dave", base, 1024, 768)
	treasurer.signIn("trudy", "trudy's long password")
	carol.signIn("carol", "carol's long password")
	dave.signIn("dave", "dave's long password")

	// The treasurer opens a round that takes contributions for 25 seconds.
	treasurer.open("/rounds")
	treasurer.do("fill the new round form",
		chromedp.SendKeys(chromedp.ID("round-title"), "Flood works 2027"),
		chromedp.SendKeys(chromedp.ID("round-pool"), "100"),
		chromedp.SendKeys(chromedp.ID("round-cap"), "0.5"),
		chromedp.SendKeys(chromedp.ID("round-rules"), "Public works in a district, costed by an engineer."),
		chromedp.Evaluate[chromedp.Void](`(() => {
			const d = new Date(Date.now() + 25000), p = (n) => String(n).padStart(2, '0');
			document.getElementById('round-closes').value = d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) +
				'T' + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
		})()`))
	treasurer.screenshot("new-round")
	treasurer.do("open the round", chromedp.Click(chromedp.ID("create-round")))
	roundPath := treasurer.waitJS("the round's page", `/^\/rounds\/\d+$/.test(location.pathname) && document.getElementById('round') ? location.pathname : ''`, 10*time.Second)
	roundID := strings.TrimPrefix(roundPath, "/rounds/")
	if phase := treasurer.js(text("#round-phase")); phase != "Contributing" {
		t.Fatalf("new round's phase: %q", phase)
	}

	// carol proposes a project from her phone.
	carol.open(roundPath)
	carol.do("fill the proposal",
		chromedp.SendKeys(chromedp.ID("project-title"), "Sluice gate at the north dyke"),
		chromedp.SendKeys(chromedp.ID("project-cost"), "500"))
	carol.do("propose", chromedp.Click(chromedp.ID("propose-submit")))
	projectID := carol.waitJS("the proposed project", `document.querySelector('.project')?.dataset.project ?? ''`, 10*time.Second)
	if e := carol.js(text("#eligibility-" + projectID)); !strings.Contains(e, "Awaiting") {
		t.Fatalf("a new project's eligibility reads %q", e)
	}

	// The treasurer marks it eligible.
	treasurer.open(roundPath)
	treasurer.do("write a reason", chromedp.SendKeys(chromedp.ID("reason-"+projectID), "public works, costed"))
	treasurer.do("mark eligible", chromedp.Click(chromedp.ID("mark-eligible-"+projectID)))
	treasurer.waitJS("the project to be eligible", text("#eligibility-"+projectID)+`.startsWith('Eligible') ? 'yes' : ''`, 10*time.Second)
	treasurer.screenshot("eligible")

	// carol contributes 4: as the first contributor her match is 0.
	contribute := func(b *browser, amount, wantEstimate, wantTotal string) {
		t.Helper()
		b.open(roundPath)
		b.do("type an amount", chromedp.SendKeys(chromedp.ID("amount-"+projectID), amount))
		got := b.waitJS("the estimate", text("#estimate-match-"+projectID), 5*time.Second)
		if got != wantEstimate {
			t.Fatalf("%s: estimate for %s is %q, want %q (%s)", b.name, amount, got, wantEstimate, b.js(text("#estimate-"+projectID)))
		}
		if !strings.Contains(b.js(text("#estimate-"+projectID)), "estimate") {
			t.Fatalf("%s: the estimate is not labelled as one: %q", b.name, b.js(text("#estimate-"+projectID)))
		}
		b.screenshot("estimate")
		b.do("contribute", chromedp.Click(chromedp.ID("contribute-"+projectID)))
		b.waitJS("the new total", fmt.Sprintf(`%s === %q ? 'yes' : ''`, text("#contributed-"+projectID), wantTotal), 10*time.Second)
	}
	contribute(carol, "4", "0.00", "4.00")
	carol.screenshot("contributed")
	// dave's 9 beside carol's 4: (√4 + √9)² − 13 = 12, under the cap of 50.
	contribute(dave, "9", "12.00", "13.00")

	// The window passes; the treasurer finalises through the page.
	anon := anonymous(t, m)
	deadline := time.Now().Add(40 * time.Second)
	for {
		if _, r := anon.do("GET", "/api/v1/qf/rounds/"+roundID, ""); r["phase"] == "closed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the round never closed")
		}
		time.Sleep(200 * time.Millisecond)
	}
	treasurer.open(roundPath)
	treasurer.do("finalise", chromedp.Click(chromedp.ID("finalize-round")))
	treasurer.waitJS("the results", `document.getElementById('results') ? 'yes' : ''`, 10*time.Second)
	if row := treasurer.js(text("#results tbody tr")); !strings.Contains(row, "12.00") || !strings.Contains(row, "25.00") {
		t.Fatalf("results row: %q", row)
	}
	if r := treasurer.js(text("#round-returned")); r != "88.00" {
		t.Fatalf("returned: %q", r)
	}
	treasurer.screenshot("final")

	// dave's explanation: he added 2·3000·2000 micro-units² = 12 to the raw match.
	dave.open(roundPath)
	ex := dave.waitJS("explain my match", text("#explain-table tbody"), 5*time.Second)
	if !strings.Contains(ex, "12.000000") || !strings.Contains(ex, "Sluice gate") {
		t.Fatalf("explain my match: %q", ex)
	}
	dave.screenshot("explain")
	carol.open(roundPath)
	carol.waitJS("explain my match", text("#explain-table tbody"), 5*time.Second)
	carol.screenshot("explain")

	// Anyone can read the census, on a phone and on a desktop.
	for _, w := range []struct {
		name          string
		width, height int64
	}{{"census-phone", 360, 740}, {"census-desktop", 1280, 900}} {
		b := newBrowser(t, root, w.name, base, w.width, w.height)
		b.open("/census")
		if st := b.js(text("#ledger-status")); st != "OK" {
			t.Fatalf("%s: ledger status %q", w.name, st)
		}
		if r := b.js(text("#census-rounds")); !strings.Contains(r, "Flood works 2027") || !strings.Contains(r, "final") {
			t.Fatalf("%s: rounds on the census: %q", w.name, r)
		}
		if b.js(`document.getElementById('census-csv')?.getAttribute('href') ?? ''`) != "/api/v1/census.csv" {
			t.Fatalf("%s: no CSV link", w.name)
		}
		if n := b.js(text("#fig-not-yet")); !strings.Contains(n, "Every figure is available") {
			t.Fatalf("%s: not-yet-available section: %q", w.name, n)
		}
		if e := b.js(text("#escrow-total")); e != "0.00" && e != "0.000000" {
			t.Fatalf("%s: tenders and contracts figure: escrow %q", w.name, e)
		}
		if b.js(`document.documentElement.scrollWidth > window.innerWidth ? 'wide' : ''`) != "" {
			t.Errorf("%s: the census scrolls sideways", w.name)
		}
		b.screenshot("census")
	}
}
