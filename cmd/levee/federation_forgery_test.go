package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"levee/crisis"
	"levee/federation"
	"levee/ledger"
)

// TestForgedVotesAreRefused forges votes on a proposal of a real node:
// signed by a key no neighbour has, with the payload altered after
// signing, signed after the window closed, naming a proposal that does not
// exist, and a neighbour's second vote. Each is refused and recorded; the
// genuine vote delivered twice counts once.
func TestForgedVotesAreRefused(t *testing.T) {
	leyte := MustNode(t, "Leyte")
	_, samarKey, _ := ed25519.GenerateKey(nil)
	_, taclobanKey, _ := ed25519.GenerateKey(nil)
	_, stranger, _ := ed25519.GenerateKey(nil)
	hexKey := func(k ed25519.PrivateKey) string { return hex.EncodeToString(k.Public().(ed25519.PublicKey)) }
	// The neighbours are down at founding: the keys their operators read out are kept.
	body := fmt.Sprintf(`{"quorum":2,"neighbours":[{"name":"Samar","url":"http://127.0.0.1:1","public_key":%q},{"name":"Tacloban","url":"http://127.0.0.1:2","public_key":%q}]}`,
		hexKey(samarKey), hexKey(taclobanKey))
	if st, r := leyte.admin.do("PUT", "/api/v1/admin/charter", body); st != 200 {
		t.Fatalf("found: %d %v", st, r)
	}
	tess := leyte.person("tess", "treasurer")
	st, p := tess.do("POST", "/api/v1/quorum/proposals", `{"kind":"issue","payload":{"amount":"10","memo":"x"},"reason":"test"}`)
	if st != 201 {
		t.Fatalf("propose: %d %v", st, p)
	}
	pid := p["id"].(string)
	closes, _ := time.Parse(time.RFC3339Nano, p["closes_at"].(string))
	anon := anonymous(t, leyte.m)
	_, exp := anon.do("GET", "/api/v1/federation/statements?kind=proposal", "")
	proposal := exp["statements"].([]any)[0].(map[string]any)["hash"].(string)

	vote := func(key ed25519.PrivateKey, at time.Time, hash string, approve bool) federation.Wire {
		st, err := federation.Sign(key, crisis.StatementVote, at, crisis.VoteStatement{Proposal: hash, Approve: approve})
		if err != nil {
			t.Fatal(err)
		}
		return st.Wire()
	}
	deliver := func(w federation.Wire) (int, map[string]any) {
		b, _ := json.Marshal(w)
		return anon.do("POST", "/api/v1/federation/statements", string(b))
	}
	altered := vote(samarKey, time.Now(), proposal, false)
	altered.Payload = strings.Replace(altered.Payload, "false", "true", 1)
	altered.Hash = ""
	for _, tc := range []struct {
		name   string
		w      federation.Wire
		status int
		says   string
	}{
		{"a key no neighbour has", vote(stranger, time.Now(), proposal, true), 403, "is not the key of any neighbour"},
		{"the payload altered after signing", altered, 400, "signature does not verify"},
		{"signed after the window closed", vote(samarKey, closes.Add(time.Hour), proposal, true), 403, "outside proposal"},
		{"signed before the proposal", vote(samarKey, time.Now().Add(-time.Hour), proposal, true), 403, "outside proposal"},
		{"a proposal that does not exist", vote(samarKey, time.Now(), strings.Repeat("ab", 32), true), 403, "names no proposal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st, r := deliver(tc.w); st != tc.status || !strings.Contains(fmt.Sprint(r), tc.says) {
				t.Fatalf("%d %v, want %d saying %q", st, r, tc.status, tc.says)
			}
		})
	}

	// The genuine vote counts once however often it is delivered; a second vote is refused.
	genuine := vote(samarKey, time.Now(), proposal, true)
	for range 3 {
		if st, r := deliver(genuine); st != 200 {
			t.Fatalf("genuine vote: %d %v", st, r)
		}
	}
	if st, r := deliver(vote(samarKey, time.Now().Add(time.Second), proposal, false)); st != 403 || !strings.Contains(fmt.Sprint(r), "already voted") {
		t.Fatalf("a second vote: %d %v", st, r)
	}
	_, p = anon.do("GET", "/api/v1/quorum/proposals/"+pid, "")
	if p["approved"] != 1.0 || p["rejected"] != 0.0 || p["status"] != "open" || voteOf(p, "Samar")["vote"].(map[string]any)["hash"] != genuine.Hash {
		t.Fatalf("after the forgeries: %v", p)
	}

	_, r := anon.do("GET", "/api/v1/federation/refusals", "")
	if n := len(r["refusals"].([]any)); n != 6 {
		t.Fatalf("%d refusals recorded, want 6: %v", n, r)
	}
	for _, want := range []string{"is not the key of any neighbour", "signature does not verify", "outside proposal", "names no proposal", "already voted"} {
		if !strings.Contains(fmt.Sprint(r), want) {
			t.Errorf("no refusal says %q", want)
		}
	}
}

