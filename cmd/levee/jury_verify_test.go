package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/accounts"
	"levee/ledger"
	"levee/pgtx"
	"levee/settlement"
)

// reviewOwner owns "act:<n>" subjects in this test: a review with fixed
// facts that nobody may dispute and whose verdict changes nothing else.
type reviewOwner struct {
	db    *sqlx.DB
	facts settlement.Facts
}

func (o *reviewOwner) Facts(ctx context.Context, q sqlx.QueryerContext, ref string) (settlement.Facts, error) {
	return o.facts, nil
}

func (o *reviewOwner) Hold(ctx context.Context, tx *sqlx.Tx, who *accounts.Principal, ref string) (string, error) {
	return "", levee.Errorf(levee.ECONFLICT, "reviews are not disputed")
}

func (o *reviewOwner) Settle(ctx context.Context, ref, verdict string, mark func(ctx context.Context, tx *sqlx.Tx) error) error {
	return pgtx.Run(ctx, o.db, func(tx *sqlx.Tx) error { return mark(ctx, tx) })
}

// juryVerifyOut runs `levee jury verify` with args and returns its exit
// code and output.
func juryVerifyOut(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code, err := run(context.Background(), append([]string{"jury", "verify"}, args...), &out, io.Discard)
	if err != nil {
		t.Fatalf("jury verify %v: %v", args, err)
	}
	return code, out.String()
}

