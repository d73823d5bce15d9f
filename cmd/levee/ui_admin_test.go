package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestUIAdmin runs a new node's first day through the admin's page in a
// real browser: a district, a resident admitted with their first sign-in
// shown once, an organisation and its member, a role added, the account
// disabled and re-enabled, money issued and the charter founded (each after
// a confirmation), and all of it in the audit log.
func TestUIAdmin(t *testing.T) {
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	root := MustBrowser(t)
	m, _ := MustRunMain(t)
	base := "http://" + m.Addr()
	b := newBrowser(t, root, "admin", base, 1280, 900)
	b.signInWithToken("admin", testAdminToken)
	if b.js(`document.getElementById('nav-admin') ? 'yes' : ''`) == "" {
		t.Fatal("the admin has no Admin link in the header")
	}
	b.open("/admin")

	// A district: a plain form, no confirmation.
	b.do("add a district", chromedp.SendKeys(chromedp.ID("district-name"), "north"), chromedp.Click(chromedp.ID("district-submit")))
	b.waitJS("the district", text("#district-list")+` === 'north' && document.getElementById('admit-district').options.length === 2 ? 'yes' : ''`, 10*time.Second)

	// confirm clicks ask, checks what the confirmation says, then confirms.
	confirm := func(form string, wants ...string) {
		t.Helper()
		b.do("ask "+form, chromedp.Click(chromedp.ID(form+"-submit")))
		said := b.waitJS("the confirmation of "+form, `(() => { const c = document.querySelector('#`+form+`-form .confirm'); return c && !c.hidden ? c.textContent : ''; })()`, 5*time.Second)
		for _, w := range wants {
			if !strings.Contains(said, w) {
				t.Errorf("the confirmation of %s does not say %q: %q", form, w, said)
			}
		}
		b.do("confirm "+form, chromedp.Click(chromedp.ID(form+"-confirm")))
	}
	admit := func(name, kind string, roles []string, district, credit, password string) string {
		t.Helper()
		b.open("/admin")
		steps := []chromedp.Action[chromedp.Void]{
			chromedp.SendKeys(chromedp.ID("admit-name"), name),
			chromedp.Click(chromedp.CSS(`#admit-form input[name="kind"][value="` + kind + `"]`)),
			chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelectorAll('#admit-form input[name="roles"]').forEach(el => { el.checked = %q.split(',').includes(el.value); })`, strings.Join(roles, ","))),
			chromedp.SetValue(chromedp.ID("admit-district"), district),
			chromedp.SetValue(chromedp.ID("admit-credit"), credit),
		}
		if password != "" {
			steps = append(steps, chromedp.SendKeys(chromedp.ID("admit-password"), password))
		}
		b.do("fill the admission of "+name, steps...)
		confirm("admit", name, strings.Join(roles, ", "))
		b.waitJS("the first sign-in of "+name, `document.getElementById('first-signin').hidden ? '' : `+text("#first-name"), 10*time.Second)
		token := b.js(text("#first-token"))
		if !strings.HasPrefix(token, "lv_") {
			t.Fatalf("first sign-in of %s shows token %q", name, token)
		}
		return token
	}
	ritaToken := admit("rita", "person", []string{"resident"}, "north", "50", "rita's long password")
	b.screenshot("admitted")
	rita := newClient(t, m, ritaToken)
	if st, me := rita.do("GET", "/api/v1/me", ""); st != 200 || me["cash"] != "50.000000" || me["district"] != "north" {
		t.Fatalf("rita's first sign-in: %d %v", st, me)
	}
	b.open("/admin")
	if b.js(`document.getElementById('first-signin').hidden ? 'hidden' : ''`) != "hidden" || strings.Contains(b.js(`document.documentElement.outerHTML`), ritaToken) {
		t.Error("the first sign-in is shown again")
	}
	admit("polderco", "organisation", []string{"contractor"}, "", "0", "")
	admit("sam", "person", []string{"resident", "steward"}, "north", "0", "")

	// rita joins polderco.
	b.open("/admin")
	b.do("choose the member", chromedp.Evaluate[chromedp.Void](`(() => {
		const pick = (id, name) => { const s = document.getElementById(id); s.value = [...s.options].find(o => o.textContent === name).value; };
		pick('member-org', 'polderco'); pick('member-person', 'rita');
	})()`), chromedp.Click(chromedp.ID("member-submit")))
	b.waitJS("polderco's member", `[...document.querySelectorAll('#account-table tbody tr')].some(r => r.textContent.includes('polderco') && r.textContent.includes('rita')) ? 'yes' : ''`, 10*time.Second)

	// change picks an account in the change form and applies edit to it.
	pickAndEdit := func(name, edit string) {
		t.Helper()
		b.open("/admin")
		b.do("pick "+name, chromedp.Evaluate[chromedp.Void](`(() => {
			const s = document.getElementById('change-account');
			s.value = [...s.options].find(o => o.dataset.name === `+fmt.Sprintf("%q", name)+`).value;
			s.dispatchEvent(new Event('change'));
		})()`), chromedp.Evaluate[chromedp.Void](edit))
	}
	change := func(name, edit string, wants ...string) {
		t.Helper()
		pickAndEdit(name, edit)
		b.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.staleAdminPage = true`))
		confirm("change", wants...)
		// The page reloads after a change: wait for the new one.
		b.waitJS("the page after the change", `!window.staleAdminPage && document.readyState === 'complete' ? 'yes' : ''`, 10*time.Second)
	}
	rowOf := func(name string) string {
		return b.js(`[...document.querySelectorAll('#account-table tbody tr')].find(r => r.querySelector('.account-name')?.textContent === ` + fmt.Sprintf("%q", name) + `)?.textContent ?? ''`)
	}
	change("rita", `document.querySelector('#change-form input[name="roles"][value="treasurer"]').checked = true`, "rita", "resident → resident, treasurer")
	b.waitJS("rita the treasurer", `[...document.querySelectorAll('#account-table tbody tr')].some(r => r.querySelector('.account-name')?.textContent === 'rita' && r.cells[1].textContent.includes('treasurer')) ? 'yes' : ''`, 10*time.Second)
	if _, me := rita.do("GET", "/api/v1/me", ""); !strings.Contains(fmt.Sprint(me["roles"]), "treasurer") {
		t.Errorf("rita's roles after the change: %v", me["roles"])
	}
	change("rita", `document.getElementById('change-disabled').checked = true`, "disable")
	b.waitJS("rita disabled", `document.querySelector('#account-table tr.disabled') ? 'yes' : ''`, 10*time.Second)
	if !strings.Contains(rowOf("rita"), "disabled") {
		t.Errorf("rita's row: %q", rowOf("rita"))
	}
	if st, _ := rita.do("GET", "/api/v1/me", ""); st != 401 {
		t.Errorf("a disabled account's token: %d", st)
	}
	b.screenshot("disabled")
	change("rita", `document.getElementById('change-disabled').checked = false`, "re-enable")
	b.waitJS("rita enabled", `document.querySelector('#account-table tr.disabled') ? '' : 'yes'`, 10*time.Second)
	if st, _ := rita.do("GET", "/api/v1/me", ""); st != 200 {
		t.Errorf("a re-enabled account's token: %d", st)
	}
	// The admin cannot lock itself out.
	pickAndEdit("admin", `document.getElementById('change-disabled').checked = true`)
	confirm("change", "disable")
	if msg := b.waitJS("the refusal", `document.getElementById('error-banner').hidden ? '' : `+text("#error-message"), 10*time.Second); !strings.Contains(msg, "cannot disable yourself") {
		t.Errorf("disabling yourself: %q", msg)
	}

	// Issuing money: cancel once, then confirm.
	b.open("/admin")
	b.do("fill the issue", chromedp.SendKeys(chromedp.ID("issue-amount"), "250"), chromedp.SendKeys(chromedp.ID("issue-memo"), "Opening budget"))
	b.do("ask", chromedp.Click(chromedp.ID("issue-submit")))
	b.do("cancel", chromedp.Click(chromedp.CSS("#issue-form .confirm-cancel")))
	if b.js(`document.querySelector('#issue-form .confirm').hidden && !document.getElementById('issue-submit').hidden ? 'yes' : ''`) == "" {
		t.Error("cancel does not put the form back")
	}
	confirm("issue", "Create 250.00 of new money")
	if got := b.waitJS("the issue", text("#issue-result"), 10*time.Second); !strings.Contains(got, "ledger entry") {
		t.Errorf("issue result: %q", got)
	}

	// The charter, founded once.
	b.open("/admin")
	b.do("fill the charter",
		chromedp.SendKeys(chromedp.ID("charter-stewards"), "sam"),
		chromedp.SendKeys(chromedp.ID("charter-neighbours"), "Delta City = http://127.0.0.1:1 "+strings.Repeat("5a", 32)),
		chromedp.SetValue(chromedp.ID("charter-quorum"), "1"))
	b.screenshot("charter")
	confirm("charter", "stewards sam", "1 neighbours", "only the neighbours’ quorum can change it")
	b.waitJS("the founded charter", text("#charter-founded"), 10*time.Second)
	if got := b.js(text("#charter-founded")); !strings.Contains(got, "quorum 1 of 1") || !strings.Contains(got, "sam") {
		t.Errorf("charter: %q", got)
	}

	// Everything is in the audit log.
	b.do("open the audit log", chromedp.Click(chromedp.ID("audit-link")))
	b.waitJS("the audit log", `location.pathname === '/admin/audit' ? 'yes' : ''`, 10*time.Second)
	log := b.js(text("#audit-table tbody"))
	for _, want := range []string{"district.create", "account.create", "organisation.add_member", "account.change", "treasury.issue", "charter.found", "Opening budget"} {
		if !strings.Contains(log, want) {
			t.Errorf("the audit log lacks %q", want)
		}
	}
	b.screenshot("audit")

	// Nobody else gets the pages.
	rb := newBrowser(t, root, "admin-resident", base, 1280, 900)
	rb.signIn("rita", "rita's long password")
	if rb.js(`document.getElementById('nav-admin') ? 'yes' : ''`) != "" {
		t.Error("a resident has an Admin link")
	}
	rb.open("/admin")
	if msg := rb.js(text("#error-message")); !strings.Contains(msg, "only an admin") {
		t.Errorf("a resident on /admin: %q", msg)
	}
}
