package settlement

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/accounts"
	"levee/ledger"
	"levee/pgtx"
	"levee/settlement/draw"
)

// CaseView is a case as one caller may see it: votes stay secret until
// their round's reveal period ends, and evidence is for the parties and
// jurors until there is a verdict.
type CaseView struct {
	Case
	Rounds   []RoundView `json:"rounds"`
	Parties  []Party     `json:"parties"`
	Evidence []Evidence  `json:"evidence"`
	// EvidenceHidden says evidence exists that this caller may not see yet.
	EvidenceHidden bool `json:"evidence_hidden,omitempty"`
	// Seat is the caller's seat in the current round, if any.
	Seat *Seat `json:"seat,omitempty"`
	// Deadline is the next deadline of the case, if any.
	Deadline *time.Time `json:"deadline,omitempty"`
}

// RoundView is a round with its jurors.
type RoundView struct {
	Round
	Jurors []JurorView `json:"jurors"`
}

// JurorView is a seat as everyone sees it. A juror's name is never
// published: a seat is "juror N" (its place in the round's draw order), its
// owner is told it is theirs (Mine), and once the round is tallied its
// pseudonym is shown with its vote, so no-shows and fees stay auditable
// (docs/privacy.md).
type JurorView struct {
	Account   int64        `json:"-" db:"account_id"`
	Seat      int          `json:"seat" db:"-"`
	Pseudonym string       `json:"pseudonym,omitempty" db:"-"` // after the round's tally
	Mine      bool         `json:"mine,omitempty" db:"-"`
	DrawIndex int          `json:"draw_index" db:"draw_index"`
	Committed bool         `json:"committed" db:"committed"`
	Revealed  bool         `json:"revealed" db:"revealed"`
	Verdict   *string      `json:"verdict,omitempty" db:"verdict"` // after the round's tally
	Paid      levee.Micros `json:"paid" db:"paid"`
	NoShow    bool         `json:"no_show" db:"no_show"`
}

// Seat is the caller's own seat.
type Seat struct {
	Round       int        `json:"round"`
	Committed   bool       `json:"committed"`
	Revealed    bool       `json:"revealed"`
	CommitUntil time.Time  `json:"commit_until"`
	RevealUntil time.Time  `json:"reveal_until"`
	CommittedAt *time.Time `json:"committed_at,omitempty"`
}

// Party is someone with a stake in a case.
type Party struct {
	Account int64  `json:"-" db:"account_id"`
	Name    string `json:"name" db:"-"`
	Role    string `json:"role" db:"role"`
}

// Evidence is one submission to a case.
type Evidence struct {
	ID          int64     `json:"id,string" db:"id"`
	By          int64     `json:"-" db:"submitted_by"`
	ByName      string    `json:"by_name" db:"-"`
	Body        string    `json:"body" db:"body"`
	FileName    *string   `json:"file_name,omitempty" db:"file_name"`
	ContentType *string   `json:"content_type,omitempty" db:"content_type"`
	Size        *int      `json:"size,omitempty" db:"size"`
	SHA256      string    `json:"sha256,omitempty" db:"-"`
	Hash        []byte    `json:"-" db:"sha256"`
	URL         string    `json:"url,omitempty" db:"-"`
	At          time.Time `json:"at" db:"created_at"`
}

// getCase reads a case without advancing it.
func (s *Service) getCase(ctx context.Context, id int64) (Case, error) {
	return getCase(ctx, s.db, id, "")
}

