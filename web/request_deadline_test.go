package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"levee/market"
	"levee/market/engine"
)

type ctxKey struct{}

// TestRequestDeadlineIsWithDeadline: whoever uses a request's context sees
// what context.WithDeadline would give them: the deadline, Done closing
// when it passes or when the request's own context ends, the same errors,
// the parent's values, and contexts derived from it canceled with it.
func TestRequestDeadlineIsWithDeadline(t *testing.T) {
	t.Run("unarmed until Done", func(t *testing.T) {
		r := withRequestDeadline(context.Background(), time.Hour)
		if d, ok := r.Deadline(); !ok || time.Until(d) < 59*time.Minute {
			t.Fatalf("Deadline() = %v, %t", d, ok)
		}
		if r.Err() != nil || r.armed.Load() != nil {
			t.Fatalf("Err %v, armed %v before anything waited", r.Err(), r.armed.Load())
		}
		select {
		case <-r.Done():
			t.Fatal("done an hour early")
		default:
		}
		if r.armed.Load() == nil {
			t.Fatal("Done did not arm the timer")
		}
		r.end()
		if !errors.Is(r.Err(), context.Canceled) {
			t.Fatalf("Err after end = %v", r.Err())
		}
		<-r.Done()
	})
	t.Run("the deadline passes while waiting", func(t *testing.T) {
		r := withRequestDeadline(context.Background(), 20*time.Millisecond)
		defer r.end()
		select {
		case <-r.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done never closed")
		}
		if !errors.Is(r.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err = %v", r.Err())
		}
	})
	t.Run("the deadline passed before anyone asked", func(t *testing.T) {
		r := withRequestDeadline(context.Background(), time.Millisecond)
		defer r.end()
		time.Sleep(5 * time.Millisecond)
		if !errors.Is(r.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err = %v", r.Err())
		}
		select {
		case <-r.Done():
		case <-time.After(time.Second):
			t.Fatal("Err said the deadline passed but Done is open")
		}
	})
	t.Run("the request's context ends first", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
		r := withRequestDeadline(parent, time.Hour)
		defer r.end()
		if r.Value(ctxKey{}) != "v" {
			t.Fatal("lost the parent's value")
		}
		cancel()
		if !errors.Is(r.Err(), context.Canceled) {
			t.Fatalf("unarmed Err = %v", r.Err())
		}
		<-r.Done()
		if !errors.Is(r.Err(), context.Canceled) || r.Value(ctxKey{}) != "v" {
			t.Fatalf("armed Err = %v, value %v", r.Err(), r.Value(ctxKey{}))
		}
	})
	t.Run("derived contexts are its children", func(t *testing.T) {
		r := withRequestDeadline(context.Background(), 50*time.Millisecond)
		defer r.end()
		before := runtime.NumGoroutine()
		var children []context.Context
		for range 100 {
			c, cancel := context.WithCancel(r)
			defer cancel()
			children = append(children, c)
		}
		// A parent the context package does not recognize is watched by
		// a goroutine per child; a cancelCtx registers them.
		if n := runtime.NumGoroutine() - before; n > 10 {
			t.Fatalf("%d goroutines to watch 100 derived contexts", n)
		}
		for _, c := range children {
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("a derived context outlived the deadline")
			}
			if !errors.Is(c.Err(), context.DeadlineExceeded) {
				t.Fatalf("derived Err = %v", c.Err())
			}
		}
	})
	t.Run("ended unarmed", func(t *testing.T) {
		parent := context.WithValue(context.Background(), ctxKey{}, "v")
		r := withRequestDeadline(parent, time.Hour)
		r.end()
		<-r.Done()
		if !errors.Is(r.Err(), context.Canceled) || r.Value(ctxKey{}) != "v" {
			t.Fatalf("Err = %v, value %v", r.Err(), r.Value(ctxKey{}))
		}
		c, cancel := context.WithCancel(r)
		defer cancel()
		<-c.Done() // derived from an ended request: canceled at once
	})
	t.Run("many waiters arm one timer", func(t *testing.T) {
		r := withRequestDeadline(context.Background(), 20*time.Millisecond)
		defer r.end()
		var wg sync.WaitGroup
		chans := make([]<-chan struct{}, 16)
		for i := range chans {
			wg.Go(func() { chans[i] = r.Done() })
		}
		wg.Wait()
		for _, ch := range chans {
			if ch != chans[0] {
				t.Fatal("two timers for one request")
			}
			<-ch
		}
	})
}

// ctxMarkets fills every order at once, as stubMarkets does, and hands the
// order's context to seen.
type ctxMarkets struct {
	stubMarkets
	seen func(context.Context)
}

func (m ctxMarkets) Submit(ctx context.Context, account, marketID int64, o market.Order, key string) (engine.Result, error) {
	m.seen(ctx)
	return m.stubMarkets.Submit(ctx, account, marketID, o, key)
}

// TestOrderArmsNoTimer: no middleware on the order's way arms its
// request's deadline (the engine's side: engine's
// TestOrderTakenAtOnceDoesNotWaitOnItsContext).
func TestOrderArmsNoTimer(t *testing.T) {
	var got *requestDeadline
	s := New(Deps{Accounts: stubAccounts{}, Markets: ctxMarkets{seen: func(ctx context.Context) { got, _ = ctx.(*requestDeadline) }},
		Logger: slog.New(slog.DiscardHandler), Limits: Limits{PerAccount: 1e9, PerAddress: 1e9}})
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, orderRequest())
	if w.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if got == nil {
		t.Fatal("the order's context is not its request's deadline")
	}
	if a := got.armed.Load(); a == nil || !a.ended {
		t.Fatalf("the order armed its deadline's timer (%+v)", a)
	}
}
