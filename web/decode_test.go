package web

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/crisis"
)

func decodeBody(body string, v any) error {
	e := echo.New()
	req := httptest.NewRequest("POST", "/", strings.NewReader(body))
	return decodeJSON(e.NewContext(req, httptest.NewRecorder()), v)
}

func TestDecodeJSONNamesTheField(t *testing.T) {
	tests := []struct {
		body, field string
	}{
		{``, "body"},
		{`{`, "body"},
		{`nul`, "body"},
		{`[]`, "body"},
		{`"x"`, "body"},
		{`{"outcome":"0"}`, "outcome"},
		{`{"outcome":1.5}`, "outcome"},
		{`{"side":1}`, "side"},
		{`{"sides":"buy"}`, "sides"},
		{`{"outcome":0} x`, "body"},
		{`{"all":"yes"}`, "all"},
	}
	for _, tt := range tests {
		var f orderFields
		err := decodeBody(tt.body, &f)
		if levee.ErrorCode(err) != levee.EINVALID || levee.ErrorField(err) != tt.field {
			t.Errorf("%q: got %v, want invalid %q", tt.body, err, tt.field)
		}
	}
}

func TestOrderFields(t *testing.T) {
	zero := 0
	tests := []struct {
		f     orderFields
		field string
	}{
		{orderFields{Side: "buy", Shares: "1"}, "outcome"},
		{orderFields{Outcome: &zero, Side: "short", Shares: "1"}, "side"},
		{orderFields{Outcome: &zero, Side: "buy", Shares: "1e2"}, "shares"},
		{orderFields{Outcome: &zero, Side: "buy", Amount: "-"}, "amount"},
		{orderFields{Outcome: &zero, Side: "buy", Shares: "1", LimitPrice: "0.5.1"}, "limit_price"},
		{orderFields{Outcome: &zero, Side: "buy", Shares: "1", MaxCost: "١"}, "max_cost"},
		{orderFields{Outcome: &zero, Side: "sell", Shares: "1", MinProceeds: "NaN"}, "min_proceeds"},
		{orderFields{Outcome: &zero, Side: "buy", Shares: "1.5"}, ""},
	}
	for _, tt := range tests {
		_, err := tt.f.order()
		if tt.field == "" {
			if err != nil {
				t.Errorf("%+v: %v", tt.f, err)
			}
			continue
		}
		if levee.ErrorCode(err) != levee.EINVALID || levee.ErrorField(err) != tt.field {
			t.Errorf("%+v: got %v, want invalid %q", tt.f, err, tt.field)
		}
	}
}

// FuzzOrderBody feeds arbitrary bodies to the order parser: it never panics,
// and every refusal is a coded 4xx error.
func FuzzOrderBody(f *testing.F) {
	for _, s := range []string{`{"outcome":0,"side":"buy","shares":"5"}`, `{"outcome":1,"side":"sell","all":true}`,
		`{"outcome":0,"side":"buy","amount":"1e9"}`, `{`, `[]`, `{"outcome":-1}`, `{"limit_price":"0.75"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var of orderFields
		err := decodeOrderBody(body, &of) // the order route's decoding
		if err == nil {
			_, err = of.order()
		}
		if err != nil {
			if c := levee.ErrorCode(err); c != levee.EINVALID && c != levee.ETOOLARGE {
				t.Fatalf("%q: uncoded error %v", body, err)
			}
		}
	})
}

func TestDecodeJSONWantsAnObject(t *testing.T) {
	for _, body := range []string{`null`, `1`, `"x"`, `[]`, `true`} {
		var f orderFields
		if err := decodeBody(body, &f); levee.ErrorCode(err) != levee.EINVALID || levee.ErrorField(err) != "body" {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// FuzzQuoteQuery feeds arbitrary query strings to the quote parser: it
// never panics, and every refusal is a coded 4xx error.
func FuzzQuoteQuery(f *testing.F) {
	for _, s := range []string{"outcome=0&side=buy&shares=5", "outcome=1&side=sell&all=true&min_proceeds=0.1",
		"outcome=x", "all=maybe", "side=buy&amount=1e9", "outcome=0&side=buy&shares=%FF", "shares=٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.RawQuery = query
		_, _, err := quoteQuery(echo.New().NewContext(req, httptest.NewRecorder()))
		if err != nil && levee.ErrorCode(err) != levee.EINVALID {
			t.Fatalf("%q: uncoded error %v", query, err)
		}
	})
}

// FuzzCrisisBodies feeds arbitrary bodies to the emergency declaration and
// act parsers (the crisis package validates what decodes): never a panic,
// every refusal coded.
func FuzzCrisisBodies(f *testing.F) {
	for _, s := range []string{`{"reason":"storm","districts":["north"],"duration":"72h","cap":"100"}`,
		`{"kind":"reallocate","reason":"r","from_line":"1","to_line":"2","amount":"5"}`,
		`{"kind":"direct_award","price":"1","completion_at":"2027-01-01T00:00:00Z","milestones":[{"title":"a","share":"1","due_at":"x"}]}`,
		`{"cap":"-1"}`, `{"from_line":1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, v := range []any{&crisis.Declaration{}, &crisis.ActRequest{}, &crisis.CharterChange{}} {
			if err := decodeBody(body, v); err != nil {
				if c := levee.ErrorCode(err); c != levee.EINVALID && c != levee.ETOOLARGE {
					t.Fatalf("%q into %T: uncoded error %v", body, v, err)
				}
			}
		}
	})
}

func TestCheckTextRefuses(t *testing.T) {
	tests := []struct {
		query, field string
	}{
		{"limit=1", ""},
		{"limit=&limit=buy", "limit"}, // read as "" here, as "buy" by a client reading the last
		{"limit=1&limit=1", "limit"},
		{"district=%00", "district"},
		{"a%00=1", "query"},
	}
	e := echo.New()
	ok := func(c *echo.Context) error { return nil }
	for _, tt := range tests {
		c := e.NewContext(httptest.NewRequest("GET", "/?"+tt.query, nil), httptest.NewRecorder())
		err := checkText(ok)(c)
		if tt.field == "" && err != nil || tt.field != "" && (levee.ErrorCode(err) != levee.EINVALID || levee.ErrorField(err) != tt.field) {
			t.Errorf("%q: got %v, want field %q", tt.query, err, tt.field)
		}
	}
}
