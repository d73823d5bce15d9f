package main

import (
	"strings"
	"testing"
	"time"
)

// TestConfigFromEnvironment: the switches and durations that only the
// environment sets, and a clear error from Validate for a value that is not
// one of them, never a silent default.
func TestConfigFromEnvironment(t *testing.T) {
	for _, c := range []struct {
		env, value string
		check      func(Config) bool
		refused    string // in Validate's error; "" when accepted
	}{
		{"LEVEE_WS_WRITER_POOL", "", func(c Config) bool { return !c.WSWritePumps }, ""},
		{"LEVEE_WS_WRITER_POOL", "on", func(c Config) bool { return !c.WSWritePumps }, ""},
		{"LEVEE_WS_WRITER_POOL", "off", func(c Config) bool { return c.WSWritePumps }, ""},
		{"LEVEE_WS_WRITER_POOL", "yes", func(c Config) bool { return !c.WSWritePumps }, "LEVEE_WS_WRITER_POOL must be on or off"},
		{"LEVEE_JOURNAL", "previous", func(c Config) bool { return c.PreviousJournal && c.OneStatementFrom == 0 }, ""},
		{"LEVEE_JOURNAL", "four-trips", func(c Config) bool { return c.FourTrips && !c.PreviousJournal && c.OneStatementFrom == 0 }, ""},
		{"LEVEE_JOURNAL", "two-trips", func(c Config) bool {
			return c.TwoTrips && !c.FourTrips && !c.PreviousJournal && c.OneStatementFrom == 0
		}, ""},
		{"LEVEE_JOURNAL", "", func(c Config) bool {
			return !c.FourTrips && !c.TwoTrips && !c.PreviousJournal && c.OneStatementFrom == 0 && c.JournalInFlight == 0
		}, ""},
		{"LEVEE_JOURNAL", "one-statement", func(c Config) bool { return c.OneStatementFrom == 1 && !c.PreviousJournal }, ""},
		{"LEVEE_JOURNAL", "pipelined", func(c Config) bool { return c.JournalInFlight == 2 && c.OneStatementFrom == 0 && !c.PreviousJournal }, ""},
		{"LEVEE_JOURNAL_OVERLAP_FROM", "1", func(c Config) bool { return c.JournalOverlapFrom == 0 }, "applies only with LEVEE_JOURNAL=pipelined"},
		{"LEVEE_JOURNAL_OVERLAP_FROM", "0", func(c Config) bool { return c.JournalOverlapFrom == 0 }, "LEVEE_JOURNAL_OVERLAP_FROM must be"},
		{"LEVEE_JOURNAL_OVERLAP_FROM", "many", func(c Config) bool { return c.JournalOverlapFrom == 0 }, "LEVEE_JOURNAL_OVERLAP_FROM must be"},
		{"LEVEE_JOURNAL", "bogus", func(c Config) bool { return !c.PreviousJournal && c.OneStatementFrom == 0 }, "LEVEE_JOURNAL must be"},
		{"LEVEE_BOOK_IDLE_AFTER", "", func(c Config) bool { return c.BookIdleAfter == 0 }, ""},
		{"LEVEE_BOOK_IDLE_AFTER", "30s", func(c Config) bool { return c.BookIdleAfter == 30*time.Second }, ""},
		{"LEVEE_BOOK_IDLE_AFTER", "-1s", func(c Config) bool { return c.BookIdleAfter == -time.Second }, ""},
		{"LEVEE_BOOK_IDLE_AFTER", "soon", func(c Config) bool { return c.BookIdleAfter == 0 }, "LEVEE_BOOK_IDLE_AFTER must be a duration"},
		{"LEVEE_ADVANCE_EVERY", "2s", func(c Config) bool { return c.AdvanceEvery == 2*time.Second }, ""},
		{"LEVEE_ADVANCE_EVERY", "5 s", func(c Config) bool { return c.AdvanceEvery == 5*time.Second }, "LEVEE_ADVANCE_EVERY must be a duration"},
		{"LEVEE_DELIVER_EVERY", "0s", func(c Config) bool { return c.DeliverEvery == 0 }, "LEVEE_DELIVER_EVERY must be a positive duration"},
		{"LEVEE_SLOW_COMMIT", "4ms", func(c Config) bool { return c.SlowCommit == 4*time.Millisecond }, ""},
		{"LEVEE_SLOW_COMMIT", "0s", func(c Config) bool { return c.SlowCommit == 0 }, "LEVEE_SLOW_COMMIT must be a positive duration"},
		{"LEVEE_WITNESS_EVERY", "1m", func(c Config) bool { return c.WitnessEvery == time.Minute }, ""},
	} {
		for _, k := range []string{"LEVEE_WS_WRITER_POOL", "LEVEE_JOURNAL", "LEVEE_JOURNAL_OVERLAP_FROM", "LEVEE_BOOK_IDLE_AFTER", "LEVEE_ADVANCE_EVERY",
			"LEVEE_DELIVER_EVERY", "LEVEE_WITNESS_EVERY", "LEVEE_SLOW_COMMIT", "LEVEE_NATS_URL", "LEVEE_SMTP_URL"} {
			t.Setenv(k, "")
		}
		t.Setenv(c.env, c.value)
		got := defaultConfig()
		if !c.check(got) {
			t.Errorf("%s=%q: read as %+v", c.env, c.value, got)
		}
		err := got.Validate()
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%s=%q: refused: %v", c.env, c.value, err)
		case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("%s=%q: Validate said %v, want %q", c.env, c.value, err, c.refused)
		}
	}
	// The overlap threshold is taken with two journal transactions in flight.
	t.Setenv("LEVEE_JOURNAL", "pipelined")
	t.Setenv("LEVEE_JOURNAL_OVERLAP_FROM", "32")
	if got := defaultConfig(); got.JournalOverlapFrom != 32 || got.JournalInFlight != 2 || got.Validate() != nil {
		t.Errorf("LEVEE_JOURNAL=pipelined LEVEE_JOURNAL_OVERLAP_FROM=32: read as %+v (%v)", got, got.Validate())
	}
}
