package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// setLocal sets a datetime-local input to at, in the browser's own zone.
func setLocal(id string, at time.Time) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const d = new Date(%q), p = (n) => String(n).padStart(2, '0');
		document.getElementById(%q).value = d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) +
			'T' + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
	})()`, at.UTC().Format(time.RFC3339), id))
}

// TestUITenders runs a tender through the pages: a member of contractor
// organisation A sends a sealed bid from a phone; organisation B, a rival,
// opens the same tender and finds no trace of it (not in the page, and A's
// bid address is the not-found page) and bids itself; once the window closes
// both see every bid with its decision market; the treasurer closes bids and
// awards through the page, the winner claims a milestone on the contract
// page, and the rival's dispute of it opens a jury's case.
func TestUITenders(t *testing.T) {
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	root := MustBrowser(t)
	// The windows pass on the test clock, not by waiting for them.
	m, _, clk := MustRunMainClock(t)
	skipTo := func(at time.Time) {
		if d := at.Sub(clk.Now()); d > 0 {
			clk.Skip(d + 50*time.Millisecond)
		}
	}
	tess, alice, bob := MustCity(t, m)
	admin := newClient(t, m, testAdminToken)
	mk := func(body string) (*client, string) {
		t.Helper()
		st, a := admin.do("POST", "/api/v1/admin/accounts", body)
		if st != 201 {
			t.Fatalf("create account %s: %d %v", body, st, a)
		}
		return newClient(t, m, a["token"].(string)), a["id"].(string)
	}
	mk(`{"name":"trudy","roles":["treasurer"],"password":"trudy's long password"}`)
	_, orgA := mk(`{"name":"dykeworks","kind":"organisation","roles":["contractor"]}`)
	dana, danaID := mk(`{"name":"dana","kind":"person","roles":["contractor"],"password":"dana's long password"}`)
	if st, b := admin.do("POST", "/api/v1/admin/organisations/"+orgA+"/members", `{"account":"`+danaID+`"}`); st >= 300 {
		t.Fatalf("add dana to dykeworks: %d %v", st, b)
	}
	// polderco gets cash: its dispute at the end takes a bond.
	polder, _ := mk(`{"name":"polderco","kind":"organisation","roles":["contractor"],"password":"polder's long password","credit":"50"}`)
	line := MustBudgetLine(t, m, tess, alice, bob)

	now := clk.Now().UTC()
	closes := now.Add(30 * time.Second)
	decision := closes.Add(8 * time.Second)
	completion := decision.Add(time.Hour)
	rfc := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	st, tender := tess.do("POST", "/api/v1/tenders", `{"budget_line":"`+line+`","title":"Repair the north dyke","scope":"200 m of dyke",
		"districts":["north"],"budget_cap":"150","closes_at":"`+rfc(closes)+`","decision_at":"`+rfc(decision)+`","min_confidence":"0.4",
		"twap_window":"1s","dispute_window":"1h","acceptance_criteria":"Inspector sign-off",
		"milestones":[{"title":"Foundations","share":"0.4"},{"title":"Finish","share":"0.6"}]}`)
	if st != 201 {
		t.Fatalf("create tender: %d %v", st, tender)
	}
	tpath := "/tenders/" + tender["id"].(string)
	base := "http://" + m.Addr()

	treasurer := newBrowser(t, root, "tender-treasurer", base, 1280, 900)
	a := newBrowser(t, root, "tender-a-phone", base, 360, 740)
	b := newBrowser(t, root, "tender-b-desktop", base, 1280, 900)
	treasurer.signIn("trudy", "trudy's long password")
	a.signIn("dana", "dana's long password")
	b.signIn("polderco", "polder's long password")

	treasurer.open("/tenders")
	treasurer.waitJS("the tender in the list", text("#tender-list")+`.includes('Repair the north dyke') ? 'yes' : ''`, 5*time.Second)
	if treasurer.js(`document.getElementById('new-tender') ? 'yes' : ''`) == "" {
		t.Fatal("the treasurer has no new-tender form")
	}
	treasurer.screenshot("tenders")

	// dana bids for dykeworks from her phone.
	const priceA, methodA = "123.45", "Sheet piling from the river side, crew of six"
	bid := func(br *browser, org, price, method string) string {
		t.Helper()
		br.open(tpath)
		if br.js(`document.getElementById('bid-form') ? 'yes' : ''`) == "" {
			br.screenshot("failed")
			t.Fatalf("%s: no bid form on %s", br.name, tpath)
		}
		if org != "" {
			br.do("name the organisation", chromedp.SetValue(chromedp.ID("bid-org"), org))
		}
		br.do("fill the bid",
			chromedp.SendKeys(chromedp.ID("bid-price"), price),
			setLocal("bid-completion", completion),
			setLocal("bid-ms-1", decision.Add(10*time.Minute)),
			setLocal("bid-ms-2", completion),
			chromedp.SendKeys(chromedp.ID("bid-method"), method))
		br.screenshot("bid-form")
		br.do("send the bid", chromedp.Click(chromedp.ID("submit-bid")))
		return br.waitJS("the sent bid", `document.querySelector('#my-bids .bid')?.dataset.bid ?? ''`, 10*time.Second)
	}
	idA := bid(a, orgA, priceA, methodA)
	if got := a.js(text("#bid-price-" + idA)); got != priceA {
		t.Fatalf("dana's bid shows price %q", got)
	}
	if a.js(`document.documentElement.scrollWidth > window.innerWidth ? 'wide' : ''`) != "" {
		t.Errorf("the tender page scrolls sideways on a phone")
	}
	a.screenshot("bid-sealed")

	// The rival sees no trace of it: not in the page, not at its address.
	b.open(tpath)
	page := b.js(`document.documentElement.outerHTML`)
	for _, secret := range []string{priceA, "123.4", methodA, "Sheet piling", "dykeworks", "bid-" + idA} {
		if strings.Contains(page, secret) {
			t.Errorf("the rival's tender page contains %q before close", secret)
		}
	}
	if !strings.Contains(b.js(text("#sealed-note")), "sealed") {
		t.Errorf("the rival's page does not say bids are sealed: %q", b.js(text("#bids")))
	}
	b.open("/bids/" + idA)
	if h := b.js(text("h1")); h != "Something went wrong" || !strings.Contains(b.js(text("main")), "no bid "+idA) {
		t.Errorf("the rival opening bid %s: %q %q", idA, h, b.js(text("main")))
	}
	if strings.Contains(b.js(`document.documentElement.outerHTML`), methodA) {
		t.Errorf("the not-found page shows the sealed method statement")
	}
	b.screenshot("rival-bid-not-found")
	if st, _ := polder.do("GET", "/bids/"+idA, ""); st != 404 {
		t.Errorf("GET /bids/%s as the rival: %d, want 404", idA, st)
	}
	if st, _ := dana.do("GET", "/bids/"+idA, ""); st != 200 {
		t.Errorf("GET /bids/%s as the bidder: %d, want 200 (its tender page)", idA, st)
	}
	for name, c := range map[string]*client{"treasurer": tess, "resident": alice, "anonymous": newClient(t, m, "")} {
		st, _ := c.do("GET", tpath, "")
		if st != 200 {
			t.Errorf("%s on the tender page: %d", name, st)
		}
		if st, _ := c.do("GET", "/bids/"+idA, ""); st != 404 {
			t.Errorf("%s on /bids/%s: %d, want 404", name, idA, st)
		}
	}
	treasurer.open(tpath)
	if strings.Contains(treasurer.js(`document.documentElement.outerHTML`), methodA) {
		t.Errorf("the treasurer sees the sealed method statement")
	}

	// polderco bids as itself (no organisation field to fill).
	const methodB = "Clay core, two excavators"
	idB := bid(b, "", "140", methodB)
	if strings.Contains(b.js(`document.documentElement.outerHTML`), methodA) {
		t.Errorf("after bidding the rival sees A's method statement")
	}
	b.screenshot("bid-sealed")

	// After the window both see every bid; the treasurer opens the markets.
	skipTo(closes)
	treasurer.open(tpath)
	treasurer.do("close bids", chromedp.Click(chromedp.ID("close-bids")))
	treasurer.waitJS("the markets", `document.querySelector('#bid-table a[href^="/markets/"]') ? 'yes' : ''`, 10*time.Second)
	for _, br := range []*browser{a, b} {
		br.open(tpath)
		table := br.waitJS("the bid table", text("#bid-table tbody"), 5*time.Second)
		for _, want := range []string{"dykeworks", "polderco", "123.45", "140.00"} {
			if !strings.Contains(table, want) {
				t.Errorf("%s: the bid table after close lacks %q: %q", br.name, want, table)
			}
		}
		for _, id := range []string{idA, idB} {
			if br.js(fmt.Sprintf(`document.querySelector('#bid-%s a[href^="/markets/"]') ? 'yes' : ''`, id)) == "" {
				t.Errorf("%s: bid %s has no decision market link", br.name, id)
			}
		}
		if !strings.Contains(br.js(`document.documentElement.outerHTML`), methodA) {
			t.Errorf("%s: A's method statement is not shown after close", br.name)
		}
		if br.js(`document.documentElement.scrollWidth > window.innerWidth ? 'wide' : ''`) != "" {
			t.Errorf("%s: the tender page scrolls sideways", br.name)
		}
		br.screenshot("bids-open")
	}
	// A decision market's page says where the money goes, and so does
	// its order preview.
	visitor := newBrowser(t, root, "tender-visitor", base, 1280, 900) // anonymous previews ignore cash
	visitor.open(b.js(fmt.Sprintf(`document.querySelector('#bid-%s a[href^="/markets/"]').getAttribute('href')`, idA)))
	if rule := visitor.js(text("#void-rule")); !strings.Contains(rule, "money you put in stays in this market until the decision") {
		t.Errorf("the decision market's page does not state its rule: %q", rule)
	}
	visitor.do("type an amount", chromedp.SendKeys(chromedp.ID("qty"), "5"))
	visitor.waitJS("the preview's note on conditional money", text("#preview-text")+`.includes('stays in this market until the decision') ? 'yes' : ''`, 5*time.Second)
	if st, _ := polder.do("GET", "/bids/"+idA, ""); st != 200 {
		t.Errorf("GET /bids/%s as the rival after close: %d", idA, st)
	}

	// At the decision date the treasurer awards; nobody traded, so both
	// markets average 0.5 and the lower price wins.
	skipTo(decision)
	treasurer.open(tpath)
	treasurer.do("award", chromedp.Click(chromedp.ID("award-tender")))
	winner := treasurer.waitJS("the award", text("#award-winner"), 10*time.Second)
	if !strings.Contains(winner, "dykeworks") {
		t.Fatalf("award: %q", winner)
	}
	rows := treasurer.js(text("#award-table tbody"))
	for _, want := range []string{"0.500000", "246.900000", "280.000000", "Winner"} {
		if !strings.Contains(rows, want) {
			t.Errorf("award table lacks %q: %q", want, rows)
		}
	}
	treasurer.screenshot("awarded")
	contractPath := treasurer.js(`document.getElementById('contract-link')?.getAttribute('href') ?? ''`)
	if !strings.HasPrefix(contractPath, "/contracts/") {
		t.Fatalf("contract link %q", contractPath)
	}

	// dana claims the first milestone; polderco, the rival bidder, disputes it.
	a.open(contractPath)
	a.do("write evidence", chromedp.SendKeys(chromedp.ID("evidence-1"), "Photos of the foundations"))
	a.do("claim", chromedp.Click(chromedp.ID("claim-1")))
	a.waitJS("the claim", text("#milestone-status-1")+` === 'Claimed' ? 'yes' : ''`, 10*time.Second)
	if a.js(`document.documentElement.scrollWidth > window.innerWidth ? 'wide' : ''`) != "" {
		t.Errorf("the contract page scrolls sideways on a phone")
	}
	if a.js(`document.getElementById('dispute-1') ? 'yes' : ''`) != "" {
		t.Errorf("the contractor's member is offered a dispute of its own claim")
	}
	a.screenshot("contract-claimed")
	b.open(contractPath)
	if b.js(`document.getElementById('claim-2') ? 'yes' : ''`) != "" {
		t.Errorf("the rival bidder is offered the claim form")
	}
	if hint := b.js(text("#reason-hint-1")); !strings.Contains(hint, "bond of 10.00") {
		t.Errorf("the dispute form does not state the bond: %q", hint)
	}
	b.do("write a reason", chromedp.SendKeys(chromedp.ID("reason-1"), "The foundations are not finished"))
	b.do("dispute", chromedp.Click(chromedp.ID("dispute-1")))
	b.waitJS("the dispute", text("#milestone-status-1")+` === 'Disputed' ? 'yes' : ''`, 10*time.Second)
	// A jury decides now, not the treasurer: the milestone links to its case.
	casePath := b.waitJS("the case link", `document.getElementById('milestone-case-1')?.getAttribute('href') ?? ''`, 5*time.Second)
	if !strings.HasPrefix(casePath, "/cases/") {
		t.Fatalf("case link %q", casePath)
	}
	b.screenshot("contract-disputed")
	treasurer.open(contractPath)
	if treasurer.js(`document.querySelector('.decide-form, #accept-1, #reject-1') ? 'yes' : ''`) != "" {
		t.Errorf("the treasurer is still offered to decide a disputed milestone")
	}
	if treasurer.js(`document.getElementById('milestone-case-1')?.getAttribute('href') ?? ''`) != casePath {
		t.Errorf("the treasurer's contract page does not link the case")
	}
	b.do("open the case", chromedp.Click(chromedp.ID("milestone-case-1")))
	b.waitJS("the case page", `location.pathname === `+fmt.Sprintf("%q", casePath)+` && `+text("#case-status")+` !== '' ? 'yes' : ''`, 10*time.Second)
	if reason := b.js(text("#case-reason")); reason != "The foundations are not finished" {
		t.Errorf("the case page shows the reason %q", reason)
	}
	if href := b.js(`document.querySelector('#case-subject a')?.getAttribute('href') ?? ''`); href != contractPath+"#milestone-1" {
		t.Errorf("the case's subject links to %q", href)
	}
	b.screenshot("case-opened")
}
