package cluster

import (
	"encoding/json"
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
// write per subscriber) and sends each on NATS.
func (p *publisher) PublishBatch(evs []engine.Event) {
	if bp, ok := p.local.(engine.BatchPublisher); ok {
		bp.PublishBatch(evs)
	} else if p.local != nil {
		for _, ev := range evs {
			p.local.Publish(ev)
		}
	}
	for _, ev := range evs {
		data, err := json.Marshal(ev)
		if err != nil {
			p.n.log.Error("encoding a market event", slog.Any("error", err))
			continue
		}
		if err := p.n.nc.Publish(MarketSubject(p.n.node, ev.MarketID), data); err != nil {
			p.n.log.Debug("publishing a market event", slog.Int64("market_id", ev.MarketID), slog.Any("error", err))
			continue
		}
		p.n.eventsOut.Add(1)
	}
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
		var ev engine.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			n.log.Warn("a market event that does not decode", slog.String("subject", m.Subject), slog.Any("error", err))
			return
		}
		n.eventsIn.Add(1)
		local.Publish(ev)
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

func nodeOf(subject string) string {
	rest, ok := strings.CutPrefix(subject, "levee.")
	if !ok {
		return ""
	}
	node, _, _ := strings.Cut(rest, ".")
	return node
}
