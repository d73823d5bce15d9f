package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The proxy of `levee cluster` spreads requests over the instances and
// sends a request whose instance refuses the connection to the next one,
// body and all (a dead instance received nothing).
func TestRoundRobinSkipsADeadInstance(t *testing.T) {
	var got []string
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
		io.WriteString(w, "ok")
	}))
	defer live.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	proxy := httptest.NewServer(newRoundRobin([]string{dead, strings.TrimPrefix(live.URL, "http://")}))
	defer proxy.Close()
	for i := range 4 {
		resp, err := http.Post(proxy.URL+"/api/v1/markets/1/orders", "application/json", strings.NewReader(`{"n":`+string(rune('0'+i))+`}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d through the proxy: %d %q", i, resp.StatusCode, body)
		}
	}
	if len(got) != 4 || got[0] != `POST /api/v1/markets/1/orders {"n":0}` {
		t.Fatalf("the live instance received %q", got)
	}
}
