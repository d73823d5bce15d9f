package web

import (
	"context"
	"encoding/csv"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v5"

	"levee/census"
)

// Census is what the web layer needs to serve the public census.
type Census interface {
	Census(ctx context.Context) (census.Census, error)
}

// getCensus serves the public summary of the city; every figure names the API path
// of the records it comes from.
func (s *Server) getCensus(c *echo.Context) error {
	cs, err := s.deps.Census.Census(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, cs)
}

// censusCSV is the census flattened to rows of figure, key, value, source.
func (s *Server) censusCSV(c *echo.Context) error {
	cs, err := s.deps.Census.Census(c.Request().Context())
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	c.Response().Header().Set("Content-Disposition", `attachment; filename="census.csv"`)
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	for _, row := range censusRows(&cs) {
		w.Write(row)
	}
	w.Flush()
	return w.Error()
}

func censusRows(cs *census.Census) [][]string {
	rows := [][]string{{"figure", "key", "value", "source"}}
	add := func(figure, key, value, source string) { rows = append(rows, []string{figure, key, value, source}) }
	for _, d := range cs.Residents.Districts {
		add("residents", d.District, strconv.FormatInt(d.Residents, 10), cs.Residents.Source)
	}
	add("treasury", "balance", cs.Treasury.Balance.String(), cs.Treasury.Source)
	for _, f := range cs.Treasury.Flows {
		add("treasury_in", f.Day+" "+f.Kind, f.In.String(), cs.Treasury.Source)
		add("treasury_out", f.Day+" "+f.Kind, f.Out.String(), cs.Treasury.Source)
	}
	for _, l := range cs.BudgetLines.Lines {
		add("budget_line", l.LedgerKey, l.Balance.String(), cs.BudgetLines.Source)
	}
	if m := cs.Markets; m != nil {
		for st, n := range m.ByStatus {
			add("markets", st, strconv.FormatInt(n, 10), m.Source)
		}
		add("markets", "trades", strconv.FormatInt(m.Trades, 10), m.Source)
		add("markets", "volume", m.Volume.String(), m.Source)
	}
	if f := cs.Forecasts; f != nil {
		if f.Brier != nil {
			add("forecast", "brier_score", strconv.FormatFloat(*f.Brier, 'f', 6, 64), f.Source)
		}
		for _, b := range f.Calibration {
			add("calibration", b.From+"-"+b.To, strconv.FormatFloat(b.ObservedFreq, 'f', 6, 64)+" of "+strconv.Itoa(b.Outcomes), f.Source)
		}
	}
	add("qf_rounds", "rounds", strconv.Itoa(cs.Rounds.Rounds), cs.Rounds.Source)
	add("qf_rounds", "pools", cs.Rounds.Pools.String(), cs.Rounds.Source)
	add("ledger", "ok", strconv.FormatBool(cs.Ledger.Report.OK), cs.Ledger.Source)
	for _, n := range cs.NotYetAvailable {
		add("not_yet_available", n.Figure, n.Reason, "")
	}
	return rows
}
