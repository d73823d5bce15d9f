package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"levee/migrations/dbtest"
)

const childLeveeEnv = "LEVEE_TEST_CHILD_LEVEE"

// TestChildLevee is not a test on its own: TestDrillFederated re-executes
// the test binary with childLeveeEnv set to the arguments of a `levee`
// process, so that the drill runs real processes it can SIGKILL.
func TestChildLevee(t *testing.T) {
	args := os.Getenv(childLeveeEnv)
	if args == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	code, err := run(ctx, strings.Split(args, "\x1f"), os.Stdout, os.Stderr)
	if err != nil {
		os.Stderr.WriteString("error: " + err.Error() + "\n")
	}
	os.Exit(code)
}

// TestDrillFederated runs `levee drill --federated`: four node processes,
// two SIGKILLed and restarted, with a database each from the test server.
func TestDrillFederated(t *testing.T) {
	var out bytes.Buffer
	d := &fedDrill{ctx: context.Background(), out: &out, dir: t.TempDir(),
		dbURLs: []string{dbtest.NewURL(t), dbtest.NewURL(t), dbtest.NewURL(t), dbtest.NewURL(t)},
		spawn: func(args, env []string) *exec.Cmd {
			cmd := exec.Command(os.Args[0], "-test.run=^TestChildLevee$")
			cmd.Env = append(append(os.Environ(), env...), childLeveeEnv+"="+strings.Join(args, "\x1f"))
			return cmd
		}}
	if err := d.run(); err != nil {
		t.Fatalf("drill: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	for _, want := range []string{"SIGKILL", "has not answered", "connection refused", "carries the quorum: the reallocation is executed",
		"cosigned by Samar, Biliran and Cebu", "federated drill complete"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the drill's report lacks %q", want)
		}
	}
}
