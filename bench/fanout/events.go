package fanout

import (
	"fmt"
	"time"

	"levee/web/live"
)

// TradeAndQuote are a trade on market and the quote after it at seq, as
// web.Live encodes them, committed now (their "ts"): what the harnesses
// publish when no engine makes the events (levee-fanout, the floor).
func TradeAndQuote(market, seq int64) [2]live.Event {
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	trade := fmt.Appendf(nil, `{"type":"trade","market":"%d","seq":%d,"outcome":0,"side":"buy","shares":"1.000000","amount":"0.500012","prices":["0.500025","0.499975"],"at":%q,"ts":%q}`, market, seq, ts, ts)
	quote := fmt.Appendf(nil, `{"type":"quote","market":"%d","seq":%d,"prices":["0.500025","0.499975"],"shares":["12.000000","11.000000"],"ts":%q}`, market, seq, ts)
	return [2]live.Event{{Type: "trade", MarketID: market, Seq: seq, Payload: trade}, {Type: "quote", MarketID: market, Seq: seq, Payload: quote}}
}
