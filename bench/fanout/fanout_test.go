package fanout

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"levee/web/live"
)

type snapshots struct {
	mu  sync.Mutex
	seq int64
}

func (s *snapshots) SnapshotJSON(ctx context.Context, id int64) (json.RawMessage, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Appendf(nil, `{"type":"snapshot","market":"%d","seq":%d}`, id, s.seq), s.seq, nil
}

// TestClientsMeasureTheRealHub runs the subscribers against web/live's hub,
// with each reader, and checks that every (event, client) pair is timed.
func TestClientsMeasureTheRealHub(t *testing.T) {
	for _, reader := range readers {
		t.Run(reader, func(t *testing.T) { measureTheRealHub(t, reader) })
	}
}

func measureTheRealHub(t *testing.T, reader string) {
	snap := &snapshots{}
	hub := live.NewHub(snap, live.Options{Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer hub.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx := context.Background()

	if ok, why, err := Available(ctx, url); !ok || err != nil {
		t.Fatalf("hub not available: %s %v", why, err)
	}
	const clients, events = 50, 10
	s, err := Subscribe(ctx, Config{URL: url, Market: 7, Clients: clients, Events: events, Reader: reader})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= events; i++ {
		snap.mu.Lock()
		snap.seq = int64(i)
		snap.mu.Unlock()
		payload := fmt.Appendf(nil, `{"type":"trade","market":"7","seq":%d,"ts":%q}`, i, time.Now().UTC().Format(time.RFC3339Nano))
		hub.Publish(live.Event{Type: "trade", MarketID: 7, Seq: int64(i), Payload: payload})
		time.Sleep(2 * time.Millisecond)
	}
	sum := s.Collect(10 * time.Second)
	if sum.Subscribed != clients || sum.Pairs != clients*events || sum.Events != events || sum.Missing != 0 || sum.Clock != "ts" {
		t.Fatalf("summary %+v", sum)
	}
	if sum.P50ms <= 0 || sum.P99ms < sum.P50ms || sum.LastMaxMs < sum.P99ms || sum.LastMaxMs > 5000 {
		t.Fatalf("implausible latencies %+v", sum)
	}
}

func TestAvailableSaysWhyNot(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ok, why, err := Available(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/api/v1/ws")
	if ok || err != nil || !strings.Contains(why, "404") {
		t.Fatalf("got %v %q %v", ok, why, err)
	}
}

func TestParseEventTimestamps(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	for _, tc := range []struct {
		msg   string
		clock string
	}{
		{fmt.Sprintf(`{"type":"trade","seq":3,"ts":%q}`, at.Format(time.RFC3339Nano)), "ts"},
		{fmt.Sprintf(`{"type":"trade","seq":3,"ts":%d}`, at.UnixMicro()), "ts"},
		{fmt.Sprintf(`{"type":"trade","seq":3,"ts":%d}`, at.UnixNano()), "ts"},
		{fmt.Sprintf(`{"type":"trade","seq":3,"ts":"%d"}`, at.UnixMilli()), "ts"},
		{fmt.Sprintf(`{"type":"trade","trade":{"seq":3,"at":%q}}`, at.Format(time.RFC3339Nano)), "at"},
		// web.Live's trade message, parsed by the fast path.
		{fmt.Sprintf(`{"type":"trade","market":"12","seq":3,"outcome":0,"side":"buy","shares":"1.000000","amount":"0.512500",`+
			`"prices":["0.512500","0.487500"],"at":"2026-01-01T00:00:00Z","ts":%q}`, at.Format(time.RFC3339Nano)), "ts"},
	} {
		typ, seq, ts, clock := parseEvent([]byte(tc.msg))
		if typ != "trade" || seq != 3 || clock != tc.clock || ts.Sub(at).Abs() > time.Millisecond {
			t.Errorf("%s: %s %d %s %s", tc.msg, typ, seq, ts, clock)
		}
	}
}
