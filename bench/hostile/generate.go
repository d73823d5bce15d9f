package hostile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// request is one generated request, ready to send.
type request struct {
	method string
	route  Route
	url    string // path and query
	header http.Header
	body   []byte
	caller string
	upload bool
}

func (rq *request) describeBody() string {
	if rq.upload {
		return fmt.Sprintf("(multipart, %d bytes) %s", len(rq.body), rq.body[:min(len(rq.body), 120)])
	}
	return string(rq.body)
}

// gen generates requests for one worker; its random source is its own.
type gen struct {
	st *state
	r  *rand.Rand
}

func (g *gen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }
func (g *gen) chance(n int) bool       { return g.r.IntN(n) == 0 }

// hostilePath are path parameter values no id route should choke on.
var hostilePath = []string{"0", "-1", "007", "+7", "1.5", "1e3", "0x10", "2147483648", "-2147483649", "9223372036854775807",
	"9223372036854775808", "99999999999999999999999", "%00", "1%00", "%0A", "%20", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..", "%2F",
	"abc", "null", "undefined", "true", "%E2%80%AE1", "%C3%BC", "%F0%9F%92%A5", "%FF%FE", "1;DROP%20TABLE%20accounts", "%27", "%22",
	"%25", "%5B%5D", "{id}", ":id", "٣", "%D9%A3"}

// hostileText are strings for text fields.
var hostileText = []string{"", " ", "\x00", "a\x00b", "\x01\x02\x1b[31m", "\x7f", "\u2028\u2029", "\u202eevil", "\ufeff", "\uffff",
	"<script>alert(1)</script>", "'; DROP TABLE accounts; --", "../../../../etc/passwd", "%00", "%s%n%x", "${jndi:ldap://x}",
	"{{7*7}}", "\\", "\"", "null", "💥🌊🏗️", "Zalgo Z̷̢̛a̵l̶g̸o̴", "ñandú", "日本語", strings.Repeat("A", 5000),
	strings.Repeat("é", 3000), "0", "-1", "1e309", "NaN", "true", " north ", "NORTH", "north\x00"}

// hostileDecimals are amount strings.
var hostileDecimals = []string{"1e3", "NaN", "Infinity", "-Infinity", "1000000000000", "999999999999999999999999", "-0", "0.0000001",
	"0.000000", "-1", "-0.000001", "0x10", "1.2.3", "١٢", "１", "--1", " 1", "1 ", "1,5", ".5", "5.", "+5", "1_000",
	"9223372036854.775807", "9223372036854.775808", "0.1234567890123456789", "1e-7", "", "00000000000000000000001"}

// hostileIDs are values for fields that carry an id as a string.
var hostileIDs = []string{"0", "-1", "007", "2147483648", "9223372036854775807", "9223372036854775808", "1.0", "1e2", " 1", "abc", "\x00"}

// hostileNumbers replace JSON numbers.
var hostileNumbers = []string{"1e400", "-1e400", "9223372036854775808", "-9223372036854775809", "2147483648", "-2147483649", "-1",
	"1.5", "0", "1e2", "-0", "0.0000001", "123456789012345678901234567890"}

var (
	decimalRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
	placeRE   = regexp.MustCompile(`\{(id:[a-z-]+|rand|future|later|done|hex64)\}`)
)

// fill replaces the placeholders of a seed.
func (g *gen) fill(s string) string {
	return placeRE.ReplaceAllStringFunc(s, func(m string) string {
		switch m = m[1 : len(m)-1]; m {
		case "rand":
			return strconv.FormatUint(g.r.Uint64()%1e12, 10)
		case "future":
			return time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
		case "later":
			return time.Now().Add(60 * 24 * time.Hour).UTC().Format(time.RFC3339)
		case "done":
			return time.Now().Add(90 * 24 * time.Hour).UTC().Format(time.RFC3339)
		case "hex64":
			return fmt.Sprintf("%016x%016x%016x%016x", g.r.Uint64(), g.r.Uint64(), g.r.Uint64(), g.r.Uint64())
		}
		return g.st.id(g.r, strings.TrimPrefix(m, "id:"))
	})
}

