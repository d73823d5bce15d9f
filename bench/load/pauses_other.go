//go:build !linux

package load

import (
	"os"
	"time"
)

func lockRealtime() (bool, string) {
	return false, "at the normal priority (no real-time priority here)"
}

func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

func fdatasync(f *os.File) error { return f.Sync() }
