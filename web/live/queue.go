package live

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// message is one published event, shared by every subscriber it goes to.
type message struct {
	typ     string
	trade   bool // a delta (dropped when behind); anything else is a state (conflated)
	market  int64
	seq     int64
	payload []byte
}

func newMessage(ev Event) *message {
	return &message{typ: ev.Type, trade: ev.Type == "trade", market: ev.MarketID, seq: ev.Seq, payload: ev.Payload}
}

// group is one publish: a commit's events of one market in seq order (its
// trades, then its quote), shared by every subscriber it goes to, with their
// frames made once. A subscriber that is up to date gets frames as they are,
// in one write and without a copy; any other gets each event on its own.
type group struct {
	msgs   []*message
	frames []byte // msgs' text frames, back to back
}

func newGroup(evs []Event) *group {
	g := &group{msgs: make([]*message, len(evs))}
	for i, ev := range evs {
		g.msgs[i] = newMessage(ev)
		g.frames = AppendTextFrame(g.frames, ev.Payload)
	}
	return g
}

// follows reports whether g is exactly what a subscription whose last
// trade written is last needs next: its trades continue from last without
// a gap and none of its states is older. It returns the last trade after g.
func (g *group) follows(last int64) (int64, bool) {
	for _, m := range g.msgs {
		switch {
		case m.trade && m.seq == last+1:
			last = m.seq
		case m.trade || m.seq < last:
			return 0, false
		}
	}
	return last, true
}

// item is one entry of a client's queue: a group for one subscription.
type item struct {
	sub *subscription
	g   *group
}

// subscription is one connection's interest in one market. A resubscribe
// creates a new one, so anything still queued for the old one is recognised
// as stale.
type subscription struct {
	c      *client
	market int64

	topic     *topic // set by attach
	idx       int    // position in topic.subs; guarded by topic.mu
	cancelled atomic.Bool

	// Owned by the write pump.
	live    bool       // snapshot written; until then events wait in buf
	last    int64      // seq of the last trade (or snapshot) written
	buf     []*message // events that arrived before the snapshot
	dropped int64      // highest seq of a trade dropped and not yet reported by a gap
}

// lag is what a client that fell behind is owed for one subscription.
type lag struct {
	dropped int64 // highest seq of a dropped trade
	states  []pendingState
}

type pendingState struct {
	msg   *message
	order uint64 // publish order within the client, to write states in order
}

// enqueue is Publish's per-subscriber work: one push into the client's
// inbox. Only when the inbox is full (or the client is already behind)
// does it take the client's lock to conflate.
func (c *client) enqueue(it item) {
	if !c.behind.Load() && c.inbox.push(it, c.h.opts.SendBuffer) {
		if !c.pooled {
			c.wakeQueued()
		}
		return
	}
	c.overflow(it)
}

// wakeQueued tells a write pump (Options.WritePumps) that its inbox has
// items.
func (c *client) wakeQueued() {
	select {
	case c.queued <- struct{}{}:
	default:
	}
}