// caller picks who sends: often the seed's rightful role, else anyone.
func (g *gen) caller(role string) Principal {
	if role == "juror" && len(g.st.byRole["juror"]) == 0 {
		role = "resident"
	}
	if ps := g.st.byRole[role]; role != "" && len(ps) > 0 && g.r.IntN(100) < 45 {
		return ps[g.r.IntN(len(ps))]
	}
	return g.st.principals[g.r.IntN(len(g.st.principals))]
}

// path fills the route's parameters, with real ids (valid), the newest
// ones (fresh: what the run itself just created, still open to changes),
// or, now and then, hostile values.
func (g *gen) path(rt Route, hostile, fresh bool) string {
	segs := strings.Split(rt.Path, "/")
	for i, s := range segs {
		switch {
		case s == "*":
			segs[i] = g.pick([]string{"app.js", "style.css", "vendor/uPlot.min.css", "vendor/uPlot.iife.min.js", "..%2f..%2fgo.mod",
				"../../go.mod", "%00", "nope.js", strings.Repeat("a", 3000) + ".js", "app.js%00.png", ""})
		case !strings.HasPrefix(s, ":"):
		case hostile && g.chance(3):
			v := g.pick(hostilePath)
			if g.chance(20) {
				v = strings.Repeat("9", 200+g.r.IntN(4000))
			}
			segs[i] = v
		case s == ":n":
			segs[i] = strconv.Itoa(1 + g.r.IntN(3))
		case fresh:
			segs[i] = g.st.newest(g.r, poolOf(segs[i-1]))
		default:
			segs[i] = g.st.id(g.r, poolOf(segs[i-1]))
		}
		// Revoking one of the run's own tokens would sign a caller out.
		if rt.Method == "DELETE" && s == ":id" && segs[i-1] == "tokens" {
			if raw, err := url.PathUnescape(segs[i]); err == nil {
				if n, err := strconv.ParseInt(raw, 10, 64); err == nil && g.st.ownTokens[n] {
					segs[i] = "0"
				}
			}
		}
	}
	return strings.Join(segs, "/")
}

