package main

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestPGCPUKeepsWhatEndedChildrenUsed: the CPU of a child that ended (as a
// PostgreSQL backend or autovacuum worker ends during a step) stays in the
// parent's total, so the difference over a step cannot go negative. The
// test process plays the postmaster.
func TestPGCPUKeepsWhatEndedChildrenUsed(t *testing.T) {
	before := pgCPU(os.Getpid())
	cmd := exec.Command("sh", "-c", `i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done`)
	if err := cmd.Run(); err != nil { // Run waits: the child is reaped
		t.Fatal(err)
	}
	child := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if child < 100*time.Millisecond {
		t.Fatalf("the child used only %v: too little to tell", child)
	}
	// Clock ticks are 10 ms.
	if used := pgCPU(os.Getpid()) - before; used < child-20*time.Millisecond {
		t.Fatalf("the ended child used %v, and the total grew by %v", child, used)
	}
}
