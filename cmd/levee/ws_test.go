package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestLiveQuotesOverWebsocket subscribes a real websocket client to a
// market, trades over HTTP and expects the committed trade and quote, in
// sequence, after the snapshot.
func TestLiveQuotesOverWebsocket(t *testing.T) {
	m, _ := MustRunMain(t)
	tess, alice, _ := MustCity(t, m)
	closes := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	_, mk := tess.do("POST", "/api/v1/markets", `{"question":"Will the sea wall hold?","outcomes":["yes","no"],"liquidity":"100","closes_at":"`+closes+`"}`)
	id := mk["id"].(string)

	ws, _, err := websocket.DefaultDialer.Dial("ws://"+m.Addr()+"/api/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	read := func() map[string]any {
		t.Helper()
		var msg map[string]any
		_, frame, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		validateWS(t, "ServerMessage", frame) // openapi_test.go
		if err := json.Unmarshal(frame, &msg); err != nil {
			t.Fatalf("read: %v", err)
		}
		return msg
	}
	sub, _ := json.Marshal(map[string]any{"op": "subscribe", "markets": []string{id}})
	validateWS(t, "ClientMessage", sub)
	if err := ws.WriteMessage(websocket.TextMessage, sub); err != nil {
		t.Fatal(err)
	}
	snap := read()
	if snap["type"] != "snapshot" || snap["market"] != id || snap["seq"] != float64(0) || snap["question"] != "Will the sea wall hold?" {
		t.Fatalf("snapshot: %v", snap)
	}
	for i := 1; i <= 3; i++ {
		if st, r := alice.do("POST", "/api/v1/markets/"+id+"/orders", `{"outcome":0,"side":"buy","shares":"2"}`); st != 201 {
			t.Fatalf("order: %d %v", st, r)
		}
		trade := read()
		if trade["type"] != "trade" || trade["seq"] != float64(i) || trade["shares"] != "2.000000" {
			t.Fatalf("trade %d: %v", i, trade)
		}
		quote := read()
		if quote["type"] != "quote" || quote["seq"] != float64(i) {
			t.Fatalf("quote %d: %v", i, quote)
		}
		if ts, err := time.Parse(time.RFC3339Nano, quote["ts"].(string)); err != nil || time.Since(ts) > 5*time.Second {
			t.Fatalf("quote ts %v: %v", quote["ts"], err)
		}
	}
	// Bad requests are answered with an error frame, and the socket stays usable.
	ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"dance"}`))
	if e := read(); e["type"] != "error" || e["code"] != "invalid" {
		t.Fatalf("bad op: %v", e)
	}
	ws.WriteJSON(map[string]any{"op": "subscribe", "markets": []string{"987654"}})
	if e := read(); e["type"] != "error" || e["code"] != "not_found" {
		t.Fatalf("unknown market: %v", e)
	}
	// Resolution is announced too.
	if err := m.Engine.Resolve(context.Background(), mustAtoi(t, id), 0); err != nil {
		t.Fatal(err)
	}
	status := read()
	b, _ := json.Marshal(status)
	if status["type"] != "status" || status["status"] != "resolved" {
		t.Fatalf("status: %s", b)
	}
}
