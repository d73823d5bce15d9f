package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"levee"
	"levee/ledger"
)

// jurorPool makes n residents of district with cash, keyed by pseudonym
// (the name draws and tallies know them by).
func jurorPool(t *testing.T, m *Main, prefix, district string, n int) map[string]*client {
	t.Helper()
	admin := newClient(t, m, testAdminToken)
	out := map[string]*client{}
	for i := range n {
		st, a := admin.do("POST", "/api/v1/admin/accounts", fmt.Sprintf(`{"name":"%s%d","roles":["resident"],"district":"%s","credit":"50"}`, prefix, i, district))
		if st != 201 {
			t.Fatalf("juror account: %d %v", st, a)
		}
		c := newClient(t, m, a["token"].(string))
		_, me := c.do("GET", "/api/v1/me", "")
		out[me["pseudonym"].(string)] = c
	}
	return out
}

// caseDoc fetches a case as c sees it.
func caseDoc(t *testing.T, c *client, id string) map[string]any {
	t.Helper()
	st, v := c.do("GET", "/api/v1/cases/"+id, "")
	if st != 200 {
		t.Fatalf("case %s: %d %v", id, st, v)
	}
	return v
}

// currentJurors lists the pseudonyms seated in the case's current round,
// in seat order: a case names no juror until its tally, so they are read
// from the published draw, whose last round is the current one.
func currentJurors(t *testing.T, c *client, v map[string]any) []string {
	t.Helper()
	st, d := c.do("GET", "/api/v1/cases/"+v["id"].(string)+"/draw", "")
	if st != 200 {
		t.Fatalf("draw: %d %v", st, d)
	}
	draws := d["draws"].([]any)
	last := draws[len(draws)-1].(map[string]any)
	seats := last["seats"].([]any)
	k := int(seats[len(seats)-1].(float64))
	var out []string
	for _, j := range last["jurors"].([]any) {
		out = append(out, j.(string))
	}
	return out[len(out)-k:]
}

func commitment(verdict, salt string) string {
	h := sha256.Sum256([]byte(verdict + ":" + salt))
	return hex.EncodeToString(h[:])
}

// skipPast moves the clock just past the RFC 3339 time in v[key] (or in
// the current round's key).
func skipPast(t *testing.T, clk *testClock, v map[string]any, key string) {
	t.Helper()
	s, ok := v[key].(string)
	if !ok {
		round := v["round"].(float64)
		for _, r := range v["rounds"].([]any) {
			if r := r.(map[string]any); r["round"].(float64) == round {
				s, _ = r[key].(string)
			}
		}
	}
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s: %q: %v", key, s, err)
	}
	if d := at.Sub(clk.Now()); d > 0 {
		clk.Skip(d + time.Second)
	}
}

// vote has every juror of the current round commit and reveal votes[i] (in
// seat order; "" abstains), then moves past the reveal period.
func vote(t *testing.T, clk *testClock, anon *client, pool map[string]*client, caseID string, votes ...string) map[string]any {
	t.Helper()
	v := caseDoc(t, anon, caseID)
	jurors := currentJurors(t, anon, v)
	if len(votes) != len(jurors) {
		t.Fatalf("%d votes for %d jurors", len(votes), len(jurors))
	}
	salts := map[string]string{}
	for i, j := range jurors {
		if votes[i] == "" {
			continue
		}
		salts[j] = fmt.Sprintf("salt-%s-%d-%d", caseID, i, time.Now().UnixNano())
		if st, r := pool[j].do("POST", "/api/v1/cases/"+caseID+"/commit", `{"commitment":"`+commitment(votes[i], salts[j])+`"}`); st != 200 {
			t.Fatalf("commit by %s: %d %v", j, st, r)
		}
	}
	if v["status"] == "evidence" {
		skipPast(t, clk, v, "evidence_until")
	}
	skipPast(t, clk, v, "commit_until")
	for i, j := range jurors {
		if votes[i] == "" {
			continue
		}
		if st, r := pool[j].do("POST", "/api/v1/cases/"+caseID+"/reveal", `{"verdict":"`+votes[i]+`","salt":"`+salts[j]+`"}`); st != 200 {
			t.Fatalf("reveal by %s: %d %v", j, st, r)
		}
	}
	skipPast(t, clk, v, "reveal_until")
	return caseDoc(t, pool[jurors[0]], caseID)
}

