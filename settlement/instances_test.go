package settlement_test

import (
	"log/slog"
	"sync"
	"testing"

	"levee/settlement"
	"levee/settlement/draw"
)

// TestThreeInstancesAdvanceOnce runs three settlement services on one
// database, as three Levee instances do (docs/cluster.md), and has them all
// advance at once cases whose verdicts became final: each case settles
// exactly once, each verdict is applied once, and the ledger verifies.
func TestThreeInstancesAdvanceOnce(t *testing.T) {
	flat := baseRules()
	flat.JurySize, flat.MaxAppeals = 3, 0
	w := MustWorld(t, []int{20}, baseRules(), flat)
	instances := []*settlement.Service{w.svc}
	for range 2 {
		instances = append(instances, settlement.New(w.db, settlement.Options{
			Owners: map[string]settlement.Owner{"act": w.owner, "flat": w.owner},
			Rules:  map[string]settlement.Rules{"act": baseRules(), "flat": flat},
			Clock:  w.clock.Now,
			Logger: slog.New(slog.DiscardHandler),
		}))
	}
	refs := []string{"1", "2", "3", "4"}
	var ids []int64
	for i, ref := range refs {
		w.MustSubject("flat:"+ref, settlement.Facts{Kind: "flat", Question: "Was culvert " + ref + " cleared?"})
		c, err := instances[i%3].Dispute(w.ctx, principal(w.residents[0][i]), "flat:"+ref, "it was not")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	salt := "salt-salt-salt"
	var rounds []settlement.RoundView
	for _, id := range ids {
		r := currentRound(t, w.MustCase(id))
		rounds = append(rounds, r)
		for _, j := range r.Jurors {
			if _, err := w.svc.Commit(w.ctx, principal(j.Account), id, draw.BallotCommitment("reject", salt)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, r := range rounds {
		w.clock.Past(r.CommitUntil)
	}
	for i, id := range ids {
		for _, j := range rounds[i].Jurors {
			if _, err := w.svc.Reveal(w.ctx, principal(j.Account), id, "reject", salt); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, r := range rounds {
		w.clock.Past(r.RevealUntil)
	}
	var wg sync.WaitGroup
	for _, s := range instances {
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.Advance(w.ctx); err != nil {
					t.Errorf("advance: %v", err)
				}
			}()
		}
	}
	wg.Wait()
	for i, id := range ids {
		if v := w.MustCase(id); v.Status != settlement.StatusSettled {
			t.Fatalf("case %d: %s, want settled", id, v.Status)
		}
		w.MustApplied(refs[i], "reject", 1)
		var records int
		if err := w.db.Get(&records, `SELECT count(*) FROM case_settlements WHERE case_id = $1`, id); err != nil || records != 1 {
			t.Fatalf("case %d has %d settlement records (%v), want 1", id, records, err)
		}
		w.MustEmptyCase(id)
	}
	w.MustVerifyLedger()
}