func TestJuryVerifyCommand(t *testing.T) {
	ctx := context.Background()
	m, url, clk := MustRunMainClock(t)
	_, alice, bob := MustCity(t, m)
	admin := newClient(t, m, testAdminToken)
	admin.do("POST", "/api/v1/admin/districts", `{"name":"south"}`)
	pool := jurorPool(t, m, "n", "north", 8)
	for id, c := range jurorPool(t, m, "s", "south", 6) {
		pool[id] = c
	}
	_, me := bob.do("GET", "/api/v1/me", "")
	pool[me["pseudonym"].(string)] = bob
	_, me = alice.do("GET", "/api/v1/me", "")
	aliceID := mustAtoi(t, me["id"].(string))
	var districts []int64
	if err := m.DB.Select(&districts, `SELECT id FROM districts WHERE name IN ('north', 'south') ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	// An act under review: city districts north and south, stratified by
	// district (the rules of "act"), alice a party.
	m.Settlement.SetOwner("act", &reviewOwner{db: m.DB, facts: settlement.Facts{
		Kind: "act", Question: "Was closing the north sluice justified?", Verdicts: []string{"accept", "reject"}, Default: "accept",
		Districts: districts, Parties: map[int64]string{aliceID: "steward"},
	}})
	c, err := m.Settlement.OpenReview(ctx, "act:1", "the emergency ended")
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(c.ID, 10)
	t.Setenv("DATABASE_URL", url)
	data := t.TempDir()

	// From the database and from the running server.
	for _, args := range [][]string{{"--data", data, id}, {"--url", "http://" + m.Addr(), id}} {
		code, out := juryVerifyOut(t, args...)
		if code != 0 || !strings.Contains(out, "jury OK: case "+id+", 1 draws, 5 jurors recomputed") {
			t.Fatalf("jury verify %v: %d\n%s", args, code, out)
		}
	}
	rep, err := m.Settlement.Draw(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Strata) != 2 || rep.Strata[0].Key != "district:"+strconv.FormatInt(districts[0], 10) {
		t.Fatalf("strata: %+v", rep.Strata)
	}

	// Tampering with what is stored is reported, each time as the first
	// thing that no longer recomputes.
	// The draw names pseudonyms; the tampering below is with accounts.
	owners, err := ledger.PseudonymOwners(ctx, m.DB, rep.Pool)
	if err != nil {
		t.Fatal(err)
	}
	var unseated int64
	for _, p := range rep.Pool {
		if !slices.Contains(rep.Jurors, p) {
			unseated = owners[p]
			break
		}
	}
	var savedPool pq.Int64Array
	if err := m.DB.Get(&savedPool, `SELECT pool FROM case_draws WHERE case_id = $1 AND n = 0`, c.ID); err != nil {
		t.Fatal(err)
	}
	seat0 := owners[rep.Jurors[0]]
	for _, tc := range []struct {
		name, tamper, restore string
		args                  []any
		want                  string
	}{
		{"a juror swapped", `UPDATE jurors SET account_id = $2 WHERE case_id = $1 AND account_id = $3`,
			`UPDATE jurors SET account_id = $3 WHERE case_id = $1 AND account_id = $2`, []any{c.ID, unseated, seat0}, "jurors: seat 0"},
		{"someone left out of the pool", `UPDATE case_draws SET pool = pool[2:] WHERE case_id = $1 AND n = 0`,
			`UPDATE case_draws SET pool = $2 WHERE case_id = $1 AND n = 0`, []any{c.ID, savedPool}, "pool: the strata are not exactly the pool"},
		{"the pool reordered", `UPDATE case_draws SET pool = (SELECT array_agg(x ORDER BY o DESC) FROM unnest(pool) WITH ORDINALITY AS u(x, o)) WHERE case_id = $1 AND n = 0`,
			`UPDATE case_draws SET pool = $2 WHERE case_id = $1 AND n = 0`, []any{c.ID, savedPool}, "pool: not in byte order"},
		{"another beacon", `UPDATE case_draws SET beacon_seq = beacon_seq - 1 WHERE case_id = $1 AND n = 0`,
			`UPDATE case_draws SET beacon_seq = beacon_seq + 1 WHERE case_id = $1 AND n = 0`, []any{c.ID}, "beacon: ledger entry"},
		{"another seed", `UPDATE case_draws SET seed = sha256(seed) WHERE case_id = $1 AND n = 0`,
			`UPDATE case_draws SET seed = $2 WHERE case_id = $1 AND n = 0`, []any{c.ID, mustHexBytes(t, rep.Seed)}, "seed: published"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exec := func(q string) {
				n := len(tc.args)
				for n > 1 && !strings.Contains(q, "$"+strconv.Itoa(n)) {
					n--
				}
				if _, err := m.DB.Exec(q, tc.args[:n]...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			exec(tc.tamper)
			defer exec(tc.restore)
			for _, args := range [][]string{{"--data", data, id}, {"--url", "http://" + m.Addr(), id}} {
				code, out := juryVerifyOut(t, args...)
				if code != 1 || !strings.Contains(out, "jury MISMATCH in case "+id+", draw 0: "+tc.want) {
					t.Fatalf("jury verify %v after tampering: %d\n%s", args, code, out)
				}
			}
		})
	}
	if code, out := juryVerifyOut(t, "--data", data, id); code != 0 {
		t.Fatalf("after restoring: %d\n%s", code, out)
	}

	// The jury decides; alice appeals: a second draw, also recomputed.
	v := vote(t, clk, anonymous(t, m), pool, id, "accept", "accept", "accept", "reject", "accept")
	if v["status"] != "appealable" {
		t.Fatalf("after the vote: %v", v["status"])
	}
	if st, r := alice.do("POST", "/api/v1/cases/"+id+"/appeal", `{"reason":"the south was not heard"}`); st != 200 {
		t.Fatalf("appeal: %d %v", st, r)
	}
	code, out := juryVerifyOut(t, "--url", "http://"+m.Addr(), id)
	if code != 0 || !strings.Contains(out, "jury OK: case "+id+", 2 draws, 15 jurors recomputed") {
		t.Fatalf("after the appeal: %d\n%s", code, out)
	}
	t.Logf("levee jury verify %s:\n%s", id, out)

	// Usage errors.
	for _, args := range [][]string{{}, {"twelve"}, {"1", "2"}} {
		if code, _ := run(ctx, append([]string{"jury", "verify", "--data", data}, args...), io.Discard, io.Discard); code != 2 {
			t.Errorf("jury verify %v: exit %d, want 2", args, code)
		}
	}
	if code, _ := run(ctx, []string{"jury"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("levee jury: exit %d, want 2", code)
	}
	// A case that does not exist.
	if code, err := run(ctx, []string{"jury", "verify", "--data", data, "9999"}, io.Discard, io.Discard); code != 1 || levee.ErrorCode(err) != levee.ENOTFOUND {
		t.Errorf("unknown case: %d %v", code, err)
	}
}

func mustHexBytes(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
