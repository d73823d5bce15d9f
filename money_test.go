package levee_test

import (
	"database/sql/driver"
	"encoding/json"
	"math"
	"testing"

	"github.com/shopspring/decimal"

	"levee"
)

func TestParseMicros(t *testing.T) {
	tests := []struct {
		in   string
		want levee.Micros
		ok   bool
	}{
		{"0", 0, true},
		{"12", 12_000_000, true},
		{"12.5", 12_500_000, true},
		{"-0.000001", -1, true},
		{"1000.123456", 1_000_123_456, true},
		{"000.100000", 100_000, true},
		{"1000000000000", levee.MaxMoney, true},
		{"1000000000000.000001", 0, false},
		{"9999999999999", 0, false},
		{"99999999999999999999", 0, false},
		{"", 0, false},
		{"-", 0, false},
		{".5", 0, false},
		{"5.", 0, false},
		{"1.0000001", 0, false},
		{"1e3", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"--1", 0, false},
		{"1.2.3", 0, false},
		{"١٢", 0, false}, // Arabic-Indic digits
		{"0x10", 0, false},
		{"1_000", 0, false},
	}
	for _, tt := range tests {
		got, err := levee.ParseMicros(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseMicros(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestMicrosFormatting(t *testing.T) {
	for _, tt := range []struct {
		m    levee.Micros
		want string
	}{
		{0, "0.000000"}, {1, "0.000001"}, {-1, "-0.000001"}, {12_500_000, "12.500000"}, {-12_500_000, "-12.500000"},
	} {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("%d.String() = %q, want %q", int64(tt.m), got, tt.want)
		}
		b, _ := json.Marshal(tt.m)
		if string(b) != `"`+tt.want+`"` {
			t.Errorf("JSON %s", b)
		}
		var back levee.Micros
		if err := json.Unmarshal(b, &back); err != nil || back != tt.m {
			t.Errorf("round trip %s: %v %v", b, back, err)
		}
	}
	var m levee.Micros
	if err := json.Unmarshal([]byte(`12.5`), &m); err == nil {
		t.Error("a JSON number was accepted as money")
	}
}

func TestScanNumeric(t *testing.T) {
	var m levee.Micros
	for _, tt := range []struct {
		src  any
		want levee.Micros
	}{{[]byte("12.500000"), 12_500_000}, {"-3", -3_000_000}, {int64(2), 2_000_000}, {nil, 0},
		// Not what ParseMicros reads (the fast path): the decimal path.
		{[]byte("1.2300000"), 1_230_000}, {"1e3", 1_000_000_000}, {[]byte("-0.000000"), 0}} {
		if err := m.Scan(tt.src); err != nil || m != tt.want {
			t.Errorf("Scan(%v) = %v, %v", tt.src, m, err)
		}
	}
	if err := m.Scan([]byte("1.0000001")); err == nil {
		t.Error("scanned 7 decimal places")
	}
}

// FuzzParseMicros checks that the parser never panics, accepts only what it
// can print back exactly, and agrees with shopspring/decimal.
func FuzzParseMicros(f *testing.F) {
	for _, s := range []string{"0", "1.5", "-0.000001", "1e3", "NaN", "1000000000000", "١", "..", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// A column's bytes scan as its text does.
		var fromBytes, fromText levee.Micros
		errB, errT := fromBytes.Scan([]byte(s)), fromText.Scan(s)
		if (errB == nil) != (errT == nil) || fromBytes != fromText {
			t.Fatalf("%q: Scan of bytes %v (%v), of text %v (%v)", s, fromBytes, errB, fromText, errT)
		}
		m, err := levee.ParseMicros(s)
		if err != nil {
			return
		}
		if m > levee.MaxMoney || m < -levee.MaxMoney {
			t.Fatalf("%q parsed out of range: %d", s, m)
		}
		d, derr := decimal.NewFromString(s)
		if derr != nil {
			t.Fatalf("%q accepted by us, refused by decimal: %v", s, derr)
		}
		if !d.Equal(m.Decimal()) {
			t.Fatalf("%q: we read %s, decimal reads %s", s, m, d)
		}
		again, err := levee.ParseMicros(m.String())
		if err != nil || again != m {
			t.Fatalf("%q: %s does not parse back: %v %v", s, m, again, err)
		}
	})
}

// TestMaxMoneyIsOneBound checks that every way into Micros (the parser, JSON,
// decimals, Scan of text and of integers) accepts exactly ±MaxMoney and
// refuses one micro-unit more, and that what is accepted prints back to
// itself, so a value written to a NUMERIC column can always be read again.
func TestMaxMoneyIsOneBound(t *testing.T) {
	if 2*int64(levee.MaxMoney)/2 != int64(levee.MaxMoney) || 2*levee.MaxMoney < levee.MaxMoney {
		t.Fatal("twice MaxMoney overflows int64: the sum of all absolute balances would not fit")
	}
	ways := []struct {
		name string
		read func(string) (levee.Micros, error)
	}{
		{"ParseMicros", levee.ParseMicros},
		{"UnmarshalJSON", func(s string) (levee.Micros, error) {
			var m levee.Micros
			err := json.Unmarshal([]byte(`"`+s+`"`), &m)
			return m, err
		}},
		{"MicrosFromDecimal", func(s string) (levee.Micros, error) {
			return levee.MicrosFromDecimal(decimal.RequireFromString(s))
		}},
		{"Scan", func(s string) (levee.Micros, error) {
			var m levee.Micros
			err := m.Scan([]byte(s))
			return m, err
		}},
	}
	for _, w := range ways {
		t.Run(w.name, func(t *testing.T) {
			for _, tt := range []struct {
				in string
				ok bool
			}{
				{levee.MaxMoney.String(), true},
				{(-levee.MaxMoney).String(), true},
				{(levee.MaxMoney - 1).String(), true},
				{(levee.MaxMoney + 1).String(), false},
				{(-levee.MaxMoney - 1).String(), false},
				{"9223372036854.775807", false},
				{"99999999999999.999999", false}, // the largest NUMERIC(20,6)
			} {
				m, err := w.read(tt.in)
				if (err == nil) != tt.ok {
					t.Errorf("%s(%s) = %v, %v; want ok=%v", w.name, tt.in, m, err, tt.ok)
				}
				if err == nil && m.String() != tt.in {
					t.Errorf("%s(%s) reads back as %s", w.name, tt.in, m)
				}
			}
		})
	}
	var m levee.Micros
	if err := m.Scan(int64(levee.MaxMoney / levee.Scale)); err != nil || m != levee.MaxMoney {
		t.Errorf("Scan(int64 bound) = %v, %v", m, err)
	}
	if err := m.Scan(int64(levee.MaxMoney/levee.Scale) + 1); err == nil {
		t.Error("Scan accepted an integer past the bound")
	}
	if err := m.Scan(int64(1 << 62)); err == nil {
		t.Error("Scan accepted an integer that overflows micro-units")
	}
}

func TestCapped(t *testing.T) {
	tests := []struct{ m, x, want levee.Micros }{
		{0, 0, 0},
		{levee.Units(1), levee.Units(2), levee.Units(3)},
		{levee.MaxMoney - 1, 1, levee.MaxMoney},
		{levee.MaxMoney - 1, 2, levee.MaxMoney},
		{levee.MaxMoney, levee.MaxMoney, levee.MaxMoney},
		{levee.MaxMoney / 2, levee.MaxMoney, levee.MaxMoney}, // would overflow nothing, but passes the bound
	}
	for _, tt := range tests {
		if got := tt.m.Capped(tt.x); got != tt.want {
			t.Errorf("%s.Capped(%s) = %s, want %s", tt.m, tt.x, got, tt.want)
		}
	}
}

// TestMicrosArrayValue: the numeric[] text of a list of amounts, each as
// Micros.String writes it, and NULL for none.
func TestMicrosArrayValue(t *testing.T) {
	for _, tc := range []struct {
		a    levee.MicrosArray
		want driver.Value
	}{
		{nil, nil},
		{levee.MicrosArray{}, "{}"},
		{levee.MicrosArray{1_500_000}, "{1.500000}"},
		{levee.MicrosArray{0, -1, levee.MaxMoney, math.MinInt64}, "{0.000000,-0.000001," + levee.MaxMoney.String() + "," + levee.Micros(math.MinInt64).String() + "}"},
	} {
		if got, err := tc.a.Value(); err != nil || got != tc.want {
			t.Errorf("%v: %v (%v), want %v", tc.a, got, err, tc.want)
		}
	}
}
