package gctune

import (
	"runtime/debug"
	"testing"
)

func TestServer(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, c := range []struct {
		env      string
		before   int
		want     int
		wantFrom bool
	}{
		{"", 100, ServerPercent, false},
		{"150", 150, 150, true}, // the runtime read GOGC=150 at start; Server leaves it
		{"off", -1, -1, true},
	} {
		t.Setenv("GOGC", c.env)
		debug.SetGCPercent(c.before)
		p, from := Server()
		if got := debug.SetGCPercent(c.before); p != c.want || from != c.wantFrom || got != c.want {
			t.Errorf("GOGC=%q: Server() = %d, %v; in force %d; want %d, %v", c.env, p, from, got, c.want, c.wantFrom)
		}
	}
}
