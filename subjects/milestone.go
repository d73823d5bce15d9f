package subjects

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/contracting"
	"levee/settlement"
)

// Milestones lets juries settle milestone claims ("milestone:<contract>/<n>"):
// contracting holds the claim, the jury decides whether it stands.
type Milestones struct{ c *contracting.Service }

// Milestone names milestone n of a contract as the subject of a case.
func Milestone(contract int64, n int) string {
	return KindMilestone + ":" + levee.FormatID(contract) + "/" + strconv.Itoa(n)
}

func parseMilestone(ref string) (int64, int, error) {
	a, b, ok := strings.Cut(ref, "/")
	id, err1 := strconv.ParseInt(a, 10, 64)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || id <= 0 || n <= 0 {
		return 0, 0, levee.Invalid("subject", "a milestone subject is milestone:<contract>/<n>")
	}
	return id, n, nil
}

// Facts describes a claimed milestone: the claim stands unless a jury
// rejects it.
func (o Milestones) Facts(ctx context.Context, q sqlx.QueryerContext, ref string) (settlement.Facts, error) {
	id, n, err := parseMilestone(ref)
	if err != nil {
		return settlement.Facts{}, err
	}
	f, err := contracting.DescribeMilestone(ctx, q, id, n)
	if err != nil {
		return settlement.Facts{}, err
	}
	return settlement.Facts{
		Kind:      KindMilestone,
		Question:  f.Question,
		Verdicts:  []string{settlement.VerdictAccept, settlement.VerdictReject},
		Default:   settlement.VerdictAccept, // the claim stands unless a jury rejects it
		Districts: f.Districts,
		Parties:   f.Parties,
		Excluded:  f.Excluded,
		Markets:   f.Markets,
	}, nil
}

// Hold disputes a milestone's claim (contracting decides who may).
func (o Milestones) Hold(ctx context.Context, tx *sqlx.Tx, who *accounts.Principal, ref string) (string, error) {
	id, n, err := parseMilestone(ref)
	if err != nil {
		return "", err
	}
	return settlement.VerdictAccept, o.c.HoldMilestone(ctx, tx, who, id, n)
}

// Settle accepts or rejects the claim: an accepted one releases its share
// of the escrow.
func (o Milestones) Settle(ctx context.Context, ref, verdict string, mark func(ctx context.Context, tx *sqlx.Tx) error) error {
	id, n, err := parseMilestone(ref)
	if err != nil {
		return err
	}
	switch verdict {
	case settlement.VerdictAccept, settlement.VerdictReject:
	default:
		return fmt.Errorf("milestone verdict %q", verdict)
	}
	return o.c.SettleMilestone(ctx, id, n, verdict == settlement.VerdictAccept, mark)
}