// TestWitnessCatchesRewrittenHistory rewrites one old ledger entry on a
// node as its database owner could (triggers off, every later hash
// recomputed, so the node's own verification passes) and checks that its
// neighbour raises the alarm at the next witness round, on both nodes, and
// that `levee ledger verify --witnesses` fails.
func TestWitnessCatchesRewrittenHistory(t *testing.T) {
	ctx := context.Background()
	leyte, samar := MustNode(t, "Leyte"), MustNode(t, "Samar")
	leyte.admin.do("POST", "/api/v1/admin/treasury/issue", `{"amount":"100","memo":"seed"}`)
	leyte.found(1, samar)
	samar.found(1, leyte)
	for i := range 3 {
		leyte.person(fmt.Sprintf("c%d", i), "contractor")
		leyte.admin.do("POST", "/api/v1/admin/districts", fmt.Sprintf(`{"name":"d%d"}`, i))
	}
	if st, r := leyte.admin.do("POST", "/api/v1/admin/accounts", `{"name":"alice","roles":["resident"],"district":"d0","credit":"50"}`); st != 201 {
		t.Fatalf("admit alice: %d %v", st, r)
	}
	witness := func() int64 {
		t.Helper()
		if err := leyte.m.Node.Witness(ctx); err != nil {
			t.Fatal(err)
		}
		seq, _, err := ledger.Head(ctx, leyte.m.DB)
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	head := witness()
	anonL := anonymous(t, leyte.m)
	eventually(t, 5*time.Second, "Samar cosigns Leyte's head", func() bool {
		_, w := anonL.do("GET", "/api/v1/ledger/witnesses", "")
		ws := w["witnesses"].([]any)
		return len(ws) > 0 && ws[0].(map[string]any)["seq"] == float64(head)
	})
	if head < 2 {
		t.Fatalf("head %d: too few entries to rewrite an old one", head)
	}

	// The owner rewrites entry 1 and rechains everything after it.
	leyte.rewriteLedgerFrom(1)
	if r, err := leyte.m.Ledger.Verify(ctx); err != nil || !r.OK {
		t.Fatalf("the rewrite should fool the node's own verification: %+v %v", r, err)
	}

	// Life goes on; at the next witness round Samar finds the rewrite.
	leyte.person("late", "contractor")
	witness()
	anonS := anonymous(t, samar.m)
	eventually(t, 5*time.Second, "the alarm on Samar and on Leyte", func() bool {
		_, a := anonS.do("GET", "/api/v1/federation/alarms", "")
		_, b := anonL.do("GET", "/api/v1/federation/alarms", "")
		return len(a["alarms"].([]any)) == 1 && len(b["alarms"].([]any)) == 1
	})
	_, a := anonS.do("GET", "/api/v1/federation/alarms", "")
	if msg := fmt.Sprint(a); !strings.Contains(msg, fmt.Sprintf("entry %d had hash", head)) {
		t.Errorf("the alarm does not say what changed: %s", msg)
	}
	if out, code := verifyWitnessesCLI(t, leyte); code != 1 || !strings.Contains(out, "WITNESS MISMATCH") {
		t.Fatalf("ledger verify --witnesses after the rewrite: %d\n%s", code, out)
	}
}

// TestLateHeadIsNoAlarm: an announcement of an older ledger head that
// reaches a neighbour after a newer one (the outbox retries a neighbour it
// could not reach, and a newer head may pass it) is checked against the
// neighbour's export and cosigned, not taken for the ledger going back; a
// rewrite announced with a backdated time is no ancestor of the cosigned head
// and raises the alarm, and a lower head signed after the one cosigned is
// still the alarm.
func TestLateHeadIsNoAlarm(t *testing.T) {
	ctx := context.Background()
	leyte, samar := MustNode(t, "Leyte"), MustNode(t, "Samar")
	if st, r := leyte.admin.do("POST", "/api/v1/admin/treasury/issue", `{"amount":"100","memo":"seed"}`); st != 201 {
		t.Fatalf("issue: %d %v", st, r)
	}
	leyte.admin.do("POST", "/api/v1/admin/districts", `{"name":"d0"}`)
	leyte.found(1, samar)
	samar.found(1, leyte)
	seq, hash, err := ledger.Head(ctx, leyte.m.DB)
	if err != nil || seq < 1 {
		t.Fatalf("head %d: %v", seq, err)
	}
	// The older head's announcement is signed now and held back.
	late, err := leyte.m.Node.Sign(federation.KindLedgerHead, federation.Head{Seq: seq, Hash: hex.EncodeToString(hash)})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	if st, r := leyte.admin.do("POST", "/api/v1/admin/accounts", `{"name":"alice","roles":["resident"],"district":"d0","credit":"5"}`); st != 201 {
		t.Fatalf("admit alice: %d %v", st, r)
	}
	if err := leyte.m.Node.Witness(ctx); err != nil {
		t.Fatal(err)
	}
	newest, _, _ := ledger.Head(ctx, leyte.m.DB)
	anonL, anonS := anonymous(t, leyte.m), anonymous(t, samar.m)
	eventually(t, 5*time.Second, "Samar cosigns Leyte's newest head", func() bool {
		_, w := anonL.do("GET", "/api/v1/ledger/witnesses", "")
		ws := w["witnesses"].([]any)
		return len(ws) > 0 && ws[0].(map[string]any)["seq"] == float64(newest)
	})
	cosigns := func() int {
		_, r := anonS.do("GET", "/api/v1/federation/statements?kind=cosign", "")
		return len(r["statements"].([]any))
	}
	before := cosigns()
	deliver := func(st federation.Statement) {
		t.Helper()
		b, _ := json.Marshal(st.Wire())
		if code, r := anonS.do("POST", "/api/v1/federation/statements", string(b)); code >= 300 {
			t.Fatalf("deliver: %d %v", code, r)
		}
	}
	deliver(late)
	eventually(t, 5*time.Second, "Samar answers the late head with a cosignature", func() bool { return cosigns() == before+1 })
	if _, a := anonS.do("GET", "/api/v1/federation/alarms", ""); len(a["alarms"].([]any)) != 0 {
		t.Fatalf("a late head raised an alarm: %v", a)
	}

	// An adversary cannot pass a rewrite off as a late head by backdating
	// it: the owner rewrites entry seq and rechains what follows, then signs
	// the rewritten head at seq with a time before the cosigned one. It is
	// no ancestor of the cosigned head in the export: the alarm.
	rewritten := leyte.rewriteLedgerFrom(seq)
	leyte.clk.Skip(-time.Hour)
	forged, err := leyte.m.Node.Sign(federation.KindLedgerHead, federation.Head{Seq: seq, Hash: hex.EncodeToString(rewritten)})
	leyte.clk.Skip(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	deliver(forged)
	alarms := func(n int, say string) func() bool {
		return func() bool {
			_, a := anonS.do("GET", "/api/v1/federation/alarms", "")
			return len(a["alarms"].([]any)) == n && strings.Contains(fmt.Sprint(a), say)
		}
	}
	eventually(t, 5*time.Second, "the alarm on Samar for the backdated rewrite", alarms(1, "no ancestor"))

	// The honest lower head signed now, after the newest was cosigned: the
	// ledger went back.
	back, err := leyte.m.Node.Sign(federation.KindLedgerHead, federation.Head{Seq: seq, Hash: hex.EncodeToString(hash)})
	if err != nil {
		t.Fatal(err)
	}
	deliver(back)
	eventually(t, 5*time.Second, "the alarm on Samar for the head going back", alarms(2, "went back"))
}

// rewriteLedgerFrom rewrites the node's ledger entry seq as its database
// owner could (triggers off) and rechains every entry after it and the head,
// so that the node's own verification still passes. It returns entry seq's
// new hash.
func (n *testNode) rewriteLedgerFrom(seq int64) []byte {
	n.t.Helper()
	es, err := n.m.Ledger.Entries(context.Background(), seq-1, 1000)
	if err != nil || len(es) == 0 || es[0].Seq != seq {
		n.t.Fatalf("entries from %d: %v", seq, err)
	}
	es[0].Ref = "rewritten"
	prev := es[0].PrevHash
	tx := n.m.DB.MustBegin()
	tx.MustExec(`SET LOCAL session_replication_role = replica`)
	for i := range es {
		es[i].PrevHash = prev
		es[i].Hash = es[i].ComputeHash()
		prev = es[i].Hash
		tx.MustExec(`UPDATE ledger_entries SET ref = $2, prev_hash = $3, hash = $4 WHERE seq = $1`, es[i].Seq, es[i].Ref, es[i].PrevHash, es[i].Hash)
	}
	tx.MustExec(`UPDATE ledger_head SET hash = $1`, prev)
	if err := tx.Commit(); err != nil {
		n.t.Fatal(err)
	}
	return es[0].Hash
}
