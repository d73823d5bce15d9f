package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
	"levee/ledger"
	"levee/outbox"
	"levee/settlement"
	"levee/subjects"
)

// Cases is what the web layer needs from settlement: proposals, disputes,
// cases and their juries.
type Cases interface {
	ProposalFor(ctx context.Context, subject string) (settlement.Proposal, error)
	Dispute(ctx context.Context, who *accounts.Principal, subject, reason string) (settlement.Case, error)
	Case(ctx context.Context, who *accounts.Principal, id int64) (settlement.CaseView, error)
	Cases(ctx context.Context, status string, before int64, limit int) ([]settlement.CaseSummary, error)
	MyCases(ctx context.Context, account int64) ([]settlement.CaseSummary, error)
	Draw(ctx context.Context, id int64) (settlement.DrawReport, error)
	SubmitEvidence(ctx context.Context, who *accounts.Principal, id int64, body, fileName string, data []byte) (settlement.CaseView, error)
	EvidenceFile(ctx context.Context, who *accounts.Principal, caseID, evidenceID int64) (name, contentType string, data []byte, err error)
	Commit(ctx context.Context, who *accounts.Principal, id int64, commitment string) (settlement.Case, error)
	Reveal(ctx context.Context, who *accounts.Principal, id int64, verdict, salt string) (settlement.Case, error)
	Appeal(ctx context.Context, who *accounts.Principal, id int64, reason string) (settlement.Case, error)
	OptOut(ctx context.Context, who *accounts.Principal, out bool) error
	OptedOut(ctx context.Context, account int64) (bool, error)
	Notifications(ctx context.Context, account int64, limit int) ([]outbox.Notification, error)
	JurorRecord(ctx context.Context, pseudonym string) (settlement.JurorRecord, error)
}

// Proposals is what the web layer needs to propose a closed market's
// outcome (subjects.Markets).
type Proposals interface {
	Propose(ctx context.Context, who *accounts.Principal, marketID int64, verdict, evidence string) (settlement.Proposal, error)
}

var caseStatuses = map[string]bool{"": true, settlement.StatusEvidence: true, settlement.StatusCommit: true, settlement.StatusReveal: true,
	settlement.StatusAppealable: true, settlement.StatusFinal: true, settlement.StatusSettled: true}

