package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestUIPasswords runs a forgotten password through the pages in a real
// browser: the admin resets it and is shown the link once (rita has no
// address), rita chooses a new password behind the link and signs in,
// changes it again on her portfolio, and signs out everywhere.
func TestUIPasswords(t *testing.T) {
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	root := MustBrowser(t)
	m, _ := MustRunMain(t)
	base := "http://" + m.Addr()
	api := newClient(t, m, testAdminToken)
	api.do("POST", "/api/v1/admin/districts", `{"name":"north"}`)
	if st, r := api.do("POST", "/api/v1/admin/accounts", `{"name":"rita","roles":["resident"],"district":"north","password":"rita's forgotten password"}`); st != 201 {
		t.Fatalf("admit rita: %d %v", st, r)
	}

	admin := newBrowser(t, root, "admin", base, 1280, 900)
	admin.signInWithToken("admin", testAdminToken)
	admin.open("/admin")
	admin.do("pick rita", chromedp.Evaluate[chromedp.Void](`(() => {
		const s = document.getElementById('reset-account');
		s.value = [...s.options].find(o => o.dataset.name === 'rita').value;
	})()`), chromedp.Click(chromedp.ID("reset-submit")))
	said := admin.waitJS("the confirmation", `(() => { const c = document.querySelector('#reset-form .confirm'); return c && !c.hidden ? c.textContent : ''; })()`, 5*time.Second)
	if !strings.Contains(said, "rita") || !strings.Contains(said, "signed out everywhere") {
		t.Errorf("the confirmation says %q", said)
	}
	admin.do("confirm", chromedp.Click(chromedp.ID("reset-confirm")))
	link := admin.waitJS("the link", `document.getElementById('reset-result').hidden ? '' : `+text("#reset-link"), 10*time.Second)
	if !strings.HasPrefix(link, base+"/password/reset?token=") {
		t.Fatalf("the link shown: %q (%s)", link, admin.js(text("#reset-said")))
	}
	admin.screenshot("password-reset")
	admin.open("/admin")
	if strings.Contains(admin.js(`document.documentElement.outerHTML`), link) {
		t.Error("the link is shown again")
	}

	rita := newBrowser(t, root, "rita", base, 390, 844)
	rita.open(strings.TrimPrefix(link, base))
	rita.do("choose a password", chromedp.SendKeys(chromedp.ID("reset-password"), "rita's chosen password"),
		chromedp.SendKeys(chromedp.ID("reset-again"), "rita's chosen passwort"), chromedp.Click(chromedp.ID("reset-submit")))
	if msg := rita.waitJS("the mismatch", `document.getElementById('error-banner').hidden ? '' : `+text("#error-message"), 5*time.Second); !strings.Contains(msg, "differ") {
		t.Errorf("two different passwords: %q", msg)
	}
	rita.do("type it again", chromedp.Evaluate[chromedp.Void](`document.getElementById('reset-again').value = ''`),
		chromedp.SendKeys(chromedp.ID("reset-again"), "rita's chosen password"), chromedp.Click(chromedp.ID("reset-submit")))
	if got := rita.waitJS("the new password", text("#reset-result"), 10*time.Second); !strings.Contains(got, "rita") {
		t.Errorf("after the reset: %q", got)
	}
	rita.screenshot("password-chosen")
	rita.signIn("rita", "rita's chosen password")

	rita.open("/portfolio")
	rita.do("change the password", chromedp.SendKeys(chromedp.ID("password-current"), "rita's chosen password"),
		chromedp.SendKeys(chromedp.ID("password-new"), "rita's newest password"),
		chromedp.SendKeys(chromedp.ID("password-again"), "rita's newest password"), chromedp.Click(chromedp.ID("password-save")))
	if got := rita.waitJS("the change", text("#password-result"), 10*time.Second); !strings.Contains(got, "changed") {
		t.Errorf("after the change: %q", got)
	}
	mustSignInFail(t, m, "rita", "rita's chosen password")
	rita.screenshot("password-changed")
	rita.do("sign out everywhere", chromedp.Click(chromedp.ID("signout-everywhere-submit")))
	rita.waitJS("the sign-in page", `location.pathname === '/signin' ? 'yes' : ''`, 10*time.Second)
	rita.open("/portfolio")
	if rita.js(`location.pathname`) == "/portfolio" && rita.js(`document.getElementById('password-form') ? 'yes' : ''`) == "yes" {
		t.Error("the portfolio still opens after signing out everywhere")
	}
	signIn(t, m, "rita", "rita's newest password")
}
