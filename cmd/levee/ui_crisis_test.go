package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// tokenFor makes an API token for a demo account, to sign in with.
func tokenFor(t *testing.T, m *Main, name string) string {
	t.Helper()
	ctx := context.Background()
	id, err := m.Accounts.IDByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := m.Accounts.CreateToken(ctx, id, "browser test")
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// TestUIEmergency: a steward declares an emergency from the emergency
// panel and acts under it; a resident on a phone sees the banner, with the
// act, on every page.
func TestUIEmergency(t *testing.T) {
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	root := MustBrowser(t)
	m, _, _ := MustRunMainClock(t, func(c *Config) { c.Demo = true })
	base := "http://" + m.Addr()
	steward := newBrowser(t, root, "steward", base, 1280, 900)
	resident := newBrowser(t, root, "resident", base, 360, 740)

	resident.signInWithToken("alice", tokenFor(t, m, "alice"))
	if resident.js(`document.getElementById('emergency-banner').hidden ? 'hidden' : 'shown'`) != "hidden" {
		t.Fatal("an emergency banner before any emergency")
	}

	steward.signInWithToken("sam", tokenFor(t, m, "sam"))
	steward.open("/emergency")
	steward.waitJS("the declare form", `document.getElementById('declare-form') ? 'yes' : ''`, 5*time.Second)
	steward.do("fill the declaration",
		chromedp.SendKeys(chromedp.ID("declare-reason"), "Hurricane: the north pumping stations must shut tonight"),
		chromedp.Click(chromedp.CSS(`input[name="districts"][value="north"]`)),
		chromedp.Click(chromedp.CSS(`input[name="districts"][value="harbour"]`)),
		chromedp.SendKeys(chromedp.ID("declare-cap"), "800"))
	steward.screenshot("declare")
	steward.do("declare", chromedp.Click(chromedp.ID("declare")))
	steward.waitJS("the active emergency", text("#now-h")+`.includes('is active') ? 'yes' : ''`, 10*time.Second)

	// Act: reallocate from the harbour line to the north line.
	steward.do("fill a reallocation",
		chromedp.SetValue(chromedp.ID("re-from"), "2"),
		chromedp.SetValue(chromedp.ID("re-to"), "1"),
		chromedp.SendKeys(chromedp.ID("re-amount"), "50"),
		chromedp.SendKeys(chromedp.ID("re-reason"), "Pumps first"))
	steward.do("reallocate", chromedp.Click(chromedp.ID("reallocate")))
	steward.waitJS("the act in the list", text("#acts")+`.includes('Pumps first') ? 'yes' : ''`, 10*time.Second)
	steward.screenshot("acted")
	// An act the charter never grants is refused with a clear message.
	steward.do("an act out of scope",
		chromedp.SetValue(chromedp.ID("re-from"), "3"),
		chromedp.SendKeys(chromedp.ID("re-amount"), "1"),
		chromedp.SendKeys(chromedp.ID("re-reason"), "south too"))
	steward.do("try it", chromedp.Click(chromedp.ID("reallocate")))
	msg := steward.waitJS("the refusal", text("#error-message"), 10*time.Second)
	if !strings.Contains(msg, "outside the emergency") {
		t.Fatalf("refusal: %q", msg)
	}

	// The resident sees the banner on any page, on a phone.
	resident.open("/markets")
	resident.waitJS("the banner", `document.getElementById('emergency-banner').hidden ? '' : 'yes'`, 5*time.Second)
	banner := resident.js(text("#emergency-banner"))
	for _, want := range []string{"sam", "Hurricane", "harbour, north", "cap used 50.00 of 800.00", "Pumps first"} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner lacks %q: %q", want, banner)
		}
	}
	if resident.js(`document.documentElement.scrollWidth > window.innerWidth ? 'wide' : ''`) != "" {
		t.Error("the page scrolls sideways on a phone with the banner")
	}
	resident.screenshot("banner")
	resident.open("/emergency")
	if resident.js(`document.getElementById('petition') ? 'yes' : ''`) == "" {
		t.Error("a resident is not offered the petition")
	}
	if resident.js(`document.getElementById('steward-panel') ? 'yes' : ''`) != "" {
		t.Error("a resident is offered the steward's panel")
	}
	resident.screenshot("emergency")

	// The treasury ledger page: verification status and the newest entries,
	// the reallocation among them.
	resident.open("/ledger")
	if st := resident.js(text("#ledger-status")); st != "OK" {
		t.Errorf("ledger status %q", st)
	}
	if rows := resident.js(text("#ledger-entries tbody")); !strings.Contains(rows, "emergency_reallocation") {
		t.Errorf("the ledger page lacks the reallocation: %q", rows)
	}
	resident.screenshot("ledger")
}
