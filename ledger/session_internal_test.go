package ledger

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lib/pq"

	"levee/migrations/dbtest"
)

// TestLiteralsReadBackExactly: every kind of argument a Session writes as
// a literal reaches PostgreSQL as the value it was, however hostile the
// text: quotes, backslashes, semicolons and comment marks stay inside the
// literal, and numbers, bytes, times and arrays read back exactly.
func TestLiteralsReadBackExactly(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	c, err := db.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `PREPARE back(text, bigint, bytea, timestamptz, text[], bigint[], bytea[], boolean) AS
		SELECT $1, $2, encode($3, 'hex'), $4 = '2026-12-06 18:00:00.123456+00', $5, $6, $7, $8`); err != nil {
		t.Fatal(err)
	}
	texts := []string{"", "plain", "it's", `back\slash`, `\x00`, "'); DROP TABLE ledger_entries; --", "$$ dollar $$", "E'", "ünïcødé ✓", `"quoted" {braces}, commas`, strings.Repeat("'\\", 500)}
	for _, s := range texts {
		args := []any{s, int64(math.MinInt64), []byte{0, 1, 0xfe, '\'', '\\'}, time.Date(2026, 12, 6, 18, 0, 0, 123456000, time.UTC),
			pq.StringArray{s, "b"}, pq.Int64Array{math.MaxInt64, -1}, pq.ByteaArray{{0xde, 0xad}, {}}, true}
		q, err := execute("EXECUTE back", args, "")
		if err != nil {
			t.Fatal(err)
		}
		var gotText, gotHex string
		var gotInt int64
		var sameTime, gotBool bool
		var gotTexts pq.StringArray
		var gotInts pq.Int64Array
		var gotBytes pq.ByteaArray
		if err := c.QueryRowxContext(ctx, q).Scan(&gotText, &gotInt, &gotHex, &sameTime, &gotTexts, &gotInts, &gotBytes, &gotBool); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if gotText != s || gotInt != math.MinInt64 || gotHex != "0001fe275c" || !sameTime || len(gotTexts) != 2 || gotTexts[0] != s ||
			gotInts[0] != math.MaxInt64 || gotInts[1] != -1 || string(gotBytes[0]) != "\xde\xad" || len(gotBytes[1]) != 0 || !gotBool {
			t.Fatalf("%q came back as %q %d %s %t %q %v %x %t", s, gotText, gotInt, gotHex, sameTime, gotTexts, gotInts, gotBytes, gotBool)
		}
	}
	for _, v := range []any{math.Inf(1), "a\x00b", pq.StringArray{"a\x00b"}} {
		if _, err := literal(v); err == nil {
			t.Fatalf("%q was written as a literal", v)
		}
	}
}

// FuzzLiteral: any string written as a literal reads back as itself.
func FuzzLiteral(f *testing.F) {
	for _, s := range []string{"", "'", `\`, `'\'`, "a'b\\c", "--", ";", "\u00a0", "\xff"} {
		f.Add(s)
	}
	db := dbtest.New(f)
	f.Fuzz(func(t *testing.T, s string) {
		q, err := execute("SELECT", []any{s}, "::text")
		if strings.ContainsRune(s, 0) {
			if err == nil {
				t.Fatalf("%q, with a NUL, was written as a literal", s)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.ValidString(s) {
			return // PostgreSQL refuses it, whatever the protocol
		}
		q = strings.Replace(q, "SELECT(", "SELECT (", 1)
		var got string
		if err := db.Get(&got, q); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if got != s {
			t.Fatalf("%q came back as %q", s, got)
		}
	})
}
