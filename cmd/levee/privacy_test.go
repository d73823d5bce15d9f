package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"levee"
	"levee/internal/recipe"
	"levee/ledger"
)

// raw GETs path as c and returns the status and body, whatever its type
// (pages, CSV, JSON).
func (c *client) raw(path string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest("GET", c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// person is someone of the privacy city: their name, pseudonym and client.
type person struct {
	name, pseudonym, id string
	c                   *client
}

func whoIs(t *testing.T, name string, c *client) person {
	t.Helper()
	st, me := c.do("GET", "/api/v1/me", "")
	if st != 200 {
		t.Fatalf("me: %d %v", st, me)
	}
	p, _ := me["pseudonym"].(string)
	return person{name: name, pseudonym: p, id: me["id"].(string), c: c}
}

// privacyCity is a city with trading, a disputed market whose jury has
// voted and been tallied, a case still open with a seated jury, an open
// market, and an organisation with a member.
type privacyCity struct {
	m             *Main
	clk           *testClock
	tess, admin   *client
	alice, bob    person
	jurors        map[string]person // by pseudonym
	done, open    string            // a tallied case, a case in its evidence period
	openMarket    string
	settledMarket string
}

func mustPrivacyCity(t *testing.T) *privacyCity {
	t.Helper()
	m, _, clk := MustRunMainClock(t)
	tess, alice, bob := MustCity(t, m)
	pc := &privacyCity{m: m, clk: clk, tess: tess, admin: newClient(t, m, testAdminToken), jurors: map[string]person{}}
	pc.alice, pc.bob = whoIs(t, "alice", alice), whoIs(t, "bob", bob)
	for p, c := range jurorPool(t, m, "juror", "north", 12) {
		_, me := c.do("GET", "/api/v1/me", "")
		pc.jurors[p] = person{name: me["name"].(string), pseudonym: p, id: me["id"].(string), c: c}
	}
	market := func(q string, closes time.Duration) string {
		st, mk := tess.do("POST", "/api/v1/markets", `{"question":"`+q+`","outcomes":["yes","no"],"liquidity":"100","closes_at":"`+
			clk.Now().Add(closes).UTC().Format(time.RFC3339)+`","district":"north"}`)
		if st != 201 {
			t.Fatalf("market: %d %v", st, mk)
		}
		return mk["id"].(string)
	}
	order := func(c *client, mk, body string) {
		t.Helper()
		if st, r := c.do("POST", "/api/v1/markets/"+mk+"/orders", body); st != 201 {
			t.Fatalf("order: %d %v", st, r)
		}
	}
	pc.openMarket = market("Will the new pump run all winter?", 30*24*time.Hour)
	for _, j := range pc.jurors { // every juror-to-be holds a position in the open market
		order(j.c, pc.openMarket, `{"outcome":0,"side":"buy","amount":"5"}`)
	}
	_, tomAcct := pc.admin.do("POST", "/api/v1/admin/accounts", `{"name":"tom","roles":["treasurer"],"credit":"100"}`)
	tom := newClient(t, m, tomAcct["token"].(string))
	dispute := func(q string) (string, string) {
		mk := market(q, time.Hour)
		order(alice, mk, `{"outcome":0,"side":"buy","amount":"30"}`)
		order(bob, mk, `{"outcome":1,"side":"buy","amount":"20"}`)
		tess.do("POST", "/api/v1/markets/"+mk+"/close", "")
		if st, r := tom.do("POST", "/api/v1/markets/"+mk+"/proposal", `{"verdict":"no","evidence":"gauge log"}`); st != 201 {
			t.Fatalf("propose: %d %v", st, r)
		}
		st, kase := alice.do("POST", "/api/v1/markets/"+mk+"/dispute", `{"reason":"the gauge was under water"}`)
		if st != 201 {
			t.Fatalf("dispute: %d %v", st, kase)
		}
		return mk, kase["id"].(string)
	}
	pc.settledMarket, pc.done = dispute("Will the river crest above 4 m?")
	clients := map[string]*client{}
	for p, j := range pc.jurors {
		clients[p] = j.c
	}
	if v := vote(t, clk, anonymous(t, m), clients, pc.done, "yes", "yes", "yes", "no", "yes"); v["status"] != "appealable" {
		t.Fatalf("tally: %v", v["status"])
	}
	_, pc.open = dispute("Will the sluice hold?")
	return pc
}

// TestResidentsPrivacyAndExit: the public record never puts a person's
// name beside their pseudonym, position or vote; only the owner can link
// their pseudonym to their name; an export round-trips against the public
// chain; and an exit with open positions, a jury seat and a concurrent
// order leaves the money exactly where docs/privacy.md says.
func TestResidentsPrivacyAndExit(t *testing.T) {
	pc := mustPrivacyCity(t)
	t.Run("no public route links a name to a pseudonym, position or vote", func(t *testing.T) { pc.checkEveryRoute(t, true) })
	t.Run("the websocket names no trader", pc.checkWebsocket)
	t.Run("the export round-trips against the public chain", pc.checkExport)
	t.Run("exit with positions, a jury seat and a concurrent order", pc.checkExit)
	t.Run("after exit: no name, recipes verify", func(t *testing.T) {
		pc.checkEveryRoute(t, false)
		if st, r := anonymous(t, pc.m).do("GET", "/api/v1/ledger/verify", ""); st != 200 || r["ok"] != true {
			t.Fatalf("ledger: %v", r)
		}
		// The jury recipe of docs/juries.md, from public exports alone: the
		// draws recompute and the pseudonyms that traded in the case's market
		// or disputed it (alice and bob) are in no pool.
		python, script := recipe.Python(t, "../../docs/juries.md")
		for _, id := range []string{pc.done, pc.open} {
			out, err := exec.CommandContext(t.Context(), python, script, "http://"+pc.m.Addr(), id).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "; 2 pseudonyms that traded in its market or disputed it are in no pool") {
				t.Fatalf("jury recipe on case %s: %v\n%s", id, err, out)
			}
		}
		for _, id := range []string{pc.done, pc.open} {
			st, d := anonymous(t, pc.m).do("GET", "/api/v1/cases/"+id+"/draw", "")
			if st != 200 {
				t.Fatalf("draw: %d", st)
			}
			if got := recomputeDraw(t, id, d["draws"].([]any)[0].(map[string]any)); fmt.Sprint(got) != fmt.Sprint(d["jurors"]) {
				t.Fatalf("case %s: draw recomputes to %v, published %v", id, got, d["jurors"])
			}
		}
	})
}

// checkEveryRoute GETs every GET route (its parameters filled with the
// city's markets, cases and pseudonyms) as every kind of caller, and checks
// who learns what: no caller but a person themselves ever gets their name
// and their pseudonym in one answer (the "who can link a pseudonym to a
// name" column of the authorization matrix: only its owner), and no
// anonymous answer names a private person at all (so no name stands beside
// a position, a ballot or a seat). Organisations and officials acting in
// office (the treasurer) are public by design.
// With all, every kind of caller; without, the public and a treasurer only
// (the second pass, after an exit, keeps the suite short).
func (pc *privacyCity) checkEveryRoute(t *testing.T, all bool) {
	people := []person{pc.alice, pc.bob}
	for _, j := range pc.jurors {
		people = append(people, j)
	}
	callers := map[string]*client{"anonymous": anonymous(t, pc.m), "treasurer": pc.tess}
	if all {
		callers["admin"], callers["alice"] = pc.admin, pc.alice.c
		for _, j := range pc.jurors {
			callers[j.name] = j.c
			break
		}
	}
	ids := []string{pc.openMarket, pc.settledMarket, pc.done, pc.open}
	var paths, keys []string
	seen := map[string]bool{}
	for _, r := range pc.m.web.Routes() {
		// The documents are static (their examples name an "alice"); the
		// websocket carries trades, which name no trader (market.Trade).
		static := r.Path == "/api/v1/openapi.json" || r.Path == "/api/v1/asyncapi.json" || r.Path == "/api/docs"
		if r.Method != "GET" || seen[r.Path] || static || strings.HasPrefix(r.Path, "/assets") || r.Path == "/api/v1/ws" || r.Path == "/metrics" {
			continue
		}
		seen[r.Path] = true
		key := r.Method + " " + r.Path
		switch {
		case strings.Contains(r.Path, ":pseudonym"):
			for _, p := range people {
				paths, keys = append(paths, strings.ReplaceAll(r.Path, ":pseudonym", p.pseudonym)), append(keys, key)
			}
		case strings.Contains(r.Path, ":id"):
			for _, id := range ids {
				paths, keys = append(paths, strings.NewReplacer(":id", id, ":eid", "1", ":n", "1").Replace(r.Path)), append(keys, key)
			}
		default:
			paths, keys = append(paths, r.Path), append(keys, key)
		}
	}
	paths = append(paths, "/api/v1/ledger/entries?limit=1000", "/api/v1/cases/"+pc.done+"/draw")
	keys = append(keys, "GET /api/v1/ledger/entries", "GET /api/v1/cases/:id/draw")
	linked := map[string]bool{}
	checked := 0
	for who, c := range callers {
		for i, path := range paths {
			st, body := c.raw(path)
			if st >= 500 {
				t.Errorf("%s as %s: %d %s", path, who, st, body)
			}
			for _, p := range people {
				if p.pseudonym == "" {
					continue
				}
				if p.c == c { // the owner: through the API routes of whoCanLink only
					json := bytes.HasPrefix(body, []byte("{")) || bytes.HasPrefix(body, []byte("["))
					if st == 200 && json && bytes.Contains(body, []byte(`"`+p.name+`"`)) && bytes.Contains(body, []byte(p.pseudonym)) {
						linked[keys[i]] = true
						if whoCanLink[keys[i]] == "" {
							t.Errorf("%s links %s to their pseudonym but is not in whoCanLink", path, p.name)
						}
					}
					continue
				}
				var hasName bool
				if bytes.HasPrefix(body, []byte("{")) || bytes.HasPrefix(body, []byte("[")) {
					hasName = bytes.Contains(body, []byte(`"`+p.name+`"`))
				} else { // a page or CSV: the name as a word anywhere ("juror1" is not in "juror11")
					hasName = regexp.MustCompile(`(^|[^A-Za-z0-9-])` + regexp.QuoteMeta(p.name) + `($|[^A-Za-z0-9-])`).Match(body)
				}
				if hasName && bytes.Contains(body, []byte(p.pseudonym)) {
					t.Errorf("%s as %s links %s to their pseudonym %s", path, who, p.name, p.pseudonym)
				}
				if hasName && who == "anonymous" {
					t.Errorf("%s names %s publicly", path, p.name)
				}
			}
			checked++
		}
	}
	for key := range whoCanLink {
		if all && !linked[key] {
			t.Errorf("whoCanLink lists %s, which told no owner their pseudonym", key)
		}
	}
	// A resident checks on the case page that they were in a draw's pool.
	for _, j := range pc.jurors {
		_, page := j.c.raw("/cases/" + pc.done)
		if !bytes.Contains(page, []byte("Your pseudonym "+j.pseudonym+" is in this pool.")) &&
			!bytes.Contains(page, []byte("Your pseudonym "+j.pseudonym+" is not in this pool.")) {
			t.Fatalf("the case page does not tell %s whether they were in the pool", j.name)
		}
		break
	}
	if _, page := pc.alice.c.raw("/cases/" + pc.done); !bytes.Contains(page, []byte("Your pseudonym "+pc.alice.pseudonym+" is not in this pool.")) {
		t.Fatal("the disputer is not told they were left out of the pool")
	}
	// The owner, and only the owner, is told their pseudonym.
	for _, p := range people {
		if p.pseudonym == "" && p.name != "alice" && p.name != "bob" {
			continue
		}
		if st, me := p.c.do("GET", "/api/v1/me", ""); st == 200 && me["pseudonym"] != p.pseudonym {
			t.Errorf("%s is not told their pseudonym: %v", p.name, me)
		}
	}
	t.Logf("%d answers checked", checked)
}

// checkExport has alice take her records and recompute her own entries
// against the public chain.
func (pc *privacyCity) checkExport(t *testing.T) {
	st, body := pc.alice.c.raw("/api/v1/me/export")
	if st != 200 {
		t.Fatalf("export: %d %s", st, body)
	}
	var x struct {
		Format  string `json:"format"`
		Account struct {
			Name      string       `json:"name"`
			Pseudonym string       `json:"pseudonym"`
			Cash      levee.Micros `json:"cash"`
		} `json:"account"`
		LedgerNames []string       `json:"ledger_names"`
		Entries     []ledger.Entry `json:"entries"`
		Statement   []struct {
			Seq     int64        `json:"seq"`
			Account string       `json:"account"`
			Amount  levee.Micros `json:"amount"`
			Hash    string       `json:"hash"`
		} `json:"statement"`
		Trades    []any `json:"trades"`
		Positions []any `json:"positions"`
		Cases     []any `json:"cases"`
		Audit     []any `json:"audit"`
	}
	if err := json.Unmarshal(body, &x); err != nil {
		t.Fatal(err)
	}
	if x.Format != "levee-export-v1" || x.Account.Name != "alice" || x.Account.Pseudonym != pc.alice.pseudonym ||
		len(x.Trades) != 2 || len(x.Positions) != 2 || len(x.Cases) != 2 || len(x.Audit) == 0 || len(x.Entries) == 0 {
		t.Fatalf("export: %s", body)
	}
	// Round trip: each entry recomputes from the export alone, and is the
	// public chain's entry at its seq; the statement adds up to her cash.
	anon := anonymous(t, pc.m)
	var sum levee.Micros
	for _, e := range x.Entries {
		if !bytes.Equal(e.ComputeHash(), e.Hash) {
			t.Fatalf("entry %d of the export does not recompute", e.Seq)
		}
		_, page := anon.do("GET", fmt.Sprintf("/api/v1/ledger/entries?after=%d&limit=1", e.Seq-1), "")
		if h := page["entries"].([]any)[0].(map[string]any)["hash"]; h != hex.EncodeToString(e.Hash) {
			t.Fatalf("entry %d: export %x, public chain %v", e.Seq, e.Hash, h)
		}
	}
	for _, l := range x.Statement {
		if l.Account != "cash:"+pc.alice.pseudonym {
			t.Fatalf("statement line under %s", l.Account)
		}
		sum += l.Amount
	}
	if sum != x.Account.Cash {
		t.Fatalf("statement sums to %s, cash is %s", sum, x.Account.Cash)
	}
	// The page and the portfolio's button.
	if st, page := pc.alice.c.raw("/me/export"); st != 200 || !bytes.Contains(page, []byte(pc.alice.pseudonym)) {
		t.Fatalf("export page: %d", st)
	}
	if st, page := pc.alice.c.raw("/portfolio"); st != 200 || !bytes.Contains(page, []byte(`id="export-link"`)) {
		t.Fatalf("portfolio has no export button: %d", st)
	}
	if st, _ := anonymous(t, pc.m).do("GET", "/api/v1/me/export", ""); st != 401 {
		t.Fatalf("anonymous export: %d", st)
	}
	// A preview that keeps everything lists each position and why (and its
	// answer is checked against the OpenAPI document, like every answer).
	st, plan := pc.alice.c.do("POST", "/api/v1/me/exit", `{"positions":"keep","preview":true}`)
	if st != 200 || len(plan["kept"].([]any)) != 2 || len(plan["sales"].([]any)) != 0 || plan["moved"] != plan["cash"] {
		t.Fatalf("keep preview: %d %v", st, plan)
	}
}

// checkExit: a juror of the open case, holding a position in an open
// market, previews and then leaves while placing orders concurrently.
func (pc *privacyCity) checkExit(t *testing.T) {
	anon := anonymous(t, pc.m)
	seated := currentJurors(t, anon, caseDoc(t, anon, pc.open))
	j := pc.jurors[seated[0]]
	cashBefore := cash(t, j.c)
	_, pos := j.c.do("GET", "/api/v1/me/positions", "")
	if len(pos["positions"].([]any)) != 1 {
		t.Fatalf("positions: %v", pos)
	}

	// A preview changes nothing.
	st, plan := j.c.do("POST", "/api/v1/me/exit", `{"positions":"sell","preview":true}`)
	if st != 200 || plan["preview"] != true || len(plan["sales"].([]any)) != 1 || len(plan["jury_seats"].([]any)) != 1 {
		t.Fatalf("preview: %d %v", st, plan)
	}
	if cash(t, j.c) != cashBefore {
		t.Fatal("a preview moved money")
	}
	if st, r := j.c.do("POST", "/api/v1/me/exit", `{"positions":"maybe"}`); st != 400 || !hasField(r, "positions") {
		t.Fatalf("bad positions: %d %v", st, r)
	}

	// Orders race the exit: each is either filled before it or refused.
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			st, _ := j.c.do("POST", "/api/v1/markets/"+pc.openMarket+"/orders", `{"outcome":1,"side":"buy","amount":"1"}`)
			mu.Lock()
			codes[st]++
			mu.Unlock()
		}
	}()
	time.Sleep(20 * time.Millisecond) // let a few orders through first
	st, plan = j.c.do("POST", "/api/v1/me/exit", `{"positions":"sell"}`)
	close(stop)
	wg.Wait()
	if st != 200 || plan["preview"] != false {
		t.Fatalf("exit: %d %v", st, plan)
	}
	for code := range codes {
		if code != 201 && code != 403 {
			t.Fatalf("a racing order got %d (%v)", code, codes)
		}
	}
	t.Logf("racing orders: %v", codes)
	if st, r := j.c.do("POST", "/api/v1/markets/"+pc.openMarket+"/orders", `{"outcome":0,"side":"buy","amount":"1"}`); st != 403 {
		t.Fatalf("order after exit: %d %v", st, r)
	}
	// Everything was sold, all cash went to exit:<pseudonym>.
	_, pos = j.c.do("GET", "/api/v1/me/positions", "")
	for _, p := range pos["positions"].([]any) {
		if p := p.(map[string]any); p["shares"] != "0.000000" && p["status"] == "open" {
			t.Fatalf("a position was left: %v", p)
		}
	}
	if c := cash(t, j.c); c != 0 {
		t.Fatalf("cash after exit: %s", c)
	}
	moved := levee.MustMicros(plan["moved"].(string))
	if moved <= 0 || plan["exit_account"] != "exit:"+j.pseudonym {
		t.Fatalf("moved %s to %v", moved, plan["exit_account"])
	}
	// The public ledger shows the move under pseudonyms only.
	_, page := anon.do("GET", "/api/v1/ledger/entries?limit=1000", "")
	found := false
	for _, e := range page["entries"].([]any) {
		e := e.(map[string]any)
		if e["kind"] == "exit" {
			ps := e["postings"].([]any)
			if ps[0].(map[string]any)["account"] == "cash:"+j.pseudonym && ps[1].(map[string]any)["account"] == "exit:"+j.pseudonym {
				found = true
			}
		}
	}
	if !found {
		t.Fatal("no exit entry under the pseudonym")
	}
	// The jury seat is still to be served: the leaving juror votes, and
	// their fee arrives after they left.
	clients := map[string]*client{}
	for p, jj := range pc.jurors {
		clients[p] = jj.c
	}
	if st, r := j.c.do("POST", "/api/v1/markets/"+pc.openMarket+"/dispute", `{"reason":"x"}`); st != 403 {
		t.Fatalf("a leaver disputed: %d %v", st, r)
	}
	if v := vote(t, pc.clk, anon, clients, pc.open, "yes", "yes", "no", "yes", "yes"); v["status"] != "appealable" {
		t.Fatalf("tally with a leaving juror: %v", v["status"])
	}
	fee := cash(t, j.c)
	if fee != levee.Units(1) {
		t.Fatalf("the leaving juror's fee: %s", fee)
	}
	// The treasurer sees what is owed by pseudonym and pays it out once.
	_, owed := pc.tess.do("GET", "/api/v1/exits", "")
	var total levee.Micros
	for _, o := range owed["exits"].([]any) {
		if o := o.(map[string]any); o["pseudonym"] == j.pseudonym {
			total = levee.MustMicros(o["total"].(string))
		}
	}
	if total != moved+fee {
		t.Fatalf("owed %s, want %s + %s", total, moved, fee)
	}
	if st, page := pc.tess.raw("/ledger"); st != 200 || !bytes.Contains(page, []byte(`id="owed-`+j.pseudonym+`"`)) {
		t.Fatalf("the treasurer's /ledger lists no payout for %s: %d", j.pseudonym, st)
	}
	if _, page := anon.raw("/ledger"); bytes.Contains(page, []byte(`exits-owed`)) {
		t.Fatal("the public /ledger shows the payouts form")
	}
	if st, r := pc.bob.c.do("POST", "/api/v1/exits/"+j.pseudonym+"/payout", `{"reference":"x"}`); st != 403 {
		t.Fatalf("a resident paid out: %d %v", st, r)
	}
	st, paid := pc.tess.do("POST", "/api/v1/exits/"+j.pseudonym+"/payout", `{"reference":"bank transfer 118"}`)
	if st != 201 || levee.MustMicros(paid["amount"].(string)) != total {
		t.Fatalf("payout: %d %v", st, paid)
	}
	if st, _ := pc.tess.do("POST", "/api/v1/exits/"+j.pseudonym+"/payout", `{"reference":"again"}`); st != 409 {
		t.Fatalf("second payout: %d", st)
	}
	// An exited account keeps its history and can take it, and no longer
	// appears by name: the case page calls its seat by number only.
	if st, _ := j.c.do("GET", "/api/v1/me/export", ""); st != 200 {
		t.Fatalf("export after exit: %d", st)
	}
	delete(pc.jurors, j.pseudonym) // it has no money or name left to leak
}

