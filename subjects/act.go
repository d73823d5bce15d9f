package subjects

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/contracting"
	"levee/crisis"
	"levee/settlement"
)

// Acts makes emergency acts the subjects of review cases ("act:<id>"):
// crisis opens a review for every act once its emergency ends, and records
// the jury's verdict.
type Acts struct{ k *crisis.Service }

func parseAct(ref string) (int64, error) {
	id, err := strconv.ParseInt(ref, 10, 64)
	if err != nil || id <= 0 {
		return 0, levee.Invalid("subject", "an act subject is act:<id>")
	}
	return id, nil
}

// Facts describes an act for its review: a jury of the emergency's
// districts, with the steward and any contractor of a direct award as
// parties; if no jury can be formed, the act is referred to a human body.
func (o Acts) Facts(ctx context.Context, q sqlx.QueryerContext, ref string) (settlement.Facts, error) {
	id, err := parseAct(ref)
	if err != nil {
		return settlement.Facts{}, err
	}
	a, err := crisis.ReviewOf(ctx, q, id)
	if err != nil {
		return settlement.Facts{}, err
	}
	f := settlement.Facts{
		Kind: KindAct,
		Question: fmt.Sprintf("Emergency %d (%s): was this %s of %s justified and within the emergency's limits? %q",
			a.EmergencyID, a.EmergencyReason, a.Kind, a.Amount, a.Reason),
		Verdicts:  []string{crisis.VerdictRatify, crisis.VerdictRefer},
		Default:   crisis.VerdictRefer,
		Districts: []int64(a.Districts),
		Parties:   map[int64]string{a.StewardID: "steward"},
	}
	if a.ContractID != nil {
		contractor, err := contracting.ContractorOf(ctx, q, *a.ContractID)
		if err != nil {
			return settlement.Facts{}, err
		}
		f.Parties[contractor] = "contractor"
		members, err := accounts.Members(ctx, q, contractor)
		if err != nil {
			return settlement.Facts{}, err
		}
		for _, m := range members {
			f.Parties[m] = "contractor"
		}
	}
	return f, nil
}

// Hold refuses: acts are reviewed on their own, never disputed.
func (o Acts) Hold(ctx context.Context, tx *sqlx.Tx, who *accounts.Principal, ref string) (string, error) {
	return "", levee.Errorf(levee.ECONFLICT, "emergency acts go to review by a jury on their own once the emergency ends; they are not disputed")
}

// Settle records the jury's review of the act.
func (o Acts) Settle(ctx context.Context, ref, verdict string, mark func(ctx context.Context, tx *sqlx.Tx) error) error {
	id, err := parseAct(ref)
	if err != nil {
		return err
	}
	return o.k.SettleReview(ctx, id, verdict, mark)
}
