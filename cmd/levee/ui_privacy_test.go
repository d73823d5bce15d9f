package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestUIExportAndExit: from the portfolio's button a resident reads their
// data on /me/export, previews leaving (the sale of their position at the
// market), confirms it, and their orders are refused from then on.
func TestUIExportAndExit(t *testing.T) {
	root := MustBrowser(t)
	m, _, clk := MustRunMainClock(t)
	tess, alice, _ := MustCity(t, m)
	closes := clk.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	_, mk := tess.do("POST", "/api/v1/markets", `{"question":"Will the ferry run in March?","outcomes":["yes","no"],"liquidity":"100","closes_at":"`+closes+`"}`)
	orders := "/api/v1/markets/" + mk["id"].(string) + "/orders"
	if st, r := alice.do("POST", orders, `{"outcome":0,"side":"buy","amount":"20"}`); st != 201 {
		t.Fatalf("order: %d %v", st, r)
	}
	_, me := alice.do("GET", "/api/v1/me", "")

	b := newBrowser(t, root, "export", "http://"+m.Addr(), 1280, 900)
	b.signInWithToken("alice", alice.token)
	b.open("/portfolio")
	b.do("open my data", chromedp.Click(chromedp.ID("export-link")))
	// The page's script must have wired the form before it is used (under
	// load the HTML arrives well before its deferred scripts run).
	got := b.waitJS("the export page", `document.readyState === 'complete' ? `+text("#export-pseudonym")+` : ''`, 20*time.Second)
	if got != me["pseudonym"] {
		t.Fatalf("the page shows pseudonym %q, /me says %v", got, me["pseudonym"])
	}
	if rows := b.js(`document.querySelectorAll('#export-trades tbody tr').length + ''`); rows != "1" {
		t.Errorf("trades on the page: %s", rows)
	}
	b.do("preview leaving", chromedp.Click(chromedp.ID("exit-preview")))
	plan := b.waitJS("the plan", `document.getElementById('exit-plan').hidden ? '' : `+text("#exit-plan-lines"), 20*time.Second)
	if !strings.Contains(plan, `Sell`) || !strings.Contains(plan, "Will the ferry run in March?") || !strings.Contains(plan, "exit:"+me["pseudonym"].(string)) {
		t.Fatalf("the plan: %q", plan)
	}
	b.screenshot("exit-preview")
	b.do("leave", chromedp.Click(chromedp.ID("exit-confirm")))
	doneText := b.waitJS("the exit", `document.getElementById('exit-done').hidden ? '' : `+text("#exit-done"), 20*time.Second)
	if !strings.Contains(doneText, "You have left the city") {
		t.Fatalf("after leaving: %q", doneText)
	}
	if st, r := alice.do("POST", orders, `{"outcome":0,"side":"buy","amount":"1"}`); st != 403 {
		t.Fatalf("an order after leaving: %d %v", st, r)
	}
	if c := cash(t, alice); c != 0 {
		t.Fatalf("cash after leaving: %s", c)
	}

	// The treasurer pays it out of band and records it on /ledger.
	tb := newBrowser(t, root, "payout", "http://"+m.Addr(), 1280, 900)
	tb.signInWithToken("tess", tess.token)
	tb.open("/ledger")
	row := "#owed-" + me["pseudonym"].(string)
	tb.waitJS("the payout form", `document.readyState === 'complete' && document.querySelector('`+row+` form') ? 'yes' : ''`, 20*time.Second)
	tb.do("record the payout",
		chromedp.SendKeys(chromedp.CSS(row+" input[name=reference]"), "bank transfer 2027-4"),
		chromedp.Click(chromedp.CSS(row+" button")))
	if got := tb.waitJS("the payout", `(`+text(row)+`).includes('paid ') ? `+text(row)+` : ''`, 10*time.Second); !strings.Contains(got, "ledger entry") {
		t.Fatalf("after the payout: %q", got)
	}
	_, owed := tess.do("GET", "/api/v1/exits", "")
	if o := owed["exits"].([]any)[0].(map[string]any); o["total"] != "0.000000" {
		t.Fatalf("still owed: %v", o)
	}
}
