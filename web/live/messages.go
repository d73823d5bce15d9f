package live

import (
	"bytes"
	"encoding/json"
	"strconv"

	"levee"
	"levee/input"
)

// Client operations.
const (
	opSubscribe   = "subscribe"
	opUnsubscribe = "unsubscribe"
)

// request is one client → server message. Markets stay raw so that both
// "12" and 12 are accepted and a bad id can be reported as such.
type request struct {
	Op      string            `json:"op"`
	Markets []json.RawMessage `json:"markets"`
}

// parseRequest decodes and validates one client message. It returns the
// operation and the distinct market ids in the order given, or an EINVALID
// *levee.Error naming the field at fault. It never panics on any input.
func parseRequest(data []byte) (op string, ids []int64, err error) {
	var req request
	if err := json.Unmarshal(data, &req); err != nil {
		return "", nil, levee.Invalid("", "the message is not a JSON object like {\"op\":\"subscribe\",\"markets\":[\"12\"]}")
	}
	switch req.Op {
	case opSubscribe, opUnsubscribe:
	case "":
		return "", nil, levee.Invalid("op", "op is missing; use subscribe or unsubscribe")
	default:
		return "", nil, levee.Invalid("op", "unknown op %.40q; use subscribe or unsubscribe", req.Op)
	}
	if len(req.Markets) == 0 {
		return "", nil, levee.Invalid("markets", "markets must list at least one market id")
	}
	ids = make([]int64, 0, len(req.Markets))
	for _, raw := range req.Markets {
		id, ok := parseMarketID(raw)
		if !ok {
			return "", nil, levee.Invalid("markets", "market id %.40s is not a positive integer", raw)
		}
		if !containsID(ids, id) {
			ids = append(ids, id)
		}
	}
	return req.Op, ids, nil
}

// parseMarketID accepts a positive integer written as a JSON string ("12")
// or a JSON number (12), written the one way every id is (see input.Whole).
func parseMarketID(raw json.RawMessage) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) >= 2 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false
		}
		raw = []byte(s)
	}
	return input.Whole(string(raw), 1, input.MaxBigint)
}

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// errorMsg is the error frame: {"type":"error","code","message","field"}, and
// "market" when the error concerns one market of a subscribe.
type errorMsg struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Market  string `json:"market,omitempty"`
}

// encodeError turns err into an error frame. Uncoded errors become "internal
// error" for the client; the caller logs them.
func encodeError(err error, field string, market int64) []byte {
	m := errorMsg{Type: "error", Code: levee.ErrorCode(err), Message: levee.ErrorMessage(err), Field: levee.ErrorField(err)}
	if field != "" {
		m.Field = field
	}
	if market != 0 {
		m.Market = strconv.FormatInt(market, 10)
	}
	b, _ := json.Marshal(m) // only strings: cannot fail
	return b
}

// encodeGap is {"type":"gap","market":"12","seq":N}: trades of the market up
// to seq N were dropped for this client.
func encodeGap(market, seq int64) []byte {
	b := make([]byte, 0, 64)
	b = append(b, `{"type":"gap","market":"`...)
	b = strconv.AppendInt(b, market, 10)
	b = append(b, `","seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	return append(b, '}')
}

// encodeUnsubscribed acknowledges an unsubscribe: nothing of the market
// follows it.
func encodeUnsubscribed(market int64) []byte {
	b := make([]byte, 0, 48)
	b = append(b, `{"type":"unsubscribed","market":"`...)
	b = strconv.AppendInt(b, market, 10)
	return append(b, `"}`...)
}
