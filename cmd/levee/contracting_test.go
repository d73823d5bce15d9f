package main

import (
	"context"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"levee"
	"levee/budgets"
)

// MustBudgetLine funds a budget line of 400 through a quadratic funding
// round run on a budgets service with its own clock (so the round need not
// be waited for): pool 1000, alice and bob give 100 each, match 200.
func MustBudgetLine(t *testing.T, m *Main, treasurer, alice, bob *client) string {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Now()
	svc := budgets.New(m.DB, budgets.Options{Cash: m.Engine, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	who := func(c *client) int64 {
		p, err := m.Accounts.Authenticate(ctx, c.token)
		if err != nil {
			t.Fatal(err)
		}
		return p.AccountID
	}
	tp, _ := m.Accounts.Authenticate(ctx, treasurer.token)
	r, err := svc.OpenRound(ctx, budgets.NewRound{Title: "Flood works", Pool: levee.Units(1000), ClosesAt: now.Add(time.Hour), CreatedBy: tp.AccountID})
	if err != nil {
		t.Fatal(err)
	}
	ap, _ := m.Accounts.Authenticate(ctx, alice.token)
	p, err := svc.Propose(ctx, ap, r.ID, budgets.NewProject{Title: "Dyke repair", District: "north", EstimatedCost: levee.Units(300)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetEligibility(ctx, who(treasurer), p.ID, true, "public works"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{alice, bob} {
		cp, _ := m.Accounts.Authenticate(ctx, c.token)
		if _, err := svc.Contribute(ctx, cp, p.ID, levee.Units(100), ""); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	d, err := svc.Finalize(ctx, tp.AccountID, r.ID)
	if err != nil || len(d.Results) != 1 || d.Results[0].BudgetLine == nil || d.Results[0].Match != levee.Units(200) {
		t.Fatalf("finalize: %v %+v", err, d)
	}
	return fmt.Sprint(*d.Results[0].BudgetLine)
}

func waitUntil(t *testing.T, at time.Time) {
	t.Helper()
	for time.Now().Before(at.Add(50 * time.Millisecond)) {
		time.Sleep(20 * time.Millisecond)
	}
}

func lineBalance(t *testing.T, c *client, id string) string {
	t.Helper()
	_, ls := c.do("GET", "/api/v1/budget-lines", "")
	for _, l := range ls["budget_lines"].([]any) {
		if l := l.(map[string]any); l["id"] == id {
			return l["balance"].(string)
		}
	}
	t.Fatalf("no budget line %s", id)
	return ""
}

func cash(t *testing.T, c *client) levee.Micros {
	t.Helper()
	_, me := c.do("GET", "/api/v1/me", "")
	return levee.MustMicros(me["cash"].(string))
}

func bidIDs(body map[string]any, key string) []string {
	var ids []string
	list, _ := body[key].([]any)
	for _, b := range list {
		ids = append(ids, b.(map[string]any)["id"].(string))
	}
	return ids
}

// TestContractingOverHTTP runs a tender from budget line to paid milestones
// through the real program.
func TestContractingOverHTTP(t *testing.T) {
	m, _, clk := MustRunMainClock(t)
	tess, alice, bob := MustCity(t, m)
	admin := newClient(t, m, testAdminToken)
	anon := newClient(t, m, "")
	mk := func(body string) (*client, string) {
		st, a := admin.do("POST", "/api/v1/admin/accounts", body)
		if st != 201 {
			t.Fatalf("create account: %d %v", st, a)
		}
		return newClient(t, m, a["token"].(string)), a["id"].(string)
	}
	carol, _ := mk(`{"name":"carol","roles":["resident"],"district":"north","credit":"1000"}`)
	dyke, dykeID := mk(`{"name":"dykeworks","roles":["contractor"]}`)
	polder, polderID := mk(`{"name":"polderco","roles":["contractor"]}`)
	_, sluiceID := mk(`{"name":"sluiceltd","roles":["contractor"]}`)
	dana, danaID := mk(`{"name":"dana","kind":"person","roles":["contractor"],"credit":"50"}`)
	jurors := jurorPool(t, m, "juror", "north", 6)
	for _, c := range []*client{alice, bob, carol} {
		_, me := c.do("GET", "/api/v1/me", "")
		jurors[me["id"].(string)] = c
	}
	if st, b := admin.do("POST", "/api/v1/admin/organisations/"+sluiceID+"/members", `{"account":"`+danaID+`"}`); st >= 300 {
		t.Fatalf("add member: %d %v", st, b)
	}
	line := MustBudgetLine(t, m, tess, alice, bob)
	if got := lineBalance(t, anon, line); got != "400.000000" {
		t.Fatalf("line balance %s", got)
	}

	now := time.Now().UTC()
	closes := now.Add(4 * time.Second)
	decision := closes.Add(5 * time.Second)
	completion := decision.Add(30 * 24 * time.Hour) // beyond the jury's deadlines
	rfc := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	tenderBody := `{"budget_line":"` + line + `","title":"Repair the north dyke","scope":"200 m of dyke","districts":["north"],
		"budget_cap":"150","closes_at":"` + rfc(closes) + `","decision_at":"` + rfc(decision) + `","min_confidence":"0.5",
		"twap_window":"1s","dispute_window":"2s","acceptance_criteria":"Inspector sign-off",
		"milestones":[{"title":"Foundations","share":"0.4"},{"title":"Finish","share":"0.6"}]}`
	if st, _ := dyke.do("POST", "/api/v1/tenders", tenderBody); st != 403 {
		t.Fatalf("contractor created a tender: %d", st)
	}
	for _, tc := range []struct{ from, to, field string }{
		{`"budget_cap":"150"`, `"budget_cap":"401"`, "budget_cap"},
		{`"share":"0.6"`, `"share":"0.59"`, "milestones"},
		{`"twap_window":"1s"`, `"twap_window":"1h"`, "twap_window"},
		{`"districts":["north"]`, `"districts":["atlantis"]`, "districts"},
	} {
		st, body := tess.do("POST", "/api/v1/tenders", strings.Replace(tenderBody, tc.from, tc.to, 1))
		if _, f := errField(body); st != 400 || f != tc.field {
			t.Errorf("%s: %d %v, want 400 on %s", tc.to, st, body, tc.field)
		}
	}
	st, tender := tess.do("POST", "/api/v1/tenders", tenderBody)
	if st != 201 || tender["phase"] != "bidding" || tender["budget_line_account"] != "budget:"+line {
		t.Fatalf("create tender: %d %v", st, tender)
	}
	tid := tender["id"].(string)
	tpath := "/api/v1/tenders/" + tid
	// While bidding, a change is an amendment, not an overwrite.
	if st, b := tess.do("PATCH", tpath, `{"scope":"250 m of dyke"}`); st != 400 {
		t.Fatalf("amendment without reason: %d %v", st, b)
	}
	if st, b := tess.do("PATCH", tpath, `{"scope":"250 m of dyke","reason":"survey"}`); st != 200 || b["scope"] != "250 m of dyke" || len(b["amendments"].([]any)) != 1 {
		t.Fatalf("amend: %d %v", st, b)
	}
	if st, _ := tess.do("PATCH", tpath, `{"budget_cap":"100","reason":"x"}`); st != 409 {
		t.Fatalf("cap changed while bidding: %d", st)
	}

	bid := func(c *client, org, price string) (int, map[string]any) {
		return c.do("POST", tpath+"/bids", `{"organisation":"`+org+`","price":"`+price+`","completion_at":"`+rfc(completion)+
			`","milestone_dates":["`+rfc(decision.Add(time.Minute))+`","`+rfc(completion)+`"],"method_statement":"secret method of `+org+`"}`)
	}
	if st, b := dana.do("POST", tpath+"/bids", `{"organisation":"`+polderID+`","price":"90","completion_at":"`+rfc(completion)+`","milestone_dates":["`+rfc(completion)+`","`+rfc(completion)+`"]}`); st != 403 {
		t.Fatalf("dana bid for an organisation she is not a member of: %d %v", st, b)
	}
	if st, b := alice.do("POST", tpath+"/bids", `{"organisation":"`+dykeID+`","price":"90","completion_at":"`+rfc(completion)+`","milestone_dates":["`+rfc(completion)+`","`+rfc(completion)+`"]}`); st != 403 {
		t.Fatalf("resident bid for dykeworks: %d %v", st, b)
	}
	if st, b := bid(polder, polderID, "151"); st != 400 {
		t.Fatalf("bid above cap: %d %v", st, b)
	}
	st, bA := bid(dyke, dykeID, "110")
	if st != 201 {
		t.Fatalf("bid A: %d %v", st, bA)
	}
	st, bB := bid(polder, polderID, "90")
	if st != 201 {
		t.Fatalf("bid B: %d %v", st, bB)
	}
	st, bC := bid(dana, sluiceID, "120")
	if st != 201 || bC["organisation"] != sluiceID {
		t.Fatalf("bid C by a member: %d %v", st, bC)
	}
	idA, idB, idC := bA["id"].(string), bB["id"].(string), bC["id"].(string)
	if st, _ := polder.do("PUT", "/api/v1/bids/"+idA, `{"price":"1","completion_at":"`+rfc(completion)+`","milestone_dates":["`+rfc(completion)+`","`+rfc(completion)+`"]}`); st != 404 {
		t.Fatalf("rival revised bid A: %d", st)
	}
	if st, b := dyke.do("PUT", "/api/v1/bids/"+idA, `{"price":"100","completion_at":"`+rfc(completion)+`","milestone_dates":["`+rfc(decision.Add(time.Minute))+`","`+rfc(completion)+`"]}`); st != 200 || b["price"] != "100.000000" {
		t.Fatalf("revise bid A: %d %v", st, b)
	}
	attachment := checkSealedAttachment(t, dyke, idA, []*client{polder, alice, tess, anon})
	// Sealed: nobody but the bidder sees a bid, by any route.
	for name, c := range map[string]*client{"rival": polder, "resident": alice, "treasurer": tess, "anonymous": anon} {
		for _, id := range []string{idA, idC} {
			if st, b := c.do("GET", "/api/v1/bids/"+id, ""); st != 404 {
				t.Errorf("%s read sealed bid %s: %d %v", name, id, st, b)
			}
		}
		_, list := c.do("GET", tpath+"/bids", "")
		_, page := c.do("GET", tpath, "")
		for _, ids := range [][]string{bidIDs(list, "bids"), bidIDs(page, "bids")} {
			if len(ids) > 1 || len(ids) == 1 && (name != "rival" || ids[0] != idB) {
				t.Errorf("%s sees bids %v before close", name, ids)
			}
		}
		_, all := c.do("GET", "/api/v1/tenders", "")
		if strings.Contains(fmt.Sprint(all), "secret method") {
			t.Errorf("%s sees a method statement in the tender list", name)
		}
	}
	if _, b := dana.do("GET", tpath+"/bids", ""); fmt.Sprint(bidIDs(b, "bids")) != "["+idC+"]" {
		t.Errorf("dana sees %v", b)
	}

	if st, _ := tess.do("POST", tpath+"/close-bids", ``); st != 409 {
		t.Fatalf("closed before closes_at: %d", st)
	}
	waitUntil(t, closes)
	if st, _ := bid(dyke, dykeID, "100"); st != 409 {
		t.Fatalf("bid after close: %d", st)
	}
	if st, _ := dyke.do("POST", tpath+"/close-bids", ``); st != 403 {
		t.Fatalf("contractor closed bids: %d", st)
	}
	st, closed := tess.do("POST", tpath+"/close-bids", ``)
	if st != 200 || closed["phase"] != "forecasting" {
		t.Fatalf("close bids: %d %v", st, closed)
	}
	// At close the bid's attachments become public with it.
	if st, r := upload(t, dyke, "/api/v1/bids/"+idA+"/attachments", "late.png", pngBytes); st != 409 {
		t.Errorf("attachment after close: %d %v", st, r)
	}
	for _, c := range []*client{polder, anon} {
		if st, _ := c.do("GET", "/api/v1/bids/"+idA+"/attachments", ""); st != 200 {
			t.Errorf("attachments after close: %d", st)
		}
		if resp, err := http.Get(c.base + attachment); err != nil || resp.StatusCode != 200 {
			t.Errorf("download after close: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
	}
	markets := map[string]string{}
	for _, c := range []*client{anon, alice, polder} {
		_, list := c.do("GET", tpath+"/bids", "")
		if ids := bidIDs(list, "bids"); fmt.Sprint(ids) != fmt.Sprint([]string{idA, idB, idC}) {
			t.Fatalf("bids after close: %v", ids)
		}
		for _, b := range list["bids"].([]any) {
			b := b.(map[string]any)
			markets[b["id"].(string)] = b["market"].(string)
			if tr, _ := b["track_record"].(map[string]any); tr == nil || tr["contracts"] != 0.0 || b["price"] == nil {
				t.Fatalf("bid listed without its bidder's track record: %v", b)
			}
		}
	}
	subsidy := levee.MustMicros("6.931472")
	if got := lineBalance(t, anon, line); got != (levee.Units(400) - 3*subsidy).String() {
		t.Fatalf("line after subsidies: %s", got)
	}

	// Residents trade the decision markets.
	cash0 := map[*client]levee.Micros{alice: cash(t, alice), bob: cash(t, bob), carol: cash(t, carol)}
	spentOnA := map[*client]levee.Micros{}
	order := func(c *client, bidID, body string) map[string]any {
		st, r := c.do("POST", "/api/v1/markets/"+markets[bidID]+"/orders", body)
		if st != 201 {
			t.Fatalf("order on %s: %d %v", bidID, st, r)
		}
		return r
	}
	r := order(alice, idA, `{"outcome":0,"side":"buy","amount":"8"}`)
	spentOnA[alice] = levee.MustMicros(r["cost"].(string))
	r = order(carol, idA, `{"outcome":0,"side":"buy","amount":"2"}`)
	spentOnA[carol] = levee.MustMicros(r["cost"].(string))
	order(bob, idB, `{"outcome":1,"side":"buy","amount":"6"}`)
	order(alice, idB, `{"outcome":1,"side":"buy","amount":"2"}`)
	order(bob, idB, `{"outcome":1,"side":"sell","shares":"3"}`)

	if st, _ := tess.do("POST", tpath+"/award", ``); st != 409 {
		t.Fatalf("award before the decision date: %d", st)
	}
	waitUntil(t, decision)
	if st, _ := dyke.do("POST", tpath+"/award", ``); st != 403 {
		t.Fatalf("contractor awarded itself: %d", st)
	}
	st, awarded := tess.do("POST", tpath+"/award", ``)
	if st != 200 || awarded["status"] != "awarded" {
		t.Fatalf("award: %d %v", st, awarded)
	}
	rec := awarded["award"].(map[string]any)
	if rec["winner"] != idA || rec["result"] != "awarded" || rec["rule"] == "" {
		t.Fatalf("award record: %v", rec)
	}
	// Hand calculation: the TWAP from the trades' prices and times.
	from := decision.Add(-time.Second).Truncate(time.Microsecond)
	to := decision.Truncate(time.Microsecond)
	prices := map[string]string{idA: "100", idB: "90", idC: "120"}
	for _, sb := range rec["bids"].([]any) {
		sb := sb.(map[string]any)
		id := sb["bid"].(string)
		_, tr := anon.do("GET", "/api/v1/markets/"+markets[id]+"/trades", "")
		trades := tr["trades"].([]any)
		price, cursor := big.NewInt(500000), from
		sum := new(big.Int)
		for i := len(trades) - 1; i >= 0; i-- { // oldest first
			tr := trades[i].(map[string]any)
			at, _ := time.Parse(time.RFC3339Nano, tr["at"].(string))
			p := big.NewInt(int64(levee.MustMicros(tr["prices"].([]any)[0].(string))))
			if !at.After(from) {
				price = p
				continue
			}
			sum.Add(sum, new(big.Int).Mul(price, big.NewInt(at.Sub(cursor).Microseconds())))
			price, cursor = p, at
		}
		sum.Add(sum, new(big.Int).Mul(price, big.NewInt(to.Sub(cursor).Microseconds())))
		twap := sum.Quo(sum, big.NewInt(to.Sub(from).Microseconds())).Int64()
		score := int64(levee.MustMicros(prices[id])) * 1_000_000 / twap
		if sb["twap"] != levee.Micros(twap).String() || sb["score"] != levee.Micros(score).String() || sb["price"] != prices[id]+".000000" {
			t.Errorf("bid %s: %v, want twap %s score %s", id, sb, levee.Micros(twap), levee.Micros(score))
		}
		want := map[string]bool{idA: true, idB: false, idC: true}[id]
		if sb["qualifies"] != want {
			t.Errorf("bid %s qualifies=%v, want %v (twap %s)", id, sb["qualifies"], want, levee.Micros(twap))
		}
	}
	// Losing branches refunded exactly; the collateral back to the line.
	for c, c0 := range cash0 {
		if got := cash(t, c); got != c0-spentOnA[c] {
			t.Errorf("cash after voids: %s, want %s", got, c0-spentOnA[c])
		}
	}
	for _, id := range []string{idB, idC} {
		if _, mk := anon.do("GET", "/api/v1/markets/"+markets[id], ""); mk["status"] != "void" {
			t.Errorf("market of bid %s: %v", id, mk["status"])
		}
	}
	// The winning market stays open: it now asks about the awarded work.
	if _, mk := anon.do("GET", "/api/v1/markets/"+markets[idA], ""); mk["status"] != "open" {
		t.Errorf("winning market after the award: %v (closes %v)", mk["status"], mk["closes_at"])
	}
	if got := lineBalance(t, anon, line); got != (levee.Units(300) - subsidy).String() {
		t.Fatalf("line after award: %s", got)
	}
	cid := awarded["contract"].(string)
	cpath := "/api/v1/contracts/" + cid
	st, contract := anon.do("GET", cpath, "")
	if st != 200 || contract["escrow"] != "100.000000" || contract["escrow_account"] != "escrow:"+cid || contract["contractor"] != dykeID {
		t.Fatalf("contract: %d %v", st, contract)
	}

	// Milestones.
	if st, _ := polder.do("POST", cpath+"/milestones/1/claim", `{"evidence":"not mine"}`); st != 403 {
		t.Fatalf("rival claimed a milestone: %d", st)
	}
	checkEvidenceUploads(t, dyke, polder, anon, cpath)
	if st, b := dyke.do("POST", cpath+"/milestones/1/claim", `{"evidence":"photos of the foundations"}`); st != 200 {
		t.Fatalf("claim: %d %v", st, b)
	}
	// A dispute opens a case; a jury of residents (none of them traders in
	// the tender's markets) accepts the claim.
	st, kase := dana.do("POST", cpath+"/milestones/1/dispute", `{"reason":"the foundations are not to the drawings"}`)
	if st != 201 || kase["subject"] != "milestone:"+cid+"/1" || kase["kind"] != "milestone" {
		t.Fatalf("rival bidder's member dispute: %d %v", st, kase) // dana acts for sluiceltd, a rival
	}
	caseID := kase["id"].(string)
	if st, _ := dyke.do("POST", "/api/v1/cases/"+caseID+"/evidence", `{"body":"inspector's report attached to the claim"}`); st != 201 {
		t.Fatalf("contractor evidence: %d", st)
	}
	if _, c := anon.do("GET", cpath, ""); c["milestones"].([]any)[0].(map[string]any)["status"] != "disputed" {
		t.Fatalf("milestone not held: %v", c["milestones"])
	}
	// From seating until the case is settled, its jurors may not trade in
	// the markets tied to it: the winning market stays open, and a juror
	// who has read the evidence could buy "no" and vote reject.
	seated := currentJurors(t, anon, caseDoc(t, anon, caseID))
	winning := "/api/v1/markets/" + markets[idA] + "/orders"
	for _, j := range seated {
		if st, r := jurors[j].do("POST", winning, `{"outcome":1,"side":"buy","amount":"1"}`); st != 403 {
			t.Fatalf("seated juror %s traded in the case's market: %d %v", j, st, r)
		}
	}
	v := vote(t, clk, anon, jurors, caseID, "accept", "accept", "reject", "accept", "accept")
	if v["status"] != "appealable" || v["verdict"] != "accept" {
		t.Fatalf("jury: %v", v)
	}
	skipPast(t, clk, v, "appeal_until")
	if v := caseDoc(t, anon, caseID); v["status"] != "settled" {
		t.Fatalf("case not settled: %v", v)
	}
	if st, r := jurors[seated[0]].do("POST", winning, `{"outcome":1,"side":"buy","amount":"1"}`); st != 201 {
		t.Fatalf("a juror of a settled case still cannot trade: %d %v", st, r)
	}
	st, contract = anon.do("GET", cpath, "")
	if st != 200 || contract["escrow"] != "60.000000" {
		t.Fatalf("after the verdict: %d %v", st, contract)
	}
	// The contractor's statement shows the payment received.
	_, hist := dyke.do("GET", "/api/v1/me/history", "")
	ms := hist["statements"].([]any)[0].(map[string]any)["movements"].([]any)
	if last := ms[0].(map[string]any); last["kind"] != "milestone_payment" || last["amount"] != "40.000000" {
		t.Fatalf("contractor's history: %v", ms)
	}
	// dana acts for sluiceltd: her history has its statement too.
	if _, hist := dana.do("GET", "/api/v1/me/history", ""); len(hist["statements"].([]any)) != 2 {
		t.Fatalf("member's statements: %v", hist)
	}
	if got := cash(t, dyke); got != levee.Units(40) {
		t.Fatalf("contractor cash %s", got)
	}
	if st, b := dyke.do("POST", cpath+"/milestones/2/claim", `{"evidence":"inspector signed off"}`); st != 200 {
		t.Fatalf("claim 2: %d %v", st, b)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, contract = anon.do("GET", cpath, "")
		if contract["status"] == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("milestone 2 never accepted: %v", contract)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if contract["escrow"] != "0.000000" || cash(t, dyke) != levee.Units(100) {
		t.Fatalf("after completion: %v", contract)
	}
	if _, mk := anon.do("GET", "/api/v1/markets/"+markets[idA], ""); mk["status"] != "resolved" || mk["resolved_outcome"] != 0.0 {
		t.Fatalf("winning market: %v", mk)
	}
	if st, r := anon.do("GET", "/api/v1/ledger/verify", ""); st != 200 || r["ok"] != true {
		t.Fatalf("ledger verify: %d %v", st, r)
	}
	// The public census counts the tender and lists the completed contract.
	_, census := anon.do("GET", "/api/v1/census", "")
	ct, _ := census["contracting"].(map[string]any)
	contracts, _ := ct["contracts"].([]any)
	if ct == nil || ct["tenders_by_status"].(map[string]any)["awarded"] != 1.0 || len(contracts) != 1 ||
		contracts[0].(map[string]any)["status"] != "completed" || ct["committed_in_escrow"] != "0.000000" ||
		len(ct["contractor_track_records"].([]any)) != 1 {
		t.Fatalf("census contracting: %v", ct)
	}
}
