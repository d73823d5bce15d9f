package web

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/crisis"
	"levee/federation"
)

// Federation is what the web layer needs of this node in the network.
type Federation interface {
	Identity(ctx context.Context) (federation.Identity, error)
	Receive(ctx context.Context, w federation.Wire) (*federation.Wire, error)
	Statements(ctx context.Context, kind string, after int64, limit int) (federation.Page, error)
	Refusals(ctx context.Context) ([]federation.Refusal, error)
	Alarms(ctx context.Context) ([]federation.AlarmView, error)
	Witnesses(ctx context.Context) ([]federation.Witnessed, error)
}

// nodeIdentity is GET /api/v1/node: who this node is, for founding
// neighbours (and reading the fingerprint over the phone).
func (s *Server) nodeIdentity(c *echo.Context) error {
	id, err := s.deps.Node.Identity(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, id)
}

// receiveStatement is where neighbours deliver signed statements. There is
// no sign-in: the signature is the credential, checked against the key the
// charter pins.
func (s *Server) receiveStatement(c *echo.Context) error {
	var w federation.Wire
	if err := decodeJSON(c, &w); err != nil {
		return err
	}
	reply, err := s.deps.Node.Receive(c.Request().Context(), w)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, statementReceipt{Reply: reply})
}

// statementReceipt answers a delivered statement. Reply is a signed
// answer for kinds that have one at once; the kinds of this version answer
// later through the outbox (a ledger head's cosignature or alarm), so it is
// null, and a sender must accept either.
type statementReceipt struct {
	Reply *federation.Wire `json:"reply"`
}

var statementKinds = map[string]bool{"": true, "proposal": true, "vote": true, "notice": true, federation.KindLedgerHead: true,
	federation.KindCosign: true, federation.KindAlarm: true}

// listStatements is the public export of every statement signed or
// received here: with the Python recipe of docs/federation.md anyone can
// check each one from this alone.
func (s *Server) listStatements(c *echo.Context) error {
	after, err := queryInt(c, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	kind := c.QueryParam("kind")
	if !statementKinds[kind] {
		return levee.Invalid("kind", "kind must be proposal, vote, notice, ledger_head, cosign or alarm")
	}
	p, err := s.deps.Node.Statements(c.Request().Context(), kind, after, int(limit))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) listRefusals(c *echo.Context) error {
	rs, err := s.deps.Node.Refusals(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"refusals": rs})
}

func (s *Server) listAlarms(c *echo.Context) error {
	as, err := s.deps.Node.Alarms(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"alarms": as})
}

func (s *Server) listWitnesses(c *echo.Context) error {
	ws, err := s.deps.Node.Witnesses(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"witnesses": ws})
}

// incoming lists the neighbours' requests and notices.
func (s *Server) incoming(c *echo.Context) error {
	in, err := s.deps.Crisis.Inbox(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, in)
}

// answerIncoming is this city's answer to a neighbour's request; who may
// answer is the charter's voter_roles, checked by crisis.
func (s *Server) answerIncoming(c *echo.Context) error {
	id, err := pathID(c, "id", "request")
	if err != nil {
		return err
	}
	var req struct {
		Approve *bool `json:"approve"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Approve == nil {
		return levee.Invalid("approve", "approve is required: true or false")
	}
	r, err := s.deps.Crisis.AnswerIncoming(c.Request().Context(), principal(c), id, *req.Approve)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// publicAudit is the audit log for everyone: what officials did, without
// secrets (no entry holds a token or password; the filter is a second
// line).
func (s *Server) publicAudit(c *echo.Context) error {
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	es, err := s.deps.Accounts.Audit(c.Request().Context(), int(limit))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"entries": es})
}

// endRequest is this city proposing, from its own node, that a neighbour's
// emergency end: the node signs the request and delivers it, and on the
// neighbour it becomes a quorum proposal with this city's approval.
func (s *Server) proposeEnd(c *echo.Context) error {
	var req struct {
		Neighbour string `json:"neighbour"`
		Emergency string `json:"emergency"`
		Reason    string `json:"reason"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	e, err := parseID("emergency", req.Emergency)
	if err != nil {
		return err
	}
	if err := s.deps.Crisis.ProposeEnd(c.Request().Context(), principal(c), req.Neighbour, e, req.Reason); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, endRequestReceipt{Queued: true})
}

// endRequestReceipt says the signed request is in the outbox.
type endRequestReceipt struct {
	Queued bool `json:"queued"`
}

func (s *Server) listNeighbourPetitions(c *echo.Context) error {
	ps, err := s.deps.Crisis.NeighbourPetitions(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"petitions": ps})
}

// petitionToReplace opens residents' petition to replace a neighbour
// suspended for its silence with another node.
func (s *Server) petitionToReplace(c *echo.Context) error {
	id, err := pathID(c, "id", "neighbour")
	if err != nil {
		return err
	}
	var req struct {
		Name      string `json:"name"`
		URL       string `json:"url"`
		PublicKey string `json:"public_key"`
		Reason    string `json:"reason"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p, err := s.deps.Crisis.PetitionToReplace(c.Request().Context(), principal(c), id, crisis.NeighbourSpec{Name: req.Name, URL: req.URL, PublicKey: req.PublicKey}, req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, p)
}

func (s *Server) signNeighbourPetition(c *echo.Context) error {
	id, err := pathID(c, "id", "petition")
	if err != nil {
		return err
	}
	p, err := s.deps.Crisis.SignNeighbourPetition(c.Request().Context(), principal(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}
