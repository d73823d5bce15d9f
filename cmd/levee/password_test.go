package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"levee/mail/mailtest"
)

// signIn opens a browser session for name, with its cookie and CSRF token.
func signIn(t *testing.T, m *Main, name, password string) *client {
	t.Helper()
	c := newClient(t, m, "")
	st, sess := c.do("POST", "/api/v1/session", `{"name":"`+name+`","password":"`+password+`"}`)
	if st != 201 {
		t.Fatalf("sign in as %s: %d %v", name, st, sess)
	}
	c.csrf = sess["csrf_token"].(string)
	return c
}

// mustSignInFail checks that name cannot sign in with password.
func mustSignInFail(t *testing.T, m *Main, name, password string) {
	t.Helper()
	if st, r := newClient(t, m, "").do("POST", "/api/v1/session", `{"name":"`+name+`","password":"`+password+`"}`); st != 401 {
		t.Fatalf("%s signed in with %q: %d %v", name, password, st, r)
	}
}

func mustMe(t *testing.T, c *client, want int) {
	t.Helper()
	if st, r := c.do("GET", "/api/v1/me", ""); st != want {
		t.Fatalf("GET /me: %d %v, want %d", st, r, want)
	}
}

var resetLink = regexp.MustCompile(`http://\S+/password/reset\?token=(\S+)`)

// auditText is the admin's audit log as one string, to search for what it
// must and must not hold.
func auditText(t *testing.T, admin *client) string {
	t.Helper()
	_, r := admin.do("GET", "/api/v1/admin/audit?limit=1000", "")
	b, _ := json.Marshal(r)
	return string(b)
}

