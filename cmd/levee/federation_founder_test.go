package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"levee/crisis"
	"levee/federation"
	"levee/migrations/dbtest"
)

// TestSilentNeighbourIsSuspended: a neighbour that says nothing for the
// charter's neighbour_silence is suspended and the quorum is counted over
// the rest (never below 1); when it speaks again it is restored.
func TestSilentNeighbourIsSuspended(t *testing.T) {
	leyte := MustNode(t, "Leyte")
	_, samar, _ := ed25519.GenerateKey(nil)
	_, tacloban, _ := ed25519.GenerateKey(nil)
	hexKey := func(k ed25519.PrivateKey) string { return hex.EncodeToString(k.Public().(ed25519.PublicKey)) }
	leyte.admin.do("POST", "/api/v1/admin/districts", `{"name":"north"}`)
	body := fmt.Sprintf(`{"quorum":2,"neighbour_silence":"30d","petition_threshold":2,"neighbours":[{"name":"Samar","url":"http://127.0.0.1:1","public_key":%q},{"name":"Tacloban","url":"http://127.0.0.1:2","public_key":%q}]}`,
		hexKey(samar), hexKey(tacloban))
	if st, r := leyte.admin.do("PUT", "/api/v1/admin/charter", body); st != 200 || r["neighbour_silence"] != "30d" {
		t.Fatalf("found: %d %v", st, r)
	}
	anon := anonymous(t, leyte.m)
	deliver := func(key ed25519.PrivateKey, kind string, payload any) (int, map[string]any) {
		st, err := federation.Sign(key, kind, leyte.clk.Now(), payload)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(st.Wire())
		return anon.do("POST", "/api/v1/federation/statements", string(b))
	}
	// Samar keeps talking (witnessing its ledger would do); Tacloban is gone for good.
	leyte.clk.Skip(20 * 24 * time.Hour)
	if st, r := deliver(samar, crisis.StatementNotice, crisis.NoticeStatement{City: "Samar", Kind: "emergency_declared", Emergency: 1, Message: "Storm on Samar."}); st != 200 {
		t.Fatalf("samar's notice: %d %v", st, r)
	}
	leyte.clk.Skip(11 * 24 * time.Hour)
	_, c := anon.do("GET", "/api/v1/charter", "")
	for _, n := range c["neighbours"].([]any) {
		n := n.(map[string]any)
		if suspended := n["suspended_at"] != nil; suspended != (n["name"] == "Tacloban") {
			t.Fatalf("after 31 days: %v", n)
		}
	}
	// The quorum is now one of the one neighbour left: Samar's vote carries it.
	tess := leyte.person("tess", "treasurer")
	_, p := tess.do("POST", "/api/v1/quorum/proposals", `{"kind":"issue","payload":{"amount":"10","memo":"x"},"reason":"repairs"}`)
	if p["quorum"] != 1.0 || !voteOf(p, "Tacloban")["suspended"].(bool) {
		t.Fatalf("quorum with a suspended neighbour: %v", p)
	}
	_, exp := anon.do("GET", "/api/v1/federation/statements?kind=proposal", "")
	hash := exp["statements"].([]any)[0].(map[string]any)["hash"].(string)
	if st, r := deliver(samar, crisis.StatementVote, crisis.VoteStatement{Proposal: hash, Approve: true}); st != 200 {
		t.Fatalf("samar's vote: %d %v", st, r)
	}
	if _, p = anon.do("GET", "/api/v1/quorum/proposals/"+p["id"].(string), ""); p["status"] != "executed" {
		t.Fatalf("not executed by the remaining quorum: %v", p)
	}
	// Tacloban speaks again and is restored.
	deliver(tacloban, crisis.StatementNotice, crisis.NoticeStatement{City: "Tacloban", Kind: "emergency_ended", Emergency: 3, Message: "Power is back."})
	_, c = anon.do("GET", "/api/v1/charter", "")
	for _, n := range c["neighbours"].([]any) {
		if n := n.(map[string]any); n["suspended_at"] != nil {
			t.Fatalf("a neighbour that spoke is still suspended: %v", n)
		}
	}
	// Their notices are on the neighbours' page.
	if _, in := anon.do("GET", "/api/v1/quorum/incoming", ""); len(in["notices"].([]any)) != 2 {
		t.Fatalf("notices: %v", in)
	}

	// Tacloban falls silent again, for good; residents petition to replace it.
	leyte.clk.Skip(20 * 24 * time.Hour)
	deliver(samar, crisis.StatementNotice, crisis.NoticeStatement{City: "Samar", Kind: "emergency_ended", Emergency: 1, Message: "Samar is dry."})
	leyte.clk.Skip(11 * 24 * time.Hour)
	_, ormoc, _ := ed25519.GenerateKey(nil)
	r1, r2 := leyte.resident("rosa"), leyte.resident("ramon")
	_, c = anon.do("GET", "/api/v1/charter", "")
	ids := map[string]string{}
	for _, n := range c["neighbours"].([]any) {
		ids[n.(map[string]any)["name"].(string)] = n.(map[string]any)["id"].(string)
	}
	replace := func(who *client, neighbour string) (int, map[string]any) {
		return who.do("POST", "/api/v1/neighbours/"+ids[neighbour]+"/petitions",
			`{"name":"Ormoc","url":"http://127.0.0.1:3","public_key":"`+hexKey(ormoc)+`","reason":"Tacloban has been silent since the storm"}`)
	}
	if st, r := replace(r1, "Samar"); st != 409 {
		t.Fatalf("a petition against a neighbour that speaks: %d %v", st, r)
	}
	st, pet := replace(r1, "Tacloban")
	if st != 201 || pet["signatures"] != 1.0 || pet["executed_at"] != nil {
		t.Fatalf("petition: %d %v", st, pet)
	}
	if st, _ := r1.do("POST", "/api/v1/neighbour-petitions/"+pet["id"].(string)+"/signatures", ""); st != 409 {
		t.Fatalf("signed twice: %d", st)
	}
	if st, pet = r2.do("POST", "/api/v1/neighbour-petitions/"+pet["id"].(string)+"/signatures", ""); st != 200 || pet["executed_at"] == nil {
		t.Fatalf("the second signature (the threshold): %d %v", st, pet)
	}
	_, c = anon.do("GET", "/api/v1/charter", "")
	names := fmt.Sprint(c["neighbours"])
	if !strings.Contains(names, "Ormoc") || strings.Contains(names, "Tacloban") || len(c["changes"].([]any)) != 2 {
		t.Fatalf("after the petition: %v", c)
	}
	// Tacloban's old key is no longer pinned; Ormoc's is.
	if st, _ := deliver(tacloban, crisis.StatementNotice, crisis.NoticeStatement{City: "Tacloban", Kind: "emergency_ended", Emergency: 4, Message: "Back."}); st != 403 {
		t.Fatalf("the replaced neighbour's key still speaks: %d", st)
	}
	if st, r := deliver(ormoc, crisis.StatementNotice, crisis.NoticeStatement{City: "Ormoc", Kind: "emergency_ended", Emergency: 1, Message: "Hello."}); st != 200 {
		t.Fatalf("the new neighbour: %d %v", st, r)
	}
}