// query adds the seed's query and, when hostile, a few more parameters
// with hostile values.
func (g *gen) query(sd seed, hostile bool) string {
	v, _ := url.ParseQuery(sd.query)
	if hostile {
		for range g.r.IntN(4) {
			name := g.pick(queryNames)
			if len(v) > 0 && g.chance(2) { // spoil a value the seed sends
				keys := make([]string, 0, len(v))
				for k := range v {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				name = g.pick(keys)
			}
			switch g.r.IntN(4) {
			case 0:
				v.Set(name, g.pick(hostileDecimals))
			case 1:
				v.Set(name, g.pick(hostileText))
			case 2:
				raw, _ := url.PathUnescape(g.pick(hostilePath))
				v.Set(name, raw)
			default:
				v.Add(name, g.pick([]string{"open", "north", "buy", "sell", "true", "1", "0", "-5", "2026-01-01", "yesterday"}))
			}
		}
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// request builds one hostile request for rt.
func (g *gen) request(rt Route) *request {
	sd := seeds[rt.String()]
	p := g.caller(sd.role)
	rq := &request{method: rt.Method, route: rt, header: http.Header{}, caller: p.label()}
	rq.url = g.path(rt, true, false) + g.query(sd, rt.Method == "GET" || g.chance(5))
	if g.chance(30) { // the wrong method for the route
		rq.method = g.pick([]string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"})
	}
	switch {
	case sd.upload && g.r.IntN(4) != 0:
		g.multipart(rq, sd)
	case rt.Method != "GET" || g.chance(10):
		var ctype string
		rq.body, ctype = g.jsonBody(sd)
		if ctype != "" {
			rq.header.Set("Content-Type", ctype)
		}
	}
	g.authorize(rq, rt, p)
	// Many clients behind one proxy (the server trusts loopback as one in
	// make hostile): each hostile request comes from an address of its own,
	// so one caller's throttling does not hide the routes from the others.
	rq.header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254)))
	if g.chance(6) {
		rq.header.Set("X-Forwarded-For", g.pick([]string{"1.2.3.4", "10.0.0.1, 8.8.8.8", "::1", "256.256.256.256", "not an ip", "",
			strings.Repeat("9.9.9.9, ", 500), fmt.Sprintf("%d.%d.%d.%d", g.r.IntN(256), g.r.IntN(256), g.r.IntN(256), g.r.IntN(256))}))
	}
	if g.chance(12) {
		rq.header.Set("X-Real-IP", g.pick([]string{"127.0.0.1", "1.1.1.1", "x"}))
	}
	if rt.Method != "GET" && g.chance(3) {
		rq.header.Set("Idempotency-Key", g.pick([]string{"k1", "k2", strconv.Itoa(g.r.IntN(1000)), strings.Repeat("k", 2000),
			"ключ-✓", "", " ", "a b", fmt.Sprintf("key-%d", g.r.Uint64())}))
	}
	if g.chance(10) {
		rq.header.Set("Accept", g.pick([]string{"text/html", "application/json", "*/*", "text/csv", "image/png"}))
	}
	return rq
}

// valid is the seed as its rightful caller sends it, aimed at the newest
// ids when fresh.
func (g *gen) valid(rt Route, sd seed, fresh bool) *request {
	p := g.caller(sd.role)
	if ps := g.st.byRole[sd.role]; len(ps) > 0 {
		p = ps[g.r.IntN(len(ps))]
	}
	rq := &request{method: rt.Method, route: rt, header: http.Header{}, caller: p.label()}
	rq.url = g.path(rt, false, fresh) + g.query(sd, false)
	if sd.upload && sd.body == "" {
		g.multipart(rq, sd)
	} else if sd.body != "" {
		rq.body = []byte(g.fill(sd.body))
		rq.header.Set("Content-Type", "application/json")
	}
	p.authorize(withHeader(rq), true)
	if p.Session != "" && isSignOut(rt) {
		rq.header.Del("Cookie")
	}
	return rq
}

// burst is the same valid request eight times at once under one
// Idempotency-Key: every copy must get the first answer, never a 5xx.
func (g *gen) burst(rt Route, fresh bool) []*request {
	sd := seeds[rt.String()]
	one := g.valid(rt, sd, fresh)
	if !strings.Contains(string(one.body), "{") && !sd.upload && g.chance(2) {
		one = g.request(rt)
	}
	one.header.Set("Idempotency-Key", fmt.Sprintf("burst-%d", g.r.Uint64()))
	out := make([]*request, 8)
	for i := range out {
		c := *one
		c.header = one.header.Clone()
		out[i] = &c
	}
	return out
}

func withHeader(rq *request) *http.Request { return &http.Request{Header: rq.header} }

func isSignOut(rt Route) bool {
	return rt.Path == "/signout" || rt.Path == "/api/v1/session" && rt.Method == "DELETE"
}

// authorize sets the caller's credentials, or spoils them.
func (g *gen) authorize(rq *request, rt Route, p Principal) {
	h := withHeader(rq)
	switch g.r.IntN(12) {
	case 0:
		rq.caller += " with a bad token"
		rq.header.Set("Authorization", g.pick([]string{"Bearer lv_" + strconv.FormatUint(g.r.Uint64(), 36), "Bearer ", "Bearer",
			"Basic YWRtaW46YWRtaW4=", "bearer " + p.Token, "Bearer " + p.Token + "x", "Bearer " + strings.Repeat("a", 8000),
			"Bearer " + g.st.cfg.Revoked, "Bearer  " + p.Token, "Token " + p.Token, "Bearer lv_\u00e9\u00e9"}))
	case 1:
		rq.caller += " with two tokens"
		p.authorize(h, true)
		rq.header.Add("Authorization", "Bearer "+g.pick([]string{g.st.cfg.Revoked, "lv_x"}))
	case 2:
		rq.caller += " with a forged session"
		rq.header.Set("Cookie", sessionCookie+"="+g.pick([]string{"x", "", strings.Repeat("s", 4000), "%00", "a;b"}))
		rq.header.Set("X-CSRF-Token", "x")
	default:
		good := p.Session == "" || !g.chance(4)
		if !good {
			rq.caller += " with a bad CSRF token"
			if g.chance(2) {
				rq.header.Set("X-CSRF-Token", p.CSRF+"x")
			}
		}
		p.authorize(h, good)
	}
	if p.Session != "" && isSignOut(rt) { // never end the run's own session
		rq.header.Set("Cookie", sessionCookie+"=forged")
	}
}

// jsonBody mutates the seed's body (or {}) and picks a content type.
func (g *gen) jsonBody(sd seed) ([]byte, string) {
	src := "{}"
	if sd.body != "" {
		src = g.fill(sd.body)
	}
	ctype := "application/json"
	if g.chance(7) {
		ctype = g.pick([]string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
			"application/json; charset=utf-16", "application/xml", "application/json, text/plain", "*/*", "application/json; boundary=\"x\""})
	}
	var v any
	json.Unmarshal([]byte(src), &v)
	obj, _ := v.(map[string]any)
	marshal := func(v any) []byte { b, _ := json.Marshal(v); return b }
	switch g.r.IntN(16) {
	case 0: // valid, as sent by anyone
		return []byte(src), ctype
	case 1: // a control character in every string
		return marshal(mapStrings(v, func(s string) string {
			c := "\x00" // the one PostgreSQL refuses in text, half the time
			if g.chance(2) {
				c = g.pick([]string{"\x01", "\x08", "\x1b", "\x7f", "\u0085", "\r", "\t", "\n"})
			}
			i := g.r.IntN(len(s) + 1)
			return s[:i] + c + s[i:]
		})), ctype
	case 2: // hostile decimals wherever an amount is
		return marshal(mapStrings(v, func(s string) string {
			if decimalRE.MatchString(s) {
				return g.pick(hostileDecimals)
			}
			return s
		})), ctype
	case 3: // hostile numbers wherever a number is
		b := marshal(mapNumbers(v, func(float64) json.Number { return json.Number(g.pick(hostileNumbers)) }))
		if g.chance(3) { // and as strings too
			b = marshal(mapStrings(v, func(s string) string {
				if decimalRE.MatchString(s) {
					return g.pick(hostileNumbers)
				}
				return s
			}))
		}
		return b, ctype
	case 4: // a field of the wrong type
		if k := g.key(obj); k != "" {
			obj[k] = g.pickAny([]any{7, -1.5, true, false, nil, "seven", []any{}, []any{1, "a"}, map[string]any{}, map[string]any{"id": 1}})
		}
		return marshal(v), ctype
	case 5: // an unknown field
		if obj == nil {
			obj = map[string]any{}
		}
		obj[g.pick([]string{"zz", "id", "admin", "roles", "__proto__", "Amount", "AMOUNT", "amount ", ""})] = 1
		return marshal(obj), ctype
	case 6: // cut short
		if len(src) < 2 {
			return []byte("{"), ctype
		}
		return []byte(src[:g.r.IntN(len(src)-1)]), ctype
	case 7: // nested deep
		depth := g.pick([]string{"64", "1000", "10001", "100000"})
		n, _ := strconv.Atoi(depth)
		deep := strings.Repeat("[", n) + strings.Repeat("]", n)
		if g.chance(2) {
			deep = strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)
		}
		if k := g.key(obj); k != "" && g.chance(2) {
			return bytes.Replace(marshal(obj), []byte(`"`+k+`":`), []byte(`"`+k+`":`+deep+`,"zz_`+k+`":`), 1), ctype
		}
		return []byte(deep), ctype
	case 8: // one huge string, under the body limit or (rarely) over it
		size := 100<<10 + g.r.IntN(800<<10)
		if g.chance(15) {
			size = 1<<20 + g.r.IntN(64<<10)
		}
		if k := g.key(obj); k != "" {
			obj[k] = strings.Repeat(g.pick([]string{"a", "é", "\x00", "9"}), size/2)
			return marshal(obj), ctype
		}
		return []byte(`{"x":"` + strings.Repeat("a", size) + `"}`), ctype
	case 9: // hostile text in every string
		return marshal(mapStrings(v, func(string) string { return g.pick(hostileText) })), ctype
	case 10: // hostile ids wherever an id-like string is
		return marshal(mapStrings(v, func(s string) string {
			if _, err := strconv.Atoi(s); err == nil || g.chance(4) {
				return g.pick(hostileIDs)
			}
			return s
		})), ctype
	case 11: // not an object
		return []byte(g.pick([]string{"null", "[]", `""`, "0", "true", "[{}]", `"{}"`, "{}", "{} {}", `{"a":1}{"b":2}`})), ctype
	case 12: // a key twice
		if k := g.key(obj); k != "" {
			b := marshal(obj)
			return append(b[:len(b)-1], []byte(`,"`+k+`":`+g.pick([]string{`"x"`, "1", "null", `"1000000000000"`, "[]"})+"}")...), ctype
		}
		return []byte(`{"a":1,"a":2}`), ctype
	case 13: // bytes that are not UTF-8 inside a string
		b := marshal(v)
		if i := bytes.IndexByte(b, '"'); i >= 0 && i+1 < len(b) {
			return slices.Concat(b[:i+1], []byte(g.pick([]string{"\xff\xfe", "\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80"})), b[i+1:]), ctype
		}
		return []byte("{\"\xff\":1}"), ctype
	case 14: // no body at all
		return nil, ctype
	default: // garbage after the object, or JSON escapes the decoder must refuse
		return []byte(src + g.pick([]string{" x", "{}", ",", "]", "\x00", `"\u0000"`})), ctype
	}
}

