package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"levee/mail/mailtest"
)

// mustGetPage fetches a page as c and returns its status and HTML.
func (c *client) mustGetPage(path string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.base+path, nil)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// MustMailTo waits until the SMTP server has n mails for address.
func MustMailTo(t *testing.T, s *mailtest.Server, address string, n int) []mailtest.Received {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := s.To(address)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s got %d mails, want %d: %+v", address, len(got), n, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// MustMailWith waits until the SMTP server has a mail for address with
// subject, and returns it.
func MustMailWith(t *testing.T, s *mailtest.Server, address, subject string) mailtest.Received {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, r := range s.To(address) {
			if r.Subject == subject {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s got no mail %q: %+v", address, subject, s.To(address))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var confirmLink = regexp.MustCompile(`http://\S+/email/confirm\?token=\S+`)

// TestNotificationsByMail follows a resident from setting an address to
// getting an emergency's declaration by mail, on a real SMTP server.
func TestNotificationsByMail(t *testing.T) {
	s := mailtest.MustStart(t)
	m, _, _ := MustRunMainClock(t, func(c *Config) {
		c.Demo, c.SMTPURL, c.MailFrom, c.MailPoll = true, s.URL(), "levee@example.org", 20*time.Millisecond
	})
	if w := m.mail.Where(); !strings.Contains(w, s.Addr) {
		t.Fatalf("where mail goes: %q", w)
	}
	alice, sam, north1 := demoClient(t, m, "alice"), demoClient(t, m, "sam"), demoClient(t, m, "north-1")
	anon := anonymous(t, m)

	if st, r := alice.do("PUT", "/api/v1/me/email", `{"address":"not an address"}`); st != 400 || !hasField(r, "address") {
		t.Fatalf("bad address: %d %v", st, r)
	}
	st, r := alice.do("PUT", "/api/v1/me/email", `{"address":"alice@example.org"}`)
	if st != 202 || r["confirmed"] != false || r["delivering"] != true {
		t.Fatalf("set email: %d %v", st, r)
	}
	// north-1, whom the emergency below concerns, never confirms.
	if st, _ := north1.do("PUT", "/api/v1/me/email", `{"address":"north1@example.org"}`); st != 202 {
		t.Fatalf("north-1's email: %d", st)
	}
	link := confirmLink.FindString(MustMailTo(t, s, "alice@example.org", 1)[0].Body)
	if link == "" {
		t.Fatal("no confirmation link")
	}
	path := strings.TrimPrefix(link, "http://"+m.Addr())
	if st, body := anon.mustGetPage(path); st != 200 || !strings.Contains(body, "alice@example.org") {
		t.Fatalf("confirm: %d %s", st, body)
	}
	if st, _ := anon.mustGetPage(path); st != 404 {
		t.Fatalf("the confirmation link worked twice: %d", st)
	}
	if _, r := alice.do("GET", "/api/v1/me/email", ""); r["confirmed"] != true || len(r["categories"].([]any)) != 5 {
		t.Fatalf("after confirming: %v", r)
	}
	if st, r := alice.do("PUT", "/api/v1/me/email/categories", `{"categories":["weather"]}`); st != 400 {
		t.Fatalf("unknown category: %d %v", st, r)
	}

	// An emergency in alice's district reaches her by mail.
	st, e := sam.do("POST", "/api/v1/emergencies", `{"reason":"Storm surge","districts":["north"],"duration":"3d","cap":"500"}`)
	if st != 201 {
		t.Fatalf("declare: %d %v", st, e)
	}
	emergency := e["id"].(string) // the demo city has had one before
	got := MustMailWith(t, s, "alice@example.org", "Levee: An emergency is declared")
	if !strings.Contains(got.Body, "Storm surge.") ||
		!strings.Contains(got.Body, "Open: http://"+m.Addr()+"/emergency") {
		t.Fatalf("emergency mail: %+v", got)
	}
	// The quorum request goes to the neighbour nodes, signed, from the
	// outbox of statements: not by mail to anyone here.
	st, p := sam.do("POST", "/api/v1/quorum/proposals", `{"kind":"end","payload":{"emergency":"`+emergency+`"},"reason":"The water is down"}`)
	if st != 201 || p["statement"] == "" {
		t.Fatalf("propose: %d %v", st, p)
	}
	pid := p["id"].(string)

	// Opting out of emergencies: the next act's mail does not come.
	if st, r := alice.do("PUT", "/api/v1/me/email/categories", `{"categories":["seats","verdicts","payments"]}`); st != 200 {
		t.Fatalf("categories: %d %v", st, r)
	}
	for _, name := range []string{"Delta City", "Estuary Commons"} {
		if st, r := demoNeighbour(t, m, name).vote(pid, true); st != 200 {
			t.Fatalf("vote: %d %v", st, r)
		}
	}
	// Wait for the worker to decide every notification, then check.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var left int
		m.DB.Get(&left, `SELECT count(*) FROM notifications WHERE delivery IS NULL`)
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d notifications undecided", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var ended string
	m.DB.Get(&ended, `SELECT n.delivery FROM notifications n JOIN accounts a ON a.id = n.account_id
		WHERE a.name = 'alice' AND n.kind = 'emergency_ended'`)
	if ended != "kept" {
		t.Errorf("the end of the emergency, which alice no longer wants by mail: %q", ended)
	}
	for _, r := range s.To("alice@example.org") {
		if r.Subject == "Levee: An emergency has ended" {
			t.Errorf("alice opted out of emergencies and still got %q", r.Subject)
		}
	}
	var answered int
	m.DB.Get(&answered, `SELECT count(*) FROM notifications n JOIN accounts a ON a.id = n.account_id
		WHERE a.name = 'sam' AND n.kind = 'quorum_decided'`)
	if answered != 1 {
		t.Errorf("sam was told the quorum's answer %d times", answered)
	}
	if n := len(s.To("north1@example.org")); n != 1 { // the confirmation link only
		t.Errorf("an unconfirmed address got %d mails", n)
	}
	if st, body := alice.mustGetPage("/jury"); st != 200 || !strings.Contains(body, `id="mail-status"`) || !strings.Contains(body, "Storm surge") {
		t.Errorf("/jury: %d", st)
	}
	if st, body := alice.mustGetPage("/portfolio"); st != 200 || !strings.Contains(body, `id="email-categories"`) {
		t.Errorf("/portfolio: %d", st)
	}
	if st, _ := alice.do("DELETE", "/api/v1/me/email", ""); st != 204 {
		t.Fatalf("stop: %d", st)
	}
	if _, r := alice.do("GET", "/api/v1/me/email", ""); r["address"] != "" {
		t.Fatalf("after stopping: %v", r)
	}
}

// TestMailKeptWithoutSMTP: without LEVEE_SMTP_URL nothing is sent and the
// notifications stay undecided, shown in the app.
func TestMailKeptWithoutSMTP(t *testing.T) {
	m, _ := MustRunMain(t)
	if w := m.mail.Where(); !strings.Contains(w, "not sent") || m.mail.Delivering() {
		t.Fatalf("where mail goes: %q", w)
	}
	if m.stopMail != nil {
		t.Fatal("a mail worker runs without LEVEE_SMTP_URL")
	}
}
