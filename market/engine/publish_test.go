package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"levee"
	"levee/market/engine"
)

// batches records what a BatchPublisher is given.
type batches struct {
	mu     sync.Mutex
	single int
	got    [][]engine.Event
}

func (b *batches) Publish(engine.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.single++
}

// last is the seq of the last event published.
func (b *batches) last() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.got) == 0 {
		return 0
	}
	evs := b.got[len(b.got)-1]
	return evs[len(evs)-1].Seq
}

func (b *batches) PublishBatch(evs []engine.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, evs)
}

// TestCommitPublishedAsOneBatch: a publisher that takes batches gets each
// commit's trades, in seq order and without a gap from the commit before,
// then the quote at the last of them, in one call (so that the websocket
// hub writes them to a subscriber in one write).
func TestCommitPublishedAsOneBatch(t *testing.T) {
	pub := &batches{}
	f := mustFixtureWith(t, engine.Options{Publisher: pub})
	m := f.MustMarket(levee.Units(50), "yes", "no")
	traders := f.MustAccounts(8, levee.Units(1000))
	var wg sync.WaitGroup
	for i, a := range traders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := f.e.Submit(context.Background(), a, m.ID, buy(i%2, "1"), ""); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// A book publishes a commit after it answers the commit's orders.
	want := int64(len(traders) * 20)
	deadline := time.Now().Add(5 * time.Second)
	for pub.last() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}

	pub.mu.Lock()
	defer pub.mu.Unlock()
	if pub.single != 0 {
		t.Errorf("%d events published one by one", pub.single)
	}
	var seq int64
	for _, evs := range pub.got {
		if len(evs) < 2 {
			t.Fatalf("a batch of %d events, want trades and a quote", len(evs))
		}
		for _, ev := range evs[:len(evs)-1] {
			if ev.Type != engine.EventTrade || ev.Seq != seq+1 || ev.MarketID != m.ID {
				t.Fatalf("got %s %d of market %d after seq %d, want trade %d of market %d", ev.Type, ev.Seq, ev.MarketID, seq, seq+1, m.ID)
			}
			seq = ev.Seq
		}
		if q := evs[len(evs)-1]; q.Type != engine.EventQuote || q.Seq != seq || q.MarketID != m.ID {
			t.Fatalf("a batch ends with %s %d, want the quote at %d", q.Type, q.Seq, seq)
		}
	}
	if seq != want {
		t.Fatalf("trades published up to %d, want %d", seq, want)
	}
}