// TestOrganisationMemberLeaves: a member of a contractor leaves with their
// own money only; the organisation's stays, and the organisation cannot
// leave this way.
func TestOrganisationMemberLeaves(t *testing.T) {
	m, _ := MustRunMain(t)
	admin := newClient(t, m, testAdminToken)
	admin.do("POST", "/api/v1/admin/districts", `{"name":"north"}`)
	admin.do("POST", "/api/v1/admin/treasury/issue", `{"amount":"1000"}`)
	_, org := admin.do("POST", "/api/v1/admin/accounts", `{"name":"sluiceworks","kind":"organisation","roles":["contractor"],"credit":"500"}`)
	_, dana := admin.do("POST", "/api/v1/admin/accounts", `{"name":"dana","roles":["resident"],"district":"north","credit":"40"}`)
	if st, r := admin.do("POST", "/api/v1/admin/organisations/"+org["id"].(string)+"/members", `{"account":"`+dana["id"].(string)+`"}`); st >= 300 {
		t.Fatalf("member: %d %v", st, r)
	}
	orgc, danac := newClient(t, m, org["token"].(string)), newClient(t, m, dana["token"].(string))
	if st, r := orgc.do("POST", "/api/v1/me/exit", `{"positions":"keep"}`); st != 403 {
		t.Fatalf("an organisation left: %d %v", st, r)
	}
	st, plan := danac.do("POST", "/api/v1/me/exit", `{"positions":"keep"}`)
	if st != 200 || plan["moved"] != "40.000000" {
		t.Fatalf("exit: %d %v", st, plan)
	}
	if c := cash(t, orgc); c != levee.Units(500) {
		t.Fatalf("the organisation's cash: %s", c)
	}
	var members int
	if err := m.DB.Get(&members, `SELECT count(*) FROM organisation_members WHERE member_id = $1`, dana["id"]); err != nil || members != 0 {
		t.Fatalf("memberships after exit: %d %v", members, err)
	}
	if st, r := danac.do("POST", "/api/v1/me/tokens", `{"label":"new"}`); st != 403 {
		t.Fatalf("a closed account made a token: %d %v", st, r)
	}
}

// checkWebsocket watches a trade go out on the websocket: the frames carry
// neither the trader's name nor their pseudonym.
func (pc *privacyCity) checkWebsocket(t *testing.T) {
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+pc.m.Addr()+"/api/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	sub, _ := json.Marshal(map[string]any{"op": "subscribe", "markets": []string{pc.openMarket}})
	if err := ws.WriteMessage(websocket.TextMessage, sub); err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	read := func() {
		t.Helper()
		_, frame, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		frames = append(frames, frame)
	}
	read() // the snapshot
	if st, r := pc.bob.c.do("POST", "/api/v1/markets/"+pc.openMarket+"/orders", `{"outcome":1,"side":"buy","amount":"2"}`); st != 201 {
		t.Fatalf("order: %d %v", st, r)
	}
	read() // the trade
	read() // the quote
	for _, f := range frames {
		if bytes.Contains(f, []byte(pc.bob.name)) || bytes.Contains(f, []byte(pc.bob.pseudonym)) || bytes.Contains(f, []byte(`"account`)) {
			t.Fatalf("a websocket frame names the trader: %s", f)
		}
	}
	if !bytes.Contains(frames[1], []byte(`"type":"trade"`)) {
		t.Fatalf("no trade frame: %s", frames[1])
	}
}
