package crisis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/accounts"
	"levee/crisis"
	"levee/migrations/dbtest"
)

// node is a fresh database with districts north and south, a steward sam
// named by a founded charter, a resident, two neighbours' delegates and the
// crisis service on a fixed clock.
type node struct {
	db       *sqlx.DB
	svc      *crisis.Service
	accounts *accounts.Service
	steward  *accounts.Principal
	resident *accounts.Principal
}

// MustNode founds a charter with a spending cap of 5000, emergencies of at
// most the charter's default length, and a quorum of 2.
func MustNode(t *testing.T) *node {
	t.Helper()
	ctx := context.Background()
	db := dbtest.New(t)
	n := &node{db: db, accounts: accounts.New(db)}
	for _, d := range []string{"north", "south"} {
		if _, err := n.accounts.CreateDistrict(ctx, 0, d); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(name, district string, roles ...string) *accounts.Principal {
		a, _, err := n.accounts.CreateAccount(ctx, 0, accounts.NewAccount{Name: name, Roles: roles, District: district})
		if err != nil {
			t.Fatal(err)
		}
		p, err := n.accounts.Principal(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	n.steward = mk("sam", "north", accounts.RoleResident, accounts.RoleSteward)
	n.resident = mk("alice", "north", accounts.RoleResident)
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	n.svc = crisis.New(db, crisis.Options{Clock: func() time.Time { return now }})
	districts, stewards := []string{"north", "south"}, []string{"sam"}
	neighbours := []crisis.NeighbourSpec{{Name: "delta", URL: "http://127.0.0.1:1", PublicKey: strings.Repeat("d1", 32)},
		{Name: "ridge", URL: "http://127.0.0.1:2", PublicKey: strings.Repeat("e2", 32)}}
	quorum, spendingCap := 2, levee.Units(5000)
	if _, err := n.svc.Found(ctx, 0, crisis.CharterChange{Districts: &districts, Stewards: &stewards, Neighbours: &neighbours,
		Quorum: &quorum, SpendingCap: &spendingCap}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCharterIsFoundedOnce(t *testing.T) {
	n := MustNode(t)
	quorum := 1
	_, err := n.svc.Found(context.Background(), 0, crisis.CharterChange{Quorum: &quorum})
	if code := levee.ErrorCode(err); code != levee.ECONFLICT {
		t.Fatalf("second founding: %v (code %s), want %s", err, code, levee.ECONFLICT)
	}
	c, err := n.svc.Charter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Quorum != 2 || len(c.Districts) != 2 || len(c.Stewards) != 1 || c.Stewards[0].Name != "sam" || len(c.Neighbours) != 2 ||
		c.Neighbours[0].Fingerprint == "" || c.Neighbours[0].URL != "http://127.0.0.1:1" {
		t.Fatalf("charter: %+v", c)
	}
}

// TestNeighboursAreNodes: a charter names neighbour nodes by URL and
// Ed25519 key; anything else is refused, naming the field.
func TestNeighboursAreNodes(t *testing.T) {
	ctx := context.Background()
	svc := crisis.New(dbtest.New(t), crisis.Options{})
	key := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name  string
		n     crisis.NeighbourSpec
		field string
	}{
		{"no url", crisis.NeighbourSpec{Name: "x", PublicKey: key}, "neighbours[0].url"},
		{"not http", crisis.NeighbourSpec{Name: "x", URL: "ftp://x.example", PublicKey: key}, "neighbours[0].url"},
		{"a short key", crisis.NeighbourSpec{Name: "x", URL: "http://127.0.0.1:1", PublicKey: "abcd"}, "neighbours[0].public_key"},
		{"no key, node unreachable", crisis.NeighbourSpec{Name: "x", URL: "http://127.0.0.1:1"}, "neighbours[0].public_key"},
		{"no name", crisis.NeighbourSpec{URL: "http://127.0.0.1:1", PublicKey: key}, "neighbours[0].name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := []crisis.NeighbourSpec{tc.n}
			_, err := svc.Found(ctx, 0, crisis.CharterChange{Neighbours: &ns})
			if levee.ErrorCode(err) != levee.EINVALID || levee.ErrorField(err) != tc.field {
				t.Fatalf("%v (field %q), want invalid %s", err, levee.ErrorField(err), tc.field)
			}
		})
	}
	ns := []crisis.NeighbourSpec{{Name: "x", URL: "http://127.0.0.1:1", PublicKey: key}}
	quorum := 1
	c, err := svc.Found(ctx, 0, crisis.CharterChange{Neighbours: &ns, Quorum: &quorum})
	if err != nil || len(c.Neighbours) != 1 || c.Neighbours[0].PublicKey != key || c.Neighbours[0].Fingerprint == "" || c.NeighbourSilence != "30d" {
		t.Fatalf("found: %+v %v", c, err)
	}
}

func TestEffectiveQuorum(t *testing.T) {
	for _, tc := range []struct{ quorum, active, want int }{{2, 3, 2}, {2, 1, 1}, {2, 0, 1}, {3, 3, 3}, {1, 5, 1}} {
		if got := crisis.EffectiveQuorum(tc.quorum, tc.active); got != tc.want {
			t.Errorf("quorum %d over %d active neighbours: %d, want %d", tc.quorum, tc.active, got, tc.want)
		}
	}
}

// TestDeclarationStaysWithinTheCharter checks each limit the charter puts on
// declaring an emergency, then declares one and refuses a second while it
// is active.
func TestDeclarationStaysWithinTheCharter(t *testing.T) {
	n := MustNode(t)
	ctx := context.Background()
	ok := crisis.Declaration{Reason: "Storm surge", Districts: []string{"north"}, Duration: "72h", Cap: levee.Units(1000)}
	for _, tc := range []struct {
		name  string
		who   *accounts.Principal
		edit  func(d *crisis.Declaration)
		code  string
		field string
	}{
		{"not a steward", n.resident, func(d *crisis.Declaration) {}, levee.EFORBIDDEN, ""},
		{"no reason", n.steward, func(d *crisis.Declaration) { d.Reason = "" }, levee.EINVALID, "reason"},
		{"too long", n.steward, func(d *crisis.Declaration) { d.Duration = "1000d" }, levee.EINVALID, "duration"},
		{"cap over the charter's", n.steward, func(d *crisis.Declaration) { d.Cap = levee.Units(5001) }, levee.EINVALID, "cap"},
		{"no cap", n.steward, func(d *crisis.Declaration) { d.Cap = 0 }, levee.EINVALID, "cap"},
		{"no districts", n.steward, func(d *crisis.Declaration) { d.Districts = nil }, levee.EINVALID, "districts"},
		{"unknown district", n.steward, func(d *crisis.Declaration) { d.Districts = []string{"atlantis"} }, levee.EINVALID, "districts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := ok
			tc.edit(&d)
			_, err := n.svc.Declare(ctx, tc.who, d)
			if levee.ErrorCode(err) != tc.code || tc.field != "" && levee.ErrorField(err) != tc.field {
				t.Fatalf("Declare: %v (code %s, field %q), want %s on %q", err, levee.ErrorCode(err), levee.ErrorField(err), tc.code, tc.field)
			}
		})
	}
	e, err := n.svc.Declare(ctx, n.steward, ok)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Active || e.StewardName != "sam" || len(e.Districts) != 1 || e.Districts[0].Name != "north" || e.Cap != levee.Units(1000) {
		t.Fatalf("emergency: %+v", e)
	}
	if _, err := n.svc.Declare(ctx, n.steward, ok); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("a second emergency: %v, want %s", err, levee.ECONFLICT)
	}
	cur, err := n.svc.Current(ctx)
	if err != nil || cur == nil || cur.ID != e.ID {
		t.Fatalf("current: %+v, %v", cur, err)
	}
}

// pageCase is one page asked of a list newest first: status "" for all.
type pageCase struct {
	name   string
	status string
	before int64
	limit  int
	want   []int64
}

// pageCases are the pages every list newest first answers over ids (oldest
// first, at least three): the first, the next by the cursor, the last, past
// the end, a limit under one, and a cursor past int4 (3000000000 was a 500
// once, when the parameter was typed integer).
func pageCases(ids []int64) []pageCase {
	n := len(ids)
	newest := slices.Clone(ids)
	slices.Reverse(newest)
	return []pageCase{
		{"first page", "", 0, 2, newest[:2]},
		{"next page", "", ids[n-2], n - 3, newest[2 : n-1]},
		{"last page", "", ids[1], 2, ids[:1]},
		{"past the last", "", ids[0], 2, nil},
		{"a limit under one is one", "", 0, 0, newest[:1]},
		{"before past int4", "", 3_000_000_000, n, newest},
	}
}

// TestEmergenciesArePaged lists past emergencies a page at a time, newest
// first.
func TestEmergenciesArePaged(t *testing.T) {
	n := MustNode(t)
	ctx := context.Background()
	// Only one emergency is ever active: these ended, one a week, reviewed.
	seed := func(count int) []int64 {
		t.Helper()
		var ids []int64
		if err := n.db.SelectContext(ctx, &ids, `INSERT INTO emergencies (steward_id, reason, district_ids, cap, declared_at, ends_at, ended_at, end_reason, reviews_opened)
			SELECT $1, 'storm ' || g, ARRAY(SELECT id FROM districts ORDER BY id LIMIT 1), 100, d, d + interval '1 day', d + interval '1 day', 'expired', true
			FROM generate_series(1, $2) g, LATERAL (SELECT timestamptz '2026-01-01' + g * interval '1 week' AS d) x
			RETURNING id`, n.steward.AccountID, count); err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		return ids
	}
	for _, tc := range pageCases(seed(5)) {
		t.Run(tc.name, func(t *testing.T) {
			es, err := n.svc.Emergencies(ctx, tc.before, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, e := range es {
				got = append(got, e.ID)
				if e.StewardName != "sam" || e.Active {
					t.Errorf("emergency %d: steward %q, active %v", e.ID, e.StewardName, e.Active)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("ids %v, want %v", got, tc.want)
			}
		})
	}
	more := seed(crisis.MaxEmergencyPage)
	es, err := n.svc.Emergencies(ctx, 0, crisis.MaxEmergencyPage+1)
	if err != nil || len(es) != crisis.MaxEmergencyPage || es[0].ID != more[len(more)-1] {
		t.Fatalf("a limit over the maximum: %d emergencies, %v; want the %d newest", len(es), err, crisis.MaxEmergencyPage)
	}
}

// TestProposalsArePaged lists the quorum's proposals a page at a time,
// newest first, with and without the status filter.
func TestProposalsArePaged(t *testing.T) {
	n := MustNode(t)
	ctx := context.Background()
	var ids []int64
	for i := range 5 {
		p, err := n.svc.Propose(ctx, n.steward, crisis.KindCharter, json.RawMessage(fmt.Sprintf(`{"petition_threshold":%d}`, i+3)), "smaller city")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	// The 2nd and 4th were rejected: the filter pages over the others' gaps.
	n.db.MustExec(`UPDATE quorum_proposals SET status = 'rejected', decided_at = created_at WHERE id = ANY($1)`, pq.Array([]int64{ids[1], ids[3]}))
	cases := append(pageCases(ids),
		pageCase{"open, first page", "open", 0, 2, []int64{ids[4], ids[2]}},
		pageCase{"open, last page", "open", ids[2], 2, []int64{ids[0]}},
		pageCase{"rejected, before one", "rejected", ids[3], 2, []int64{ids[1]}},
		pageCase{"rejected, before past int4", "rejected", 3_000_000_000, 10, []int64{ids[3], ids[1]}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := n.svc.Proposals(ctx, tc.status, tc.before, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, p := range ps {
				got = append(got, p.ID)
				if tc.status != "" && p.Status != tc.status {
					t.Errorf("proposal %d is %s in a list of %s", p.ID, p.Status, tc.status)
				}
				if len(p.Votes) != 2 {
					t.Errorf("proposal %d: votes %+v, want a line per neighbour", p.ID, p.Votes)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("ids %v, want %v", got, tc.want)
			}
		})
	}
	// A page's votes are filled for all its proposals at once: each vote
	// must land on its own proposal and neighbour.
	vote := func(proposal int64, neighbour string, approve bool) {
		n.db.MustExec(`INSERT INTO quorum_votes (proposal_id, neighbour_id, delegate_id, approve, at)
			SELECT $1, id, $2, $3, now() FROM neighbours WHERE name = $4`, proposal, n.steward.AccountID, approve, neighbour)
	}
	vote(ids[2], "delta", true)
	vote(ids[0], "ridge", false)
	ps, err := n.svc.Proposals(ctx, "", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		var statuses []string
		for _, v := range p.Votes {
			statuses = append(statuses, v.Neighbour+" "+v.Status)
		}
		want := []string{"delta has not answered", "ridge has not answered"}
		switch p.ID {
		case ids[2]:
			want[0] = "delta approved"
		case ids[0]:
			want[1] = "ridge rejected"
		}
		if !slices.Equal(statuses, want) || p.Approved != strings.Count(fmt.Sprint(want), "approved") || p.Rejected != strings.Count(fmt.Sprint(want), "rejected") {
			t.Errorf("proposal %d: votes %q, %d approved, %d rejected; want %q", p.ID, statuses, p.Approved, p.Rejected, want)
		}
	}
	n.db.MustExec(`INSERT INTO quorum_proposals (kind, payload, reason, proposed_by, created_at, closes_at, status, decided_at)
		SELECT kind, payload, reason, proposed_by, created_at, closes_at, 'expired', closes_at FROM quorum_proposals, generate_series(1, $2)
		WHERE id = $1`, ids[0], crisis.MaxProposalPage)
	ps, err = n.svc.Proposals(ctx, "", 0, crisis.MaxProposalPage+1)
	if err != nil || len(ps) != crisis.MaxProposalPage {
		t.Fatalf("a limit over the maximum: %d proposals, %v; want %d", len(ps), err, crisis.MaxProposalPage)
	}
}
