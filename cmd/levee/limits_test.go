package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"levee/migrations/dbtest"
)

// TestRateLimits floods the API from one token and from one anonymous
// address: past the allowed burst the answer is 429 with Retry-After, and
// other callers are not affected.
func TestRateLimits(t *testing.T) {
	cfg := Config{Addr: "127.0.0.1:0", DatabaseURL: dbtest.NewURL(t), AdminToken: testAdminToken, DataDir: t.TempDir(),
		LogFormat: "text", RatePerAccount: 20, RatePerAddress: 10}
	m := NewMain(cfg, slog.New(slog.DiscardHandler), io.Discard)
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	flood := func(token string, n int) (limited int, retryAfter string) {
		for i := 0; i < n; i++ {
			req, _ := http.NewRequest("GET", "http://"+m.Addr()+"/api/v1/districts", nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests {
				limited++
				retryAfter = resp.Header.Get("Retry-After")
			} else if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		return
	}
	if limited, ra := flood(testAdminToken, 100); limited == 0 || ra != "1" {
		t.Fatalf("100 quick requests from one token: %d limited, Retry-After %q", limited, ra)
	}
	if limited, ra := flood("", 60); limited == 0 || ra != "1" {
		t.Fatalf("60 quick anonymous requests: %d limited, Retry-After %q", limited, ra)
	}
}
