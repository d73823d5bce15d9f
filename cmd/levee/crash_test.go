package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee/migrations/dbtest"
)

const childServeEnv = "LEVEE_TEST_CHILD_SERVE"

// TestChildServe is not a test on its own: TestKillDuringLoad re-executes
// the test binary with childServeEnv set to run `levee serve` in a process
// it can SIGKILL.
func TestChildServe(t *testing.T) {
	if os.Getenv(childServeEnv) == "" {
		return
	}
	code, err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0"}, os.Stdout, io.Discard)
	if err != nil {
		fmt.Println("error:", err)
	}
	os.Exit(code)
}

type childServer struct {
	cmd  *exec.Cmd
	addr string
}

// childData is the data directory of the children serving each database:
// one per database, so that the instances and restarts of one node share
// its key, and none in the source tree.
var childData = struct {
	sync.Mutex
	dirs map[string]string
}{dirs: map[string]string{}}

func startChild(t *testing.T, url string, env ...string) *childServer {
	t.Helper()
	childData.Lock()
	dir, ok := childData.dirs[url]
	if !ok {
		dir = t.TempDir()
		childData.dirs[url] = dir
	}
	childData.Unlock()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildServe$")
	cmd.Env = append(os.Environ(), childServeEnv+"=1", "DATABASE_URL="+url, "LEVEE_ADMIN_TOKEN="+testAdminToken, "LEVEE_LOG_LEVEL=error", "LEVEE_DATA="+dir)
	cmd.Env = append(cmd.Env, env...)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	re := regexp.MustCompile(`serving on http://(\S+)`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, out)
			return &childServer{cmd: cmd, addr: m[1]}
		}
	}
	cmd.Process.Kill()
	t.Fatal("child server did not start")
	return nil
}

func (c *childServer) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
}

// TestKillDuringLoad SIGKILLs the server three times while residents trade,
// restarts it each time, and checks that every acknowledged order is stored
// exactly once with the acknowledged sequence number, that retries with the
// same key never trade twice, and that the ledger verifies.
func TestKillDuringLoad(t *testing.T) {
	url := dbtest.NewURL(t)
	srv := startChild(t, url)
	defer func() { srv.kill() }()
	tess, alice, _ := cityAt(t, "http://"+srv.addr)
	closes := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	_, mk := tess.do("POST", "/api/v1/markets", `{"question":"q?","outcomes":["y","n"],"liquidity":"100","closes_at":"`+closes+`"}`)
	path := "/api/v1/markets/" + mk["id"].(string) + "/orders"

	var (
		mu    sync.Mutex
		acked = map[string]float64{}
		sent  []string
		base  atomic.Value
		n     atomic.Int64
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	base.Store("http://" + srv.addr)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				key := fmt.Sprintf("k%d", n.Add(1))
				mu.Lock()
				sent = append(sent, key)
				mu.Unlock()
				st, r := tryOrder(base.Load().(string), alice.token, path, key)
				if st == 201 {
					mu.Lock()
					acked[key] = r
					mu.Unlock()
				} else {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	for i := 0; i < 3; i++ {
		time.Sleep(600 * time.Millisecond)
		srv.kill()
		srv = startChild(t, url)
		base.Store("http://" + srv.addr)
	}
	time.Sleep(600 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	// Retry everything not acknowledged, with its key, as a client would:
	// waiting when told to slow down (the load above can exhaust the
	// account's rate limit, whose bucket then refills at its rate).
	for _, key := range sent {
		if _, ok := acked[key]; ok {
			continue
		}
		st, seq := tryOrder(base.Load().(string), alice.token, path, key)
		for tries := 0; st == http.StatusTooManyRequests && tries < 100; tries++ {
			time.Sleep(50 * time.Millisecond)
			st, seq = tryOrder(base.Load().(string), alice.token, path, key)
		}
		if st != 201 {
			t.Fatalf("retry %s: %d", key, st)
		}
		acked[key] = seq
	}
	db := sqlx.MustOpen("postgres", url)
	defer db.Close()
	var stored []struct {
		Key string  `db:"idempotency_key"`
		Seq float64 `db:"seq"`
	}
	if err := db.Select(&stored, `SELECT idempotency_key, seq FROM trades WHERE idempotency_key IS NOT NULL ORDER BY seq`); err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(sent) {
		t.Fatalf("%d orders sent, %d trades stored", len(sent), len(stored))
	}
	for i, s := range stored {
		if s.Seq != float64(i+1) {
			t.Fatalf("trade seq %v at position %d: a gap", s.Seq, i)
		}
		if acked[s.Key] != s.Seq {
			t.Fatalf("order %s acknowledged as seq %v, stored as %v", s.Key, acked[s.Key], s.Seq)
		}
	}
	_, v := (&client{t: t, base: base.Load().(string), http: &http.Client{}}).do("GET", "/api/v1/ledger/verify", "")
	if v["ok"] != true {
		t.Fatalf("ledger after crashes: %v", v)
	}
	t.Logf("%d orders across 3 SIGKILLs, all stored exactly once", len(sent))
}

// tryOrder buys a little with an idempotency key; a dead server is status 0.
func tryOrder(base, token, path, key string) (int, float64) {
	return tryOrderWithin(10*time.Second, base, token, path, key)
}

// tryOrderWithin is tryOrder with a timeout of its own (a load balancer's).
func tryOrderWithin(timeout time.Duration, base, token, path, key string) (int, float64) {
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(`{"outcome":0,"side":"buy","shares":"0.1"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", key)
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	var r struct {
		Seq float64 `json:"seq"`
	}
	json.NewDecoder(resp.Body).Decode(&r)
	return resp.StatusCode, r.Seq
}