// recomputeDraw is an independent implementation of docs/juries.md for one
// unstratified draw: it checks pool_hash and seed and returns the jurors.
func recomputeDraw(t *testing.T, caseID string, d map[string]any) []string {
	t.Helper()
	var pool []string
	for _, p := range d["pool"].([]any) {
		pool = append(pool, p.(string))
	}
	if !sort.StringsAreSorted(pool) {
		t.Fatalf("pool not in byte order: %v", pool)
	}
	ph := sha256.Sum256([]byte(strings.Join(pool, "\n")))
	if hex.EncodeToString(ph[:]) != d["pool_hash"] {
		t.Fatalf("pool_hash %v, recomputed %x", d["pool_hash"], ph)
	}
	beacon, _ := hex.DecodeString(d["beacon"].(string))
	seed := sha256.Sum256(append(append(ph[:], caseID...), beacon...))
	if hex.EncodeToString(seed[:]) != d["seed"] {
		t.Fatalf("seed %v, recomputed %x", d["seed"], seed)
	}
	total := 0
	for _, k := range d["seats"].([]any) {
		total += int(k.(float64))
	}
	remaining := slices.Clone(pool)
	var out []string
	for i := uint32(0); len(out) < total; i++ {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], i)
		h := sha256.Sum256(append(seed[:], b[:]...))
		n := new(big.Int).SetBytes(h[:])
		k := int(n.Mod(n, big.NewInt(int64(len(remaining)))).Int64())
		out = append(out, remaining[k])
		remaining = append(remaining[:k], remaining[k+1:]...)
	}
	return out
}