// Case returns case id as who sees it (who may be nil), advancing it first.
// Errors: ENOTFOUND.
func (s *Service) Case(ctx context.Context, who *accounts.Principal, id int64) (CaseView, error) {
	if err := s.advanceForRead(ctx, id); err != nil {
		return CaseView{}, err
	}
	c, err := s.getCase(ctx, id)
	if err != nil {
		return CaseView{}, err
	}
	v := CaseView{Case: c}
	rounds, err := getRounds(ctx, s.db, id)
	if err != nil {
		return CaseView{}, err
	}
	var me int64
	if who != nil {
		me = who.AccountID
	}
	involved := false
	for _, r := range rounds {
		rv := RoundView{Round: r}
		if err := s.db.SelectContext(ctx, &rv.Jurors, `SELECT j.account_id, j.draw_index, j.commitment IS NOT NULL AS committed,
			j.verdict IS NOT NULL AS revealed, CASE WHEN $3 THEN j.verdict END AS verdict, coalesce(j.paid, 0) AS paid, j.no_show
			FROM jurors j WHERE j.case_id = $1 AND j.round = $2 ORDER BY j.draw_index`,
			id, r.Round, r.Tally != nil); err != nil {
			return CaseView{}, pgtx.Unavailable(fmt.Errorf("case %d jurors: %w", id, err))
		}
		var names map[int64]string
		if r.Tally != nil {
			ids := make([]int64, len(rv.Jurors))
			for i, j := range rv.Jurors {
				ids[i] = j.Account
			}
			if names, err = ledger.Pseudonyms(ctx, s.db, ids); err != nil {
				return CaseView{}, fmt.Errorf("case %d jurors: %w", id, err)
			}
		}
		for i := range rv.Jurors {
			j := &rv.Jurors[i]
			j.Seat, j.Pseudonym, j.Mine = i+1, names[j.Account], j.Account == me && me != 0
			if j.Mine {
				involved = true
				if r.Round == c.Round {
					v.Seat = &Seat{Round: r.Round, Committed: j.Committed, Revealed: j.Revealed, CommitUntil: r.CommitUntil, RevealUntil: r.RevealUntil}
				}
			}
		}
		v.Rounds = append(v.Rounds, rv)
	}
	if err := s.db.SelectContext(ctx, &v.Parties, `SELECT p.account_id, p.role FROM case_parties p
		WHERE p.case_id = $1 ORDER BY p.role`, id); err != nil {
		return CaseView{}, pgtx.Unavailable(fmt.Errorf("case %d parties: %w", id, err))
	}
	names, err := partyNames(ctx, s.db, me, v.Parties)
	if err != nil {
		return CaseView{}, fmt.Errorf("case %d parties: %w", id, err)
	}
	for i := range v.Parties {
		v.Parties[i].Name = names[v.Parties[i].Account]
	}
	// By role, then name (in byte order, as the database's C collation).
	slices.SortStableFunc(v.Parties, func(a, b Party) int {
		return cmp.Or(cmp.Compare(a.Role, b.Role), cmp.Compare(a.Name, b.Name))
	})
	for _, p := range v.Parties {
		involved = involved || p.Account == me && me != 0
	}
	if involved || c.Verdict != nil || who.Has(accounts.RoleAdmin) {
		if err := s.db.SelectContext(ctx, &v.Evidence, `SELECT e.id, e.submitted_by, e.body, e.file_name, e.content_type,
			length(e.content) AS size, e.sha256, e.created_at FROM case_evidence e
			WHERE e.case_id = $1 ORDER BY e.id`, id); err != nil {
			return CaseView{}, pgtx.Unavailable(fmt.Errorf("case %d evidence: %w", id, err))
		}
		for i := range v.Evidence {
			if v.Evidence[i].ByName = names[v.Evidence[i].By]; v.Evidence[i].ByName == "" {
				v.Evidence[i].ByName = "a resident"
			}
		}
		for i := range v.Evidence {
			if e := &v.Evidence[i]; e.FileName != nil {
				e.SHA256, e.URL = hex.EncodeToString(e.Hash), fmt.Sprintf("/api/v1/cases/%d/evidence/%d", id, e.ID)
			}
		}
	} else {
		if err := s.db.GetContext(ctx, &v.EvidenceHidden, `SELECT EXISTS (SELECT 1 FROM case_evidence WHERE case_id = $1)`, id); err != nil {
			return CaseView{}, pgtx.Unavailable(err)
		}
	}
	if v.Evidence == nil {
		v.Evidence = []Evidence{}
	}
	v.Deadline = nextDeadline(&c, rounds)
	return v, nil
}

// officialRoles are the parts in a case that officials play in office:
// they are named, like the organisations. Everyone else a case involves is
// a private person, shown as their part ("a resident") and to themselves as
// "you": a disputer's bond is a posting of their pseudonym on the case's
// ledger entries, so a name beside it would link the two (docs/privacy.md).
var officialRoles = map[string]bool{"proposer": true, "steward": true, "official": true}

// partyNames names the parties of a case as the case shows them to me, by
// account.
func partyNames(ctx context.Context, q sqlx.QueryerContext, me int64, parties []Party) (map[int64]string, error) {
	ids := make([]int64, len(parties))
	for i, p := range parties {
		ids[i] = p.Account
	}
	orgs, err := accounts.OrganisationNames(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	named, err := accounts.Names(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]string, len(parties))
	for _, p := range parties {
		switch {
		case orgs[p.Account] != "":
			out[p.Account] = orgs[p.Account]
		case p.Account == me && me != 0:
			out[p.Account] = "you"
		case officialRoles[p.Role]:
			out[p.Account] = named[p.Account]
		case p.Role == "contractor":
			out[p.Account] = "a member of the contractor"
		default:
			out[p.Account] = "a resident"
		}
	}
	return out, nil
}

