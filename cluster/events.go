package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go"

	"levee/market/engine"
)

// Publisher returns the engine's publisher for this instance: each
// committed event goes to this instance's hub at once and, on NATS, to every
// other instance's (subject levee.<node>.market.<id>). Publishing never
// blocks the book: nats.go buffers, and while NATS is away it buffers up to
// its reconnect buffer and then drops (subscribers then see a gap).
func (n *Node) Publisher(local engine.Publisher) engine.Publisher {
	return &publisher{n: n, local: local}
}

type publisher struct {
	n     *Node
	local engine.Publisher
}

func (p *publisher) Publish(ev engine.Event) { p.PublishBatch([]engine.Event{ev}) }

// PublishBatch hands a commit's events to the local hub together (one
// write per subscriber) and sends them on NATS as one message, a JSON array,
// which the other instances' hubs also publish together.
func (p *publisher) PublishBatch(evs []engine.Event) {
	if len(evs) == 0 {
		return
	}
	if bp, ok := p.local.(engine.BatchPublisher); ok {
		bp.PublishBatch(evs)
	} else if p.local != nil {
		for _, ev := range evs {
			p.local.Publish(ev)
		}
	}
	var data []byte
	var err error
	if len(evs) == 1 {
		data, err = json.Marshal(evs[0])
	} else {
		data, err = json.Marshal(evs)
	}
	if err != nil {
		p.n.log.Error("encoding market events", slog.Any("error", err))
		return
	}
	if err := p.n.nc.Publish(MarketSubject(p.n.node, evs[0].MarketID), data); err != nil {
		p.n.log.Debug("publishing market events", slog.Int64("market_id", evs[0].MarketID), slog.Any("error", err))
		return
	}
	p.n.eventsOut.Add(int64(len(evs)))
}

// serveEvents feeds the market events of every other instance to local.
// One wildcard subscription rather than one per watched market: NATS then
// delivers each market's events in the order its owner published them, and
// a client's subscription is live before its snapshot is read (the hub's
// rule against losing events, docs/websocket.md) without a round trip to
// NATS per new market; local drops at once the events of markets nobody
// here watches (web.Live checks the hub's Watched first).
func (n *Node) serveEvents(local engine.Publisher) error {
	s, err := n.nc.Subscribe(allMarkets, func(m *nats.Msg) {
		// levee.<node>.market.<id>: our own events went to local directly.
		if from := nodeOf(m.Subject); from == n.node {
			return
		}
		evs, err := decodeEvents(m.Data)
		if err != nil {
			n.log.Warn("market events that do not decode", slog.String("subject", m.Subject), slog.Any("error", err))
			return
		}
		n.eventsIn.Add(int64(len(evs)))
		if bp, ok := local.(engine.BatchPublisher); ok {
			bp.PublishBatch(evs)
			return
		}
		for _, ev := range evs {
			local.Publish(ev)
		}
	})
	if err != nil {
		return fmt.Errorf("cluster: subscribe to market events: %w", err)
	}
	// Many markets' events arrive on this one subscription: let its
	// buffer hold a burst instead of dropping it as a slow consumer.
	if err := s.SetPendingLimits(1<<20, 256<<20); err != nil {
		return fmt.Errorf("cluster: market events buffer: %w", err)
	}
	n.subs = append(n.subs, s)
	return nil
}

// decodeEvents reads a market's events from NATS: one commit's as a JSON
// array, or one event alone (a status change, and what instances before
// batches sent).
func decodeEvents(data []byte) ([]engine.Event, error) {
	if b := bytes.TrimLeft(data, " \t\r\n"); len(b) > 0 && b[0] == '[' {
		var evs []engine.Event
		if err := json.Unmarshal(b, &evs); err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			return nil, errors.New("an empty array of events")
		}
		for _, ev := range evs[1:] {
			if ev.MarketID != evs[0].MarketID {
				return nil, fmt.Errorf("events of markets %d and %d in one message", evs[0].MarketID, ev.MarketID)
			}
		}
		return evs, nil
	}
	var ev engine.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, err
	}
	return []engine.Event{ev}, nil
}

func nodeOf(subject string) string {
	rest, ok := strings.CutPrefix(subject, "levee.")
	if !ok {
		return ""
	}
	node, _, _ := strings.Cut(rest, ".")
	return node
}
