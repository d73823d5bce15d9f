package web

import (
	"net/http"
	"sort"
	"strconv"

	"github.com/labstack/echo/v5"

	"levee/census"
)

// censusPage is the data of the public census page: the census itself and
// the few figures that need formatting the templates cannot do.
type censusPage struct {
	census.Census
	Brier       string // "" when no market has resolved
	Calibration []calibrationRow
	Markets     []statusCount
}

type calibrationRow struct {
	census.CalibrationBin
	Stated, Observed string
}

type statusCount struct {
	Status string
	Count  int64
}

// pageCensus renders GET /api/v1/census server-side, for everyone.
func (s *Server) pageCensus(c *echo.Context) error {
	if s.deps.Census == nil {
		return s.renderError(c, errNoBudgets)
	}
	cs, err := s.deps.Census.Census(c.Request().Context())
	if err != nil {
		return s.renderError(c, err)
	}
	d := &censusPage{Census: cs}
	if f := cs.Forecasts; f != nil {
		if f.Brier != nil {
			d.Brier = strconv.FormatFloat(*f.Brier, 'f', 3, 64)
		}
		for _, b := range f.Calibration {
			row := calibrationRow{CalibrationBin: b, Stated: "–", Observed: "–"}
			if b.Outcomes > 0 {
				row.Stated = strconv.FormatFloat(b.MeanStated, 'f', 3, 64)
				row.Observed = strconv.FormatFloat(b.ObservedFreq, 'f', 3, 64)
			}
			d.Calibration = append(d.Calibration, row)
		}
	}
	if m := cs.Markets; m != nil {
		for st, n := range m.ByStatus {
			d.Markets = append(d.Markets, statusCount{Status: st, Count: n})
		}
		sort.Slice(d.Markets, func(i, j int) bool { return d.Markets[i].Status < d.Markets[j].Status })
	}
	p := newPage(c, "Census", "census")
	p.Data = d
	return s.render(c, http.StatusOK, "census", p)
}
