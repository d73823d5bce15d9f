package web

import (
	"bytes"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/labstack/echo/v5"

	"levee/input"
)

// orderBodies are bodies of every kind: what clients send, and what the
// scan must leave to the strict decoder.
var orderBodies = []string{
	`{"outcome":0,"side":"buy","shares":"2.5"}`,
	` { "outcome" : 12 , "side" : "sell" , "amount" : "10" , "all" : false } `,
	"{\n\t\"outcome\": 1,\r\n \"side\": \"buy\", \"shares\": \"1\", \"limit_price\": \"0.6\", \"max_cost\": \"3\"}\n",
	`{"outcome":1,"side":"sell","all":true,"min_proceeds":"0.5"}`,
	`{}`,
	`{"outcome":0,"side":"buy","shares":"2.5","outcome":1}`,
	`{"Outcome":0,"side":"buy","shares":"1"}`,
	`{"outcome":01,"side":"buy"}`,
	`{"outcome":-1,"side":"buy"}`,
	`{"outcome":1.0,"side":"buy"}`,
	`{"outcome":1e2,"side":"buy"}`,
	`{"outcome":1234567890,"side":"buy"}`,
	`{"outcome":null,"side":"buy"}`,
	`{"outcome":0,"side":"b\u0075y"}`,
	`{"outcome":0,"side":"bü"}`,
	`{"outcome":0,"side":"buy",}`,
	`{"outcome":0,"side":"buy"} x`,
	`{"outcome":0,"side":"buy"}{}`,
	`{"outcome":0,"sides":"buy"}`,
	`{"outcome":0,"all":"yes"}`,
	`{"outcome":0,"all":tru}`,
	`{"outcome":0 "side":"buy"}`,
	`{"outcome":"0"}`,
	`[]`,
	``,
	`{`,
	"{\"side\":\"bu\x01y\"}",
	"{\"side\":\"bu\xffy\"}",
}

// TestScanOrderTakesTheCommonBodies: the bodies clients send are read by
// the scan (so the fast path is the one orders take), and the others are
// left to the strict decoder.
func TestScanOrderTakesTheCommonBodies(t *testing.T) {
	for i, body := range orderBodies {
		var f orderFields
		took := scanOrder([]byte(body), &f)
		if want := i < 5; took != want {
			t.Errorf("%q: scanned %t, want %t", body, took, want)
		}
	}
	var f orderFields
	if !scanOrder([]byte(orderBodies[0]), &f) || f.Outcome == nil || *f.Outcome != 0 || f.Side != "buy" || f.Shares != "2.5" {
		t.Fatalf("scanned %+v", f)
	}
}

// FuzzScanOrder: on every body the scan takes, the strict decoder
// (input.DecodeJSON) accepts it too and gives the same fields; and an
// order's answer through decodeOrder is the decoder's, field for field and
// error for error, whichever way it went.
func FuzzScanOrder(f *testing.F) {
	for _, b := range orderBodies {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var fast, strict orderFields
		strictErr := input.DecodeJSON(bytes.NewReader([]byte(body)), &strict)
		if scanOrder([]byte(body), &fast) {
			if strictErr != nil {
				t.Fatalf("%q: scanned, but the decoder refuses it: %v", body, strictErr)
			}
			if !reflect.DeepEqual(fast, strict) {
				t.Fatalf("%q: scanned %+v, decoded %+v", body, fast, strict)
			}
		}
		var got orderFields
		err := decodeOrderBody(body, &got)
		if (err == nil) != (strictErr == nil) || (err != nil && err.Error() != strictErr.Error()) {
			t.Fatalf("%q: decodeOrder said %v, the decoder %v", body, err, strictErr)
		}
		if err == nil && !reflect.DeepEqual(got, strict) {
			t.Fatalf("%q: decodeOrder gave %+v, the decoder %+v", body, got, strict)
		}
	})
}

func decodeOrderBody(body string, f *orderFields) error {
	req := httptest.NewRequest("POST", "/", strings.NewReader(body))
	return decodeOrder(echo.New().NewContext(req, httptest.NewRecorder()), f)
}
