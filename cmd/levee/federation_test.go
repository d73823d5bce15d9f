package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"levee/crisis"
	"levee/federation"
	"levee/internal/recipe"
	"levee/migrations/dbtest"
)

// testNode is one city's Levee in a test of the network: its own database,
// data directory (and so key) and HTTP port, kept across restarts.
type testNode struct {
	t     *testing.T
	name  string
	addr  string
	cfg   Config
	m     *Main
	clk   *testClock
	admin *client
}

// freeAddr finds a loopback port for a node that must come back on the
// same address after a restart (its neighbours' charters name its URL).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// MustNode starts a node called name with a fresh database.
func MustNode(t *testing.T, name string) *testNode {
	t.Helper()
	n := &testNode{t: t, name: name, addr: freeAddr(t), clk: &testClock{}}
	n.cfg = Config{Addr: n.addr, DatabaseURL: dbtest.NewURL(t), AdminToken: testAdminToken, DataDir: t.TempDir(), LogFormat: "text",
		NodeName: name, DeliverEvery: 50 * time.Millisecond, DeliveryMaxBackoff: 300 * time.Millisecond, WitnessEvery: time.Hour,
		RatePerAccount: 1e6, RatePerAddress: 1e6}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *testNode) start() {
	n.t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("LEVEE_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With(slog.String("node", n.name))
	}
	n.m = NewMain(n.cfg, logger, io.Discard)
	n.m.Clock = n.clk.Now
	var err error
	for range 20 { // the port was free a moment ago; a restart may find it in TIME_WAIT briefly
		if err = n.m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		n.m.Close()
		n.m = NewMain(n.cfg, logger, io.Discard)
		n.m.Clock = n.clk.Now
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		n.t.Fatalf("start %s: %v", n.name, err)
	}
	n.admin = newClient(n.t, n.m, testAdminToken)
}

func (n *testNode) stop() {
	if n.m != nil {
		n.m.Close()
		n.m = nil
	}
}

func (n *testNode) url() string { return "http://" + n.addr }

// identity is the node's GET /api/v1/node.
func (n *testNode) identity() map[string]any {
	n.t.Helper()
	st, id := anonymous(n.t, n.m).do("GET", "/api/v1/node", "")
	if st != 200 {
		n.t.Fatalf("%s /api/v1/node: %d %v", n.name, st, id)
	}
	return id
}

// person opens an account with roles on the node and returns its client.
func (n *testNode) person(name string, roles ...string) *client {
	n.t.Helper()
	st, a := n.admin.do("POST", "/api/v1/admin/accounts", fmt.Sprintf(`{"name":%q,"roles":[%q]}`, name, strings.Join(roles, `","`)))
	if st != 201 {
		n.t.Fatalf("%s: open account %s: %d %v", n.name, name, st, a)
	}
	return newClient(n.t, n.m, a["token"].(string))
}

// resident admits a resident of district north (which must exist).
func (n *testNode) resident(name string) *client {
	n.t.Helper()
	st, a := n.admin.do("POST", "/api/v1/admin/accounts", fmt.Sprintf(`{"name":%q,"roles":["resident"],"district":"north"}`, name))
	if st != 201 {
		n.t.Fatalf("%s: admit %s: %d %v", n.name, name, st, a)
	}
	return newClient(n.t, n.m, a["token"].(string))
}

