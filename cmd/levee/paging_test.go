package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"levee/accounts"
)

// TestListsArePagedOverHTTP pages the public lists that grow with the
// city's history as GET /api/v1/tenders does: ?before=<id>&limit=<n>,
// newest first, 50 by default and at most 200, the next page before= the
// last id; a bad cursor or limit is a 400 naming it; a cursor past int4 is
// just a cursor.
func TestListsArePagedOverHTTP(t *testing.T) {
	m, _ := MustRunMain(t)
	ctx := context.Background()
	anon := anonymous(t, m)
	if _, err := m.Accounts.CreateDistrict(ctx, 0, "north"); err != nil {
		t.Fatal(err)
	}
	sam, _, err := m.Accounts.CreateAccount(ctx, 0, accounts.NewAccount{Name: "sam", Roles: []string{accounts.RoleResident, accounts.RoleSteward}, District: "north"})
	if err != nil {
		t.Fatal(err)
	}
	// Each seed inserts five rows, oldest first; the 2nd and 4th have the
	// status other, the rest status. Nothing in them is due, so no
	// background pass changes them under the test.
	for _, ep := range []struct {
		path, key     string
		status, other string // "" for a list without a status filter
		seed          string // $1: sam's id; RETURNING id
	}{
		{"/api/v1/cases", "cases", "evidence", "settled", `WITH c AS (
			INSERT INTO cases (subject, kind, question, verdicts, district_ids, default_verdict, jury_size, supermajority, min_reveals, juror_fee,
				appeal_bond, max_appeals, stratify, outside_share, commit_us, reveal_us, appeal_us, status, evidence_until, opened_at, settled_at, opened_by)
			SELECT 'act:' || g, 'act', 'Was the pump run?', '{accept,reject}', '{}', 'accept', 3, 0.6, 2, 1, 5, 1, false, 0, 3600000000, 3600000000,
				3600000000, CASE WHEN g % 2 = 0 THEN 'settled' ELSE 'evidence' END, now() + interval '1 year', now(),
				CASE WHEN g % 2 = 0 THEN now() END, $1
			FROM generate_series(1, 5) g ORDER BY g RETURNING id)
			INSERT INTO case_rounds (case_id, round, draw_n, why, seats, commit_until, reveal_until)
			SELECT id, 0, 0, 'first', 3, now() + interval '1 year', now() + interval '1 year' FROM c RETURNING case_id AS id`},
		{"/api/v1/emergencies", "emergencies", "", "", `INSERT INTO emergencies (steward_id, reason, district_ids, cap, declared_at, ends_at, ended_at,
				end_reason, reviews_opened)
			SELECT $1, 'storm ' || g, ARRAY(SELECT id FROM districts), 100, d, d + interval '1 day', d + interval '1 day', 'expired', true
			FROM generate_series(1, 5) g, LATERAL (SELECT timestamptz '2026-01-01' + g * interval '1 week' AS d) x ORDER BY g RETURNING id`},
		{"/api/v1/quorum/proposals", "proposals", "open", "rejected", `INSERT INTO quorum_proposals (kind, payload, reason, proposed_by, created_at,
				closes_at, status, decided_at)
			SELECT 'charter', '{"petition_threshold":3}', 'smaller city', $1, now(), now() + interval '1 year',
				CASE WHEN g % 2 = 0 THEN 'rejected' ELSE 'open' END, CASE WHEN g % 2 = 0 THEN now() END
			FROM generate_series(1, 5) g ORDER BY g RETURNING id`},
		{"/api/v1/qf/rounds", "rounds", "", "", `INSERT INTO qf_rounds (title, pool, opens_at, closes_at, created_by)
			SELECT 'Round ' || g, 10, now(), now() + interval '1 year', $1 FROM generate_series(1, 5) g ORDER BY g RETURNING id`},
	} {
		t.Run(strings.TrimPrefix(ep.path, "/api/v1/"), func(t *testing.T) {
			// ids lists the answer's ids, newest first as given.
			list := func(query string, wantStatus int, field string) []string {
				t.Helper()
				st, body := anon.do("GET", ep.path+query, "")
				if st != wantStatus {
					t.Fatalf("GET %s%s: %d %v, want %d", ep.path, query, st, body, wantStatus)
				}
				if wantStatus != 200 {
					if code, f := errField(body); code != "invalid" || f != field {
						t.Fatalf("GET %s%s: %v, want invalid on %q", ep.path, query, body, field)
					}
					return nil
				}
				items, ok := body[ep.key].([]any)
				if !ok && body[ep.key] != nil {
					t.Fatalf("GET %s%s: %q is %T", ep.path, query, ep.key, body[ep.key])
				}
				ids := []string{}
				for _, it := range items {
					ids = append(ids, it.(map[string]any)["id"].(string))
				}
				return ids
			}
			// On an empty list too, a cursor past int4 is a page, not a 500.
			if got := list("?before=3000000000", 200, ""); len(got) != 0 {
				t.Fatalf("an empty list before 3000000000: %v", got)
			}
			var seeded []int64
			if err := m.DB.SelectContext(ctx, &seeded, ep.seed, sam.ID); err != nil {
				t.Fatal(err)
			}
			slices.Sort(seeded)
			id := func(i int) string { return fmt.Sprint(seeded[i]) }
			newest := func(is ...int) []string {
				out := []string{}
				for _, i := range is {
					out = append(out, id(i))
				}
				return out
			}
			cases := []struct {
				name, query string
				status      int
				field       string
				want        []string
			}{
				{"all by default", "", 200, "", newest(4, 3, 2, 1, 0)},
				{"first page", "?limit=2", 200, "", newest(4, 3)},
				{"next page", "?before=" + id(3) + "&limit=2", 200, "", newest(2, 1)},
				{"last page", "?before=" + id(1) + "&limit=2", 200, "", newest(0)},
				{"past the last", "?before=" + id(0), 200, "", newest()},
				{"the largest page", "?limit=200", 200, "", newest(4, 3, 2, 1, 0)},
				{"before past int4", "?before=3000000000&limit=3", 200, "", newest(4, 3, 2)},
				{"limit over the maximum", "?limit=201", 400, "limit", nil},
				{"limit zero", "?limit=0", 400, "limit", nil},
				{"negative limit", "?limit=-1", 400, "limit", nil},
				{"negative before", "?before=-1", 400, "before", nil},
				{"malformed before", "?before=x7", 400, "before", nil},
				{"before with a sign", "?before=+7", 400, "before", nil},
				{"before past the cursor's range", "?before=9223372036854775808", 400, "before", nil},
			}
			if ep.status != "" {
				cases = append(cases, []struct {
					name, query string
					status      int
					field       string
					want        []string
				}{
					{"filtered, first page", "?status=" + ep.status + "&limit=2", 200, "", newest(4, 2)},
					{"filtered, last page", "?status=" + ep.status + "&before=" + id(2) + "&limit=2", 200, "", newest(0)},
					{"the other status, next page", "?status=" + ep.other + "&before=" + id(3), 200, "", newest(1)},
					{"filtered, before past int4", "?status=" + ep.other + "&before=3000000000", 200, "", newest(3, 1)},
					{"filtered, negative before", "?status=" + ep.status + "&before=-1", 400, "before", nil},
					{"unknown status", "?status=lost&limit=2", 400, "status", nil},
				}...)
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					if got := list(tc.query, tc.status, tc.field); tc.status == 200 && !slices.Equal(got, tc.want) {
						t.Fatalf("GET %s%s: ids %v, want %v", ep.path, tc.query, got, tc.want)
					}
				})
			}
		})
	}
}
