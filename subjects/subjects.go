// Package subjects owns what juries decide about, for settlement: markets
// (their outcomes), milestones (a contractor's claim) and emergency acts
// (their review). Each owner implements settlement.Owner on top of the
// package that owns the subject (market/engine, contracting, crisis), so
// settlement imports none of them; cmd/levee registers the owners with
// Register.
package subjects

import (
	"levee/contracting"
	"levee/crisis"
	"levee/settlement"
)

// Register makes markets, milestones and acts subjects of s's cases.
func Register(s *settlement.Service, markets *Markets, c *contracting.Service, k *crisis.Service) {
	s.SetOwner(KindMarket, markets)
	s.SetOwner(KindMilestone, Milestones{c})
	s.SetOwner(KindAct, Acts{k})
}

// The kinds of subject, the part of a subject before its first ':'.
const (
	KindMarket    = "market"
	KindMilestone = "milestone"
	KindAct       = "act"
)
