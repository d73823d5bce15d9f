package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"levee/federation"
	"levee/ledger"
)

// The federated drill: the hurricane of docs/crisis.md on four real nodes,
// each a separate levee process with its own data directory, database and
// port (docs/federation.md). Two neighbours are SIGKILLed and come back.

// spawnFunc starts a levee process with args and extra environment; the
// binary starts itself, a test re-executes its own binary.
type spawnFunc func(args, env []string) *exec.Cmd

// fedNode is one node process of the drill.
type fedNode struct {
	name, addr, data, token, dbURL string
	cmd                            *exec.Cmd
	exited                         chan struct{}
	key                            string
	accountTokens                  map[string]string // Leyte's people, by name
}

func (n *fedNode) url() string { return "http://" + n.addr }

// fedDrill runs the drill.
type fedDrill struct {
	ctx    context.Context
	out    io.Writer
	spawn  spawnFunc
	dir    string
	dbURLs []string // one per node, or none: each node runs its private PostgreSQL
	nodes  []*fedNode
	http   *http.Client
	step   int
}

// drillFederated runs `levee drill --federated`.
func drillFederated(ctx context.Context, cfg Config, stdout io.Writer) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 1, err
	}
	spawn := func(args, env []string) *exec.Cmd {
		cmd := exec.Command(self, args...)
		cmd.Env = append(os.Environ(), env...)
		return cmd
	}
	d := &fedDrill{ctx: ctx, out: stdout, spawn: spawn, dir: cfg.DataDir}
	if err := d.run(); err != nil {
		return 1, err
	}
	return 0, nil
}

func (d *fedDrill) say(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "%d. "+format+"\n", append([]any{d.step}, args...)...)
}

func (d *fedDrill) note(format string, args ...any) { fmt.Fprintf(d.out, "   "+format+"\n", args...) }