// overflow records it in the client's conflated backlog. Once a client is
// behind, nothing more goes into its inbox until the write pump has drained
// the inbox and written the backlog (catchUp), so per market the backlog is
// always newer than anything queued.
func (c *client) overflow(it item) {
	if c.stopped.Load() {
		return
	}
	c.mu.Lock()
	if c.stopped.Load() {
		c.mu.Unlock()
		return
	}
	if !c.behind.Load() {
		// The pump may have made room since the unlocked attempt.
		if c.inbox.push(it, c.h.opts.SendBuffer) {
			c.mu.Unlock()
			if !c.pooled {
				c.wakeQueued()
			}
			return
		}
		c.behind.Store(true)
		if !c.lagging {
			c.lagging = true
			c.epoch++
			epoch := c.epoch
			c.slowTimer = time.AfterFunc(c.h.opts.SlowClientGrace, func() { c.tooSlow(epoch) })
		}
	}
	for _, m := range it.g.msgs {
		c.conflateLocked(it.sub, m)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// conflateLocked adds m to the backlog of s: a trade is dropped (only its seq
// is kept, for the gap message), a state replaces the previous state of the
// same type. c.mu must be held.
func (c *client) conflateLocked(s *subscription, m *message) {
	if c.pending == nil {
		c.pending = map[*subscription]*lag{}
	}
	l := c.pending[s]
	if l == nil {
		l = &lag{}
		c.pending[s] = l
	}
	if m.trade {
		l.dropped = max(l.dropped, m.seq)
		c.h.dropped.Add(1)
		return
	}
	c.order++
	for i := range l.states {
		if l.states[i].msg.typ == m.typ {
			l.states[i] = pendingState{msg: m, order: c.order}
			c.h.conflated.Add(1)
			return
		}
	}
	l.states = append(l.states, pendingState{msg: m, order: c.order})
}

// tooSlow disconnects the client if it is still lagging in the episode that
// armed the timer.
func (c *client) tooSlow(epoch uint64) {
	c.mu.Lock()
	slow := c.lagging && c.epoch == epoch
	c.mu.Unlock()
	if slow && c.stop(websocket.ClosePolicyViolation, "too slow") {
		c.h.slow.Add(1)
		c.log.Info("websocket client too slow; disconnecting", slog.Duration("grace", c.h.opts.SlowClientGrace))
	}
}

// shed is the write pump's side of conflation: while the client is behind,
// whatever is still in the inbox is older than the backlog, so trades are
// dropped and states already superseded in the backlog are skipped. It
// reports whether m was shed.
func (c *client) shed(s *subscription, m *message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.behind.Load() {
		return false
	}
	if m.trade {
		c.conflateLocked(s, m)
		return true
	}
	if l := c.pending[s]; l != nil {
		for _, st := range l.states {
			if st.msg.typ == m.typ {
				c.h.conflated.Add(1)
				return true
			}
		}
	}
	return false
}

// catchUp ends a behind episode once the inbox is empty: it takes the
// backlog and writes, per subscription, a gap message and then the latest
// states. Publishers queue into the inbox again as soon as the lock is
// released; those items are newer and are written after this returns. The
// client counts as lagging (and the slow timer runs) from the first overflow
// until a backlog has been written without the queue overflowing again.
// Write pump only.
func (c *client) catchUp() error {
	c.mu.Lock()
	if !c.behind.Load() || c.inbox.len() > 0 {
		c.mu.Unlock()
		return nil
	}
	backlog := c.pending
	c.pending = nil
	c.behind.Store(false)
	c.mu.Unlock()
	if err := c.writeBacklog(backlog); err != nil {
		return err
	}
	if err := c.flush(); err != nil {
		return err
	}
	// The episode ends once the backlog is on the wire, unless the queue
	// overflowed again meanwhile: then the client is still lagging.
	c.mu.Lock()
	if !c.behind.Load() {
		c.lagging = false
		if c.slowTimer != nil {
			c.slowTimer.Stop()
			c.slowTimer = nil
		}
	}
	c.mu.Unlock()
	return nil
}

func (c *client) writeBacklog(backlog map[*subscription]*lag) error {

	for s, l := range backlog {
		if s.cancelled.Load() {
			continue
		}
		s.dropped = max(s.dropped, l.dropped)
		slices.SortFunc(l.states, func(a, b pendingState) int { return cmp.Compare(a.order, b.order) })
		if !s.live {
			for _, st := range l.states {
				c.buffer(s, st.msg)
			}
			continue
		}
		if err := c.reportGap(s); err != nil {
			return err
		}
		for _, st := range l.states {
			if err := c.writeEvent(s, st.msg); err != nil {
				return err
			}
		}
	}
	return nil
}

// deliverQueued handles whatever else is already queued, so that a burst
// (a trade and its quote, or a batch of trades) costs the pump one wake-up
// and one write. It takes at most a queueful, so that a steady stream of
// events cannot keep the pump from pings and closes. c.wmu must be held.
func (c *client) deliverQueued() error {
	for range c.h.opts.SendBuffer {
		it, ok := c.inbox.pop()
		if !ok {
			return nil
		}
		if err := c.deliver(it); err != nil {
			return err
		}
	}
	return nil
}

// deliver handles one queued group. A live subscription that is up to
// date and a client that is not behind take its frames as they are; any
// other subscription takes its events one by one. c.wmu must be held.
func (c *client) deliver(it item) error {
	s := it.sub
	if s.cancelled.Load() {
		return nil
	}
	if s.live && !c.behind.Load() {
		if last, ok := it.g.follows(s.last); ok {
			s.last = last
			return c.writeFrames(it.g.frames)
		}
	}
	return c.deliverEach(s, it.g.msgs)
}

// deliverEach handles events one by one: shed while the client is behind,
// buffered until the snapshot is written, dropped when stale, and a resync
// where trades are missing. c.wmu must be held.
func (c *client) deliverEach(s *subscription, msgs []*message) error {
	for i, m := range msgs {
		if s.cancelled.Load() {
			return nil
		}
		if c.behind.Load() && c.shed(s, m) {
			continue
		}
		if !s.live {
			c.buffer(s, m)
			continue
		}
		if c.inPool && m.trade && m.seq > s.last+1 {
			// A resync reads a snapshot: not on a pool writer.
			c.held = &held{sub: s, msgs: msgs[i:]}
			return errHandOff
		}
		if err := c.writeEvent(s, m); err != nil {
			return err
		}
	}
	return nil
}

// held is what a pool writer left for the write pump: events of one
// subscription from one that needs a resync on.
type held struct {
	sub  *subscription
	msgs []*message
}

// writeEvent writes m unless it is stale: a trade at or below the last seq
// written (already in the snapshot, or dropped before a gap), a state below
// it. A state at the snapshot's own seq is written: states are idempotent and
// the snapshot may predate, say, a status change at the same seq.
//
// A trade past the next seq means trades were lost on the way here (with
// several instances, an owner killed between its commit and its publish on
// NATS): the client gets an explicit gap, then a fresh snapshot, never a
// silent jump (resync).
func (c *client) writeEvent(s *subscription, m *message) error {
	if m.trade {
		if m.seq <= s.last {
			return nil
		}
		if m.seq > s.last+1 {
			if resynced, err := c.resync(s, m); resynced || err != nil {
				return err
			}
		}
		s.last = m.seq
	} else if m.seq < s.last {
		return nil
	}
	return c.writeFrame(m.payload)
}

// resync answers trades that never arrived: a gap message up to the trade
// before m, then the market's snapshot read now, then m unless the snapshot
// already holds it. It reports whether it wrote m's place (the snapshot
// covers m, or m was written). A snapshot that cannot be read leaves the gap
// alone, and the next quote carries the state. Write pump only.
func (c *client) resync(s *subscription, m *message) (bool, error) {
	c.h.gaps.Add(1)
	if err := c.writeRaw(encodeGap(s.market, m.seq-1)); err != nil {
		return true, err
	}
	s.last = m.seq - 1
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
	data, seq, err := c.h.snap.SnapshotJSON(ctx, s.market)
	cancel()
	if err != nil {
		return false, nil
	}
	if err := c.writeRaw(data); err != nil {
		return true, err
	}
	s.last = seq
	// The snapshot was read after m committed, so it normally holds m.
	return seq >= m.seq, nil
}

// reportGap writes a gap message if trades after the last one written were
// dropped, and moves past them.
func (c *client) reportGap(s *subscription) error {
	if s.dropped <= s.last {
		s.dropped = 0
		return nil
	}
	seq := s.dropped
	s.last, s.dropped = seq, 0
	c.h.gaps.Add(1)
	return c.writeRaw(encodeGap(s.market, seq))
}

// buffer holds m until the snapshot of s is written. The buffer is bounded
// by SendBuffer: beyond it, it is conflated like the queue.
func (c *client) buffer(s *subscription, m *message) {
	s.buf = append(s.buf, m)
	if len(s.buf) <= c.h.opts.SendBuffer {
		return
	}
	var keep []*message
	for i := len(s.buf) - 1; i >= 0; i-- {
		m := s.buf[i]
		switch {
		case m.trade:
			s.dropped = max(s.dropped, m.seq)
			c.h.dropped.Add(1)
		case slices.ContainsFunc(keep, func(k *message) bool { return k.typ == m.typ }):
			c.h.conflated.Add(1)
		default:
			keep = append(keep, m)
		}
	}
	slices.Reverse(keep)
	s.buf = keep
}

// writeSnapshot writes the snapshot of s, then whatever arrived meanwhile
// and is newer than it. Write pump only.
func (c *client) writeSnapshot(s *subscription, data []byte, seq int64) error {
	buf := s.buf
	s.buf = nil
	if s.cancelled.Load() {
		return nil
	}
	if err := c.writeRaw(data); err != nil {
		return err
	}
	s.live, s.last = true, seq
	if err := c.reportGap(s); err != nil {
		return err
	}
	for _, m := range buf {
		if err := c.writeEvent(s, m); err != nil {
			return err
		}
	}
	return nil
}

func (c *client) writeRaw(data []byte) error { return c.writeFrame(data) }
