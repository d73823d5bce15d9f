package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"levee/web"
	"levee/web/live"
)

// routeTable is every route s serves, sorted, without echo's pseudo-routes
// (method "echo_route_not_found", its 404s under groups), which no client
// can call.
func routeTable(s *web.Server) []web.Route {
	rs := slices.DeleteFunc(s.Routes(), func(r web.Route) bool { return strings.ContainsAny(r.Method, "_abcdefghijklmnopqrstuvwxyz") })
	slices.SortFunc(rs, func(a, b web.Route) int { return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method) })
	return slices.Compact(rs)
}

// printRoutes is `levee routes`: one "METHOD PATH" line per route, for load
// generators that must cover every route (bench/hostile). The server is
// built from the same wiring as Run but without a database: the services
// are nil pointers, which registering routes does not touch, so the list
// cannot drift from what `levee serve` serves.
func printRoutes(m *Main, stdout io.Writer) (int, error) {
	deps := m.webDeps()
	deps.Live = web.NewLive(live.Options{Logger: m.logger}) // the websocket route exists only with a hub
	defer deps.Live.Close()
	for _, r := range routeTable(web.New(deps)) {
		if _, err := fmt.Fprintf(stdout, "%s %s\n", r.Method, r.Path); err != nil {
			return 1, err
		}
	}
	return 0, nil
}
