package load

import (
	"runtime"
	"syscall"
	"time"
)

// prSetTimerslack is prctl's PR_SET_TIMERSLACK (linux/prctl.h).
const prSetTimerslack = 29

// An open-loop step must send each order when it is due: its latency is
// counted from that moment, so a send that leaves late adds its lateness to
// the order's latency. Go's time.Sleep cannot be relied on for that below a
// millisecond: when nothing else runs, the runtime waits for its next timer
// in epoll_pwait, whose timeout is in whole milliseconds, rounded up
// (runtime/netpoll_epoll.go), so a sleep of 200 µs on an idle process takes
// about 1.05 ms. The open loop of session 12 and before slept 200 µs
// between releases and so sent orders up to a millisecond late at 300 and
// 1,000 orders/s, an error that sat inside every low-load p50 and p99
// (measured: Result.LateP50 and LateP99).

// Dispatcher releases the writes of an open loop at their due times from
// an OS thread of its own, which waits with clock_nanosleep (nanosecond
// timeouts) and a timer slack of 1 ns instead of the kernel's default
// 50 µs.
type Dispatcher struct{}

// Start locks the calling goroutine to its thread for the step and makes
// the thread's sleeps precise; Stop releases it.
func (Dispatcher) Start() {
	runtime.LockOSThread()
	syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerslack, 1, 0)
}

func (Dispatcher) Stop() { runtime.UnlockOSThread() }

// SleepUntil returns at t or just after it. Long waits sleep the usual way
// until a couple of milliseconds before t; the rest is one nanosleep.
func (Dispatcher) SleepUntil(t time.Time) {
	for {
		d := time.Until(t)
		switch {
		case d <= 0:
			return
		case d > 3*time.Millisecond:
			time.Sleep(d - 2*time.Millisecond)
		default:
			ts := syscall.NsecToTimespec(d.Nanoseconds())
			syscall.Nanosleep(&ts, nil)
		}
	}
}