func (d *fedDrill) run() error {
	d.http = &http.Client{Timeout: 10 * time.Second}
	if d.dir == "" || d.dir == defaultConfig().DataDir {
		dir, err := os.MkdirTemp("", "levee-drill-federated-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		d.dir = dir
	}
	os.Chmod(d.dir, 0o711) // the postgres user must reach the clusters when we are root
	defer d.stopAll()
	for i, name := range []string{"Leyte", "Samar", "Biliran", "Cebu"} {
		tok := make([]byte, 16)
		rand.Read(tok)
		n := &fedNode{name: name, data: filepath.Join(d.dir, strings.ToLower(name)), token: "drill-" + hex.EncodeToString(tok)}
		if i < len(d.dbURLs) {
			n.dbURL = d.dbURLs[i]
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		n.addr = ln.Addr().String()
		ln.Close()
		d.nodes = append(d.nodes, n)
	}
	for _, n := range d.nodes {
		if err := d.start(n); err != nil {
			return err
		}
	}
	leyte, samar, biliran, cebu := d.nodes[0], d.nodes[1], d.nodes[2], d.nodes[3]
	d.say("four nodes, each its own process, database and port:")
	for _, n := range d.nodes {
		var id federation.Identity
		if err := d.get(n, "/api/v1/node", &id); err != nil {
			return err
		}
		n.key = id.PublicKey
		d.note("%-8s %s  pid %d  key fingerprint %s", n.name, n.url(), n.cmd.Process.Pid, id.Fingerprint)
	}

	// Founding: Leyte names its three neighbours (quorum 2), each names Leyte.
	if err := d.foundLeyte(leyte); err != nil {
		return err
	}
	for _, n := range d.nodes[1:] {
		if err := d.do(n, "POST", "/api/v1/admin/accounts", n.token, `{"name":"sara","roles":["treasurer"]}`, nil); err != nil {
			return err
		}
		body := fmt.Sprintf(`{"quorum":1,"neighbours":[{"name":"Leyte","url":%q,"public_key":%q}]}`, leyte.url(), leyte.key)
		if err := d.do(n, "PUT", "/api/v1/admin/charter", n.token, body, nil); err != nil {
			return fmt.Errorf("found %s: %w", n.name, err)
		}
	}
	d.say("charters founded after comparing fingerprints: Leyte's quorum is 2 of Samar, Biliran and Cebu; each neighbour names Leyte")
	lines, err := d.budgetLines(leyte)
	if err != nil {
		return err
	}

	// 1. Power fails on two neighbours.
	for _, n := range []*fedNode{biliran, cebu} {
		n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.exited
	}
	d.say("the hurricane: Biliran and Cebu lose power (SIGKILL, pids %d and %d)", biliran.cmd.Process.Pid, cebu.cmd.Process.Pid)

	// 2. A reallocation waits, and says why.
	tess := leyte.accountTokens["tess"]
	var p map[string]any
	body := fmt.Sprintf(`{"kind":"reallocation","payload":{"from_line":"%d","to_line":"%d","amount":"300"},"reason":"move the harbour budget to the north pumps"}`, lines[1], lines[0])
	if err := d.do(leyte, "POST", "/api/v1/quorum/proposals", tess, body, &p); err != nil {
		return fmt.Errorf("propose: %w", err)
	}
	pid := p["id"].(string)
	if err := d.until(10*time.Second, "Samar has Leyte's request", func() (bool, error) { return d.incomingCount(samar, 1) }); err != nil {
		return err
	}
	if err := d.answer(samar, 0, true); err != nil {
		return err
	}
	if err := d.until(10*time.Second, "the proposal shows Samar's vote and both dead nodes' delivery errors", func() (bool, error) {
		if err := d.get(leyte, "/api/v1/quorum/proposals/"+pid, &p); err != nil {
			return false, err
		}
		for _, v := range p["votes"].([]any) {
			v := v.(map[string]any)
			if v["neighbour"] == "Samar" && v["status"] != "approved" {
				return false, nil
			}
			if v["neighbour"] != "Samar" {
				if dl, _ := v["delivery"].(map[string]any); dl == nil || dl["last_error"] == nil {
					return false, nil
				}
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	d.say("reallocation %s (%s) on Leyte: awaiting quorum, %v of %v approvals", pid, p["status"], p["approved"], p["quorum"])
	for _, v := range p["votes"].([]any) {
		v := v.(map[string]any)
		if dl, _ := v["delivery"].(map[string]any); dl != nil && v["status"] == "has not answered" {
			d.note("%-8s has not answered: %v delivery attempts, last error: %v", v["neighbour"], dl["attempts"], dl["last_error"])
		} else {
			d.note("%-8s %s (signed vote %.16s…)", v["neighbour"], v["status"], v["vote"].(map[string]any)["hash"])
		}
	}

	// 3. An emergency, announced to the reachable neighbour.
	sam := leyte.accountTokens["sam"]
	var e map[string]any
	if err := d.do(leyte, "POST", "/api/v1/emergencies", sam, `{"reason":"Hurricane: the north pumps must run tonight","districts":["north","harbour"],"duration":"72h","cap":"5000"}`, &e); err != nil {
		return fmt.Errorf("declare: %w", err)
	}
	act := fmt.Sprintf(`{"kind":"reallocate","reason":"fuel for the north pumps","from_line":"%d","to_line":"%d","amount":"200"}`, lines[1], lines[0])
	if err := d.do(leyte, "POST", "/api/v1/emergencies/"+e["id"].(string)+"/acts", sam, act, nil); err != nil {
		return fmt.Errorf("act: %w", err)
	}
	if err := d.until(10*time.Second, "Samar shows the emergency's notices", func() (bool, error) { return d.noticeCount(samar, 2) }); err != nil {
		return err
	}
	d.say("emergency %s declared on Leyte and one act made; Samar's page shows both notices, signed by Leyte", e["id"])

	// 4. The dead come back.
	for _, n := range []*fedNode{biliran, cebu} {
		if err := d.start(n); err != nil {
			return err
		}
	}
	d.say("Biliran and Cebu restarted (pids %d and %d) on their own data and ports", biliran.cmd.Process.Pid, cebu.cmd.Process.Pid)
	for _, n := range []*fedNode{biliran, cebu} {
		// The request and the notices are separate deliveries, each on its
		// own backoff from the failures while the node was down: wait for
		// all of them, in whatever order they come.
		if err := d.until(20*time.Second, "Leyte's outbox delivers the request and both notices to "+n.name, func() (bool, error) {
			if ok, err := d.noticeCount(n, 2); err != nil || !ok {
				return ok, err
			}
			return d.incomingCount(n, 1)
		}); err != nil {
			return err
		}
	}
	d.note("the outbox delivered the waiting request and both notices to each")
	if err := d.answer(biliran, 0, true); err != nil {
		return err
	}
	if err := d.until(10*time.Second, "the proposal executes at the quorum", func() (bool, error) {
		err := d.get(leyte, "/api/v1/quorum/proposals/"+pid, &p)
		return err == nil && p["status"] == "executed", err
	}); err != nil {
		return err
	}
	d.say("Biliran's late vote, signed inside the window, carries the quorum: the reallocation is %s", p["status"])
	if err := d.answer(cebu, 0, true); err != nil {
		return err
	}
	var refused map[string]any
	if err := d.until(10*time.Second, "Cebu's vote refused by Leyte", func() (bool, error) {
		err := d.get(leyte, "/api/v1/federation/refusals", &refused)
		return err == nil && len(refused["refusals"].([]any)) > 0, err
	}); err != nil {
		return err
	}
	d.note("Cebu's vote after the decision is refused by Leyte: %s", refused["refusals"].([]any)[0].(map[string]any)["reason"])
	if err := d.until(20*time.Second, "cosignatures from all three neighbours", func() (bool, error) {
		var w struct {
			Witnesses []federation.Witnessed `json:"witnesses"`
		}
		if err := d.get(leyte, "/api/v1/ledger/witnesses", &w); err != nil {
			return false, err
		}
		seen := map[string]bool{}
		for _, c := range w.Witnesses {
			seen[c.Witness] = true
		}
		return seen[samar.key] && seen[biliran.key] && seen[cebu.key], nil
	}); err != nil {
		return err
	}
	d.say("witnessing caught up: Leyte's ledger head is cosigned by Samar, Biliran and Cebu")

	// 5. Everything verifies, from the public exports alone.
	d.say("verification from the public exports of every node:")
	for _, n := range d.nodes {
		if err := d.verify(n); err != nil {
			return err
		}
	}
	fmt.Fprintln(d.out, "federated drill complete: four nodes, two killed and restarted, every signature and ledger verified")
	return nil
}

// start runs n's process and waits until it serves.
func (d *fedDrill) start(n *fedNode) error {
	env := []string{"LEVEE_NODE_NAME=" + n.name, "LEVEE_ADMIN_TOKEN=" + n.token, "LEVEE_DELIVER_EVERY=100ms", "LEVEE_DELIVERY_MAX_BACKOFF=1s",
		"LEVEE_WITNESS_EVERY=2s", "LEVEE_LOG_LEVEL=error", "LEVEE_NODE_KEY_FILE=", "LEVEE_PUBLIC_URL=" + n.url(), "DATABASE_URL=" + n.dbURL}
	n.cmd = d.spawn([]string{"serve", "--addr", n.addr, "--data", n.data}, env)
	out, err := n.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var errs bytes.Buffer
	n.cmd.Stderr = &errs
	if err := n.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	n.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(n.cmd, n.exited)
	serving := regexp.MustCompile(`serving on http://(\S+)`)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if serving.MatchString(sc.Text()) {
			go io.Copy(io.Discard, out)
			return nil
		}
	}
	<-n.exited
	return fmt.Errorf("%s did not start: %s", n.name, strings.TrimSpace(errs.String()))
}

func (d *fedDrill) stopAll() {
	for _, n := range d.nodes {
		if n.cmd == nil || n.exited == nil {
			continue
		}
		select {
		case <-n.exited:
			continue
		default:
		}
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(15 * time.Second):
			n.cmd.Process.Kill()
			<-n.exited
		}
	}
}

// do sends a JSON request as token and decodes a 2xx answer into out.
func (d *fedDrill) do(n *fedNode, method, path, token, body string, out any) error {
	req, err := http.NewRequestWithContext(d.ctx, method, n.url()+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s on %s: HTTP %d %s", method, path, n.name, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

func (d *fedDrill) get(n *fedNode, path string, out any) error {
	return d.do(n, "GET", path, "", "", out)
}

// until polls cond every 100 ms for at most within.
func (d *fedDrill) until(within time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(within)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s: %s (last error: %v)", within, what, err)
		}
		select {
		case <-d.ctx.Done():
			return d.ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *fedDrill) inbox(n *fedNode) (map[string]any, error) {
	var in map[string]any
	err := d.get(n, "/api/v1/quorum/incoming", &in)
	return in, err
}

func (d *fedDrill) incomingCount(n *fedNode, want int) (bool, error) {
	in, err := d.inbox(n)
	return err == nil && len(in["requests"].([]any)) >= want, err
}

func (d *fedDrill) noticeCount(n *fedNode, want int) (bool, error) {
	in, err := d.inbox(n)
	return err == nil && len(in["notices"].([]any)) >= want, err
}

// answer has n's treasurer answer its i-th newest incoming request.
func (d *fedDrill) answer(n *fedNode, i int, approve bool) error {
	in, err := d.inbox(n)
	if err != nil {
		return err
	}
	r := in["requests"].([]any)[i].(map[string]any)
	var tok map[string]any
	if err := d.do(n, "POST", "/api/v1/admin/accounts", n.token, fmt.Sprintf(`{"name":"voter-%s","roles":["treasurer"]}`, r["id"]), &tok); err != nil {
		return err
	}
	return d.do(n, "POST", "/api/v1/quorum/incoming/"+r["id"].(string)+"/votes", tok["token"].(string), fmt.Sprintf(`{"approve":%t}`, approve), nil)
}

// verify checks a node from outside: its ledger's chain, every statement's
// signature, and every cosignature it holds of another node's ledger
// against that node's export.
func (d *fedDrill) verify(n *fedNode) error {
	var v struct {
		OK       bool   `json:"ok"`
		Entries  int64  `json:"entries"`
		HeadHash string `json:"head_hash"`
		Problem  string `json:"problem"`
	}
	if err := d.get(n, "/api/v1/ledger/verify", &v); err != nil {
		return err
	}
	if !v.OK {
		return fmt.Errorf("%s's ledger does not verify: %s", n.name, v.Problem)
	}
	signed, cosigned := 0, 0
	for after := int64(0); ; {
		var page federation.Page
		if err := d.get(n, fmt.Sprintf("/api/v1/federation/statements?limit=1000&after=%d", after), &page); err != nil {
			return err
		}
		if len(page.Statements) == 0 {
			break
		}
		for _, w := range page.Statements {
			st, err := w.Statement()
			if err != nil {
				return fmt.Errorf("%s: statement %s does not verify: %w", n.name, w.Hash, err)
			}
			signed++
			if st.Kind != federation.KindCosign {
				continue
			}
			var c federation.Cosign
			json.Unmarshal(st.Payload, &c)
			for _, o := range d.nodes {
				if o.key != c.Node || c.Seq == 0 {
					continue
				}
				var es ledger.Page
				if err := d.get(o, fmt.Sprintf("/api/v1/ledger/entries?after=%d&limit=1", c.Seq-1), &es); err != nil {
					return err
				}
				if len(es.Entries) != 1 || hex.EncodeToString(es.Entries[0].Hash) != c.Hash {
					return fmt.Errorf("%s cosigned %s's entry %d as %s, which its export no longer shows", n.name, o.name, c.Seq, c.Hash)
				}
				cosigned++
			}
		}
		after = page.NextAfter
	}
	d.note("%-8s ledger OK (%d entries, head %.16s…); %d statements verified, %d cosigned heads match the exports", n.name, v.Entries, v.HeadHash, signed, cosigned)
	return nil
}

// foundLeyte gives Leyte people, districts, two budget lines (from a short
// funding round) and its charter.
func (d *fedDrill) foundLeyte(l *fedNode) error {
	l.accountTokens = map[string]string{}
	for _, dist := range []string{"north", "harbour"} {
		if err := d.do(l, "POST", "/api/v1/admin/districts", l.token, `{"name":"`+dist+`"}`, nil); err != nil {
			return err
		}
	}
	if err := d.do(l, "POST", "/api/v1/admin/treasury/issue", l.token, `{"amount":"100000","memo":"the city's budget"}`, nil); err != nil {
		return err
	}
	for _, a := range []struct{ name, body string }{
		{"tess", `{"name":"tess","roles":["treasurer"]}`},
		{"sam", `{"name":"sam","roles":["steward","resident"],"district":"north"}`},
		{"alice", `{"name":"alice","roles":["resident"],"district":"north","credit":"5000"}`},
		{"bob", `{"name":"bob","roles":["resident"],"district":"harbour","credit":"5000"}`},
	} {
		var acc map[string]any
		if err := d.do(l, "POST", "/api/v1/admin/accounts", l.token, a.body, &acc); err != nil {
			return err
		}
		l.accountTokens[a.name] = acc["token"].(string)
	}
	body := fmt.Sprintf(`{"quorum":2,"vote_window":"1h","stewards":["sam"],"neighbours":[%s]}`, strings.Join([]string{
		d.spec(d.nodes[1]), d.spec(d.nodes[2]), d.spec(d.nodes[3])}, ","))
	if err := d.do(l, "PUT", "/api/v1/admin/charter", l.token, body, nil); err != nil {
		return fmt.Errorf("found Leyte: %w", err)
	}
	return nil
}

func (d *fedDrill) spec(n *fedNode) string {
	return fmt.Sprintf(`{"name":%q,"url":%q,"public_key":%q}`, n.name, n.url(), n.key)
}

// budgetLines funds two budget lines on l through a funding round that
// closes after three seconds (time enough on a loaded machine for its few requests), and returns their ids (north, harbour).
func (d *fedDrill) budgetLines(l *fedNode) ([2]int64, error) {
	var ids [2]int64
	tess := l.accountTokens["tess"]
	closes := time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339Nano)
	var round map[string]any
	if err := d.do(l, "POST", "/api/v1/qf/rounds", tess, `{"title":"Storm season","pool":"2000","closes_at":"`+closes+`"}`, &round); err != nil {
		return ids, err
	}
	rid := round["id"].(string)
	for _, p := range []struct{ who, body string }{
		{"alice", `{"title":"North pumps","description":"pumping station fuel and repairs","district":"north","estimated_cost":"1000"}`},
		{"bob", `{"title":"Harbour wall","description":"harbour wall upkeep","district":"harbour","estimated_cost":"1000"}`},
	} {
		var proj map[string]any
		if err := d.do(l, "POST", "/api/v1/qf/rounds/"+rid+"/projects", l.accountTokens[p.who], p.body, &proj); err != nil {
			return ids, err
		}
		pj := proj["id"].(string)
		if err := d.do(l, "POST", "/api/v1/qf/projects/"+pj+"/eligibility", tess, `{"eligible":true}`, nil); err != nil {
			return ids, err
		}
		for _, who := range []string{"alice", "bob"} {
			if err := d.do(l, "POST", "/api/v1/qf/projects/"+pj+"/contributions", l.accountTokens[who], `{"amount":"2000"}`, nil); err != nil {
				return ids, err
			}
		}
	}
	if err := d.until(10*time.Second, "the funding round finalises", func() (bool, error) {
		err := d.do(l, "POST", "/api/v1/qf/rounds/"+rid+"/finalize", tess, "", nil)
		return err == nil, err
	}); err != nil {
		return ids, err
	}
	var bl struct {
		Lines []struct {
			ID       string `json:"id"`
			District string `json:"district"`
		} `json:"budget_lines"`
	}
	if err := d.get(l, "/api/v1/budget-lines", &bl); err != nil {
		return ids, err
	}
	for _, b := range bl.Lines {
		var id int64
		fmt.Sscan(b.ID, &id)
		if b.District == "north" {
			ids[0] = id
		} else {
			ids[1] = id
		}
	}
	if ids[0] == 0 || ids[1] == 0 {
		return ids, errors.New("the funding round made no budget lines")
	}
	d.note("two budget lines funded on Leyte: north %d, harbour %d", ids[0], ids[1])
	return ids, nil
}