// key picks one of obj's keys, "" if none.
func (g *gen) key(obj map[string]any) string {
	if len(obj) == 0 {
		return ""
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return g.pick(keys)
}

func (g *gen) pickAny(xs []any) any { return xs[g.r.IntN(len(xs))] }

// mapStrings returns v with f applied to every string in it (not keys).
func mapStrings(v any, f func(string) string) any {
	switch v := v.(type) {
	case string:
		return f(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = mapStrings(e, f)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = mapStrings(e, f)
		}
		return out
	}
	return v
}

// mapNumbers returns v with every number replaced by f's raw JSON number.
func mapNumbers(v any, f func(float64) json.Number) any {
	switch v := v.(type) {
	case float64:
		return f(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = mapNumbers(e, f)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = mapNumbers(e, f)
		}
		return out
	}
	return v
}

// multipart builds an upload: a file of some kind under a hostile name, in
// the right field or not, now and then too large.
func (g *gen) multipart(rq *request, sd seed) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	field := "file"
	if g.chance(8) {
		field = g.pick([]string{"files", "File", "", "upload"})
	}
	name := g.pick([]string{"report.pdf", "photo.png", "notes.txt", "../../etc/passwd", "a\x00b.pdf", "", strings.Repeat("n", 3000) + ".pdf",
		"évidence.txt", "CON", ".htaccess", "x.exe", "x.pdf.exe", "\"quoted\".pdf", "a/b/c.png", "💥.png", "..", "C:\\boot.ini"})
	var content []byte
	switch g.r.IntN(7) {
	case 0:
		content = []byte("%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n")
	case 1:
		content = append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, g.r.IntN(4096))...)
	case 2:
		content = []byte("the inspector signed off on 3 March\n")
	case 3:
		content = []byte("\x7fELF\x02\x01\x01" + strings.Repeat("\x00", 64))
	case 4:
		content = []byte("<html><script>alert(1)</script></html>")
	case 5:
		content = nil
	default:
		content = make([]byte, g.r.IntN(64<<10))
		for i := range content {
			content[i] = byte(g.r.IntN(256))
		}
	}
	if g.chance(150) { // past the file limit (5 MB), and sometimes the upload's body limit too
		content = append([]byte("%PDF-1.4\n"), make([]byte, 5<<20+g.r.IntN(200<<10))...)
	}
	if sd.body != "" && g.chance(2) {
		w.WriteField("body", g.pick(hostileText))
	}
	if field != "" || g.chance(2) {
		fw, _ := w.CreateFormFile(field, name)
		fw.Write(content)
	}
	if g.chance(10) { // a second file
		fw, _ := w.CreateFormFile("file", "second.txt")
		fw.Write([]byte("two"))
	}
	w.Close()
	rq.body, rq.upload = b.Bytes(), true
	ctype := w.FormDataContentType()
	if g.chance(10) {
		ctype = g.pick([]string{"multipart/form-data", "multipart/form-data; boundary=wrong", "application/json", "multipart/mixed; boundary=" + w.Boundary()})
	}
	if g.chance(10) { // cut short
		rq.body = rq.body[:g.r.IntN(len(rq.body))]
	}
	rq.header.Set("Content-Type", ctype)
}