// TestEmergencyNoticesReachNeighbours: a declaration and an act on one
// node are announced, signed, on its neighbour's page.
func TestEmergencyNoticesReachNeighbours(t *testing.T) {
	leyte, samar := MustNode(t, "Leyte"), MustNode(t, "Samar")
	leyte.admin.do("POST", "/api/v1/admin/districts", `{"name":"north"}`)
	sam := leyte.person("sam", "steward")
	leyte.found(1, samar)
	samar.found(1, leyte)
	if st, r := sam.do("POST", "/api/v1/emergencies", `{"reason":"Storm surge","districts":["north"],"duration":"3d","cap":"500"}`); st != 201 {
		t.Fatalf("declare: %d %v", st, r)
	}
	anonS := anonymous(t, samar.m)
	var in map[string]any
	eventually(t, 5*time.Second, "the declaration on Samar's page", func() bool {
		_, in = anonS.do("GET", "/api/v1/quorum/incoming", "")
		return len(in["notices"].([]any)) == 1
	})
	n := in["notices"].([]any)[0].(map[string]any)
	if n["neighbour"] != "Leyte" || n["kind"] != "emergency_declared" || !strings.Contains(n["message"].(string), "Storm surge") {
		t.Fatalf("notice: %v", n)
	}
	if st, page := anonS.mustGetPage("/quorum/incoming"); st != 200 || !strings.Contains(page, "Storm surge") || !strings.Contains(page, "Leyte") {
		t.Fatalf("the notice is not on the page: %d\n%s", st, page)
	}

	// Samar proposes, from its own node, that Leyte's emergency end; with
	// Leyte's quorum of 1 its signed request carries it.
	body := `{"neighbour":"Leyte","emergency":"` + n["emergency"].(string) + `","reason":"the water is down"}`
	if st, _ := samar.person("rita", "contractor").do("POST", "/api/v1/quorum/end-requests", body); st != 403 {
		t.Fatalf("someone outside Samar's voters proposed: %d", st)
	}
	steward := samar.person("sol", "steward")
	if st, r := steward.do("POST", "/api/v1/quorum/end-requests", body); st != 202 {
		t.Fatalf("end request: %d %v", st, r)
	}
	anonL := anonymous(t, leyte.m)
	var e map[string]any
	eventually(t, 5*time.Second, "Leyte's emergency ended by Samar's request", func() bool {
		_, e = anonL.do("GET", "/api/v1/emergencies/"+n["emergency"].(string), "")
		return e["end_reason"] == "quorum"
	})
	_, ps := anonL.do("GET", "/api/v1/quorum/proposals", "")
	p := ps["proposals"].([]any)[0].(map[string]any)
	if p["proposed_by_neighbour"] != "Samar" || p["status"] != "executed" || voteOf(p, "Samar")["vote"].(map[string]any)["kind"] != "end_request" {
		t.Fatalf("the proposal made by Samar's request: %v", p)
	}
	eventually(t, 5*time.Second, "the end announced back to Samar", func() bool {
		_, in = anonS.do("GET", "/api/v1/quorum/incoming", "")
		return len(in["notices"].([]any)) == 2
	})
}

