package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"levee"
)

// decodeJSON reads exactly one JSON object into v, refusing unknown fields,
// so a typo in a field name is an error and not a silently ignored option.
func decodeJSON(c echo.Context, v any) error {
	var raw json.RawMessage
	dec := json.NewDecoder(c.Request().Body)
	if err := dec.Decode(&raw); err != nil {
		return jsonError(err, v)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return levee.Invalid("body", "unexpected data after the JSON object")
	}
	if len(raw) == 0 || raw[0] != '{' {
		return levee.Invalid("body", "the body must be a JSON object")
	}
	obj := json.NewDecoder(bytes.NewReader(raw))
	obj.DisallowUnknownFields()
	if err := obj.Decode(v); err != nil {
		return jsonError(err, v)
	}
	return nil
}

func jsonError(err error, v any) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return levee.Invalid("body", "the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return levee.Invalid("body", "the JSON body ends too early")
	case errors.As(err, &syn):
		return levee.Invalid("body", "malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return levee.Invalid("body", "the body must be a JSON object")
		}
		return levee.Invalid(typ.Field, "%s must be %s", typ.Field, describe(typ.Type))
	case errors.As(err, &tooBig):
		return levee.Errorf(levee.ETOOLARGE, "the request body is larger than %d bytes", tooBig.Limit)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f, _ = strconv.Unquote(f)
		return levee.Invalid(f, "unknown field %q", f)
	}
	return levee.Invalid("body", "invalid JSON body")
}

func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Float64:
		return "a number"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "of another type"
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

// pathID reads a numeric id from the path.
func pathID(c echo.Context, name, noun string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, levee.Errorf(levee.ENOTFOUND, "no such %s", noun)
	}
	return id, nil
}

// queryInt reads an optional integer query parameter within [lo, hi].
func queryInt(c echo.Context, name string, def, lo, hi int64) (int64, error) {
	s := c.QueryParam(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, levee.Invalid(name, "%s must be a whole number from %d to %d", name, lo, hi)
	}
	return v, nil
}

// parseID reads an id sent as a JSON string.
func parseID(field, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, levee.Invalid(field, "%s must be an account id", field)
	}
	return id, nil
}
