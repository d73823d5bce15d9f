package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServeWithPrivateDatabase runs `levee serve --demo` exactly as make run
// does, with its own PostgreSQL in the data directory: it signs in with a
// printed token, then stops it as Ctrl-C would and checks that PostgreSQL
// went with it.
func TestServeWithPrivateDatabase(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("LEVEE_ADMIN_TOKEN", "")
	base, err := os.MkdirTemp("", "levee-serve-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o711) // the postgres user must reach the cluster when we are root
	t.Cleanup(func() { os.RemoveAll(base) })
	data := filepath.Join(base, "data")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	exited := make(chan int, 1)
	go func() {
		code, err := run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data", data, "--demo"}, pw, io.Discard)
		if err != nil {
			t.Errorf("serve: %v", err)
		}
		pw.Close()
		exited <- code
	}()
	var out strings.Builder
	var addr string
	sc := bufio.NewScanner(pr)
	serving := regexp.MustCompile(`serving on http://(\S+)`)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if m := serving.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if addr == "" {
		t.Fatalf("never served; output:\n%s", out.String())
	}
	token := regexp.MustCompile(`resident\s+alice\s+\S+\s+(lv_\S+)`).FindStringSubmatch(out.String())
	if token == nil || !strings.Contains(out.String(), "Bootstrap admin token") {
		t.Fatalf("sign-ins not printed:\n%s", out.String())
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+token[1])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var me map[string]any
	json.NewDecoder(resp.Body).Decode(&me)
	resp.Body.Close()
	// alice started with 1000 and has traded and disputed since.
	if resp.StatusCode != 200 || me["name"] != "alice" || me["cash"] == "1000.000000" || me["cash"] == nil {
		t.Fatalf("/me: %d %v", resp.StatusCode, me)
	}
	if _, err := os.Stat(filepath.Join(data, "pg", "PG_VERSION")); err != nil {
		t.Fatalf("no cluster in <data>/pg: %v", err)
	}

	cancel() // what SIGINT does
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("exit code %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("did not shut down within 30s")
	}
	if _, err := os.Stat(filepath.Join(data, "pg", "postmaster.pid")); !os.IsNotExist(err) {
		t.Fatalf("PostgreSQL still running after shutdown (postmaster.pid: %v)", err)
	}
}
