package main

import (
	"strings"
	"testing"
	"time"

	"levee"
)

// Issue 13's money hole, from outside: two colluding residents run 20
// round trips in a market with liquidity 10 and a treasurer voids it. The
// pair must end exactly where it started, and so must the treasury.
func TestColludingRoundTripsThenVoidPayNothing(t *testing.T) {
	m, _ := MustRunMain(t)
	tess, alice, bob := MustCity(t, m)
	anon := anonymous(t, m)
	closes := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	treasury := func() levee.Micros {
		_, c := anon.do("GET", "/api/v1/census", "")
		return levee.MustMicros(c["treasury"].(map[string]any)["balance"].(string))
	}
	before := treasury()
	st, mk := tess.do("POST", "/api/v1/markets", `{"question":"Will the pump be fixed?","outcomes":["yes","no"],"liquidity":"10","closes_at":"`+closes+`"}`)
	if st != 201 {
		t.Fatalf("market: %d %v", st, mk)
	}
	orders := "/api/v1/markets/" + mk["id"].(string) + "/orders"
	for range 20 {
		for _, step := range []struct {
			c    *client
			body string
		}{
			{alice, `{"outcome":0,"side":"buy","shares":"100"}`},
			{bob, `{"outcome":0,"side":"buy","shares":"100"}`},
			{alice, `{"outcome":0,"side":"sell","all":true}`},
			{bob, `{"outcome":0,"side":"sell","all":true}`},
		} {
			if st, r := step.c.do("POST", orders, step.body); st != 201 {
				t.Fatalf("order %s: %d %v", step.body, st, r)
			}
		}
	}
	if st, r := tess.do("POST", "/api/v1/markets/"+mk["id"].(string)+"/void", ""); st != 200 {
		t.Fatalf("void: %d %v", st, r)
	}
	if got := cash(t, alice) + cash(t, bob); got != levee.Units(2000) {
		t.Fatalf("the colluding pair holds %s after the void, want exactly 2000.000000", got)
	}
	if got := treasury(); got != before {
		t.Fatalf("treasury %s after the void, want %s", got, before)
	}
}

// A market outcome may not be called void, in any spelling.
func TestOutcomeCalledVoidIsRefused(t *testing.T) {
	m, _ := MustRunMain(t)
	tess, _, _ := MustCity(t, m)
	closes := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, name := range []string{"void", "VOID", "V.O.I.D."} {
		st, r := tess.do("POST", "/api/v1/markets", `{"question":"Will it?","outcomes":["yes","`+name+`"],"liquidity":"10","closes_at":"`+closes+`"}`)
		if st != 400 || !hasField(r, "outcomes") || !strings.Contains(r["error"].(map[string]any)["message"].(string), "void") {
			t.Fatalf("outcome %q: %d %v", name, st, r)
		}
	}
}
