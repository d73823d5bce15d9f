package live

import (
	"encoding/json"
	"slices"
	"testing"

	"levee"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		msg   string
		op    string
		ids   []int64
		field string // of the error; "-" for none
	}{
		{`{"op":"subscribe","markets":["12","13"]}`, "subscribe", []int64{12, 13}, "-"},
		{`{"op":"unsubscribe","markets":[12]}`, "unsubscribe", []int64{12}, "-"},
		{`{"op":"subscribe","markets":["12",12," 7"]}`, "", nil, "markets"}, // " 7" is not an id
		{`{"op":"subscribe","markets":["12",12,"12"]}`, "subscribe", []int64{12}, "-"},
		{`{"op":"subscribe","markets":["9223372036854775807"]}`, "subscribe", []int64{9223372036854775807}, "-"},
		{`{"op":"subscribe","markets":["9223372036854775808"]}`, "", nil, "markets"},
		{`{"op":"subscribe","markets":[1e3]}`, "", nil, "markets"},
		{`{"op":"subscribe","markets":["007"]}`, "", nil, "markets"}, // one spelling per id, as in paths
		{`{"op":"subscribe","markets":["+7"]}`, "", nil, "markets"},
		{`{"op":"subscribe","markets":[null]}`, "", nil, "markets"},
		{`{"op":"subscribe","markets":"12"}`, "", nil, ""},
		{`{"op":"Subscribe","markets":["1"]}`, "", nil, "op"},
		{`null`, "", nil, "op"},
		{``, "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			op, ids, err := parseRequest([]byte(tt.msg))
			if tt.field == "-" {
				if err != nil || op != tt.op || !slices.Equal(ids, tt.ids) {
					t.Fatalf("= %q %v %v, want %q %v", op, ids, err, tt.op, tt.ids)
				}
				return
			}
			if levee.ErrorCode(err) != levee.EINVALID || levee.ErrorField(err) != tt.field {
				t.Fatalf("err = %v, want invalid field %q", err, tt.field)
			}
		})
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"op":"subscribe","markets":["12","13"]}`,
		`{"op":"unsubscribe","markets":[12]}`,
		`{"op":"subscribe","markets":["\u0031"]}`,
		`{"op":"x"}`, `[]`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		op, ids, err := parseRequest(data)
		if err != nil {
			if levee.ErrorCode(err) != levee.EINVALID {
				t.Fatalf("err %v is not invalid", err)
			}
			var m errorMsg
			if json.Unmarshal(encodeError(err, "", 0), &m) != nil || m.Type != "error" {
				t.Fatalf("error frame does not decode")
			}
			return
		}
		if op != opSubscribe && op != opUnsubscribe || len(ids) == 0 {
			t.Fatalf("accepted op %q with %d ids", op, len(ids))
		}
		for i, id := range ids {
			if id <= 0 || slices.Contains(ids[:i], id) {
				t.Fatalf("bad or repeated id %d in %v", id, ids)
			}
		}
	})
}

func TestEncodedFramesAreJSON(t *testing.T) {
	for _, b := range [][]byte{encodeGap(12, 345), encodeUnsubscribed(12), encodeError(levee.Invalid("markets", `say "hi"`), "", 12)} {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if m["market"] != "12" {
			t.Errorf("%s: market = %v, want \"12\"", b, m["market"])
		}
	}
}