func TestJuryResolvesDisputedMarket(t *testing.T) {
	m, _, clk := MustRunMainClock(t)
	tess, alice, bob := MustCity(t, m)
	pool := jurorPool(t, m, "juror", "north", 14)
	closes := clk.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	st, mk := tess.do("POST", "/api/v1/markets", `{"question":"Will the river crest above 4 m?","outcomes":["yes","no"],"liquidity":"100","closes_at":"`+closes+`","district":"north"}`)
	if st != 201 {
		t.Fatalf("market: %d %v", st, mk)
	}
	id := mk["id"].(string)
	base := "/api/v1/markets/" + id
	if st, r := alice.do("POST", base+"/orders", `{"outcome":0,"side":"buy","amount":"30"}`); st != 201 {
		t.Fatalf("order: %d %v", st, r)
	}
	if st, r := bob.do("POST", base+"/orders", `{"outcome":1,"side":"buy","amount":"20"}`); st != 201 {
		t.Fatalf("order: %d %v", st, r)
	}
	tess.do("POST", base+"/close", "")
	admin := newClient(t, m, testAdminToken)
	_, tomAcct := admin.do("POST", "/api/v1/admin/accounts", `{"name":"tom","roles":["treasurer"],"credit":"100"}`)
	tom := newClient(t, m, tomAcct["token"].(string))
	if st, r := tom.do("POST", base+"/proposal", `{"verdict":"no","evidence":"gauge 3.6 m at the crest"}`); st != 201 {
		t.Fatalf("propose: %d %v", st, r)
	}
	aliceBefore := cash(t, alice)
	_, pos := alice.do("GET", "/api/v1/me/positions", "")
	yesShares := levee.MustMicros(pos["positions"].([]any)[0].(map[string]any)["shares"].(string))
	// A resident of another district may not dispute; alice (a trader) may.
	admin.do("POST", "/api/v1/admin/districts", `{"name":"south"}`)
	_, far := admin.do("POST", "/api/v1/admin/accounts", `{"name":"farah","roles":["resident"],"district":"south","credit":"50"}`)
	if st, _ := newClient(t, m, far["token"].(string)).do("POST", base+"/dispute", `{"reason":"I think"}`); st != 403 {
		t.Fatalf("outsider disputed: %d", st)
	}
	st, kase := alice.do("POST", base+"/dispute", `{"reason":"the gauge was under water; the crest was 4.2 m"}`)
	if st != 201 || kase["status"] != "evidence" || kase["proposed"] != "no" || kase["bond"] != "10.000000" {
		t.Fatalf("dispute: %d %v", st, kase)
	}
	if got := cash(t, alice); got != aliceBefore-levee.Units(10) {
		t.Fatalf("bond not taken: %s -> %s", aliceBefore, got)
	}
	caseID := kase["id"].(string)
	if st, _ := bob.do("POST", base+"/dispute", `{"reason":"me too"}`); st != 409 {
		t.Fatalf("second dispute: %d", st)
	}

	// The draw is public and recomputable; traders, the proposer and the
	// disputer are not in the pool.
	st, d := anonymous(t, m).do("GET", "/api/v1/cases/"+caseID+"/draw", "")
	if st != 200 {
		t.Fatalf("draw: %d %v", st, d)
	}
	jurors := recomputeDraw(t, caseID, d)
	if got := fmt.Sprint(d["jurors"]); got != fmt.Sprint(jurors) || len(jurors) != 5 {
		t.Fatalf("jurors %v, recomputed %v", got, jurors)
	}
	for _, p := range d["pool"].([]any) {
		if _, ok := pool[p.(string)]; !ok {
			t.Fatalf("pool holds %v, who is not an eligible juror (a trader, party or outsider)", p)
		}
	}

	// Evidence: parties only, and hidden from the public until a verdict.
	if st, r := alice.do("POST", "/api/v1/cases/"+caseID+"/evidence", `{"body":"photo of the submerged gauge"}`); st != 201 {
		t.Fatalf("evidence: %d %v", st, r)
	}
	if st, _ := bob.do("POST", "/api/v1/cases/"+caseID+"/evidence", `{"body":"not a party"}`); st != 403 {
		t.Fatalf("non-party evidence: %d", st)
	}
	if v := caseDoc(t, anonymous(t, m), caseID); len(v["evidence"].([]any)) != 0 || v["evidence_hidden"] != true {
		t.Fatalf("evidence leaked: %v", v["evidence"])
	}
	if v := caseDoc(t, pool[jurors[0]], caseID); len(v["evidence"].([]any)) != 1 {
		t.Fatalf("juror cannot read evidence: %v", v["evidence"])
	}
	// A juror's own list says what to do.
	if st, mine := pool[jurors[0]].do("GET", "/api/v1/me/cases", ""); st != 200 || mine["cases"].([]any)[0].(map[string]any)["todo"] != "commit" {
		t.Fatalf("my cases: %d %v", st, mine)
	}
	// Non-jurors cannot vote; a malformed commitment is refused.
	if st, _ := bob.do("POST", "/api/v1/cases/"+caseID+"/commit", `{"commitment":"`+commitment("yes", "saltsalt")+`"}`); st != 403 {
		t.Fatalf("non-juror committed: %d", st)
	}
	if st, r := pool[jurors[0]].do("POST", "/api/v1/cases/"+caseID+"/commit", `{"commitment":"XYZ"}`); st != 400 || !hasField(r, "commitment") {
		t.Fatalf("bad commitment: %d %v", st, r)
	}

	// Round 1: four jurors vote "yes", one votes "no". A reveal that does
	// not match is refused; votes are secret until the tally.
	salts := map[string]string{}
	votes := []string{"yes", "yes", "yes", "no", "yes"}
	for i, j := range jurors {
		salts[j] = fmt.Sprintf("pepper-%d-abcdef", i)
		if st, r := pool[j].do("POST", "/api/v1/cases/"+caseID+"/commit", `{"commitment":"`+commitment(votes[i], salts[j])+`"}`); st != 200 {
			t.Fatalf("commit: %d %v", st, r)
		}
	}
	v := caseDoc(t, anonymous(t, m), caseID)
	skipPast(t, clk, v, "evidence_until")
	skipPast(t, clk, v, "commit_until")
	if st, r := pool[jurors[0]].do("POST", "/api/v1/cases/"+caseID+"/reveal", `{"verdict":"no","salt":"`+salts[jurors[0]]+`"}`); st != 400 || !hasField(r, "salt") {
		t.Fatalf("mismatched reveal: %d %v", st, r)
	}
	for i, j := range jurors {
		if st, r := pool[j].do("POST", "/api/v1/cases/"+caseID+"/reveal", `{"verdict":"`+votes[i]+`","salt":"`+salts[j]+`"}`); st != 200 {
			t.Fatalf("reveal: %d %v", st, r)
		}
	}
	v = caseDoc(t, anonymous(t, m), caseID)
	if strings.Contains(fmt.Sprint(v["rounds"]), "verdict:yes") {
		t.Fatalf("votes visible before the reveal period ended: %v", v["rounds"])
	}
	skipPast(t, clk, v, "reveal_until")
	v = caseDoc(t, anonymous(t, m), caseID)
	if v["status"] != "appealable" || v["verdict"] != "yes" || len(v["evidence"].([]any)) != 1 {
		t.Fatalf("after round 1: %v", v)
	}
	for _, j := range jurors {
		if got := cash(t, pool[j]); got != levee.Units(51) {
			t.Fatalf("juror %s paid %s, want 51", j, got)
		}
	}

	// The record shows service: seats, reveals, no-shows, fees.
	if _, rec := anonymous(t, m).do("GET", "/api/v1/jurors/"+jurors[0]+"/record", ""); rec["seats"] != 1.0 || rec["revealed"] != 1.0 || rec["no_shows"] != 0.0 || rec["paid"] != "1.000000" {
		t.Fatalf("juror record: %v", rec)
	}

	// tom (the proposer) appeals: a jury of 11, none of the first five.
	if st, r := bob.do("POST", "/api/v1/cases/"+caseID+"/appeal", `{"reason":"no"}`); st != 403 {
		t.Fatalf("non-party appealed: %d %v", st, r)
	}
	if st, r := tom.do("POST", "/api/v1/cases/"+caseID+"/appeal", `{"reason":"the crest gauge is calibrated"}`); st != 200 || r["status"] != "commit" {
		t.Fatalf("appeal: %d %v", st, r)
	}
	if got := cash(t, tom); got != levee.Units(80) {
		t.Fatalf("appeal bond not taken: tom has %s", got)
	}
	_, d = anonymous(t, m).do("GET", "/api/v1/cases/"+caseID+"/draw", "")
	appeal := d["draws"].([]any)[1].(map[string]any)
	second := recomputeDraw(t, caseID, appeal)
	if len(second) != 9 { // only 9 eligible residents are left of the 14
		t.Fatalf("appeal jury: %v", second)
	}
	for _, j := range second {
		if slices.Contains(jurors, j) {
			t.Fatalf("appeal juror %s sat in round 1", j)
		}
	}
	// The appeal jury agrees with the first: the verdict stands.
	v = vote(t, clk, anonymous(t, m), pool, caseID, "yes", "yes", "yes", "yes", "yes", "no", "no", "yes", "")
	if v["status"] != "appealable" || v["verdict"] != "yes" || v["appeals"] != 1.0 {
		t.Fatalf("after the appeal: %v", v)
	}
	// The abstaining appeal juror is a no-show on its record.
	abstainer := recomputeDraw(t, caseID, appeal)[8]
	if _, rec := anonymous(t, m).do("GET", "/api/v1/jurors/"+abstainer+"/record", ""); rec["no_shows"] != 1.0 || rec["paid"] != "0.000000" {
		t.Fatalf("no-show's record: %v", rec)
	}
	collateral, err := ledger.Balance(context.Background(), m.DB, "market:"+id+":collateral")
	if err != nil {
		t.Fatal(err)
	}
	skipPast(t, clk, v, "appeal_until")
	v = caseDoc(t, anonymous(t, m), caseID)
	if v["status"] != "settled" {
		t.Fatalf("not settled: %v", v)
	}
	_, mk = anonymous(t, m).do("GET", base, "")
	if mk["status"] != "resolved" || mk["resolved_outcome"] != 0.0 {
		t.Fatalf("market after the verdict: %v", mk)
	}
	// alice held "yes" shares, paid 1 each, and her bond came back (the
	// verdict overturned the proposal). tom's appeal failed: his bond paid
	// the appeal jurors.
	if got := cash(t, alice); got != aliceBefore+yesShares {
		t.Fatalf("alice: %s before, %s after, %s shares", aliceBefore, got, yesShares)
	}
	if got := cash(t, tom); got != levee.Units(80) {
		t.Fatalf("tom's failed appeal bond came back: %s", got)
	}
	// The settlement's ledger entry: the winners are paid exactly the
	// collateral minus what returns to the treasury, to the micro-unit.
	_, page := anonymous(t, m).do("GET", "/api/v1/ledger/entries?limit=1000", "")
	var paidOut, returned, drawn levee.Micros
	for _, e := range page["entries"].([]any) {
		e := e.(map[string]any)
		if e["kind"] != "market_resolution" || e["ref"] != "market:"+id {
			continue
		}
		for _, p := range e["postings"].([]any) {
			p := p.(map[string]any)
			amt := levee.MustMicros(p["amount"].(string))
			switch acct := p["account"].(string); {
			case acct == "treasury":
				returned += amt
			case acct == "market:"+id+":collateral":
				drawn -= amt
			default:
				paidOut += amt
			}
		}
	}
	if drawn != collateral || paidOut != yesShares || paidOut+returned != collateral {
		t.Fatalf("collateral %s: drawn %s, paid %s (alice's shares %s), returned %s", collateral, drawn, paidOut, yesShares, returned)
	}
	if st, r := anonymous(t, m).do("GET", "/api/v1/ledger/verify", ""); st != 200 || r["ok"] != true {
		t.Fatalf("ledger: %v", r)
	}
}
