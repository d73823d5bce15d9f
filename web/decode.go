package web

import (
	"github.com/labstack/echo/v5"

	"levee"
	"levee/input"
)

// decodeJSON reads exactly one JSON object into v, strictly: unknown fields,
// wrong types and texts with control characters are refused with a 400 that
// names the field (see package input).
func decodeJSON(c *echo.Context, v any) error {
	return input.DecodeJSON(c.Request().Body, v)
}

// checkText is the middleware that refuses, before any handler runs, path
// parameters, query parameters (names and values) and an Idempotency-Key
// that are not single lines of text: a NUL or a byte that is not UTF-8
// would otherwise reach PostgreSQL, which answers with an error of its own.
// It also refuses a query parameter given more than once.
// JSON bodies are checked by decodeJSON and multipart text by formText.
func checkText(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		for _, p := range c.PathValues() {
			if err := input.Text(p.Name, p.Value, false); err != nil {
				return err
			}
		}
		if c.Request().URL.RawQuery == "" { // most requests: skip parsing it into a map
			return checkIdempotencyKey(c, next)
		}
		for name, vs := range c.QueryParams() {
			if err := input.Text("query", name, false); err != nil {
				return err
			}
			// No parameter takes several values: a repeated one would be
			// read as its first value, and a client (or a cache in front)
			// that reads the last would disagree with us.
			if len(vs) > 1 {
				return levee.Invalid(name, "%s is given %d times; give it once", name, len(vs))
			}
			for _, v := range vs {
				if err := input.Text(name, v, false); err != nil {
					return err
				}
			}
		}
		return checkIdempotencyKey(c, next)
	}
}

// checkIdempotencyKey is checkText's check of the Idempotency-Key header.
func checkIdempotencyKey(c *echo.Context, next echo.HandlerFunc) error {
	if k := c.Request().Header.Get("Idempotency-Key"); k != "" {
		if err := input.Text("Idempotency-Key", k, false); err != nil {
			return err
		}
	}
	return next(c)
}

// formText reads the text field name of a multipart or URL-encoded form.
func formText(c *echo.Context, name string) (string, error) {
	v := c.FormValue(name)
	return v, input.Text(name, v, input.Multiline(name))
}

// parseAmount reads a decimal amount string from field. An empty string is
// zero when optional.
func parseAmount(field, s string, required bool) (levee.Micros, error) {
	if s == "" {
		if required {
			return 0, levee.Invalid(field, "%s is required", field)
		}
		return 0, nil
	}
	m, err := levee.ParseMicros(s)
	if err != nil {
		return 0, levee.Invalid(field, "%s: %v", field, err)
	}
	return m, nil
}

// pathID reads a numeric id from the path. An id that is not written the
// one canonical way (see input.Whole), or is out of bigint's range, names
// nothing: 404, as an id that does not exist.
func pathID(c *echo.Context, name, noun string) (int64, error) {
	return pathNumber(c, name, noun, input.MaxBigint)
}

// pathNumber reads a positive whole number up to hi from the path, 404 if
// there is none.
func pathNumber(c *echo.Context, name, noun string, hi int64) (int64, error) {
	n, ok := input.Whole(c.Param(name), 1, hi)
	if !ok {
		return 0, levee.Errorf(levee.ENOTFOUND, "no such %s", noun)
	}
	return n, nil
}

// queryInt reads an optional whole-number query parameter within [lo, hi]
// (lo >= 0), written canonically; anything else is a 400 naming it.
func queryInt(c *echo.Context, name string, def, lo, hi int64) (int64, error) {
	s := c.QueryParam(name)
	if s == "" {
		return def, nil
	}
	v, ok := input.Whole(s, lo, hi)
	if !ok {
		return 0, levee.Invalid(name, "%s: a whole number from %d to %d", name, lo, hi)
	}
	return v, nil
}

// defaultPage is how many rows a list answers without limit=: enough for a
// small city's whole list, so callers that never page still see it all.
const defaultPage = 50

// queryPage reads the keyset cursor of a list newest first,
// ?before=<id>&limit=<n>: before 0 (or absent) starts from the newest, and
// the next page is before= the last id of this one. A limit over maxLimit
// is a 400 naming it, not a silently shorter page.
func queryPage(c *echo.Context, maxLimit int) (before int64, limit int, err error) {
	if before, err = queryInt(c, "before", 0, 0, 1<<62); err != nil {
		return 0, 0, err
	}
	n, err := queryInt(c, "limit", defaultPage, 1, int64(maxLimit))
	if err != nil {
		return 0, 0, err
	}
	return before, int(n), nil
}

// parseID reads an account, organisation or budget line id sent as a JSON
// string.
func parseID(field, s string) (int64, error) {
	id, ok := input.Whole(s, 1, input.MaxBigint)
	if !ok {
		return 0, levee.Invalid(field, "%s: an id, a whole number in quotes like \"12\"", field)
	}
	return id, nil
}
