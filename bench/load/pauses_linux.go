package load

import (
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lockRealtime locks the calling goroutine to its thread, for good (the
// thread ends with the process), and asks for SCHED_FIFO and a timer slack
// of 1 ns.
func lockRealtime() (bool, string) {
	runtime.LockOSThread()
	syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerslack, 1, 0)
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 10}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return false, "at the normal priority (SCHED_FIFO refused: " + err.Error() + "; its delays include waits for a core)"
	}
	return true, "at SCHED_FIFO 10"
}

// sleepUntil sleeps until t with one nanosleep.
func sleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		ts := syscall.NsecToTimespec(d.Nanoseconds())
		syscall.Nanosleep(&ts, nil)
	}
}

func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
