package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"levee"
)

// signInWithToken signs in through the sign-in page's token form (the
// accounts jurorPool and MustCity make have tokens, not passwords).
func (b *browser) signInWithToken(name, token string) {
	b.t.Helper()
	b.open("/signin")
	b.do("sign in with a token",
		chromedp.Click(chromedp.CSS("details.alt summary")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("signin-token-submit")))
	b.waitJS("the header to name "+name, text("#signed-in-as")+`.includes(`+fmt.Sprintf("%q", name)+`) ? 'yes' : ''`, 10*time.Second)
}

// acceptLeaveDialogs answers "leave" to every beforeunload dialog of b and
// counts them, so that a test can navigate away from a page that warns.
func (b *browser) acceptLeaveDialogs() *atomic.Int32 {
	var n atomic.Int32
	dialogs := chromedp.Events(b.ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			if ev.Type == page.DialogTypeBeforeunload {
				n.Add(1)
			}
			if _, err := chromedp.Call(b.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}); err != nil {
				return
			}
		}
	}()
	return &n
}

// beforeUnloadArmed says whether leaving the page now would ask first.
const beforeUnloadArmed = `(() => { const e = new Event('beforeunload', { cancelable: true }); window.dispatchEvent(e); return e.defaultPrevented ? 'armed' : 'no'; })()`

// noSidewaysScroll fails the test if the page is wider than a phone.
func noSidewaysScroll(t *testing.T, b *browser, what string) {
	t.Helper()
	if b.js(`document.documentElement.scrollWidth > window.innerWidth ? 'wide' : ''`) != "" {
		t.Errorf("%s: the %s page scrolls sideways: %s", b.name, what, b.js(`[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 8).join(', ')`))
	}
}

