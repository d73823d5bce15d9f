package web

import (
	"encoding/json"
	"sync"
)

// AsyncAPIDocument is the websocket protocol of docs/websocket.md as an
// AsyncAPI 3.0 document, encoded once. Its message payloads are JSON Schema
// (2020-12); the cmd/levee websocket tests validate every frame they send and
// receive against components.schemas.ClientMessage and ServerMessage.
var AsyncAPIDocument = sync.OnceValues(func() ([]byte, error) {
	return json.MarshalIndent(buildAsyncAPI(), "", "  ")
})

// seqRules is docs/websocket.md's "Ordering and sequence numbers", in short.
const seqRules = "Every market has one sequence: trades are numbered 1, 2, 3, … without gaps; a quote or status carries " +
	"the seq of the latest trade (the state after it). Per market a client receives the snapshot at seq S, then trades S+1, " +
	"S+2, … in order, each exactly once, and quotes and statuses with seq ≥ S in publish order (one at S may follow the " +
	"snapshot; it is a state, applying it again is harmless). So: next trade seq = last seq + 1, except right after a gap " +
	"message, which says where trades resume. There is no ordering between markets."

func buildAsyncAPI() schema {
	b, _ := OpenAPIDocument() // builds the reflected components (Market) first
	var oa struct {
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	_ = json.Unmarshal(b, &oa)
	market := oa.Components.Schemas["Market"]

	marketID := schema{"type": "string", "pattern": idPattern, "description": "The market's id."}
	seq := schema{"type": "integer", "minimum": 0}
	ts := schema{"type": "string", "format": "date-time", "description": "When the event became durable (snapshot: when it was read)."}
	amounts := arrayOf(ref("Amount"))
	typed := func(t string, props schema, required ...string) schema {
		props["type"] = schema{"const": t}
		return object(props, append([]string{"type"}, required...)...)
	}

	snapProps := schema{"market": marketID, "ts": ts}
	for k, v := range market["properties"].(map[string]any) {
		snapProps[k] = v
	}
	snapRequired := []string{"market", "ts"}
	for _, r := range market["required"].([]any) {
		snapRequired = append(snapRequired, r.(string))
	}

	schemas := schema{
		"Amount":      schema{"type": "string", "pattern": amountPattern},
		"Time":        schema{"type": "string", "format": "date-time"},
		"Subscribe":   typedOp("subscribe", "Start following each market: a snapshot per market, or an error."),
		"Unsubscribe": typedOp("unsubscribe", "Stop following each market: an unsubscribed per market; nothing of it follows."),
		"Snapshot": withDescription(typed("snapshot", snapProps, snapRequired...),
			"The market's committed state at seq S; everything after it is relative to S. Subscribing again restarts a market with a fresh snapshot (how to recover from a gap)."),
		"Trade": withDescription(typed("trade", schema{"market": marketID, "seq": schema{"type": "integer", "minimum": 1}, "outcome": schema{"type": "integer", "minimum": 0},
			"side": schema{"enum": []string{"buy", "sell"}}, "shares": ref("Amount"), "amount": ref("Amount"), "prices": amounts,
			"at": ts, "ts": ts}, "market", "seq", "outcome", "side", "shares", "amount", "prices", "at", "ts"),
			"A committed trade. Trades of a market are numbered 1, 2, 3, … without gaps: the next is the last seq + 1."),
		"Quote": withDescription(typed("quote", schema{"market": marketID, "seq": seq, "status": str(""), "prices": nullable(amounts), "shares": nullable(amounts), "ts": ts},
			"market", "seq", "prices", "shares", "ts"), "The market's prices after the trade at seq (a state, not a delta)."),
		"Status": withDescription(typed("status", schema{"market": marketID, "seq": seq, "status": schema{"enum": []string{"open", "closed", "resolved", "void"}},
			"prices": nullable(amounts), "shares": nullable(amounts), "ts": ts}, "market", "seq", "status", "prices", "shares", "ts"),
			"The market's status changed (closed, resolved, void); seq is that of the latest trade."),
		"Gap": withDescription(typed("gap", schema{"market": marketID, "seq": schema{"type": "integer", "minimum": 1}}, "market", "seq"),
			"You fell behind: trades of this market up to and including seq were dropped. Trades resume at seq+1; the latest status and quote follow. Resubscribe for a fresh snapshot if you keep state built from trades."),
		"Unsubscribed": withDescription(typed("unsubscribed", schema{"market": marketID}, "market"), "Nothing of the market follows."),
		"Error": withDescription(typed("error", schema{"code": schema{"enum": []string{"invalid", "not_found", "internal"}}, "message": str(""),
			"field": schema{"enum": []string{"op", "markets"}}, "market": marketID}, "code", "message"),
			"A request that could not be served; the connection stays open. not_found names the market (the others of the request are still subscribed)."),
	}
	schemas["ClientMessage"] = schema{"oneOf": []schema{ref("Subscribe"), ref("Unsubscribe")}}
	var server []schema
	for _, n := range []string{"Snapshot", "Trade", "Quote", "Status", "Gap", "Unsubscribed", "Error"} {
		server = append(server, ref(n))
	}
	schemas["ServerMessage"] = schema{"oneOf": server}

	messages := schema{}
	for _, n := range []string{"Subscribe", "Unsubscribe", "Snapshot", "Trade", "Quote", "Status", "Gap", "Unsubscribed", "Error"} {
		messages[n] = schema{"name": n, "contentType": "application/json", "payload": ref(n), "summary": schemas[n].(schema)["description"]}
	}
	msgRefs := func(names ...string) []schema {
		var out []schema
		for _, n := range names {
			out = append(out, schema{"$ref": "#/channels/market/messages/" + n})
		}
		return out
	}
	chanMsgs := schema{}
	for n := range messages {
		chanMsgs[n] = schema{"$ref": "#/components/messages/" + n}
	}
	return schema{
		"asyncapi": "3.0.0",
		"info": schema{"title": "Levee live market data", "version": "1",
			"description": "One websocket per client at /api/v1/ws; JSON in text frames, one message per frame (docs/websocket.md). " +
				"A client message over 4096 bytes closes the connection with 1009; more than 100 subscriptions is an error; a client " +
				"that stays behind for 10 s is closed with 1008. The server pings every 25 s and closes after 60 s without a pong.\n\n" + seqRules},
		"servers": schema{"levee": schema{"host": "localhost:8080", "protocol": "ws", "pathname": "/api/v1/ws",
			"description": "The Origin header, when present, must name the same host (else 403)."}},
		"defaultContentType": "application/json",
		"channels":           schema{"market": schema{"address": "/api/v1/ws", "description": seqRules, "messages": chanMsgs}},
		"operations": schema{
			"subscribe": schema{"action": "receive", "channel": schema{"$ref": "#/channels/market"}, "summary": "The client subscribes or unsubscribes (the server receives).", "messages": msgRefs("Subscribe", "Unsubscribe")},
			"marketEvents": schema{"action": "send", "channel": schema{"$ref": "#/channels/market"}, "summary": "The server sends snapshots, trades, quotes, statuses, gaps, acknowledgements and errors.",
				"messages": msgRefs("Snapshot", "Trade", "Quote", "Status", "Gap", "Unsubscribed", "Error")},
		},
		"components": schema{"schemas": schemas, "messages": messages},
	}
}

func typedOp(op, desc string) schema {
	ids := schema{"anyOf": []schema{{"type": "string"}, {"type": "integer"}}, "description": "A market id; \"12\" (numbers are accepted too). It must be a positive whole number."}
	s := object(schema{"op": schema{"const": op}, "markets": schema{"type": "array", "items": ids, "minItems": 1, "maxItems": 100}}, "op", "markets")
	s["description"] = desc
	s["examples"] = []schema{{"op": op, "markets": []string{"12", "13"}}}
	return s
}

func withDescription(s schema, d string) schema {
	s["description"] = d
	return s
}
