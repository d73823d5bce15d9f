package input

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"levee"
)

type ref struct {
	Emergency int64 `json:"emergency,string"`
}

type milestone struct {
	Title string       `json:"title"`
	Share levee.Micros `json:"share"`
}

type body struct {
	Name      string          `json:"name"`
	Reason    string          `json:"reason"`
	Outcome   *int            `json:"outcome"`
	Outcomes  []string        `json:"outcomes"`
	Amount    levee.Micros    `json:"amount"`
	Cap       *levee.Micros   `json:"cap"`
	At        time.Time       `json:"at"`
	Approve   *bool           `json:"approve"`
	Ref       ref             `json:"ref"`
	Account   int64           `json:"account,string"`
	Miles     []milestone     `json:"milestones"`
	Payload   json.RawMessage `json:"payload"`
	Districts *[]string       `json:"districts"`
}

// TestDecodeJSONMessages: every refusal names the field by its JSON path and
// says what is expected in words, never a Go type or struct name.
func TestDecodeJSONMessages(t *testing.T) {
	tests := []struct {
		body, field, message string
	}{
		{``, "body", "the request body is empty; send a JSON object"},
		{`{`, "body", "the JSON body ends too early"},
		{`[]`, "body", "the body must be a JSON object"},
		{`{} x`, "body", "unexpected data after the JSON object"},
		{`{"nope":1}`, "nope", `unknown field "nope"`},
		{`{"outcome":1.5}`, "outcome", "outcome: a whole number"},
		{`{"outcome":"0"}`, "outcome", "outcome: a whole number"},
		{`{"name":5}`, "name", "name: a string"},
		{`{"outcomes":"a"}`, "outcomes", "outcomes: a list of strings"},
		{`{"outcomes":[1]}`, "outcomes", "outcomes: a list of strings"},
		{`{"districts":{}}`, "districts", "districts: a list of strings"},
		{`{"approve":"yes"}`, "approve", "approve: true or false"},
		{`{"amount":1.5}`, "amount", `amount: a decimal string with up to 6 places, like "12.5"`},
		{`{"amount":"1.1234567"}`, "amount", `amount: a decimal string with up to 6 places, like "12.5" (amount has more than 6 decimal places)`},
		{`{"cap":"x"}`, "cap", `cap: a decimal string with up to 6 places, like "12.5" (amount must be a plain decimal number like 12.5)`},
		{`{"at":"tomorrow"}`, "at", `at: an RFC 3339 time, like "2027-03-01T00:00:00Z"`},
		{`{"at":5}`, "at", `at: an RFC 3339 time, like "2027-03-01T00:00:00Z"`},
		{`{"account":12}`, "account", `account: a whole number in quotes, like "12"`},
		{`{"account":"1.5"}`, "account", `account: a whole number in quotes, like "12"`},
		{`{"account":"x"}`, "account", `account: a whole number in quotes, like "12"`},
		{`{"ref":{"emergency":1.5}}`, "ref.emergency", `ref.emergency: a whole number in quotes, like "12"`},
		{`{"ref":{"emergency":"99999999999999999999"}}`, "ref.emergency", `ref.emergency: a whole number in quotes, like "12"`},
		{`{"ref":[]}`, "ref", "ref: an object"},
		{`{"milestones":[{"title":5}]}`, "milestones.title", "milestones.title: a string"},
		{`{"milestones":[{"title":"a","share":"0.5"},{"title":"b","share":"x"}]}`, "milestones[1].share", `milestones[1].share: a decimal string with up to 6 places, like "12.5" (amount must be a plain decimal number like 12.5)`},
		{`{"amount":"1","amount":"1000"}`, "amount", "amount is given twice; give each field once"},
		{`{"amount" : "1", "name":"amount", "amount":"2"}`, "amount", "amount is given twice; give each field once"},
		{`{"ref":{"emergency":"1","emergency":"2"}}`, "ref.emergency", "ref.emergency is given twice; give each field once"},
		{`{"name":"Zo\u00eb","name":"x"}`, "name", "name is given twice; give each field once"},
		{`{"name":"x","n\u0061me":"y"}`, "name", "name is given twice; give each field once"},
		{`{"milestones":[{"title":"a"},{"title":"b","title":"c"}]}`, "milestones[1].title", "milestones[1].title is given twice; give each field once"},
		{`{"name":"a\u0000b"}`, "name", "name: control characters such as U+0000 are not allowed"},
		{`{"name":"a\nb"}`, "name", "name: a single line of text (no line breaks)"},
		{`{"reason":"a\u0007"}`, "reason", "reason: control characters such as U+0007 are not allowed"},
		{`{"outcomes":["yes","n\u0085o"]}`, "outcomes[1]", "outcomes[1]: control characters such as U+0085 are not allowed"},
		{`{"milestones":[{"title":"a\u007f"}]}`, "milestones[0].title", "milestones[0].title: control characters such as U+007F are not allowed"},
		{"{\"name\":\"\xff\"}", "name", "name: not valid UTF-8 text"},
		{`{"payload":{"reason":"\u0000"}}`, "payload.reason", "payload.reason: control characters such as U+0000 are not allowed"},
		{`{"payload":{"a\u0000":1}}`, "payload", "payload: control characters such as U+0000 are not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			var b body
			err := DecodeJSON(strings.NewReader(tt.body), &b)
			if levee.ErrorCode(err) != levee.EINVALID || levee.ErrorField(err) != tt.field || levee.ErrorMessage(err) != tt.message {
				t.Errorf("got %v\nwant field %q message %q", err, tt.field, tt.message)
			}
		})
	}
}