// TestFounderStepsBack: after founding the audit log is public, money is
// issued only by the quorum, and `levee admin retire` revokes every admin
// token for good (a restart with LEVEE_ADMIN_TOKEN does not bring it back).
func TestFounderStepsBack(t *testing.T) {
	leyte := MustNode(t, "Leyte")
	_, samar, _ := ed25519.GenerateKey(nil)
	anon := anonymous(t, leyte.m)
	if st, r := leyte.admin.do("POST", "/api/v1/admin/accounts", `{"name":"tess","roles":["treasurer"]}`); st != 201 {
		t.Fatalf("admit: %d %v", st, r)
	}
	t.Setenv("DATABASE_URL", leyte.cfg.DatabaseURL)
	var out strings.Builder
	if code, err := run(t.Context(), []string{"admin", "retire", "--data", leyte.cfg.DataDir}, &out, &out); code != 1 || !strings.Contains(fmt.Sprint(err), "found the charter first") {
		t.Fatalf("retire before founding: %d %v %s", code, err, out.String())
	}
	body := fmt.Sprintf(`{"quorum":1,"neighbours":[{"name":"Samar","url":"http://127.0.0.1:1","public_key":%q}]}`, hex.EncodeToString(samar.Public().(ed25519.PublicKey)))
	if st, r := leyte.admin.do("PUT", "/api/v1/admin/charter", body); st != 200 {
		t.Fatalf("found: %d %v", st, r)
	}
	// No admin creates money after founding: an admission's credit comes from the (empty) treasury.
	if st, r := leyte.admin.do("POST", "/api/v1/admin/accounts", `{"name":"carl","roles":["contractor"],"credit":"10"}`); st != 409 || !strings.Contains(fmt.Sprint(r), "treasury") {
		t.Fatalf("an admission with credit after founding, the treasury empty: %d %v", st, r)
	}
	if st, r := leyte.admin.do("POST", "/api/v1/admin/treasury/issue", `{"amount":"10","memo":"x"}`); st != 409 {
		t.Fatalf("the admin issued money after founding: %d %v", st, r)
	}
	_, a := anon.do("GET", "/api/v1/audit", "")
	actions := fmt.Sprint(a)
	if !strings.Contains(actions, "account.create") || !strings.Contains(actions, "charter.found") || strings.Contains(actions, "lv_") {
		t.Fatalf("public audit: %s", actions)
	}
	out.Reset()
	if code, err := run(t.Context(), []string{"admin", "retire", "--data", leyte.cfg.DataDir}, &out, &out); code != 0 || err != nil || !strings.Contains(out.String(), "admin tokens revoked") {
		t.Fatalf("retire: %d %v %s", code, err, out.String())
	}
	// (A running node stops taking the token within its token cache's 5 s;
	// the restart shows the revocation is for good.)
	leyte.stop()
	leyte.start()
	if st, _ := leyte.admin.do("GET", "/api/v1/me", ""); st != 401 {
		t.Fatalf("a restart with LEVEE_ADMIN_TOKEN brought the admin back: %d", st)
	}
	_, c := anonymous(t, leyte.m).do("GET", "/api/v1/charter", "")
	if c["founder_retired_at"] == nil {
		t.Fatalf("the charter does not say the founder retired: %v", c)
	}
}

