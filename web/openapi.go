package web

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/ledger"
	"levee/market"
)

// The API is described by two standard documents, built here from a Go
// description of every route (openapi_paths.go) and the websocket protocol
// (asyncapi.go):
//
//   - GET /api/v1/openapi.json, OpenAPI 3.1, rendered for people at
//     /api/docs by Swagger UI (pinned in package-lock.json, copied into
//     assets/vendor/ by `make assets`);
//   - GET /api/v1/asyncapi.json, AsyncAPI 3.0, the websocket's messages.
//
// Response schemas are reflected from the Go types the handlers encode, so a
// field added to a view appears in the document; request schemas are
// written out, because the handlers decode into unexported structs. The
// cmd/levee tests validate every request and response they make against the
// document (kin-openapi's openapi3filter), every websocket message against
// the AsyncAPI schemas, and check that documented and registered routes are
// the same set.

func serveDocument(doc func() ([]byte, error)) echo.HandlerFunc {
	return func(c *echo.Context) error {
		b, err := doc()
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", "no-cache")
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
	}
}

// apiDocsPage is the reference page: Swagger UI, started by assets/apidocs.js
// (the CSP allows no inline script).
const apiDocsPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Levee API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/assets/favicon.svg">
<link rel="stylesheet" href="/assets/vendor/swagger-ui.css">
</head>
<body>
<noscript><p>The reference needs JavaScript. The document itself: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>
(websocket: <a href="/api/v1/asyncapi.json">/api/v1/asyncapi.json</a>).</p></noscript>
<div id="swagger-ui" data-url="/api/v1/openapi.json"></div>
<script src="/assets/vendor/swagger-ui-bundle.js"></script>
<script src="/assets/apidocs.js"></script>
</body>
</html>
`

// apiDocsMissing is served when `make assets` has not fetched Swagger UI.
const apiDocsMissing = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Levee API reference</title></head>
<body><p>The API reference page needs Swagger UI: run <code>make assets</code>. The documents:
<a href="/api/v1/openapi.json">OpenAPI</a>, <a href="/api/v1/asyncapi.json">AsyncAPI</a>.</p></body></html>
`

func (s *Server) pageAPIDocs(c *echo.Context) error {
	st, err := loadSite()
	if err != nil {
		return err
	}
	if st.assets["vendor/swagger-ui-bundle.js"] == nil {
		return c.HTML(http.StatusOK, apiDocsMissing)
	}
	return c.HTML(http.StatusOK, apiDocsPage)
}

// OpenAPIDocument is the OpenAPI 3.1 document, encoded once.
var OpenAPIDocument = sync.OnceValues(func() ([]byte, error) {
	return json.MarshalIndent(buildOpenAPI(), "", "  ")
})

// schema is a JSON Schema (2020-12, as OpenAPI 3.1 uses it) or any other
// object of the documents.
type schema = map[string]any

func ref(name string) schema { return schema{"$ref": "#/components/schemas/" + name} }
func str(desc string) schema {
	s := schema{"type": "string"}
	if desc != "" {
		s["description"] = desc
	}
	return s
}
func arrayOf(items schema) schema { return schema{"type": "array", "items": items} }