func TestDecodeJSONAccepts(t *testing.T) {
	var b body
	err := DecodeJSON(strings.NewReader(`{"name":"Zoë\t","reason":"line one\r\nline two\ttabbed","outcomes":["yes","no"],
		"amount":"1.5","account":"12","ref":{"emergency":"3"},"milestones":[{"title":"a","share":"0.5"}],"payload":{"x":"\u00e9"}}`), &b)
	if err == nil {
		t.Fatalf("a tab in name was accepted")
	}
	b = body{}
	err = DecodeJSON(strings.NewReader(`{"name":"Zoë \u2603","reason":"line one\r\nline two\ttabbed","outcomes":["yes","no"],
		"amount":"1.5","account":"12","ref":{"emergency":"3"},"milestones":[{"title":"a","share":"0.5"}],"payload":{"x":"\u00e9"}}`), &b)
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "Zoë ☃" || b.Account != 12 || b.Ref.Emergency != 3 || b.Amount != 1_500_000 {
		t.Errorf("decoded %+v", b)
	}
}

func TestDecodeNested(t *testing.T) {
	var r ref
	err := DecodeNested("payload", []byte(`{"emergency":1.5}`), &r)
	if levee.ErrorField(err) != "payload.emergency" || levee.ErrorMessage(err) != `payload.emergency: a whole number in quotes, like "12"` {
		t.Errorf("got %v", err)
	}
	err = DecodeNested("payload", []byte(`{"emergncy":"1"}`), &r)
	if levee.ErrorField(err) != "payload.emergncy" {
		t.Errorf("got %v", err)
	}
	if err := DecodeNested("payload", []byte(`[1]`), &r); levee.ErrorField(err) != "payload" {
		t.Errorf("got %v", err)
	}
}

func TestText(t *testing.T) {
	tests := []struct {
		s         string
		multiline bool
		ok        bool
	}{
		{"plain", false, true},
		{"Zoë ☃ \uFFFD", false, true},
		{"a\tb", false, false},
		{"a\nb", false, false},
		{"a\rb", false, false},
		{"a\nb\tc\r\n", true, true},
		{"\x00", true, false},
		{"\x1b[31m", true, false},
		{"\x7f", true, false},
		{"\u0085", true, false},
		{"\u009f", true, false},
		{"\xff", true, false},
		{"\xe2\x98", true, false},
	}
	for _, tt := range tests {
		err := Text("f", tt.s, tt.multiline)
		if (err == nil) != tt.ok || (err != nil && (levee.ErrorCode(err) != levee.EINVALID || levee.ErrorField(err) != "f")) {
			t.Errorf("Text(%q, %v) = %v, want ok %v", tt.s, tt.multiline, err, tt.ok)
		}
	}
}

func TestWhole(t *testing.T) {
	tests := []struct {
		s      string
		lo, hi int64
		want   int64
		ok     bool
	}{
		{"7", 1, MaxBigint, 7, true},
		{"0", 0, 10, 0, true},
		{"0", 1, 10, 0, false},
		{"007", 1, MaxBigint, 0, false},
		{"+7", 1, MaxBigint, 0, false},
		{"-7", 0, MaxBigint, 0, false},
		{" 7", 1, MaxBigint, 0, false},
		{"7 ", 1, MaxBigint, 0, false},
		{"7.0", 1, MaxBigint, 0, false},
		{"1e3", 1, MaxBigint, 0, false},
		{"", 0, MaxBigint, 0, false},
		{"٣", 0, MaxBigint, 0, false},
		{"2147483647", 1, MaxInteger, 2147483647, true},
		{"2147483648", 1, MaxInteger, 0, false},
		{"9223372036854775807", 1, MaxBigint, 9223372036854775807, true},
		{"9223372036854775808", 1, MaxBigint, 0, false},
		{"18446744073709551615", 1, MaxBigint, 0, false},
		{"99999999999999999999", 1, MaxBigint, 0, false},
	}
	for _, tt := range tests {
		got, ok := Whole(tt.s, tt.lo, tt.hi)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Whole(%q, %d, %d) = %d, %v; want %d, %v", tt.s, tt.lo, tt.hi, got, ok, tt.want, tt.ok)
		}
	}
}
