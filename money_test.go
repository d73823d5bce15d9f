package levee_test

import (
	"encoding/json"
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
		{"1000000000000", levee.MaxAmount, true},
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
	}{{[]byte("12.500000"), 12_500_000}, {"-3", -3_000_000}, {int64(2), 2_000_000}, {nil, 0}} {
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
		m, err := levee.ParseMicros(s)
		if err != nil {
			return
		}
		if m > levee.MaxAmount || m < -levee.MaxAmount {
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
