package web

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
	"levee/crisis"
	"levee/ledger"
)

// Crisis is what the web layer needs for the charter, the neighbours'
// quorum and emergencies.
type Crisis interface {
	Charter(ctx context.Context) (crisis.Charter, error)
	Found(ctx context.Context, actor int64, ch crisis.CharterChange) (crisis.Charter, error)
	Propose(ctx context.Context, who *accounts.Principal, kind string, payload json.RawMessage, reason string) (crisis.Proposal, error)
	Proposal(ctx context.Context, id int64) (crisis.Proposal, error)
	Proposals(ctx context.Context, status string, before int64, limit int) ([]crisis.Proposal, error)
	Declare(ctx context.Context, who *accounts.Principal, d crisis.Declaration) (crisis.Emergency, error)
	Act(ctx context.Context, who *accounts.Principal, emergencyID int64, r crisis.ActRequest) (crisis.Act, error)
	Petition(ctx context.Context, who *accounts.Principal, emergencyID int64) (crisis.Emergency, error)
	Current(ctx context.Context) (*crisis.Emergency, error)
	Emergency(ctx context.Context, id int64) (crisis.Emergency, error)
	Emergencies(ctx context.Context, before int64, limit int) ([]crisis.Emergency, error)
	Record(ctx context.Context, steward int64) (crisis.StewardRecord, error)
	Inbox(ctx context.Context) (crisis.Inbox, error)
	AnswerIncoming(ctx context.Context, who *accounts.Principal, id int64, approve bool) (crisis.Incoming, error)
	AdminIssue(ctx context.Context, actor int64, amount levee.Micros, memo string) (ledger.Entry, error)
	ProposeEnd(ctx context.Context, who *accounts.Principal, neighbour string, emergency int64, reason string) error
	NeighbourPetitions(ctx context.Context) ([]crisis.NeighbourPetition, error)
	PetitionToReplace(ctx context.Context, who *accounts.Principal, neighbour int64, n crisis.NeighbourSpec, reason string) (crisis.NeighbourPetition, error)
	SignNeighbourPetition(ctx context.Context, who *accounts.Principal, id int64) (crisis.NeighbourPetition, error)
}

var proposalStatuses = map[string]bool{"": true, "open": true, "executed": true, "rejected": true, "expired": true}

func (s *Server) charter(c *echo.Context) error {
	ch, err := s.deps.Crisis.Charter(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ch)
}

func (s *Server) foundCharter(c *echo.Context) error {
	var req crisis.CharterChange
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ch, err := s.deps.Crisis.Found(c.Request().Context(), principal(c).AccountID, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ch)
}

// listQuorumProposals is GET /api/v1/quorum/proposals?status=&before=&limit=:
// a page of proposals, newest first, of one status or all; the next page
// is before= the last id, with the same status.
func (s *Server) listQuorumProposals(c *echo.Context) error {
	status := c.QueryParam("status")
	if !proposalStatuses[status] {
		return levee.Invalid("status", "status must be open, executed, rejected or expired")
	}
	before, limit, err := queryPage(c, crisis.MaxProposalPage)
	if err != nil {
		return err
	}
	ps, err := s.deps.Crisis.Proposals(c.Request().Context(), status, before, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"proposals": ps})
}

func (s *Server) proposeToQuorum(c *echo.Context) error {
	var req struct {
		Kind    string          `json:"kind"`
		Payload json.RawMessage `json:"payload"`
		Reason  string          `json:"reason"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if len(req.Payload) == 0 || req.Payload[0] != '{' {
		return levee.Invalid("payload", "payload must be a JSON object")
	}
	p, err := s.deps.Crisis.Propose(c.Request().Context(), principal(c), req.Kind, req.Payload, req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, p)
}

func (s *Server) getQuorumProposal(c *echo.Context) error {
	id, err := pathID(c, "id", "proposal")
	if err != nil {
		return err
	}
	p, err := s.deps.Crisis.Proposal(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// currentEmergency is polled by the banner on every page; it answers
// {"emergency": null} when there is none.
func (s *Server) currentEmergency(c *echo.Context) error {
	e, err := s.deps.Crisis.Current(c.Request().Context())
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.JSON(http.StatusOK, map[string]any{"emergency": e})
}

// listEmergencies is GET /api/v1/emergencies?before=&limit=: a page of
// emergencies, newest first; the next page is before= the last id.
func (s *Server) listEmergencies(c *echo.Context) error {
	before, limit, err := queryPage(c, crisis.MaxEmergencyPage)
	if err != nil {
		return err
	}
	es, err := s.deps.Crisis.Emergencies(c.Request().Context(), before, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"emergencies": es})
}

func (s *Server) declareEmergency(c *echo.Context) error {
	var req crisis.Declaration
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	e, err := s.deps.Crisis.Declare(c.Request().Context(), principal(c), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, e)
}

func (s *Server) getEmergency(c *echo.Context) error {
	id, err := pathID(c, "id", "emergency")
	if err != nil {
		return err
	}
	e, err := s.deps.Crisis.Emergency(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

func (s *Server) emergencyAct(c *echo.Context) error {
	id, err := pathID(c, "id", "emergency")
	if err != nil {
		return err
	}
	var req crisis.ActRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	a, err := s.deps.Crisis.Act(c.Request().Context(), principal(c), id, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, a)
}

func (s *Server) petition(c *echo.Context) error {
	id, err := pathID(c, "id", "emergency")
	if err != nil {
		return err
	}
	e, err := s.deps.Crisis.Petition(c.Request().Context(), principal(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

func (s *Server) stewardRecord(c *echo.Context) error {
	id, err := pathID(c, "id", "steward")
	if err != nil {
		return err
	}
	r, err := s.deps.Crisis.Record(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}