// object is a closed object: props are its properties, required those that
// must be there. An optional property may also be null, which the server
// reads as not given (Go's decoder leaves the field as it was).
func object(props schema, required ...string) schema {
	open := schema{}
	for k, v := range props {
		if p, ok := v.(schema); ok && !slices.Contains(required, k) {
			v = nullable(p)
		}
		open[k] = v
	}
	props = open
	s := schema{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// nullable lets s be null too.
func nullable(s schema) schema {
	if t, ok := s["type"].(string); ok && len(s) <= 3 && s["$ref"] == nil {
		c := schema{}
		for k, v := range s {
			c[k] = v
		}
		c["type"] = []string{t, "null"}
		return c
	}
	return schema{"anyOf": []any{s, schema{"type": "null"}}}
}

// Patterns of the wire formats (README, "Amounts" and "Input rules").
const (
	amountPattern      = `^-?[0-9]+\.[0-9]{6}$`
	amountInputPattern = `^-?[0-9]+(\.[0-9]{1,6})?$` // leading zeros are read too (levee.ParseMicros)
	idPattern          = `^[1-9][0-9]*$`
)

// baseSchemas are the shared components written out by hand.
func baseSchemas() schema {
	return schema{
		"Amount": schema{"type": "string", "pattern": amountPattern, "examples": []string{"12.500000"},
			"description": "A decimal amount with exactly six places, at most 1000000000000.000000 in magnitude (levee.MaxMoney)."},
		"AmountInput": schema{"type": "string", "pattern": amountInputPattern, "examples": []string{"12.5"},
			"description": "A decimal amount in a request: a string of digits with up to six places; no exponent, no sign other than '-'."},
		"Id": schema{"type": "string", "pattern": idPattern, "examples": []string{"12"},
			"description": "An id: a positive whole number written in quotes."},
		"Time":     schema{"type": "string", "format": "date-time", "examples": []string{"2027-03-01T00:00:00Z"}},
		"Duration": schema{"type": "string", "examples": []string{"72h"}, "description": "A Go duration such as \"72h\" or \"90m\"."},
		"Error": object(schema{
			"error": object(schema{
				"code": schema{"type": "string", "enum": []string{levee.EINVALID, levee.EUNAUTHORIZED, levee.EFORBIDDEN,
					levee.ENOTFOUND, levee.ECONFLICT, levee.ETOOLARGE, levee.ERATELIMIT, levee.EUNAVAILABLE, levee.EINTERNAL}},
				"message": str("What went wrong, meant for a person."),
				"field":   str("The JSON path, query parameter or header at fault, when there is one."),
			}, "code", "message"),
		}, "error"),
		"LedgerEntry": object(schema{
			"seq":  schema{"type": "integer", "format": "int64", "minimum": 1},
			"at":   schema{"type": "string", "format": "date-time"},
			"kind": str(""), "ref": str(""),
			"postings":  arrayOf(reflected(reflect.TypeFor[ledger.Posting]())),
			"prev_hash": schema{"type": "string", "pattern": "^[0-9a-f]*$"},
			"hash":      schema{"type": "string", "pattern": "^[0-9a-f]{64}$"},
		}, "seq", "at", "kind", "ref", "postings", "prev_hash", "hash"),
	}
}

// reflector turns Go types into schemas, registering each named struct as a
// component.
type reflector struct {
	components schema
	names      map[reflect.Type]string
}

var (
	typeMicros   = reflect.TypeFor[levee.Micros]()
	typeSide     = reflect.TypeFor[market.Side]()
	typeSum      = reflect.TypeFor[ledger.Sum]()
	typeTime     = reflect.TypeFor[time.Time]()
	typeEntry    = reflect.TypeFor[ledger.Entry]()
	typeRaw      = reflect.TypeFor[json.RawMessage]()
	typeNumber   = reflect.TypeFor[json.Number]()
	typeMarshals = reflect.TypeFor[json.Marshaler]()
)

// current is the reflector of the document being built (documents are built
// once, under sync.Once).
var current *reflector

// reflected is the schema of values of type t as encoding/json writes them.
func reflected(t reflect.Type) schema {
	if current == nil {
		current = &reflector{components: schema{}, names: map[reflect.Type]string{}}
	}
	return current.schemaOf(t)
}

// of is reflected for the type of v.
func of[T any]() schema { return reflected(reflect.TypeFor[T]()) }

func (r *reflector) schemaOf(t reflect.Type) schema {
	switch t {
	case typeMicros, typeSum:
		return ref("Amount")
	case typeTime:
		return ref("Time")
	case typeSide:
		return schema{"type": "string", "enum": []string{"buy", "sell"}}
	case typeEntry:
		return ref("LedgerEntry")
	case typeRaw:
		return schema{}
	case typeNumber:
		return schema{"type": "number"}
	}
	if t.Kind() != reflect.Pointer && t.Implements(typeMarshals) || reflect.PointerTo(t).Implements(typeMarshals) && t.Kind() == reflect.Struct {
		return schema{"description": "Free-form JSON."}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return nullable(r.schemaOf(t.Elem()))
	case reflect.String:
		return schema{"type": "string"}
	case reflect.Bool:
		return schema{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return schema{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return schema{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return schema{"type": "number"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return schema{"type": "string", "contentEncoding": "base64"}
		}
		// A nil slice is encoded as null.
		return nullable(arrayOf(r.schemaOf(t.Elem())))
	case reflect.Array:
		return arrayOf(r.schemaOf(t.Elem()))
	case reflect.Map:
		return nullable(schema{"type": "object", "additionalProperties": r.schemaOf(t.Elem())})
	case reflect.Interface:
		return schema{}
	case reflect.Struct:
		if t.Name() == "" {
			return r.structSchema(t)
		}
		name, ok := r.names[t]
		if !ok {
			name = r.nameOf(t)
			r.names[t] = name
			r.components[name] = schema{} // placeholder against recursion
			r.components[name] = r.structSchema(t)
		}
		return ref(name)
	}
	return schema{}
}

// componentRenames give a few reflected types clearer names.
var componentRenames = map[string]string{"web.marketView": "Market", "web.statement": "Statement"}

var genericArgs = regexp.MustCompile(`\[.*\]`)

// nameOf names t's component: its type name, prefixed by its package when
// another package has a type of that name.
func (r *reflector) nameOf(t reflect.Type) string {
	pkg := t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:]
	if n, ok := componentRenames[pkg+"."+t.Name()]; ok {
		return n
	}
	name := genericArgs.ReplaceAllString(t.Name(), "")
	name = strings.ToUpper(name[:1]) + name[1:]
	for other, n := range r.names {
		if n == name && other != t {
			return strings.ToUpper(pkg[:1]) + pkg[1:] + name
		}
	}
	if baseSchemaNames[name] {
		return strings.ToUpper(pkg[:1]) + pkg[1:] + name
	}
	return name
}

// baseSchemaNames are the components written by hand, which reflected types
// must not shadow.
var baseSchemaNames = map[string]bool{"Amount": true, "AmountInput": true, "Id": true, "Time": true, "Duration": true, "Error": true, "LedgerEntry": true}

// structSchema lists t's encoded fields: embedded structs flattened, fields
// without omitempty required.
func (r *reflector) structSchema(t reflect.Type) schema {
	props := schema{}
	var required []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous && name == "" {
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct && !ft.Implements(typeMarshals) {
					walk(ft)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			var s schema
			if strings.Contains(","+opts+",", ",string,") && isInteger(ft) {
				s = schema{"type": "string", "pattern": `^-?[0-9]+$`}
				if ft.Kind() == reflect.Pointer {
					s = nullable(s)
				}
			} else if ft.Kind() == reflect.Pointer && strings.Contains(","+opts+",", ",omitempty,") {
				s = r.schemaOf(ft.Elem()) // a nil pointer is left out, never null
			} else {
				s = r.schemaOf(ft)
			}
			props[name] = s
			if !strings.Contains(","+opts+",", ",omitempty,") && !strings.Contains(","+opts+",", ",omitzero,") {
				required = append(required, name)
			}
		}
	}
	walk(t)
	sort.Strings(required)
	return object(props, required...)
}

func isInteger(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}
