package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"levee/web"
	"levee/web/live"
)

// The API documents are kept true by the tests: client.do validates every
// request it sends and every answer it gets against the OpenAPI document
// (kin-openapi's openapi3filter), the websocket tests validate every frame
// against the AsyncAPI schemas, and TestOpenAPICoversEveryRoute compares the
// documented routes with the registered ones.

// apiSpec is the loaded OpenAPI document and its router, built once.
var apiSpec = sync.OnceValues(func() (routers.Router, error) {
	b, err := web.OpenAPIDocument()
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		return nil, err
	}
	return gorillamux.NewRouter(doc)
})

// documentedNot are the registered routes the OpenAPI document leaves out, and
// why: the HTML pages and their assets (every path outside /api/ but the
// health and metrics endpoints), the reference page, and the websocket,
// which the AsyncAPI document describes.
func documentedNot(r web.Route) string {
	switch {
	case r.Path == "/api/docs":
		return "the HTML reference page"
	case r.Path == "/api/v1/ws":
		return "the websocket (asyncapi.json)"
	case r.Path == "/healthz" || r.Path == "/readyz" || r.Path == "/metrics":
		return ""
	case !strings.HasPrefix(r.Path, "/api/"):
		return "an HTML page or asset"
	}
	return ""
}

// TestOpenAPICoversEveryRoute fails on a registered route missing from the
// document and on a documented route that is not registered.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	if _, err := apiSpec(); err != nil {
		t.Fatalf("the OpenAPI document does not load or validate: %v", err)
	}
	m := NewMain(Config{}, slog.New(slog.DiscardHandler), io.Discard)
	deps := m.webDeps()
	deps.Live = web.NewLive(live.Options{Logger: m.logger})
	defer deps.Live.Close()
	registered := routeTable(web.New(deps)) // the routes `levee routes` prints
	documented := web.DocumentedRoutes()
	for _, r := range registered {
		if documentedNot(r) != "" {
			continue
		}
		if !slices.Contains(documented, r) {
			t.Errorf("%s %s is registered but not in the OpenAPI document (web/openapi_paths.go)", r.Method, r.Path)
		}
	}
	seen := map[web.Route]bool{}
	for _, d := range documented {
		if seen[d] {
			t.Errorf("%s %s is documented twice", d.Method, d.Path)
		}
		seen[d] = true
		if !slices.Contains(registered, d) {
			t.Errorf("%s %s is documented but not registered", d.Method, d.Path)
		}
		if why := documentedNot(d); why != "" {
			t.Errorf("%s %s is documented but is %s", d.Method, d.Path, why)
		}
	}
	t.Logf("%d routes registered, %d documented", len(registered), len(documented))
}

// validateExchange checks one request and its answer against the OpenAPI
// document. A request the document calls invalid must be refused (4xx); any
// answer must be one the document allows, with a body that validates.
func validateExchange(t reporter, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	t.Helper()
	if req.Method == http.MethodHead || req.Method == http.MethodOptions {
		return // echo answers these for every route by itself; the document describes neither
	}
	router, err := apiSpec()
	if err != nil {
		t.Errorf("OpenAPI document: %v", err)
		return
	}
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := router.FindRoute(r)
	where := req.Method + " " + req.URL.RequestURI()
	if err != nil {
		if !strings.HasPrefix(req.URL.Path, "/api/") || req.URL.Path == "/api/docs" {
			return // an HTML page: not described
		}
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("OpenAPI: %s is not in the document, yet answered %d", where, resp.StatusCode)
		}
		return
	}
	// The server reads a JSON body whatever Content-Type says (curl -d sends
	// a form type): validate such a body as the JSON the server reads.
	if rb := route.Operation.RequestBody; rb != nil && rb.Value != nil && len(reqBody) > 0 && rb.Value.Content.Get(r.Header.Get("Content-Type")) == nil &&
		rb.Value.Content.Get("application/json") != nil {
		r.Header = r.Header.Clone()
		r.Header.Set("Content-Type", "application/json")
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && !duplicateKeys(reqBody) {
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("OpenAPI: the document refuses %s %.300q (%v), yet the server answered %d %.300s", where, reqBody, err, resp.StatusCode, respBody)
		}
	}
	ropts := *opts
	ct := resp.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/json") {
		ropts.ExcludeResponseBody = true
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(respBody)), Options: &ropts}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("OpenAPI: the answer to %s %.200q contradicts the document: %d %.300s: %v", where, reqBody, resp.StatusCode, respBody, err)
	}
}

// asyncSchemas are the AsyncAPI document's client and server message schemas.
var asyncSchemas = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	b, err := web.AsyncAPIDocument()
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("asyncapi.json", doc); err != nil {
		return nil, err
	}
	out := map[string]*jsonschema.Schema{}
	for _, n := range []string{"ClientMessage", "ServerMessage"} {
		if out[n], err = c.Compile("asyncapi.json#/components/schemas/" + n); err != nil {
			return nil, err
		}
	}
	return out, nil
})