// found founds the node's charter with neighbours (confirmed keys) and quorum.
func (n *testNode) found(quorum int, neighbours ...*testNode) {
	n.t.Helper()
	var ns []string
	for _, o := range neighbours {
		ns = append(ns, fmt.Sprintf(`{"name":%q,"url":%q,"public_key":%q}`, o.name, o.url(), o.identity()["public_key"]))
	}
	body := fmt.Sprintf(`{"quorum":%d,"neighbours":[%s]}`, quorum, strings.Join(ns, ","))
	if st, r := n.admin.do("PUT", "/api/v1/admin/charter", body); st != 200 {
		n.t.Fatalf("%s: found: %d %v", n.name, st, r)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func voteOf(p map[string]any, neighbour string) map[string]any {
	for _, v := range p["votes"].([]any) {
		if v := v.(map[string]any); v["neighbour"] == neighbour {
			return v
		}
	}
	return nil
}

// TestQuorumAcrossNodes runs the quorum over three real nodes talking over
// loopback HTTP: founding with fingerprints, a proposal delivered from the
// outbox, a neighbour that is down shown as "has not answered" with the
// delivery error, its restart and late (in-window) vote executing the
// proposal, the ledger head witnessed, and every statement verified by
// the Python recipe from the public exports alone.
func TestQuorumAcrossNodes(t *testing.T) {
	leyte, samar, tacloban := MustNode(t, "Leyte"), MustNode(t, "Samar"), MustNode(t, "Tacloban")

	// Founding: no key → the node's fingerprint to confirm; a wrong key → refused loudly.
	sid, tid := samar.identity(), tacloban.identity()
	if sid["fingerprint"] != federation.Fingerprint(mustHex(t, sid["public_key"].(string))) || sid["name"] != "Samar" || sid["url"] != samar.url() {
		t.Fatalf("samar's identity: %v", sid)
	}
	st, r := leyte.admin.do("PUT", "/api/v1/admin/charter", `{"quorum":2,"neighbours":[{"name":"Samar","url":"`+samar.url()+`"}]}`)
	if st != 400 || !hasField(r, "neighbours[0].public_key") || !strings.Contains(fmt.Sprint(r), sid["fingerprint"].(string)) {
		t.Fatalf("founding without a key: %d %v", st, r)
	}
	st, r = leyte.admin.do("PUT", "/api/v1/admin/charter", `{"quorum":1,"neighbours":[{"name":"Samar","url":"`+samar.url()+`","public_key":"`+tid["public_key"].(string)+`"}]}`)
	if st != 400 || !strings.Contains(fmt.Sprint(r), "KEY MISMATCH") {
		t.Fatalf("founding with another node's key: %d %v", st, r)
	}
	leyte.found(2, samar, tacloban)
	samar.found(1, leyte)
	tacloban.found(1, leyte)
	if st, r := leyte.admin.do("POST", "/api/v1/admin/treasury/issue", `{"amount":"5","memo":"after founding"}`); st != 409 {
		t.Fatalf("the admin issued money after founding: %d %v", st, r)
	}

	// Tacloban loses power; Leyte's treasurer proposes to issue money.
	tacloban.stop()
	tess := leyte.person("tess", "treasurer")
	st, p := tess.do("POST", "/api/v1/quorum/proposals", `{"kind":"issue","payload":{"amount":"1000.5","memo":"storm repairs"},"reason":"the storm took the pumps"}`)
	if st != 201 || p["status"] != "open" {
		t.Fatalf("propose: %d %v", st, p)
	}
	pid := p["id"].(string)
	anonL := anonymous(t, leyte.m)
	var v map[string]any
	eventually(t, 5*time.Second, "Tacloban shown as not answering with the delivery error", func() bool {
		_, p = anonL.do("GET", "/api/v1/quorum/proposals/"+pid, "")
		v = voteOf(p, "Tacloban")
		d, _ := v["delivery"].(map[string]any)
		return v["status"] == "has not answered" && d != nil && d["last_error"] != nil && d["attempts"].(float64) >= 2
	})
	if d := v["delivery"].(map[string]any); !strings.Contains(d["last_error"].(string), "connection refused") {
		t.Errorf("the delivery error does not say why: %v", d)
	}
	if st, page := anonL.mustGetPage("/quorum"); st != 200 || !strings.Contains(page, "has not answered") || !strings.Contains(page, "connection refused") {
		t.Errorf("the quorum page does not say why Tacloban has not answered: %d", st)
	}

	// Samar sees the request in words; only the charter's voters (steward, treasurer) answer for the city.
	anonS := anonymous(t, samar.m)
	var in map[string]any
	eventually(t, 5*time.Second, "the request reaches Samar", func() bool {
		_, in = anonS.do("GET", "/api/v1/quorum/incoming", "")
		return len(in["requests"].([]any)) == 1
	})
	req := in["requests"].([]any)[0].(map[string]any)
	if req["neighbour"] != "Leyte" || !strings.Contains(req["summary"].(string), "issue 1000.500000") || req["open"] != true {
		t.Fatalf("incoming request: %v", req)
	}
	rid := req["id"].(string)
	if st, _ := samar.person("rita", "contractor").do("POST", "/api/v1/quorum/incoming/"+rid+"/votes", `{"approve":true}`); st != 403 {
		t.Fatalf("someone outside the charter's voters answered for the city: %d", st)
	}
	sara := samar.person("sara", "treasurer")
	if st, page := sara.mustGetPage("/quorum/incoming"); st != 200 || !strings.Contains(page, `id="approve-request-`+rid+`"`) || !strings.Contains(page, "Leyte proposes: issue 1000.500000") {
		t.Fatalf("Samar's treasurer sees no request to answer on the page: %d", st)
	}
	if st, r := sara.do("POST", "/api/v1/quorum/incoming/"+rid+"/votes", `{"approve":true}`); st != 200 || r["approve"] != true || r["vote"] == "" {
		t.Fatalf("answer: %d %v", st, r)
	}
	if st, _ := sara.do("POST", "/api/v1/quorum/incoming/"+rid+"/votes", `{"approve":false}`); st != 409 {
		t.Fatalf("answered twice: %d", st)
	}
	eventually(t, 5*time.Second, "Samar's signed vote counted on Leyte", func() bool {
		_, p = anonL.do("GET", "/api/v1/quorum/proposals/"+pid, "")
		return p["approved"] == 1.0
	})
	if v := voteOf(p, "Samar"); v["status"] != "approved" || v["vote"] == nil || p["status"] != "open" {
		t.Fatalf("after one of two votes: %v", p)
	}
	// The list shows each proposal's votes as its own page does (filled for
	// the whole page at once). The outbox keeps retrying Tacloban meanwhile,
	// so its delivery (attempts, last error) may move between two reads: the
	// list is compared with the page read just before and just after it, and
	// only when those two agree.
	var listed, after map[string]any
	for try := 0; ; try++ {
		_, p = anonL.do("GET", "/api/v1/quorum/proposals/"+pid, "")
		_, list := anonL.do("GET", "/api/v1/quorum/proposals", "")
		_, after = anonL.do("GET", "/api/v1/quorum/proposals/"+pid, "")
		listed = nil
		for _, it := range list["proposals"].([]any) {
			if it.(map[string]any)["id"] == pid {
				listed = it.(map[string]any)
			}
		}
		if fmt.Sprint(p) == fmt.Sprint(after) || try == 20 {
			break
		}
	}
	if listed == nil || fmt.Sprint(listed["votes"]) != fmt.Sprint(p["votes"]) || listed["approved"] != p["approved"] || listed["quorum"] != p["quorum"] {
		t.Fatalf("the list's proposal %s: %v\nits own page: %v", pid, listed, p)
	}

	// Leyte restarts too (its outbox is in its database), then Tacloban comes
	// back: the outbox delivers, its vote arrives inside the window and
	// executes the proposal.
	leyte.stop()
	leyte.start()
	tacloban.start()
	anonT := anonymous(t, tacloban.m)
	eventually(t, 10*time.Second, "the outbox delivers to Tacloban after its restart", func() bool {
		_, in = anonT.do("GET", "/api/v1/quorum/incoming", "")
		return len(in["requests"].([]any)) == 1
	})
	tina := tacloban.person("tina", "steward")
	if st, r := tina.do("POST", "/api/v1/quorum/incoming/"+in["requests"].([]any)[0].(map[string]any)["id"].(string)+"/votes", `{"approve":true}`); st != 200 {
		t.Fatalf("tacloban's answer: %d %v", st, r)
	}
	eventually(t, 10*time.Second, "the proposal executes at the quorum", func() bool {
		_, p = anonL.do("GET", "/api/v1/quorum/proposals/"+pid, "")
		return p["status"] == "executed"
	})
	bal, err := leyte.m.Ledger.Balance(context.Background(), "treasury")
	if err != nil || bal.String() != "1000.500000" {
		t.Fatalf("treasury after the issue: %v %v", bal, err)
	}

	// The decision announced the ledger head; both neighbours cosign it.
	eventually(t, 10*time.Second, "two cosignatures of Leyte's ledger", func() bool {
		_, w := anonL.do("GET", "/api/v1/ledger/witnesses", "")
		return len(w["witnesses"].([]any)) >= 2
	})
	if out, code := verifyWitnessesCLI(t, leyte); code != 0 || !strings.Contains(out, "witnesses OK") {
		t.Fatalf("ledger verify --witnesses: %d\n%s", code, out)
	}

	// Every statement on every node verifies with the recipe of docs/federation.md.
	python, script := recipe.Python(t, "../../docs/federation.md")
	for _, n := range []*testNode{leyte, samar, tacloban} {
		out, err := exec.Command(python, script, n.url()).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "0 bad") {
			t.Fatalf("recipe on %s: %v\n%s", n.name, err, out)
		}
		t.Logf("%s: %s", n.name, strings.TrimSpace(string(out)))
	}
	if _, r := anonL.do("GET", "/api/v1/federation/refusals", ""); len(r["refusals"].([]any)) != 0 {
		t.Errorf("refusals in an honest run: %v", r)
	}
	if _, r := anonL.do("GET", "/api/v1/federation/alarms", ""); len(r["alarms"].([]any)) != 0 {
		t.Errorf("alarms in an honest run: %v", r)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	var b []byte
	if _, err := fmt.Sscanf(s, "%x", &b); err != nil {
		t.Fatal(err)
	}
	return b
}

// verifyWitnessesCLI runs `levee ledger verify --witnesses` on n's
// database and data directory (where its key is).
func verifyWitnessesCLI(t *testing.T, n *testNode) (string, int) {
	t.Helper()
	t.Setenv("DATABASE_URL", n.cfg.DatabaseURL)
	var out strings.Builder
	code, err := run(context.Background(), []string{"ledger", "verify", "--witnesses", "--data", n.cfg.DataDir}, &out, io.Discard)
	if err != nil {
		t.Fatalf("ledger verify --witnesses: %v", err)
	}
	return out.String(), code
}

// demoNeighbourClient plays a demo neighbour node: it signs votes with the
// key the demo holds for it and delivers them over HTTP as its node would.
type demoNeighbourClient struct {
	t    *testing.T
	m    *Main
	name string
	anon *client
	n    int
}

func demoNeighbour(t *testing.T, m *Main, name string) *demoNeighbourClient {
	return &demoNeighbourClient{t: t, m: m, name: name, anon: anonymous(t, m)}
}

// vote signs this neighbour's vote on proposal pid, delivers it, and
// returns the delivery's status with the proposal as it is then.
func (d *demoNeighbourClient) vote(pid string, approve bool) (int, map[string]any) {
	d.t.Helper()
	_, p := d.anon.do("GET", "/api/v1/quorum/proposals/"+pid, "")
	key, err := d.m.demoNeighbourKey(d.name)
	if err != nil {
		d.t.Fatal(err)
	}
	d.n++ // each vote its own statement, a microsecond apart
	st, err := federation.Sign(key, crisis.StatementVote, d.m.now().Add(time.Duration(d.n)*time.Microsecond), crisis.VoteStatement{Proposal: p["statement"].(string), Approve: approve})
	if err != nil {
		d.t.Fatal(err)
	}
	b, _ := json.Marshal(st.Wire())
	code, r := d.anon.do("POST", "/api/v1/federation/statements", string(b))
	if code != 200 {
		return code, r
	}
	_, p = d.anon.do("GET", "/api/v1/quorum/proposals/"+pid, "")
	return code, p
}
