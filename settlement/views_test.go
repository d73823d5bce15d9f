package settlement_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/lib/pq"

	"levee/settlement"
)

// TestCasesArePaged lists cases a page at a time, newest first, with and
// without the status filter; the cursor is an id, however large.
func TestCasesArePaged(t *testing.T) {
	flat := baseRules()
	flat.JurySize, flat.MinReveals = 3, 2
	w := MustWorld(t, []int{12}, baseRules(), flat)
	var ids []int64 // oldest first
	for i := range 5 {
		subject := fmt.Sprintf("flat:%d", i+1)
		w.MustSubject(subject, settlement.Facts{Kind: "flat", Question: "Was the culvert cleared?"})
		c, err := w.svc.OpenReview(w.ctx, subject, "a review Levee owes")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	// The 2nd and 4th are final: the filter pages over the others' gaps.
	w.db.MustExec(`UPDATE cases SET status = 'final' WHERE id = ANY($1)`, pq.Array([]int64{ids[1], ids[3]}))
	for _, tc := range []struct {
		name   string
		status string
		before int64
		limit  int
		want   []int64
	}{
		{"first page", "", 0, 2, []int64{ids[4], ids[3]}},
		{"next page", "", ids[3], 2, []int64{ids[2], ids[1]}},
		{"last page", "", ids[1], 2, []int64{ids[0]}},
		{"past the last", "", ids[0], 2, nil},
		{"a limit under one is one", "", 0, 0, []int64{ids[4]}},
		// 3000000000 is past int4: a 500 once, when the parameter was typed integer.
		{"before past int4", "", 3_000_000_000, 10, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"filtered first page", settlement.StatusEvidence, 0, 2, []int64{ids[4], ids[2]}},
		{"filtered last page", settlement.StatusEvidence, ids[2], 2, []int64{ids[0]}},
		{"filtered, before a final one", settlement.StatusFinal, ids[3], 2, []int64{ids[1]}},
		{"filtered, before past int4", settlement.StatusFinal, 3_000_000_000, 10, []int64{ids[3], ids[1]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := w.svc.Cases(w.ctx, tc.status, tc.before, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, c := range cs {
				got = append(got, c.ID)
				if tc.status != "" && c.Status != tc.status {
					t.Errorf("case %d is %s in a list of %s", c.ID, c.Status, tc.status)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("ids %v, want %v", got, tc.want)
			}
		})
	}
	// More than a page: a limit over the maximum gives the maximum. The
	// extra cases are copies of the first, each with its current round.
	w.db.MustExec(`INSERT INTO cases (subject, kind, question, verdicts, district_ids, default_verdict, jury_size, supermajority, min_reveals,
		juror_fee, appeal_bond, max_appeals, stratify, outside_share, commit_us, reveal_us, appeal_us, status, evidence_until, opened_at)
		SELECT 'flat:x' || g, kind, question, verdicts, district_ids, default_verdict, jury_size, supermajority, min_reveals,
		juror_fee, appeal_bond, max_appeals, stratify, outside_share, commit_us, reveal_us, appeal_us, status, evidence_until, opened_at
		FROM cases, generate_series(1, $2) g WHERE id = $1`, ids[0], settlement.MaxCasePage)
	w.db.MustExec(`INSERT INTO case_rounds (case_id, round, draw_n, why, seats, commit_until, reveal_until)
		SELECT c.id, 0, r.draw_n, r.why, r.seats, r.commit_until, r.reveal_until FROM cases c, case_rounds r
		WHERE c.subject LIKE 'flat:x%' AND r.case_id = $1 AND r.round = 0`, ids[0])
	cs, err := w.svc.Cases(w.ctx, "", 0, settlement.MaxCasePage+1)
	if err != nil || len(cs) != settlement.MaxCasePage {
		t.Fatalf("a limit over the maximum: %d cases, %v; want %d", len(cs), err, settlement.MaxCasePage)
	}
}
