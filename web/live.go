package web

import (
	"context"
	"encoding/json"
	"time"

	"levee"
	"levee/market/engine"
	"levee/web/live"
)

// Live turns the engine's committed events into websocket messages and
// serves them through the hub at /api/v1/ws. It is created before the engine
// (which publishes into it) and learns where snapshots come from when the
// server is built.
type Live struct {
	hub     *live.Hub
	markets Markets
}

// NewLive creates the websocket hub.
func NewLive(opts live.Options) *Live {
	l := &Live{}
	l.hub = live.NewHub(l, opts)
	return l
}

// Close disconnects every client.
func (l *Live) Close() { l.hub.Close() }

// Stats reports the hub's counters.
func (l *Live) Stats() live.Stats { return l.hub.Stats() }

type tradeMessage struct {
	Type    string    `json:"type"`
	Market  string    `json:"market"`
	Seq     int64     `json:"seq"`
	Outcome int       `json:"outcome"`
	Side    string    `json:"side"`
	Shares  any       `json:"shares"`
	Amount  any       `json:"amount"`
	Prices  any       `json:"prices"`
	At      time.Time `json:"at"`
	TS      time.Time `json:"ts"`
}

type quoteMessage struct {
	Type   string    `json:"type"`
	Market string    `json:"market"`
	Seq    int64     `json:"seq"`
	Status string    `json:"status,omitempty"`
	Prices any       `json:"prices"`
	Shares any       `json:"shares"`
	TS     time.Time `json:"ts"`
}

// Publish encodes an event once; the hub sends the same bytes to every
// subscriber. ts is the time the event became durable. Events of markets
// nobody follows are not encoded at all: most orders trade on those.
func (l *Live) Publish(ev engine.Event) { l.PublishBatch([]engine.Event{ev}) }

// PublishBatch encodes a commit's events of one market (its trades, then
// its quote) and hands them to the hub together, which writes them to each
// subscriber in one write.
func (l *Live) PublishBatch(evs []engine.Event) {
	if len(evs) == 0 || !l.hub.Watched(evs[0].MarketID) {
		return
	}
	out := make([]live.Event, 0, len(evs))
	for _, ev := range evs {
		var msg any
		switch ev.Type {
		case engine.EventTrade:
			t := ev.Trade
			msg = tradeMessage{Type: ev.Type, Market: levee.FormatID(ev.MarketID), Seq: ev.Seq, Outcome: t.Outcome, Side: t.Side.String(),
				Shares: t.Shares, Amount: t.Amount, Prices: t.Prices, At: t.At, TS: ev.At}
		default:
			msg = quoteMessage{Type: ev.Type, Market: levee.FormatID(ev.MarketID), Seq: ev.Seq, Status: ev.Status, Prices: ev.Prices, Shares: ev.Shares, TS: ev.At}
		}
		b, err := json.Marshal(msg)
		if err != nil {
			continue
		}
		out = append(out, live.Event{Type: ev.Type, MarketID: ev.MarketID, Seq: ev.Seq, Payload: b})
	}
	l.hub.PublishBatch(out)
}

type snapshotMessage struct {
	Type   string `json:"type"`
	Market string `json:"market"`
	marketView
	TS time.Time `json:"ts"`
}

// SnapshotJSON is the hub's snapshot source: the market's committed state.
func (l *Live) SnapshotJSON(ctx context.Context, marketID int64) (json.RawMessage, int64, error) {
	s, err := l.markets.Snapshot(ctx, marketID)
	if err != nil {
		return nil, 0, err
	}
	now := time.Now()
	b, err := json.Marshal(snapshotMessage{Type: "snapshot", Market: levee.FormatID(marketID), marketView: viewOf(&s.Market, s.Prices, now), TS: now})
	return b, s.Market.Seq, err
}