func nextDeadline(c *Case, rounds []Round) *time.Time {
	var cur *Round
	for i := range rounds {
		if rounds[i].Round == c.Round {
			cur = &rounds[i]
		}
	}
	switch {
	case c.Status == StatusEvidence:
		return &c.EvidenceUntil
	case c.Status == StatusCommit && cur != nil:
		return &cur.CommitUntil
	case c.Status == StatusReveal && cur != nil:
		return &cur.RevealUntil
	case c.Status == StatusAppealable:
		return c.AppealUntil
	}
	return nil
}

// DrawRecord is a published draw: everything needed to recompute it.
type DrawRecord struct {
	N        int      `json:"n"`
	Pool     []string `json:"pool"`
	PoolHash string   `json:"pool_hash"`
	Beacon   string   `json:"beacon"`
	// BeaconSeq is the ledger entry whose hash is the beacon (see
	// GET /api/v1/ledger/entries).
	BeaconSeq int64          `json:"beacon_seq"`
	Seed      string         `json:"seed"`
	Strata    []draw.Stratum `json:"strata"`
	// Seats is the number drawn in each round that drew from this pool, in
	// order; the jurors are their concatenation.
	Seats  []int     `json:"seats"`
	Jurors []string  `json:"jurors"`
	At     time.Time `json:"drawn_at"`
}

// DrawReport is GET /api/v1/cases/{id}/draw: the first draw at the top
// level, every draw (the first and one per appeal) under draws.
type DrawReport struct {
	CaseID int64 `json:"case,string"`
	DrawRecord
	Draws []DrawRecord `json:"draws"`
}

// Draw returns the published draws of a case. Errors: ENOTFOUND.
func (s *Service) Draw(ctx context.Context, id int64) (DrawReport, error) {
	if _, err := s.getCase(ctx, id); err != nil {
		return DrawReport{}, err
	}
	var ds []caseDraw
	if err := s.db.SelectContext(ctx, &ds, `SELECT `+drawColumns+` FROM case_draws WHERE case_id = $1 ORDER BY n`, id); err != nil {
		return DrawReport{}, pgtx.Unavailable(fmt.Errorf("case %d draws: %w", id, err))
	}
	rep := DrawReport{CaseID: id, Draws: []DrawRecord{}}
	for _, d := range ds {
		r := DrawRecord{N: d.N, PoolHash: hex.EncodeToString(d.PoolHash), Beacon: hex.EncodeToString(d.Beacon), BeaconSeq: d.BeaconSeq,
			Seed: hex.EncodeToString(d.Seed), Strata: d.Strata.V, At: d.DrawnAt, Jurors: []string{}}
		// Members are spelled as the draw spelled them: pseudonyms, or ids
		// in a draw made before pseudonyms. The pool is published in its
		// stored order, so tampering with it shows.
		byPseudonym := false
		for _, st := range d.Strata.V {
			byPseudonym = byPseudonym || len(st.IDs) > 0 && ledger.ValidPseudonym(st.IDs[0])
		}
		r.Pool = make([]string, len(d.Pool))
		var names map[int64]string
		if byPseudonym {
			var err error
			if names, err = ledger.Pseudonyms(ctx, s.db, d.Pool); err != nil {
				return DrawReport{}, err
			}
		}
		for i, id := range d.Pool {
			if byPseudonym {
				r.Pool[i] = names[id]
			} else {
				r.Pool[i] = levee.FormatID(id)
			}
		}
		var rows []struct {
			Round   int   `db:"round"`
			Seats   int   `db:"seats"`
			Account int64 `db:"account_id"`
		}
		if err := s.db.SelectContext(ctx, &rows, `SELECT r.round, r.seats, j.account_id FROM case_rounds r JOIN jurors j ON j.case_id = r.case_id AND j.round = r.round
			WHERE r.case_id = $1 AND r.draw_n = $2 ORDER BY j.draw_index`, id, d.N); err != nil {
			return DrawReport{}, pgtx.Unavailable(fmt.Errorf("case %d jurors: %w", id, err))
		}
		if byPseudonym {
			ids := make([]int64, len(rows))
			for i, row := range rows {
				ids[i] = row.Account
			}
			var err error
			if names, err = ledger.Pseudonyms(ctx, s.db, ids); err != nil {
				return DrawReport{}, err
			}
		}
		last := -1
		for _, row := range rows {
			if row.Round != last {
				r.Seats, last = append(r.Seats, row.Seats), row.Round
			}
			if byPseudonym {
				r.Jurors = append(r.Jurors, names[row.Account])
			} else {
				r.Jurors = append(r.Jurors, levee.FormatID(row.Account))
			}
		}
		if r.Strata == nil {
			r.Strata = []draw.Stratum{}
		}
		rep.Draws = append(rep.Draws, r)
	}
	if len(rep.Draws) > 0 {
		rep.DrawRecord = rep.Draws[0]
	}
	return rep, nil
}

