package ledger_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/ledger"
	"levee/migrations/dbtest"
)

// The worked example of docs/ledger.md: two entries, their canonical bytes
// written out by hand, their hashes computed by Python and by sha256sum.
var workedExample = []struct {
	entry     ledger.Entry
	canonical string
	hash      string
}{
	{
		entry: ledger.Entry{
			Seq: 1, At: time.Date(2025, 3, 1, 12, 0, 0, 250_000_000, time.UTC), Kind: "issue", Ref: "budget/2025",
			Postings: []ledger.Posting{
				{Account: "treasury:issuance", Amount: levee.MustMicros("-1000000")},
				{Account: "treasury", Amount: levee.MustMicros("1000000")},
			},
		},
		canonical: "levee-ledger-v1\nseq=1\nat=1740830400250000\nkind=issue\nref=budget/2025\n" +
			"treasury:issuance -1000000.000000\ntreasury 1000000.000000\n",
		hash: "396bef045fd5249c134f50b5b8df92eace9029c21d04735b6e76cf060145fef4",
	},
	{
		entry: ledger.Entry{
			Seq: 2, At: time.Date(2025, 3, 1, 12, 5, 0, 1_000, time.UTC), Kind: "grant", Ref: "contract/17",
			Postings: []ledger.Posting{
				{Account: "treasury", Amount: levee.MustMicros("-250.5")},
				{Account: "cash:42", Amount: levee.MustMicros("250")},
				{Account: "fees", Amount: levee.MustMicros("0.5")},
			},
		},
		canonical: "levee-ledger-v1\nseq=2\nat=1740830700000001\nkind=grant\nref=contract/17\n" +
			"treasury -250.500000\ncash:42 250.000000\nfees 0.500000\n",
		hash: "52222399dc58d869b6b28a2341974bf17b9a860f759640ec237aa4d045e03ffd",
	},
}

func TestCanonicalWorkedExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/ledger.md")
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	prev := make([]byte, sha256.Size)
	for _, ex := range workedExample {
		e := ex.entry
		e.PrevHash = prev
		if got := string(e.Canonical()); got != ex.canonical {
			t.Errorf("entry %d canonical:\n got %q\nwant %q", e.Seq, got, ex.canonical)
		}
		byHand := sha256.Sum256(append(append([]byte{}, prev...), ex.canonical...))
		if got := hex.EncodeToString(byHand[:]); got != ex.hash {
			t.Errorf("entry %d: sha256 of the hand-written bytes is %s, want %s", e.Seq, got, ex.hash)
		}
		if got := hex.EncodeToString(e.ComputeHash()); got != ex.hash {
			t.Errorf("entry %d: ComputeHash = %s, want %s", e.Seq, got, ex.hash)
		}
		if !strings.Contains(string(doc), ex.hash) {
			t.Errorf("docs/ledger.md does not show the hash of entry %d (%s)", e.Seq, ex.hash)
		}
		for _, line := range strings.Split(strings.TrimSuffix(ex.canonical, "\n"), "\n") {
			if !strings.Contains(string(doc), line) {
				t.Errorf("docs/ledger.md does not show the canonical line %q of entry %d", line, e.Seq)
			}
		}
		prev = byHand[:]
	}
}

// TestWorkedExampleStored posts the worked example through the real store
// and checks the database produces the same hashes.
func TestWorkedExampleStored(t *testing.T) {
	ctx := context.Background()
	l, _ := MustLedger(t)
	MustOpen(t, l, "cash:42")
	for _, ex := range workedExample {
		e, err := l.Transfer(ctx, ledger.Transfer{Kind: ex.entry.Kind, Ref: ex.entry.Ref, At: ex.entry.At, Postings: ex.entry.Postings})
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(e.Hash); got != ex.hash || e.Seq != ex.entry.Seq {
			t.Errorf("stored entry %d hash %s, want entry %d hash %s", e.Seq, got, ex.entry.Seq, ex.hash)
		}
	}
	MustVerify(t, l)
}

