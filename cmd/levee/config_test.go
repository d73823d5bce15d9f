package main

import (
	"testing"
	"time"
)

// TestConfigFromEnvironment: the switches that only the environment sets.
func TestConfigFromEnvironment(t *testing.T) {
	for _, c := range []struct {
		env, value                   string
		pool, previous, oneStatement bool
	}{
		{"LEVEE_WS_WRITER_POOL", "", false, false, false},
		{"LEVEE_WS_WRITER_POOL", "on", true, false, false},
		{"LEVEE_WS_WRITER_POOL", "yes", false, false, false},
		{"LEVEE_JOURNAL", "previous", false, true, false},
		{"LEVEE_JOURNAL", "one-statement", false, false, true},
		{"LEVEE_JOURNAL", "bogus", false, false, false},
	} {
		t.Setenv("LEVEE_WS_WRITER_POOL", "")
		t.Setenv("LEVEE_JOURNAL", "")
		t.Setenv(c.env, c.value)
		got := defaultConfig()
		if got.BookIdleAfter != 0 {
			t.Errorf("%s=%q: book idle after %s without LEVEE_BOOK_IDLE_AFTER", c.env, c.value, got.BookIdleAfter)
		}
		if got.WSWriterPool != c.pool || got.PreviousJournal != c.previous || got.OneStatementJournal != c.oneStatement {
			t.Errorf("%s=%q: pool %v previous %v one-statement %v", c.env, c.value, got.WSWriterPool, got.PreviousJournal, got.OneStatementJournal)
		}
	}
}

// TestBookIdleAfterFromEnvironment: LEVEE_BOOK_IDLE_AFTER takes a Go
// duration; anything else leaves the engine's default.
func TestBookIdleAfterFromEnvironment(t *testing.T) {
	for value, want := range map[string]time.Duration{"": 0, "30s": 30 * time.Second, "-1s": -time.Second, "soon": 0} {
		t.Setenv("LEVEE_BOOK_IDLE_AFTER", value)
		if got := defaultConfig().BookIdleAfter; got != want {
			t.Errorf("LEVEE_BOOK_IDLE_AFTER=%q: %s, want %s", value, got, want)
		}
	}
}