// CaseSummary is a case in a list, with the caller's part in it.
type CaseSummary struct {
	ID       int64      `json:"id,string" db:"id"`
	Subject  string     `json:"subject" db:"subject"`
	Kind     string     `json:"kind" db:"kind"`
	Question string     `json:"question" db:"question"`
	Status   string     `json:"status" db:"status"`
	Verdict  *string    `json:"verdict,omitempty" db:"verdict"`
	Role     string     `json:"role,omitempty" db:"role"` // juror, or the party role
	Deadline *time.Time `json:"deadline,omitempty" db:"deadline"`
	// ToDo says what the caller should do next as a juror: commit, reveal.
	ToDo     string    `json:"todo,omitempty" db:"todo"`
	OpenedAt time.Time `json:"opened_at" db:"opened_at"`
}

const summaryDeadline = `CASE c.status WHEN 'evidence' THEN c.evidence_until WHEN 'commit' THEN r.commit_until
	WHEN 'reveal' THEN r.reveal_until WHEN 'appealable' THEN c.appeal_until END`

// MaxCasePage is the most cases one page of the list holds.
const MaxCasePage = 200

// Cases lists up to limit cases with ids below before (0: from the newest),
// newest first; status "" lists all, otherwise only that status's, so the
// next page of a filtered list is before= the last id of this one.
func (s *Service) Cases(ctx context.Context, status string, before int64, limit int) ([]CaseSummary, error) {
	var out []CaseSummary
	// before is cast to bigint: compared with 0 alone the parameter would
	// be typed integer, and an id past int4 would be a database error.
	err := s.db.SelectContext(ctx, &out, `SELECT c.id, c.subject, c.kind, c.question, c.status, c.verdict, '' AS role, `+summaryDeadline+` AS deadline,
		'' AS todo, c.opened_at FROM cases c JOIN case_rounds r ON r.case_id = c.id AND r.round = c.round
		WHERE ($1 = '' OR c.status = $1) AND ($2::bigint = 0 OR c.id < $2::bigint) ORDER BY c.id DESC LIMIT $3`,
		status, before, min(max(limit, 1), MaxCasePage))
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("list cases: %w", err))
	}
	return out, nil
}

// MyCases lists the cases where account sits (or sat) as a juror or is a
// party, the ones needing action first.
func (s *Service) MyCases(ctx context.Context, account int64) ([]CaseSummary, error) {
	var ids []int64
	if err := s.db.SelectContext(ctx, &ids, `SELECT case_id FROM jurors WHERE account_id = $1 UNION SELECT case_id FROM case_parties WHERE account_id = $1`, account); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("my cases: %w", err))
	}
	for _, id := range ids {
		if err := s.advanceForRead(ctx, id); err != nil {
			return nil, err
		}
	}
	var out []CaseSummary
	err := s.db.SelectContext(ctx, &out, `SELECT c.id, c.subject, c.kind, c.question, c.status, c.verdict,
		coalesce(CASE WHEN j.account_id IS NOT NULL THEN 'juror' END, p.role, 'juror (earlier round)') AS role,
		`+summaryDeadline+` AS deadline,
		CASE WHEN j.account_id IS NULL THEN ''
		     WHEN c.status IN ('evidence', 'commit') AND j.commitment IS NULL THEN 'commit'
		     WHEN c.status = 'reveal' AND j.commitment IS NOT NULL AND j.verdict IS NULL THEN 'reveal'
		     ELSE '' END AS todo,
		c.opened_at
		FROM cases c JOIN case_rounds r ON r.case_id = c.id AND r.round = c.round
		LEFT JOIN jurors j ON j.case_id = c.id AND j.round = c.round AND j.account_id = $1
		LEFT JOIN case_parties p ON p.case_id = c.id AND p.account_id = $1
		WHERE c.id = ANY ($2::bigint[])
		ORDER BY (CASE WHEN j.account_id IS NOT NULL AND c.status IN ('evidence', 'commit', 'reveal') THEN 0 ELSE 1 END), c.id DESC`,
		account, pq.Int64Array(ids))
	if err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("my cases: %w", err))
	}
	return out, nil
}