func TestEntryJSON(t *testing.T) {
	e := workedExample[1].entry
	e.PrevHash, _ = hex.DecodeString(workedExample[0].hash)
	e.Hash, _ = hex.DecodeString(workedExample[1].hash)
	e.At = e.At.In(time.FixedZone("x", 3600)) // JSON is UTC whatever the zone
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"seq":2,"at":"2025-03-01T12:05:00.000001Z","kind":"grant","ref":"contract/17","postings":[` +
		`{"account":"treasury","amount":"-250.500000"},{"account":"cash:42","amount":"250.000000"},{"account":"fees","amount":"0.500000"}],` +
		`"prev_hash":"` + workedExample[0].hash + `","hash":"` + workedExample[1].hash + `"}`
	if string(b) != want {
		t.Fatalf("json:\n got %s\nwant %s", b, want)
	}
	var back ledger.Entry
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(back.ComputeHash()) != workedExample[1].hash {
		t.Fatalf("hash recomputed from JSON differs")
	}
	// A whole second must still show six decimals: the export is meant to be
	// parsed by scripts that expect one fixed layout.
	e.At = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	b, _ = json.Marshal(e)
	if !strings.Contains(string(b), `"at":"2025-01-01T00:00:00.000000Z"`) {
		t.Fatalf("whole-second time not padded: %s", b)
	}
}

func TestPostValidation(t *testing.T) {
	ctx := context.Background()
	l, db := MustLedger(t)
	MustOpen(t, l, "cash:1", "cash:2")
	MustFund(t, l, "cash:1", levee.Units(10))
	p := func(acct, amt string) ledger.Posting {
		return ledger.Posting{Account: acct, Amount: levee.MustMicros(amt)}
	}
	ok := []ledger.Posting{p("cash:1", "-1"), p("cash:2", "1")}
	tests := []struct {
		name  string
		t     ledger.Transfer
		code  string
		field string
		msg   string
	}{
		{"unbalanced", ledger.Transfer{Kind: "move", Postings: []ledger.Posting{p("cash:1", "-1"), p("cash:2", "0.999999")}}, levee.EINVALID, "postings", "sum to zero"},
		{"single posting", ledger.Transfer{Kind: "move", Postings: []ledger.Posting{p("cash:1", "1")}}, levee.EINVALID, "postings", "at least two"},
		{"no postings", ledger.Transfer{Kind: "move"}, levee.EINVALID, "postings", "at least two"},
		{"zero amount", ledger.Transfer{Kind: "move", Postings: []ledger.Posting{p("cash:1", "-1"), p("cash:2", "0"), p("cash:2", "1")}}, levee.EINVALID, "postings[1].amount", "zero"},
		{"too large", ledger.Transfer{Kind: "move", Postings: []ledger.Posting{{"cash:1", levee.MaxMoney + 1}, {"cash:2", -levee.MaxMoney - 1}}}, levee.EINVALID, "postings[0].amount", "too large"},
		{"overflowing sum", ledger.Transfer{Kind: "move", Postings: overflowing()}, levee.EINVALID, "postings", "too large"},
		{"empty kind", ledger.Transfer{Kind: "", Postings: ok}, levee.EINVALID, "kind", ""},
		{"bad kind", ledger.Transfer{Kind: "Move Money", Postings: ok}, levee.EINVALID, "kind", ""},
		{"long kind", ledger.Transfer{Kind: strings.Repeat("k", 65), Postings: ok}, levee.EINVALID, "kind", ""},
		{"bad ref", ledger.Transfer{Kind: "move", Ref: "a b", Postings: ok}, levee.EINVALID, "ref", ""},
		{"newline in ref", ledger.Transfer{Kind: "move", Ref: "a\nb", Postings: ok}, levee.EINVALID, "ref", ""},
		{"bad account key", ledger.Transfer{Kind: "move", Postings: []ledger.Posting{p("cash:1", "-1"), p("Cash 2", "1")}}, levee.EINVALID, "postings[1].account", ""},
		{"unknown account", ledger.Transfer{Kind: "move", Postings: []ledger.Posting{p("cash:1", "-1"), p("cash:99", "1")}}, levee.EINVALID, "postings[1].account", "cash:99"},
		{"before 1970", ledger.Transfer{Kind: "move", At: time.Unix(-1, 0), Postings: ok}, levee.EINVALID, "at", ""},
		{"overdraft", ledger.Transfer{Kind: "move", Postings: []ledger.Posting{p("cash:1", "-10.000001"), p("cash:2", "10.000001")}}, levee.ECONFLICT, "", "insufficient funds in cash:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Transfer(ctx, tt.t)
			if got := levee.ErrorCode(err); got != tt.code {
				t.Fatalf("code %q, want %q (err %v)", got, tt.code, err)
			}
			if got := levee.ErrorField(err); got != tt.field {
				t.Errorf("field %q, want %q (err %v)", got, tt.field, err)
			}
			if !strings.Contains(levee.ErrorMessage(err), tt.msg) {
				t.Errorf("message %q does not mention %q", levee.ErrorMessage(err), tt.msg)
			}
		})
	}
	if got := MustBalance(t, l, "cash:1"); got != levee.Units(10) {
		t.Fatalf("failed transfers moved money: cash:1 = %s", got)
	}
	MustVerify(t, l)

	t.Run("batch names the transfer", func(t *testing.T) {
		tx := db.MustBegin()
		defer tx.Rollback()
		_, err := ledger.PostBatch(ctx, tx, []ledger.Transfer{{Kind: "move", Postings: ok}, {Kind: "BAD", Postings: ok}})
		if levee.ErrorCode(err) != levee.EINVALID || levee.ErrorField(err) != "transfers[1].kind" {
			t.Fatalf("err %v, field %q", err, levee.ErrorField(err))
		}
	})
}

// overflowing returns postings within MaxMoney each whose int64 sum wraps
// to exactly zero; the ledger must not mistake them for balanced.
func overflowing() []ledger.Posting {
	var ps []ledger.Posting
	var rest uint64 = 1 << 63 // two halves of 2^64
	for i := 0; i < 2; i++ {
		r := rest
		for r > 0 {
			a := min(r, uint64(levee.MaxMoney))
			ps = append(ps, ledger.Posting{Account: "cash:1", Amount: levee.Micros(a)})
			r -= a
		}
	}
	return ps
}

func TestOpenAccount(t *testing.T) {
	ctx := context.Background()
	l, _ := MustLedger(t)
	if err := l.OpenAccount(ctx, "escrow:3", "escrow", false); err != nil {
		t.Fatal(err)
	}
	if err := l.OpenAccount(ctx, "escrow:3", "escrow", false); err != nil {
		t.Fatalf("reopening the same account: %v", err)
	}
	if err := l.OpenAccount(ctx, "escrow:3", "escrow", true); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("reopening with other rules: %v", err)
	}
	if err := l.OpenAccount(ctx, "Escrow 3", "escrow", false); levee.ErrorField(err) != "key" {
		t.Fatalf("bad key: %v", err)
	}
	if b, err := l.Balance(ctx, "escrow:3"); err != nil || b != 0 {
		t.Fatalf("balance %s, %v", b, err)
	}
	if _, err := l.Balance(ctx, "escrow:4"); levee.ErrorCode(err) != levee.ENOTFOUND {
		t.Fatalf("balance of a missing account: %v", err)
	}
}

// MustLedger returns a Ledger on a fresh database.
func MustLedger(t testing.TB) (*ledger.Ledger, *sqlx.DB) {
	t.Helper()
	db := dbtest.New(t)
	return ledger.New(db), db
}

// MustOpen opens ordinary (never negative) accounts, their kind taken from
// the key's prefix.
func MustOpen(t testing.TB, l *ledger.Ledger, keys ...string) {
	t.Helper()
	for _, k := range keys {
		kind, _, _ := strings.Cut(k, ":")
		if err := l.OpenAccount(context.Background(), k, kind, false); err != nil {
			t.Fatalf("open %s: %v", k, err)
		}
	}
}

// MustFund issues amount into key.
func MustFund(t testing.TB, l *ledger.Ledger, key string, amount levee.Micros) ledger.Entry {
	t.Helper()
	e, err := l.Transfer(context.Background(), ledger.Transfer{Kind: "issue", Postings: []ledger.Posting{
		{Account: "treasury:issuance", Amount: -amount}, {Account: key, Amount: amount},
	}})
	if err != nil {
		t.Fatalf("fund %s: %v", key, err)
	}
	return e
}

// MustBalance returns the balance of key.
func MustBalance(t testing.TB, l *ledger.Ledger, key string) levee.Micros {
	t.Helper()
	b, err := l.Balance(context.Background(), key)
	if err != nil {
		t.Fatalf("balance %s: %v", key, err)
	}
	return b
}

// MustVerify fails t unless the ledger verifies.
func MustVerify(t testing.TB, l *ledger.Ledger) ledger.Report {
	t.Helper()
	r, err := l.Verify(context.Background())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !r.OK || !r.TrialBalance.IsZero() || r.FirstBrokenSeq != 0 {
		t.Fatalf("verify: %+v", r)
	}
	return r
}