func (s *Server) proposeOutcome(c *echo.Context) error {
	id, err := pathID(c, "id", "market")
	if err != nil {
		return err
	}
	var req struct {
		Verdict  string `json:"verdict"`
		Evidence string `json:"evidence"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p, err := s.deps.Proposals.Propose(c.Request().Context(), principal(c), id, req.Verdict, req.Evidence)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, p)
}

func (s *Server) marketProposal(c *echo.Context) error {
	id, err := pathID(c, "id", "market")
	if err != nil {
		return err
	}
	p, err := s.deps.Cases.ProposalFor(c.Request().Context(), subjects.Market(id))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// dispute opens a case about subject with the reason in the body.
func (s *Server) dispute(c *echo.Context, subject string) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	k, err := s.deps.Cases.Dispute(c.Request().Context(), principal(c), subject, req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, k)
}

func (s *Server) disputeMarket(c *echo.Context) error {
	id, err := pathID(c, "id", "market")
	if err != nil {
		return err
	}
	return s.dispute(c, subjects.Market(id))
}

func (s *Server) disputeMilestone(c *echo.Context) error {
	id, n, err := milestonePath(c)
	if err != nil {
		return err
	}
	return s.dispute(c, subjects.Milestone(id, n))
}

// listCases is GET /api/v1/cases?status=&before=&limit=: a page of cases,
// newest first, of one status or all; the next page is before= the last
// id, with the same status.
func (s *Server) listCases(c *echo.Context) error {
	status := c.QueryParam("status")
	if !caseStatuses[status] {
		return levee.Invalid("status", "status must be one of evidence, commit, reveal, appealable, final, settled")
	}
	before, limit, err := queryPage(c, settlement.MaxCasePage)
	if err != nil {
		return err
	}
	cs, err := s.deps.Cases.Cases(c.Request().Context(), status, before, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"cases": orEmpty(cs)})
}

func (s *Server) getCase(c *echo.Context) error {
	id, err := pathID(c, "id", "case")
	if err != nil {
		return err
	}
	v, err := s.deps.Cases.Case(c.Request().Context(), principal(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Server) caseDraw(c *echo.Context) error {
	id, err := pathID(c, "id", "case")
	if err != nil {
		return err
	}
	d, err := s.deps.Cases.Draw(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

// caseEvidence takes JSON {"body"} or multipart/form-data with "body" and
// an optional "file".
func (s *Server) caseEvidence(c *echo.Context) error {
	id, err := pathID(c, "id", "case")
	if err != nil {
		return err
	}
	var body, name string
	var data []byte
	if strings.HasPrefix(c.Request().Header.Get("Content-Type"), "multipart/form-data") {
		if body, err = formText(c, "body"); err != nil {
			return err
		}
		if _, ferr := c.FormFile("file"); ferr == nil {
			if name, data, err = formFile(c); err != nil {
				return err
			}
		}
	} else {
		var req struct {
			Body string `json:"body"`
		}
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
		body = req.Body
	}
	v, err := s.deps.Cases.SubmitEvidence(c.Request().Context(), principal(c), id, body, name, data)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, v)
}

func (s *Server) caseEvidenceFile(c *echo.Context) error {
	id, err := pathID(c, "id", "case")
	if err != nil {
		return err
	}
	eid, err := pathID(c, "eid", "evidence")
	if err != nil {
		return err
	}
	name, ct, data, err := s.deps.Cases.EvidenceFile(c.Request().Context(), principal(c), id, eid)
	if err != nil {
		return err
	}
	return sendFile(c, name, ct, sha256Hex(data), data)
}

func (s *Server) commitVote(c *echo.Context) error {
	id, err := pathID(c, "id", "case")
	if err != nil {
		return err
	}
	var req struct {
		Commitment string `json:"commitment"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if _, err := s.deps.Cases.Commit(c.Request().Context(), principal(c), id, req.Commitment); err != nil {
		return err
	}
	return s.getCase(c)
}

func (s *Server) revealVote(c *echo.Context) error {
	id, err := pathID(c, "id", "case")
	if err != nil {
		return err
	}
	var req struct {
		Verdict string `json:"verdict"`
		Salt    string `json:"salt"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if _, err := s.deps.Cases.Reveal(c.Request().Context(), principal(c), id, req.Verdict, req.Salt); err != nil {
		return err
	}
	return s.getCase(c)
}

func (s *Server) appealCase(c *echo.Context) error {
	id, err := pathID(c, "id", "case")
	if err != nil {
		return err
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if _, err := s.deps.Cases.Appeal(c.Request().Context(), principal(c), id, req.Reason); err != nil {
		return err
	}
	return s.getCase(c)
}

func (s *Server) myCases(c *echo.Context) error {
	cs, err := s.deps.Cases.MyCases(c.Request().Context(), principal(c).AccountID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"cases": orEmpty(cs)})
}

func (s *Server) myNotifications(c *echo.Context) error {
	ns, err := s.deps.Cases.Notifications(c.Request().Context(), principal(c).AccountID, 100)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"notifications": orEmpty(ns)})
}

func (s *Server) juryDuty(c *echo.Context) error {
	out, err := s.deps.Cases.OptedOut(c.Request().Context(), principal(c).AccountID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"opt_out": out})
}

func (s *Server) setJuryDuty(c *echo.Context) error {
	var req struct {
		OptOut *bool `json:"opt_out"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.OptOut == nil {
		return levee.Invalid("opt_out", "opt_out is required: true or false")
	}
	if err := s.deps.Cases.OptOut(c.Request().Context(), principal(c), *req.OptOut); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"opt_out": *req.OptOut})
}

// orEmpty makes a nil list encode as [] rather than null.
func orEmpty[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// jurorRecord is a resident's public record of jury service, no-shows
// included, under their pseudonym: never their name.
func (s *Server) jurorRecord(c *echo.Context) error {
	p := c.Param("pseudonym")
	if !ledger.ValidPseudonym(p) {
		return levee.Errorf(levee.ENOTFOUND, "no resident has the pseudonym %q", p)
	}
	r, err := s.deps.Cases.JurorRecord(c.Request().Context(), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}