// TestUIJuries runs a disputed market through the pages: the treasurer
// proposes the outcome on the market page, a resident disputes it there
// (the bond is stated) and lands on the new case, adding evidence; a drawn
// juror finds the case on /jury, seals a vote on a phone (the salt is made
// and kept in the browser, with a warning until the juror says it is
// saved), and once the clock passes the commit deadline reveals it from
// what the browser kept; after the tally every vote shows.
func TestUIJuries(t *testing.T) {
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	root := MustBrowser(t)
	m, _, clk := MustRunMainClock(t)
	tess, alice, bob := MustCity(t, m)
	voters := jurorPool(t, m, "juror", "north", 6)
	// bob lives in the market's district and does not trade: he may be drawn.
	if _, me := bob.do("GET", "/api/v1/me", ""); me["pseudonym"] != nil {
		voters[me["pseudonym"].(string)] = bob
	}
	closes := clk.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	st, mk := tess.do("POST", "/api/v1/markets", `{"question":"Will the sluice gate be rebuilt by May?","outcomes":["yes","no"],"liquidity":"100","closes_at":"`+closes+`","district":"north"}`)
	if st != 201 {
		t.Fatalf("market: %d %v", st, mk)
	}
	marketPath := "/markets/" + mk["id"].(string)
	if st, r := tess.do("POST", "/api/v1"+marketPath+"/close", ""); st >= 300 {
		t.Fatalf("close: %d %v", st, r)
	}
	base := "http://" + m.Addr()

	// The treasurer proposes the outcome on the market page.
	treasurer := newBrowser(t, root, "jury-treasurer", base, 1280, 900)
	treasurer.signInWithToken("tess", tess.token)
	treasurer.open(marketPath)
	treasurer.do("propose",
		chromedp.SetValue(chromedp.ID("propose-verdict"), "no"),
		chromedp.SendKeys(chromedp.ID("propose-evidence"), "The contractor has not started"),
		chromedp.Click(chromedp.ID("propose-outcome")))
	treasurer.waitJS("the proposal", text("#proposal-verdict")+` === 'no' ? 'yes' : ''`, 10*time.Second)
	treasurer.screenshot("market-proposed")

	// alice disputes it from her phone and lands on the case.
	disputer := newBrowser(t, root, "jury-disputer-phone", base, 360, 740)
	disputer.signInWithToken("alice", alice.token)
	disputer.open(marketPath)
	if hint := disputer.js(text("#dispute-hint")); !strings.Contains(hint, "bond of 10.00") || !strings.Contains(hint, "returned if the jury finds for you") {
		t.Errorf("the dispute form does not state the bond: %q", hint)
	}
	noSidewaysScroll(t, disputer, "market")
	cashBefore := cash(t, alice)
	disputer.do("dispute",
		chromedp.SendKeys(chromedp.ID("dispute-reason"), "Work started in March: see the site photos"),
		chromedp.Click(chromedp.ID("dispute-market")))
	caseID := disputer.waitJS("the case page", `location.pathname.startsWith('/cases/') && document.getElementById('case') ? location.pathname.slice(7) : ''`, 10*time.Second)
	if got := cash(t, alice); got != cashBefore-levee.Units(10) {
		t.Errorf("the bond: alice's cash %s → %s", cashBefore, got)
	}
	if href := disputer.js(`document.querySelector('#case-subject a')?.getAttribute('href') ?? ''`); href != marketPath {
		t.Errorf("the case's subject links to %q, want %s", href, marketPath)
	}
	if disputer.js(`document.querySelector('#case-deadline time')?.getAttribute('datetime') ?? ''`) == "" {
		t.Errorf("the case page has no deadline <time>")
	}
	// Evidence with a file goes up as multipart; an empty text is refused
	// next to its field.
	disputer.do("send empty evidence", chromedp.Click(chromedp.ID("submit-evidence")))
	disputer.waitJS("the error next to the text", `!document.getElementById('evidence-form-error').hidden ? 'yes' : ''`, 5*time.Second)
	siteLog := filepath.Join(t.TempDir(), "site-log.txt")
	if err := os.WriteFile(siteLog, []byte("3 March: cofferdam in place, pumps running"), 0o644); err != nil {
		t.Fatal(err)
	}
	disputer.do("add evidence",
		chromedp.SendKeys(chromedp.ID("evidence-body"), "Photos of the cofferdam, 3 March"),
		chromedp.SetUploadFiles(chromedp.ID("evidence-file"), []string{siteLog}),
		chromedp.Click(chromedp.ID("submit-evidence")))
	disputer.waitJS("the evidence", text("#evidence")+`.includes('cofferdam') && `+text("#evidence")+`.includes('site-log.txt') ? 'yes' : ''`, 10*time.Second)
	noSidewaysScroll(t, disputer, "case")
	disputer.screenshot("case-opened")
	if st, r := anonymous(t, m).do("GET", "/api/v1/cases/"+caseID+"/draw", ""); st != 200 ||
		!strings.Contains(disputer.js(text("#draw")), r["seed"].(string)) || disputer.js(`document.getElementById('draw-json')?.getAttribute('href') ?? ''`) != "/api/v1/cases/"+caseID+"/draw" {
		t.Errorf("the page's draw does not show the published seed %v and link its JSON", r["seed"])
	}
	if !strings.Contains(disputer.js(text("#draw")), "docs/juries.md") {
		t.Errorf("the draw section does not point to docs/juries.md")
	}

	// The first juror drawn votes in the browser; the others through the API.
	v := caseDoc(t, alice, caseID)
	jurors := currentJurors(t, alice, v)
	if len(jurors) != 5 {
		t.Fatalf("jurors: %v", jurors)
	}
	me := voters[jurors[0]]
	if me == nil {
		t.Fatalf("juror %s is not one of the eligible residents", jurors[0])
	}
	_, meDoc := me.do("GET", "/api/v1/me", "")
	myName := meDoc["name"].(string)
	juror := newBrowser(t, root, "juror-phone", base, 360, 740)
	leaves := juror.acceptLeaveDialogs()
	juror.signInWithToken(myName, me.token)
	if juror.js(`document.getElementById('nav-jury')?.getAttribute('href') ?? ''`) != "/jury" {
		t.Errorf("the navigation has no jury duty link for a resident")
	}
	juror.open("/jury")
	todo := juror.waitJS("the case to do", text("#todo-"+caseID), 5*time.Second)
	if !strings.Contains(todo, "seal your vote") || juror.js(`document.querySelector('#todo-`+caseID+` time') ? 'yes' : ''`) == "" {
		t.Errorf("/jury says %q for the case, want what to do and by when", todo)
	}
	if !strings.Contains(juror.js(text("#notifications")), "Case "+caseID) {
		t.Errorf("/jury lists no notification about case %s: %q", caseID, juror.js(text("#notifications")))
	}
	noSidewaysScroll(t, juror, "jury")
	juror.screenshot("jury")
	// Opting out spares future juries only; the seat stays.
	juror.do("opt out", chromedp.Click(chromedp.ID("opt-out")), chromedp.Click(chromedp.ID("save-duty")))
	juror.waitJS("the opt-out saved", text("#duty-result")+`.startsWith('Saved: you are left out') ? 'yes' : ''`, 5*time.Second)
	if st, r := me.do("GET", "/api/v1/me/jury-duty", ""); st != 200 || r["opt_out"] != true {
		t.Errorf("after opting out on /jury: %d %v", st, r)
	}

	juror.do("open the ballot", chromedp.Click(chromedp.CSS(`#my-case-`+caseID+` a[href$="#ballot"]`)))
	juror.waitJS("the ballot", `document.getElementById('commit-form') ? 'yes' : ''`, 10*time.Second)
	juror.do("seal a yes", chromedp.Click(chromedp.ID("verdict-0")), chromedp.Click(chromedp.ID("commit-vote")))
	juror.waitJS("the salt and its warning", `!document.getElementById('salt-panel').hidden && !document.getElementById('salt-warning').hidden ? 'yes' : ''`, 10*time.Second)
	key := "levee:ballot:" + caseID + ":0"
	type ballot struct {
		Verdict, Salt    string
		Committed, Saved bool
	}
	kept := func() ballot {
		t.Helper()
		var b ballot
		if s := juror.js(`localStorage.getItem(` + fmt.Sprintf("%q", key) + `) ?? ''`); s != "" {
			if err := json.Unmarshal([]byte(s), &b); err != nil {
				t.Fatalf("localStorage %s: %q: %v", key, s, err)
			}
		}
		return b
	}
	rec := kept()
	if rec.Verdict != "yes" || !rec.Committed || rec.Saved || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(rec.Salt) {
		t.Fatalf("the browser kept %+v", rec)
	}
	if shown := juror.js(`document.getElementById('salt-value').value`); shown != rec.Salt {
		t.Errorf("the page shows salt %q, the browser kept %q", shown, rec.Salt)
	}
	if seat := caseDoc(t, me, caseID)["seat"].(map[string]any); seat["committed"] != true {
		t.Fatalf("the server has no commitment: %v", seat)
	}
	if juror.js(beforeUnloadArmed) != "armed" {
		t.Errorf("leaving the page with an unsaved salt does not warn")
	}
	juror.screenshot("ballot-sealed")

	// The warning outlives a reload: the browser still holds the salt and
	// knows it was not confirmed as saved.
	juror.open("/cases/" + caseID)
	juror.waitJS("the warning after a reload", `!document.getElementById('salt-warning').hidden && document.getElementById('salt-value').value === `+fmt.Sprintf("%q", rec.Salt)+` ? 'yes' : ''`, 5*time.Second)
	if leaves.Load() == 0 {
		t.Errorf("reloading the page with an unsaved salt did not ask first")
	}
	juror.do("confirm the salt is saved", chromedp.Click(chromedp.ID("copy-salt")), chromedp.Click(chromedp.ID("salt-saved")))
	juror.waitJS("the warning to go", `document.getElementById('salt-warning').hidden ? 'yes' : ''`, 5*time.Second)
	if juror.js(beforeUnloadArmed) != "no" || !kept().Saved {
		t.Errorf("after confirming, leaving still warns or the record is not marked saved: %+v", kept())
	}

	// The other jurors vote yes, yes, no, yes through the API.
	salts := map[string]string{}
	for i, j := range jurors[1:] {
		salts[j] = fmt.Sprintf("api-salt-%d-%s", i, caseID)
		verdict := []string{"yes", "yes", "no", "yes"}[i]
		if st, r := voters[j].do("POST", "/api/v1/cases/"+caseID+"/commit", `{"commitment":"`+commitment(verdict, salts[j])+`"}`); st != 200 {
			t.Fatalf("commit by %s: %d %v", j, st, r)
		}
	}
	skipPast(t, clk, v, "evidence_until")
	skipPast(t, clk, v, "commit_until")

	// The reveal: the page fills in what the browser kept. A wrong salt is
	// refused next to the field first.
	juror.open("/cases/" + caseID)
	juror.waitJS("the reveal form", `document.getElementById('reveal-form') ? 'yes' : ''`, 5*time.Second)
	if got := juror.js(`document.getElementById('reveal-salt').value + ' ' + (document.querySelector('#reveal-form input[name=verdict]:checked')?.value ?? '')`); got != rec.Salt+" yes" {
		t.Errorf("the reveal form holds %q, want the kept salt and yes", got)
	}
	juror.screenshot("ballot-reveal")
	juror.do("try a wrong salt",
		chromedp.SetValue(chromedp.ID("reveal-salt"), "not-my-salt-at-all"),
		chromedp.Click(chromedp.ID("reveal-vote")))
	msg := juror.waitJS("the error next to the salt", `(() => {
		const n = document.getElementById('reveal-form-error');
		return !n.hidden && n.previousElementSibling?.contains(document.getElementById('reveal-salt')) &&
			document.getElementById('reveal-salt').getAttribute('aria-invalid') === 'true' ? n.textContent : '';
	})()`, 10*time.Second)
	if !strings.Contains(msg, "do not match") {
		t.Errorf("the wrong salt's error: %q", msg)
	}
	juror.screenshot("ballot-wrong-salt")
	juror.do("reveal",
		chromedp.SetValue(chromedp.ID("reveal-salt"), rec.Salt),
		chromedp.Click(chromedp.ID("reveal-vote")))
	juror.waitJS("the revealed vote", text("#ballot-done")+`.includes('You revealed your vote') ? 'yes' : ''`, 10*time.Second)
	if kept().Salt != "" {
		t.Errorf("the browser still keeps the salt after the reveal")
	}
	for i, j := range jurors[1:] {
		verdict := []string{"yes", "yes", "no", "yes"}[i]
		if st, r := voters[j].do("POST", "/api/v1/cases/"+caseID+"/reveal", `{"verdict":"`+verdict+`","salt":"`+salts[j]+`"}`); st != 200 {
			t.Fatalf("reveal by %s: %d %v", j, st, r)
		}
	}
	if votes := juror.js(`[...document.querySelectorAll('#jurors-0 .vote')].map(td => td.textContent).join(',')`); strings.Contains(votes, "yes") {
		t.Errorf("votes show before the tally: %q", votes)
	}
	skipPast(t, clk, v, "reveal_until")

	// After the tally every vote shows, and the parties may appeal.
	juror.open("/cases/" + caseID)
	// Seats are numbered in draw order; the juror's own is marked, and
	// after the tally shows its pseudonym with the vote, never a name.
	if vote := juror.js(text("#juror-0-1 .vote")); vote != "yes" {
		t.Errorf("the juror's vote after the tally shows %q", vote)
	}
	if row := juror.js(text("#juror-0-1")); !strings.Contains(row, "juror 1 (you)") || !strings.Contains(row, jurors[0]) || strings.Contains(row, myName) {
		t.Errorf("the juror's own row after the tally: %q", row)
	}
	if got := juror.js(text("#case-verdict")); got != "yes" {
		t.Errorf("verdict %q, want yes", got)
	}
	if rows := juror.js(text("#jurors-0 tbody")); strings.Contains(rows, "secret") {
		t.Errorf("votes still secret after the tally: %q", rows)
	}
	noSidewaysScroll(t, juror, "case")
	juror.screenshot("case-tallied")
	disputer.open("/cases/" + caseID)
	if disputer.js(`document.getElementById('appeal-form') ? 'yes' : ''`) == "" {
		t.Errorf("a party is not offered the appeal form once the verdict is appealable")
	}
	if juror.js(`document.getElementById('appeal-form') ? 'yes' : ''`) != "" {
		t.Errorf("a juror is offered the appeal form")
	}
	disputer.screenshot("case-appealable")
}
