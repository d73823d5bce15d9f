package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"levee/crisis"
	"levee/federation"
)

// The demo city's neighbours are nodes that do not run: the demo makes
// their key pairs (kept in <data>/demo-neighbours, mode 0600) and plays
// their part by signing their votes with them, delivered through the same
// Receive as a statement POSTed by a real node. Their URLs do not resolve,
// so the city's outbox shows, truthfully, that it cannot reach them.

// demoNeighbourSlug is the file and host name of a demo neighbour.
func demoNeighbourSlug(name string) string {
	return strings.ToLower(strings.Fields(name)[0])
}

// demoNeighbourKey returns (making on first use) the key of the demo
// neighbour called name.
func (m *Main) demoNeighbourKey(name string) (ed25519.PrivateKey, error) {
	return federation.LoadOrCreateKey(filepath.Join(m.Config.DataDir, "demo-neighbours", demoNeighbourSlug(name)+".key"))
}

// demoNeighbourSpecs are the demo charter's neighbours.
func (m *Main) demoNeighbourSpecs() ([]crisis.NeighbourSpec, error) {
	var ns []crisis.NeighbourSpec
	for _, name := range demoNeighbours {
		k, err := m.demoNeighbourKey(name)
		if err != nil {
			return nil, err
		}
		ns = append(ns, crisis.NeighbourSpec{Name: name, URL: "https://" + demoNeighbourSlug(name) + ".demo.invalid",
			PublicKey: hex.EncodeToString(k.Public().(ed25519.PublicKey))})
	}
	return ns, nil
}

// neighbourVote has the demo neighbour called name answer proposal id: its
// vote, signed with its key at the city's clock, is received as if its
// node had delivered it.
func (m *Main) neighbourVote(ctx context.Context, name string, id int64, approve bool) (crisis.Proposal, error) {
	p, err := m.Crisis.Proposal(ctx, id)
	if err != nil {
		return crisis.Proposal{}, err
	}
	key, err := m.demoNeighbourKey(name)
	if err != nil {
		return crisis.Proposal{}, err
	}
	st, err := federation.Sign(key, crisis.StatementVote, m.now(), crisis.VoteStatement{Proposal: p.Statement, Approve: approve})
	if err != nil {
		return crisis.Proposal{}, err
	}
	if _, err := m.Node.Receive(ctx, st.Wire()); err != nil {
		return crisis.Proposal{}, fmt.Errorf("%s's vote on proposal %d: %w", name, id, err)
	}
	return m.Crisis.Proposal(ctx, id)
}
