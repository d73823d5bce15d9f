package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestEmergencyPowersAndQuorum checks the charter's limits over HTTP on the
// demo city (quorum 2 of 3 neighbours, steward sam, spending cap 5000,
// longest emergency 7 days, renewals 7 days up to 42, cooldown 30 days,
// petition threshold 10).
func TestEmergencyPowersAndQuorum(t *testing.T) {
	m, _, clk := MustRunMainClock(t, func(c *Config) { c.Demo = true })
	admin := newClient(t, m, testAdminToken)
	anon := anonymous(t, m)
	sam, tess, alice := demoClient(t, m, "sam"), demoClient(t, m, "tess"), demoClient(t, m, "alice")
	delta, estuary, ridge := demoNeighbour(t, m, "Delta City"), demoNeighbour(t, m, "Estuary Commons"), demoNeighbour(t, m, "Ridge Town")

	// The charter is founded once; later changes go through the quorum.
	if st, r := anon.do("GET", "/api/v1/charter", ""); st != 200 || r["quorum"] != 2.0 || len(r["neighbours"].([]any)) != 3 || r["max_emergency"] != "7d" {
		t.Fatalf("charter: %d %v", st, r)
	}
	if st, r := admin.do("PUT", "/api/v1/admin/charter", `{"quorum":1}`); st != 409 {
		t.Fatalf("second founding: %d %v", st, r)
	}
	st, p := sam.do("POST", "/api/v1/quorum/proposals", `{"kind":"charter","payload":{"petition_threshold":3},"reason":"smaller city"}`)
	if st != 201 || p["status"] != "open" {
		t.Fatalf("charter proposal: %d %v", st, p)
	}
	pid := p["id"].(string)
	// No account here votes for a neighbour: a vote is a statement signed by its node's key.
	if st, _ := sam.do("POST", "/api/v1/quorum/proposals/"+pid+"/votes", `{"approve":true}`); st/100 != 4 {
		t.Fatalf("a local account voted for a neighbour: %d", st)
	}
	delta.vote(pid, true)
	if st, _ := delta.vote(pid, true); st != 403 { // a neighbour's second vote is refused
		t.Fatalf("voted twice: %d", st)
	}
	if _, p = estuary.vote(pid, true); p["status"] != "executed" {
		t.Fatalf("charter change not executed at quorum: %v", p)
	}
	if _, r := anon.do("GET", "/api/v1/charter", ""); r["petition_threshold"] != 3.0 || len(r["changes"].([]any)) != 2 {
		t.Fatalf("charter change not recorded: %v", r)
	}
	// Two rejections make the quorum impossible.
	_, p = tess.do("POST", "/api/v1/quorum/proposals", `{"kind":"charter","payload":{"quorum":1},"reason":"faster"}`)
	pid = p["id"].(string)
	estuary.vote(pid, false)
	if _, p = ridge.vote(pid, false); p["status"] != "rejected" {
		t.Fatalf("not rejected: %v", p)
	}

	// Declaring: stewards only, within the charter's limits.
	declare := func(c *client, body string) (int, map[string]any) { return c.do("POST", "/api/v1/emergencies", body) }
	for _, tc := range []struct {
		c     *client
		body  string
		st    int
		field string
	}{
		{tess, `{"reason":"x","districts":["north"],"duration":"72h","cap":"100"}`, 403, ""},
		{sam, `{"reason":"x","districts":["north"],"duration":"8d","cap":"100"}`, 400, "duration"},
		{sam, `{"reason":"x","districts":["north"],"duration":"72h","cap":"5001"}`, 400, "cap"},
		{sam, `{"reason":"x","districts":["atlantis"],"duration":"72h","cap":"100"}`, 400, "districts"},
		{sam, `{"reason":"","districts":["north"],"duration":"72h","cap":"100"}`, 400, "reason"},
	} {
		if st, r := declare(tc.c, tc.body); st != tc.st || tc.field != "" && !hasField(r, tc.field) {
			t.Errorf("%s: %d %v, want %d on %q", tc.body, st, r, tc.st, tc.field)
		}
	}
	st, e := declare(sam, `{"reason":"Storm surge","districts":["north","harbour"],"duration":"3d","cap":"500"}`)
	if st != 201 || e["active"] != true {
		t.Fatalf("declare: %d %v", st, e)
	}
	eid := e["id"].(string)
	if st, _ := declare(sam, `{"reason":"again","districts":["north"],"duration":"1d","cap":"5"}`); st != 409 {
		t.Fatalf("two emergencies at once: %d", st)
	}
	if _, cur := anon.do("GET", "/api/v1/emergency", ""); cur["emergency"] == nil {
		t.Fatal("the current emergency is not shown")
	}

	// Acts the steward may never do, and acts by anyone else.
	act := func(c *client, body string) (int, map[string]any) {
		return c.do("POST", "/api/v1/emergencies/"+eid+"/acts", body)
	}
	for _, kind := range []string{"change_charter", "resolve_market", "change_verdict", "edit_ledger", "release_escrow"} {
		if st, r := act(sam, `{"kind":"`+kind+`","reason":"because"}`); st != 403 || !strings.Contains(fmt.Sprint(r), "do not extend") {
			t.Errorf("%s: %d %v", kind, st, r)
		}
	}
	if st, _ := act(tess, `{"kind":"reallocate","reason":"x","from_line":"2","to_line":"1","amount":"1"}`); st != 403 {
		t.Fatalf("a treasurer acted under the steward's emergency: %d", st)
	}
	// The steward may not award work to an organisation it belongs to.
	_, org := admin.do("POST", "/api/v1/admin/accounts", `{"name":"samsons","roles":["contractor"]}`)
	_, samMe := sam.do("GET", "/api/v1/me", "")
	admin.do("POST", "/api/v1/admin/organisations/"+org["id"].(string)+"/members", `{"account":"`+samMe["id"].(string)+`"}`)
	due := clk.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	award := func(contractor, price string) string {
		return `{"kind":"direct_award","reason":"r","budget_line":"1","contractor":"` + contractor + `","title":"Sandbags","price":"` + price +
			`","completion_at":"` + due + `","milestones":[{"title":"Delivered","share":"1","due_at":"` + due + `"}]}`
	}
	if st, r := act(sam, award(org["id"].(string), "10")); st != 403 {
		t.Fatalf("self-dealing: %d %v", st, r)
	}
	dyke, _ := m.Accounts.IDByName(t.Context(), "dykeworks")
	if st, r := act(sam, award(fmt.Sprint(dyke), "501")); st != 409 {
		t.Fatalf("over the cap: %d %v", st, r)
	}
	if st, r := act(sam, award(fmt.Sprint(dyke), "100")); st != 201 {
		t.Fatalf("direct award: %d %v", st, r)
	}

	// Renewal only by the quorum, in steps, up to the cap.
	if st, _ := alice.do("POST", "/api/v1/quorum/proposals", `{"kind":"renew","payload":{"emergency":"`+eid+`"},"reason":"still flooding"}`); st != 403 {
		t.Fatalf("a resident proposed a renewal: %d", st)
	}
	before := e["ends_at"].(string)
	for i := range 6 {
		_, p := sam.do("POST", "/api/v1/quorum/proposals", `{"kind":"renew","payload":{"emergency":"`+eid+`"},"reason":"still flooding"}`)
		delta.vote(p["id"].(string), true)
		st, r := ridge.vote(p["id"].(string), true)
		// 3 days + 5 renewals of 7 days = 38 days; a sixth would make 45 > 42.
		if want := map[bool]int{true: 409, false: 200}[i == 5]; st != want {
			t.Fatalf("renewal %d: %d %v", i+1, st, r)
		}
	}
	_, e = anon.do("GET", "/api/v1/emergencies/"+eid, "")
	if e["renewals"] != 5.0 || e["ends_at"] == before {
		t.Fatalf("after renewals: %v", e)
	}

	// A resident petition over the threshold ends it early.
	for i := 1; i <= 3; i++ {
		c := demoClient(t, m, fmt.Sprintf("north-%d", i))
		if st, r := c.do("POST", "/api/v1/emergencies/"+eid+"/petition", `{}`); st != 200 {
			t.Fatalf("petition %d: %d %v", i, st, r)
		}
	}
	if _, e = anon.do("GET", "/api/v1/emergencies/"+eid, ""); e["end_reason"] != "petition" || e["active"] != false {
		t.Fatalf("petition did not end it: %v", e)
	}
	// The refusal tells when and how it ended, not its scheduled end.
	endedAt, _ := time.Parse(time.RFC3339Nano, e["ended_at"].(string))
	scheduled, _ := time.Parse(time.RFC3339Nano, e["ends_at"].(string))
	st, r := act(sam, award(fmt.Sprint(dyke), "1"))
	msg := fmt.Sprint(r["error"])
	if st != 409 || !strings.Contains(msg, "ended by petition at "+endedAt.UTC().Format(time.RFC3339)) ||
		strings.Contains(msg, scheduled.UTC().Format(time.RFC3339)) {
		t.Fatalf("acted after the end: %d %v", st, r)
	}
	// Within 30 days of an end, declaring again needs the quorum.
	body := `{"reason":"Second storm","districts":["harbour"],"duration":"1d","cap":"50"}`
	if st, r := declare(sam, body); st != 409 || !strings.Contains(fmt.Sprint(r), "quorum") {
		t.Fatalf("redeclared in the cooldown: %d %v", st, r)
	}
	_, p = sam.do("POST", "/api/v1/quorum/proposals", `{"kind":"declare","payload":`+body+`,"reason":"second storm"}`)
	delta.vote(p["id"].(string), true)
	if _, p = estuary.vote(p["id"].(string), true); p["status"] != "executed" {
		t.Fatalf("declaration by quorum: %v", p)
	}
	if _, cur := anon.do("GET", "/api/v1/emergency", ""); cur["emergency"] == nil {
		t.Fatal("the quorum's declaration is not active")
	}
	// A proposal nobody answers expires after its window.
	_, p = tess.do("POST", "/api/v1/quorum/proposals", `{"kind":"reallocation","payload":{"from_line":"3","to_line":"1","amount":"10"},"reason":"routine"}`)
	clk.Skip(73 * time.Hour)
	if _, p = anon.do("GET", "/api/v1/quorum/proposals/"+p["id"].(string), ""); p["status"] != "expired" {
		t.Fatalf("not expired: %v", p)
	}
}
