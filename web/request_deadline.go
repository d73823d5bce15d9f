package web

import (
	"context"
	"sync/atomic"
	"time"
)

// requestDeadline is a request's context with a deadline, as
// context.WithDeadline makes it, except that the timer, the cancelable
// context and the parent's registration of it are made only when something
// first asks for Done: a database query, a wait on a busy market. An
// order, the most frequent request, finishes without anything waiting on
// its deadline (its wait for its commit is bounded by the journal's own
// timeout), and context.WithTimeout on every request was 2 µs of an
// order's CPU, a twentieth of the server's (issue 18: its timer, its
// cancelCtx, the request context's done channel made and the child
// registered and removed). Deadline is answered from the field without
// arming anything, so code that only reads the deadline costs nothing
// either.
//
// Err reports the deadline as passed once it has, armed or not; the
// channel Done returns is then already closed. end, when the request is
// over, cancels as WithDeadline's cancel function does.
type requestDeadline struct {
	parent   context.Context
	deadline time.Time
	armed    atomic.Pointer[deadlineTimer] // nil until armed or ended
}

// deadlineTimer is what WithDeadline made, or, for a request that ended
// before anything armed it, the canceled context it was left with.
type deadlineTimer struct {
	ctx    context.Context
	cancel context.CancelFunc
	ended  bool // armed by end: ctx carries no values, the parent does
}

func withRequestDeadline(parent context.Context, d time.Duration) *requestDeadline {
	return &requestDeadline{parent: parent, deadline: time.Now().Add(d)}
}

func (r *requestDeadline) Deadline() (time.Time, bool) { return r.deadline, true }

func (r *requestDeadline) Done() <-chan struct{} { return r.arm().ctx.Done() }

func (r *requestDeadline) Err() error {
	if t := r.armed.Load(); t != nil {
		return t.ctx.Err()
	}
	if err := r.parent.Err(); err != nil {
		return err
	}
	if !time.Now().Before(r.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// Value asks the armed context once there is one, so that a context
// derived from this one finds the armed context's cancelCtx (by the
// context package's private key) and registers with it as a child, as it
// would with WithDeadline's, instead of watching Done in a goroutine of
// its own.
func (r *requestDeadline) Value(key any) any {
	if t := r.armed.Load(); t != nil && !t.ended {
		return t.ctx.Value(key)
	}
	return r.parent.Value(key)
}

// arm makes the timer, once: of two first callers at the same moment, one
// makes it and the other cancels the one it made and takes it.
func (r *requestDeadline) arm() *deadlineTimer {
	if t := r.armed.Load(); t != nil {
		return t
	}
	ctx, cancel := context.WithDeadline(r.parent, r.deadline)
	t := &deadlineTimer{ctx: ctx, cancel: cancel}
	if !r.armed.CompareAndSwap(nil, t) {
		cancel()
		return r.armed.Load()
	}
	return t
}

// end cancels the context at the end of its request; one never armed is
// left canceled (Done closed, Err context.Canceled) without a timer, and
// without a lock: endedDeadline was canceled once for all.
func (r *requestDeadline) end() {
	if r.armed.CompareAndSwap(nil, endedDeadline) {
		return
	}
	r.armed.Load().cancel()
}

// endedDeadline stands for every request that ended unarmed.
var endedDeadline = func() *deadlineTimer {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return &deadlineTimer{ctx: ctx, cancel: cancel, ended: true}
}()