// TestAccountSelfService follows people changing their own password,
// signing out everywhere, and an admin's reset by one-time link (handed
// over, then mailed through a real SMTP server), with what an attacker
// would try at each step.
func TestAccountSelfService(t *testing.T) {
	s := mailtest.MustStart(t)
	m, _, _ := MustRunMainClock(t, func(c *Config) { c.SMTPURL, c.MailFrom = s.URL(), "levee@example.org" })
	admin := newClient(t, m, testAdminToken)
	anon := anonymous(t, m)
	admin.do("POST", "/api/v1/admin/districts", `{"name":"north"}`)
	ids := map[string]string{}
	tokens := map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		st, a := admin.do("POST", "/api/v1/admin/accounts", `{"name":"`+name+`","roles":["resident"],"district":"north","password":"`+name+`'s first password"}`)
		if st != 201 {
			t.Fatalf("admit %s: %d %v", name, st, a)
		}
		ids[name], tokens[name] = a["id"].(string), a["token"].(string)
	}

	// alice, signed in on a laptop and a phone, changes her password on
	// the laptop.
	laptop := signIn(t, m, "alice", "alice's first password")
	phone := signIn(t, m, "alice", "alice's first password")
	for _, c := range []struct{ body, field string }{
		{`{"current":"not my password","new":"alice's second password"}`, "current"},
		{`{"current":"","new":"alice's second password"}`, "current"},
		{`{"current":"alice's first password","new":"short"}`, "new"},
		{`{"current":"alice's first password"}`, "new"},
	} {
		if st, r := laptop.do("PUT", "/api/v1/me/password", c.body); st != 400 || !hasField(r, c.field) {
			t.Fatalf("%s: %d %v, want 400 on %s", c.body, st, r, c.field)
		}
	}
	withoutCSRF := *laptop
	withoutCSRF.csrf = ""
	if st, _ := withoutCSRF.do("PUT", "/api/v1/me/password", `{"current":"alice's first password","new":"alice's second password"}`); st != 403 {
		t.Fatalf("a cross-site change of password: %d", st)
	}
	if st, r := laptop.do("PUT", "/api/v1/me/password", `{"current":"alice's first password","new":"alice's second password"}`); st != 204 {
		t.Fatalf("change password: %d %v", st, r)
	}
	mustMe(t, laptop, 200) // this session stays
	mustMe(t, phone, 401)  // every other one ends
	mustSignInFail(t, m, "alice", "alice's first password")
	phone = signIn(t, m, "alice", "alice's second password")
	alicesToken := newClient(t, m, tokens["alice"])
	mustMe(t, alicesToken, 200) // tokens are revoked on their own

	// Sign out everywhere, tokens too: nothing of alice's works any more.
	st, out := phone.do("POST", "/api/v1/me/sign-out-everywhere", `{"tokens":true}`)
	if st != 200 || out["sessions_ended"] != float64(2) || out["tokens_revoked"] != float64(1) {
		t.Fatalf("sign out everywhere: %d %v", st, out)
	}
	mustMe(t, phone, 401)
	mustMe(t, laptop, 401)
	mustMe(t, alicesToken, 401)
	// Without a body only sessions end.
	bobsToken := newClient(t, m, tokens["bob"])
	bobsLaptop := signIn(t, m, "bob", "bob's first password")
	if st, out := bobsToken.do("POST", "/api/v1/me/sign-out-everywhere", ""); st != 200 || out["sessions_ended"] != float64(1) || out["tokens_revoked"] != float64(0) {
		t.Fatalf("sign out everywhere without a body: %d %v", st, out)
	}
	mustMe(t, bobsLaptop, 401)
	mustMe(t, bobsToken, 200)

	// An admin resets bob, who has no address: the admin gets the link to
	// hand over, and bob's old password and sessions stop at once.
	bobsLaptop = signIn(t, m, "bob", "bob's first password")
	for _, c := range []struct {
		who  *client
		id   string
		want int
	}{
		{bobsToken, ids["bob"], 403},   // not an admin
		{anon, ids["bob"], 401},        // not signed in
		{admin, "1", 409},              // the admin itself: it changes its password instead
		{admin, "999999", 404},         // nobody
		{admin, "0" + ids["bob"], 404}, // ids are not padded
	} {
		if st, r := c.who.do("POST", "/api/v1/admin/accounts/"+c.id+"/password-reset", ""); st != c.want {
			t.Fatalf("reset %s: %d %v, want %d", c.id, st, r, c.want)
		}
	}
	st, first := admin.do("POST", "/api/v1/admin/accounts/"+ids["bob"]+"/password-reset", "")
	if st != 201 || first["mailed"] != false || first["name"] != "bob" || !resetLink.MatchString(first["link"].(string)) {
		t.Fatalf("reset bob: %d %v", st, first)
	}
	mustSignInFail(t, m, "bob", "bob's first password")
	mustMe(t, bobsLaptop, 401)
	// A second reset voids the first link.
	_, second := admin.do("POST", "/api/v1/admin/accounts/"+ids["bob"]+"/password-reset", "")
	firstToken := resetLink.FindStringSubmatch(first["link"].(string))[1]
	token := resetLink.FindStringSubmatch(second["link"].(string))[1]
	if st, r := anon.do("POST", "/api/v1/password/reset", `{"token":"`+firstToken+`","password":"bob's chosen password"}`); st != 404 {
		t.Fatalf("a voided link: %d %v", st, r)
	}
	if st, page := anon.mustGetPage("/password/reset?token=" + token); st != 200 || !strings.Contains(page, `id="reset-form"`) {
		t.Fatalf("reset page: %d", st)
	}
	if st, r := anon.do("POST", "/api/v1/password/reset", `{"token":"`+token+`","password":"short"}`); st != 400 || !hasField(r, "password") {
		t.Fatalf("a short password: %d %v", st, r)
	}
	if st, r := anon.do("POST", "/api/v1/password/reset", `{"token":"`+token+`","password":"bob's chosen password"}`); st != 200 || r["name"] != "bob" {
		t.Fatalf("use the link: %d %v", st, r)
	}
	if st, r := anon.do("POST", "/api/v1/password/reset", `{"token":"`+token+`","password":"someone else's password"}`); st != 404 {
		t.Fatalf("the link worked twice: %d %v", st, r)
	}
	signIn(t, m, "bob", "bob's chosen password")

	// carol has a confirmed address: her link is mailed, and the admin
	// never sees it.
	st, a := admin.do("POST", "/api/v1/admin/accounts", `{"name":"carol","roles":["resident"],"district":"north","password":"carol's first password"}`)
	if st != 201 {
		t.Fatalf("admit carol: %d %v", st, a)
	}
	carol := signIn(t, m, "carol", "carol's first password")
	if st, r := carol.do("PUT", "/api/v1/me/email", `{"address":"carol@example.org"}`); st != 202 {
		t.Fatalf("carol's address: %d %v", st, r)
	}
	confirm := confirmLink.FindString(MustMailTo(t, s, "carol@example.org", 1)[0].Body)
	if st, _ := anon.mustGetPage(strings.TrimPrefix(confirm, "http://"+m.Addr())); st != 200 {
		t.Fatalf("confirm carol's address: %d", st)
	}
	st, r := admin.do("POST", "/api/v1/admin/accounts/"+a["id"].(string)+"/password-reset", "")
	if st != 201 || r["mailed"] != true || r["link"] != nil {
		t.Fatalf("reset carol: %d %v", st, r)
	}
	got := MustMailWith(t, s, "carol@example.org", "Levee: choose a new password")
	mailed := resetLink.FindStringSubmatch(got.Body)
	if mailed == nil || !strings.Contains(got.Body, "Hello carol") {
		t.Fatalf("reset mail: %+v", got)
	}
	if st, r := anon.do("POST", "/api/v1/password/reset", `{"token":"`+mailed[1]+`","password":"carol's chosen password"}`); st != 200 || r["name"] != "carol" {
		t.Fatalf("carol uses her link: %d %v", st, r)
	}
	signIn(t, m, "carol", "carol's chosen password") // (sign-ins are throttled: 10 at once per address)

	// Everything is in the audit log, and no password or link is.
	log := auditText(t, admin)
	for _, action := range []string{"password.change", "sessions.end_all", "password.reset_started", "password.reset"} {
		if !strings.Contains(log, `"action":"`+action+`"`) {
			t.Errorf("audit log lacks %s", action)
		}
	}
	for _, secret := range []string{"alice's second password", "bob's chosen password", "carol's chosen password", token, firstToken, mailed[1]} {
		if strings.Contains(log, secret) {
			t.Errorf("the audit log holds a secret: %q", secret)
		}
	}
	if !strings.Contains(log, "mailed to the confirmed address") || !strings.Contains(log, "handed over by the admin") {
		t.Errorf("the audit log does not say where the links went: %s", log)
	}
}