// TestNodeShow: `levee node show` prints the identity and fingerprint;
// LEVEE_NODE_KEY_FILE keeps the key elsewhere (made with mode 0600); the
// private key appears in no output or log.
func TestNodeShow(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "keys", "leyte.key")
	t.Setenv("DATABASE_URL", dbtest.NewURL(t))
	t.Setenv("LEVEE_NODE_KEY_FILE", keyFile)
	t.Setenv("LEVEE_NODE_NAME", "Leyte")
	t.Setenv("LEVEE_PUBLIC_URL", "https://leyte.example.org")
	t.Setenv("LEVEE_LOG_LEVEL", "debug")
	var out, logs strings.Builder
	if code, err := run(t.Context(), []string{"node", "show", "--data", dir}, &out, &logs); code != 0 || err != nil {
		t.Fatalf("node show: %d %v\n%s", code, err, logs.String())
	}
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, federation.KeyFileName)); !os.IsNotExist(err) {
		t.Fatalf("a key was made in the data directory too: %v", err)
	}
	key, err := federation.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pub := hex.EncodeToString(key.Public().(ed25519.PublicKey))
	for _, want := range []string{"name          Leyte", "url           https://leyte.example.org", "public_key    " + pub,
		"fingerprint   " + federation.Fingerprint(key.Public().(ed25519.PublicKey)), "ledger_head   0 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("node show lacks %q:\n%s", want, out.String())
		}
	}
	pem, _ := os.ReadFile(keyFile)
	secret := strings.Split(string(pem), "\n")[1] // the base64 of the seed
	for _, s := range []string{secret, hex.EncodeToString(key.Seed()), hex.EncodeToString(key)} {
		if strings.Contains(out.String()+logs.String(), s) {
			t.Fatal("the private key appears in the output or the log")
		}
	}
}

// TestAnotherKeyIsReported: an instance started on a node's database with
// another key (a cluster instance without the shared key file) is told.
func TestAnotherKeyIsReported(t *testing.T) {
	leyte := MustNode(t, "Leyte")
	first := leyte.identity()["public_key"]
	leyte.stop()
	leyte.cfg.DataDir = t.TempDir() // a fresh directory: a new key
	leyte.start()
	same, was, err := leyte.m.Node.CheckKey(t.Context())
	if err != nil || same || hex.EncodeToString(was) != first {
		t.Fatalf("CheckKey: same %v, first %x (want %s), %v", same, was, first, err)
	}
}