// validateWS checks one websocket frame against the AsyncAPI document; kind
// is ClientMessage or ServerMessage.
func validateWS(t *testing.T, kind string, frame []byte) {
	t.Helper()
	if err := checkWS(kind, frame); err != nil {
		t.Error(err)
	}
}

// checkWS is validateWS for goroutines that report problems their own way.
func checkWS(kind string, frame []byte) error {
	s, err := asyncSchemas()
	if err != nil {
		return fmt.Errorf("AsyncAPI document: %w", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(frame))
	if err != nil {
		return fmt.Errorf("AsyncAPI: frame %.200q is not JSON: %w", frame, err)
	}
	if err := s[kind].Validate(v); err != nil {
		return fmt.Errorf("AsyncAPI: %s %.300s contradicts the document: %v", kind, frame, err)
	}
	return nil
}

// TestAsyncAPIDocument loads the AsyncAPI document and checks that its
// examples are valid client messages.
func TestAsyncAPIDocument(t *testing.T) {
	b, err := web.AsyncAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		AsyncAPI   string `json:"asyncapi"`
		Components struct {
			Schemas  map[string]struct{ Examples []json.RawMessage } `json:"schemas"`
			Messages map[string]any                                  `json:"messages"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.AsyncAPI != "3.0.0" {
		t.Fatalf("asyncapi %q", doc.AsyncAPI)
	}
	for _, n := range []string{"Subscribe", "Unsubscribe", "Snapshot", "Trade", "Quote", "Status", "Gap", "Unsubscribed", "Error"} {
		if doc.Components.Messages[n] == nil {
			t.Errorf("no message %s", n)
		}
	}
	for _, ex := range append(doc.Components.Schemas["Subscribe"].Examples, doc.Components.Schemas["Unsubscribe"].Examples...) {
		validateWS(t, "ClientMessage", ex)
	}
	for _, frame := range []string{`{"type":"gap","market":"12","seq":1500}`, `{"type":"unsubscribed","market":"12"}`,
		`{"type":"error","code":"not_found","message":"market 99 not found","field":"markets","market":"99"}`} {
		validateWS(t, "ServerMessage", []byte(frame))
	}
}

// TestAPIDocumentsServed fetches both documents and the reference page.
func TestAPIDocumentsServed(t *testing.T) {
	m, _ := MustRunMain(t)
	anon := newClient(t, m, "")
	for _, p := range []string{"/api/v1/openapi.json", "/api/v1/asyncapi.json"} {
		st, doc := anon.do("GET", p, "")
		if st != 200 || (doc["openapi"] != "3.1.0" && doc["asyncapi"] != "3.0.0") {
			t.Fatalf("%s: %d %v", p, st, doc)
		}
	}
	resp, err := http.Get("http://" + m.Addr() + "/api/docs")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte("/api/v1/openapi.json")) {
		t.Fatalf("/api/docs: %d %s", resp.StatusCode, b)
	}
}

// duplicateKeys reports whether a JSON body repeats a key in one object.
// JSON parsers disagree about such bodies (Go's keeps the last value but
// ignores a last null), so the document cannot say what the server reads.
func duplicateKeys(body []byte) bool {
	d := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		keys  map[string]bool
		inObj bool
		key   bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.inObj && top.key {
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return true
				}
				top.keys[k] = true
				top.key = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, inObj: true, key: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].inObj {
			stack[len(stack)-1].key = true // a value ended: a key comes next
		}
	}
}

// reporter is what validateExchange reports to: a *testing.T, or a
// collector.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// collector keeps what validateExchange reports.
type collector struct{ errs []string }

func (c *collector) Helper() {}
func (c *collector) Errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

var digits = regexp.MustCompile(`[0-9]+`)

// apiChecker validates the hostile generator's exchanges against the OpenAPI
// document, as a third-party tool would see them, reporting each distinct
// contradiction (by method, route and status) once.
func apiChecker(t *testing.T) func(*http.Request, []byte, *http.Response, []byte) {
	var mu sync.Mutex
	seen := map[string]bool{}
	return func(req *http.Request, body []byte, resp *http.Response, answer []byte) {
		ct := &collector{}
		validateExchange(ct, req, body, resp, answer)
		if len(ct.errs) == 0 {
			return
		}
		key := fmt.Sprintf("%s %s %d", req.Method, digits.ReplaceAllString(req.URL.Path, "N"), resp.StatusCode)
		mu.Lock()
		defer mu.Unlock()
		if !seen[key] {
			seen[key] = true
			t.Errorf("hostile %s: %s", key, strings.Join(ct.errs, "; "))
		}
	}
}
