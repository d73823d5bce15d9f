package ledger

import (
	"context"
	"database/sql/driver"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lib/pq"

	"levee"
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

// literalCases are values of every type appendLiteral writes itself, with
// text that needs each kind of escape.
func literalCases(texts ...string) []any {
	vs := []any{int64(0), int64(math.MinInt64), int64(math.MaxInt64), []byte{}, []byte{0, 1, 0xfe, '\'', '\\'},
		pq.Int64Array(nil), pq.Int64Array{}, pq.Int64Array{-1, 0, math.MaxInt64}, (*pq.Int64Array)(nil),
		pq.StringArray(nil), pq.StringArray{}, pq.ByteaArray(nil), pq.ByteaArray{}, pq.ByteaArray{{}, {0xde, 0xad}, {'\'', '\\', '"'}},
		&pq.Int64Array{7}, &pq.ByteaArray{{1}}, (*pq.StringArray)(nil), (*pq.ByteaArray)(nil),
		levee.MicrosArray(nil), levee.MicrosArray{}, levee.MicrosArray{0, 1, -1, 1_500_000, levee.MaxMoney, -levee.MaxMoney, math.MinInt64},
		textArray(nil), textArray{}, textArray{"2026-12-06T18:00:00.123456Z", `"{1,2}"`}}
	for _, s := range texts {
		vs = append(vs, s, []byte(s), pq.StringArray{s}, &pq.StringArray{"a", s, "{1,2}"}, pq.StringArray{s, s + `"`}, pq.ByteaArray{[]byte(s)}, textArray{s, "x"})
	}
	return vs
}

// textArray writes its text as it is: an arrayText whose text needs
// escaping, which appendLiteral must then quote the general way.
type textArray []string

func (a textArray) AppendArrayText(b []byte) ([]byte, bool) {
	if a == nil {
		return b, false
	}
	return append(append(append(b, '{'), strings.Join(a, ",")...), '}'), true
}

func (a textArray) Value() (driver.Value, error) {
	b, ok := a.AppendArrayText(nil)
	if !ok {
		return nil, nil
	}
	return string(b), nil
}

// TestAppendLiteralIsLiteral: the journal's one-pass writer writes what
// the general one (driver.Valuer, pq's array text, pq.QuoteLiteral)
// writes, byte for byte, and refuses what it refuses.
func TestAppendLiteralIsLiteral(t *testing.T) {
	texts := []string{"", "plain", "it's", `back\slash`, `\x00`, `"quoted" {braces}, commas`, "a\x00b", "ünïcødé", `'\"`, "NULL"}
	for _, v := range literalCases(texts...) {
		want, wantErr := literal(v)
		got, err := appendLiteral([]byte("prefix "), v)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%#v: error %v, want %v", v, err, wantErr)
		}
		if err == nil && string(got) != "prefix "+want {
			t.Fatalf("%#v:\n got %s\nwant prefix %s", v, got, want)
		}
	}
}

// FuzzAppendLiteral: for any text, in any of the journal's types, the
// one-pass writer and the general one agree.
func FuzzAppendLiteral(f *testing.F) {
	for _, s := range []string{"", "'", `\`, `"`, `'\"{},`, "a\x00", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, v := range literalCases(s) {
			want, wantErr := literal(v)
			got, err := appendLiteral(nil, v)
			if (err != nil) != (wantErr != nil) || err == nil && string(got) != want {
				t.Fatalf("%#v: got %s (%v), want %s (%v)", v, got, err, want, wantErr)
			}
		}
	})
}

// BenchmarkExecuteCommit writes the append of a commit of 128 orders, as
// the journal's second round trip sends it.
func BenchmarkExecuteCommit(b *testing.B) {
	const n = 128
	ints, texts, hashes := make(pq.Int64Array, n), make(pq.StringArray, n), make(pq.ByteaArray, n)
	for i := range n {
		ints[i], texts[i], hashes[i] = int64(1_000_000+i), "cash:"+strconv.Itoa(10_000+i), make([]byte, 32)
	}
	args := []any{ints, texts, texts, texts, texts, hashes, hashes, ints, ints, texts, ints, texts, ints, int64(n), hashes[0]}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = appendExecute(buf[:0], "EXECUTE levee_ledger_3", args, "; COMMIT"); err != nil {
			b.Fatal(err)
		}
	}
}
