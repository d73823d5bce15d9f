package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"levee/web"
	"levee/web/live"
)

// routeTable is every route `levee serve` registers, built from the same
// wiring as Run but without a database: the services are nil pointers,
// which the route table does not touch, so it cannot drift from the server.
func (m *Main) routeTable() []web.Route {
	m.live = web.NewLive(live.Options{Logger: m.logger}) // the websocket route exists only with a hub
	defer func() { m.live.Close(); m.live = nil }()
	// echo also registers pseudo-routes (method "echo_route_not_found") for
	// its 404s under groups; they are not routes a client can call.
	rs := slices.DeleteFunc(web.New(m.webDeps()).Routes(), func(r web.Route) bool { return strings.ContainsAny(r.Method, "_abcdefghijklmnopqrstuvwxyz") })
	slices.SortFunc(rs, func(a, b web.Route) int {
		return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
	})
	return slices.Compact(rs)
}

// printRoutes is `levee routes`: one "METHOD PATH" line per route, for load
// generators that must cover every route (bench/hostile).
func printRoutes(m *Main, stdout io.Writer) (int, error) {
	for _, r := range m.routeTable() {
		if _, err := fmt.Fprintf(stdout, "%s %s\n", r.Method, r.Path); err != nil {
			return 1, err
		}
	}
	return 0, nil
}
