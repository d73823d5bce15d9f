package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"
)

// IndexCost is what one constraint or index of trades costs per inserted
// row, from bench/indexcost.sql: the median of its runs.
type IndexCost struct {
	Name   string
	Runs   []int64 // ns per row
	Median int64
}

var callRE = regexp.MustCompile(`(?m)^CALL (measure(?:_keys)?)\((.*)\);$`)

// measureIndexCosts runs bench/indexcost.sql in a scratch database of the
// private server, each measurement three times in turn (issue 18: each
// index's cost measured). Only with a private server: it creates a database.
func (e *env) measureIndexCosts(ctx context.Context) ([]IndexCost, error) {
	if e.pg == nil {
		return nil, fmt.Errorf("needs the private server")
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(root, "bench", "indexcost.sql"))
	if err != nil {
		return nil, err
	}
	script := string(b)
	first := strings.Index(script, "\nCALL ")
	if first < 0 {
		return nil, fmt.Errorf("bench/indexcost.sql: no CALL")
	}
	if _, err := e.db.ExecContext(ctx, `CREATE DATABASE indexcost`); err != nil {
		return nil, err
	}
	db, err := sqlx.Open("postgres", e.pg.URL("indexcost"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, script[:first]); err != nil {
		return nil, fmt.Errorf("bench/indexcost.sql set-up: %w", err)
	}
	calls := callRE.FindAllStringSubmatch(script[first:], -1)
	costs := make([]IndexCost, len(calls))
	for rep := 0; rep < 3; rep++ {
		for i, c := range calls {
			var ns int64
			if err := db.QueryRowContext(ctx, "CALL "+c[1]+"("+c[2]+")").Scan(&ns); err != nil {
				return nil, fmt.Errorf("%s: %w", c[0], err)
			}
			costs[i].Runs = append(costs[i].Runs, ns)
			if costs[i].Name == "" {
				costs[i].Name = "order_keys row (table + primary key), every row keyed"
				if name, _, ok := strings.Cut(strings.TrimPrefix(c[2], "'"), "'"); ok && c[1] == "measure" {
					costs[i].Name = name
				}
			}
		}
	}
	for i := range costs {
		r := slices.Clone(costs[i].Runs)
		slices.Sort(r)
		costs[i].Median = r[len(r)/2]
	}
	return costs, nil
}
