package input

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"levee"
)

// DecodeJSON reads exactly one JSON object from r into v. It refuses unknown
// fields, so a typo in a field name is an error and not a silently ignored
// option; and it checks every string in the body, object keys and values
// kept raw (json.RawMessage) included, with Text. A refusal names the field
// by its JSON path ("milestones[1].share") and says what it expects, never a
// Go type. A body over an http.MaxBytesReader limit is ETOOLARGE.
//
// The body is read whole first: when it is one valid JSON value (what every
// well-formed request sends) it is decoded straight from those bytes, and
// only a body that is not goes through a streaming decoder, to say where and
// how it is malformed. That spares a well-formed order one decoder and one
// scan of its body (issue 18: CPU per order).
func DecodeJSON(r io.Reader, v any) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return bodyError(err)
	}
	if json.Valid(body) {
		return decodeObject("", body, v)
	}
	return decodeMalformed(bytes.NewReader(body), v)
}

// decodeMalformed is DecodeJSON for a body that is not exactly one valid
// JSON value: it finds what is wrong as a streaming decoder reports it.
func decodeMalformed(r io.Reader, v any) error {
	var raw json.RawMessage
	dec := json.NewDecoder(r)
	if err := dec.Decode(&raw); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return bodyError(err)
		}
		return levee.Invalid("body", "unexpected data after the JSON object")
	}
	return decodeObject("", raw, v)
}

// DecodeNested decodes raw, the JSON object sent as field of a body that
// DecodeJSON read, into v as strictly; its refusals name "field.sub".
func DecodeNested(field string, raw []byte, v any) error {
	return decodeObject(field, raw, v)
}

func decodeObject(prefix string, raw []byte, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		if prefix == "" {
			return levee.Invalid("body", "the body must be a JSON object")
		}
		return levee.Invalid(prefix, "%s: a JSON object", prefix)
	}
	if err := checkTexts(prefix, raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fieldError(prefix, raw, reflect.TypeOf(v), err)
	}
	return nil
}

// bodyError explains an error that concerns the body as a whole.
func bodyError(err error) error {
	var syn *json.SyntaxError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return levee.Errorf(levee.ETOOLARGE, "the request body is larger than %d bytes", tooBig.Limit)
	case errors.Is(err, io.EOF):
		return levee.Invalid("body", "the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return levee.Invalid("body", "the JSON body ends too early")
	case errors.As(err, &syn):
		return levee.Invalid("body", "malformed JSON at byte %d", syn.Offset)
	}
	return levee.Invalid("body", "invalid JSON body")
}

// fieldError turns an error of encoding/json decoding raw into a value of
// type t (a pointer to a struct) into one that names the field.
func fieldError(prefix string, raw []byte, t reflect.Type, err error) error {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field != "" {
		if sf, ok := fieldByPath(t, strings.Split(typ.Field, ".")); ok {
			return expected(join(prefix, typ.Field), sf, nil)
		}
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f, _ = strconv.Unquote(f)
		if f == "" {
			return levee.Invalid(orBody(prefix), "unknown field \"\"")
		}
		return levee.Invalid(join(prefix, f), "unknown field %q", join(prefix, f))
	}
	// A type's own UnmarshalJSON (an amount, a time) and the ",string"
	// option fail without naming the field: find the value that fails alone.
	if path, sf, val, ok := failing(raw, t); ok {
		return expected(join(prefix, path), sf, val)
	}
	if prefix == "" {
		return levee.Invalid("body", "invalid JSON body")
	}
	return levee.Invalid(prefix, "%s: invalid JSON", prefix)
}

// orBody names the object at prefix, the body itself when it is "".
func orBody(prefix string) string {
	if prefix == "" {
		return "body"
	}
	return prefix
}

// expected is the refusal of field, which has the Go type of sf and was
// sent as val (nil when unknown).
func expected(field string, sf reflect.StructField, val []byte) error {
	msg := describe(sf.Type, quoted(sf), false)
	if deref(sf.Type) == microsType && len(val) > 0 && val[0] == '"' {
		var s string
		if json.Unmarshal(val, &s) == nil {
			if _, err := levee.ParseMicros(s); err != nil {
				msg += " (" + err.Error() + ")"
			}
		}
	}
	return levee.Invalid(field, "%s: %s", field, msg)
}

var (
	microsType = reflect.TypeFor[levee.Micros]()
	timeType   = reflect.TypeFor[time.Time]()
	rawType    = reflect.TypeFor[json.RawMessage]()
)

// describe says in words what a JSON value decoded into t must look like;
// plural for the elements of a list. quoted is the ",string" option.
func describe(t reflect.Type, quoted, plural bool) string {
	pick := func(one, many string) string {
		if plural {
			return many
		}
		return one
	}
	t = deref(t)
	switch {
	case t == microsType:
		return pick(`a decimal string with up to 6 places, like "12.5"`, `decimal strings with up to 6 places, like "12.5"`)
	case t == timeType:
		return pick(`an RFC 3339 time, like "2027-03-01T00:00:00Z"`, `RFC 3339 times, like "2027-03-01T00:00:00Z"`)
	case t == rawType:
		return pick("a JSON value", "JSON values")
	}
	switch t.Kind() {
	case reflect.String:
		return pick("a string", "strings")
	case reflect.Bool:
		return pick("true or false", "true or false values")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if quoted {
			return pick(`a whole number in quotes, like "12"`, `whole numbers in quotes, like "12"`)
		}
		return pick("a whole number", "whole numbers")
	case reflect.Float32, reflect.Float64:
		return pick("a number", "numbers")
	case reflect.Slice, reflect.Array:
		return pick("a list of ", "lists of ") + describe(t.Elem(), false, true)
	}
	return pick("an object", "objects")
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// quoted reports whether sf carries the ",string" option.
func quoted(sf reflect.StructField) bool {
	_, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
	for _, o := range strings.Split(opts, ",") {
		if o == "string" {
			return true
		}
	}
	return false
}

// jsonName is the name encoding/json gives sf, "" when it skips it.
func jsonName(sf reflect.StructField) string {
	name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
	switch {
	case name == "-":
		return ""
	case name != "":
		return name
	case sf.Anonymous:
		return ""
	}
	return sf.Name
}

// field finds the field that encoding/json fills from key in struct type t,
// looking into embedded structs.
func field(t reflect.Type, key string) (reflect.StructField, bool) {
	t = deref(t)
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	var fold *reflect.StructField
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name := jsonName(sf)
		if name == "" && sf.Anonymous && sf.Tag.Get("json") != "-" {
			if inner, ok := field(sf.Type, key); ok {
				return inner, true
			}
			continue
		}
		if name == key {
			return sf, true
		}
		if fold == nil && strings.EqualFold(name, key) && sf.IsExported() {
			fold = &sf
		}
	}
	if fold != nil {
		return *fold, true
	}
	return reflect.StructField{}, false
}

// fieldByPath follows a dotted JSON path through structs and lists.
func fieldByPath(t reflect.Type, path []string) (reflect.StructField, bool) {
	var sf reflect.StructField
	for _, key := range path {
		for t = deref(t); t.Kind() == reflect.Slice || t.Kind() == reflect.Array; t = deref(t.Elem()) {
		}
		var ok bool
		if sf, ok = field(t, key); !ok {
			return sf, false
		}
		t = sf.Type
	}
	return sf, len(path) > 0
}

// failing finds, in the JSON object raw that failed to decode into t, the
// deepest field whose value fails to decode on its own, and that value.
func failing(raw []byte, t reflect.Type) (string, reflect.StructField, []byte, bool) {
	st := deref(t)
	if st.Kind() != reflect.Struct {
		return "", reflect.StructField{}, nil, false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return "", reflect.StructField{}, nil, false
	}
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		val := obj[key]
		one, _ := json.Marshal(map[string]json.RawMessage{key: val})
		if json.Unmarshal(one, reflect.New(st).Interface()) == nil {
			continue
		}
		sf, ok := field(st, key)
		if !ok {
			return "", reflect.StructField{}, nil, false
		}
		if sub, ssf, sval, ok := failingIn(val, sf.Type); ok {
			return key + sub, ssf, sval, true
		}
		return key, sf, val, true
	}
	return "", reflect.StructField{}, nil, false
}

// failingIn looks inside val, the value of a field of type t, for an
// object or list element that fails on its own; the path it returns starts
// with "." or "[".
func failingIn(val []byte, t reflect.Type) (string, reflect.StructField, []byte, bool) {
	t = deref(t)
	switch {
	case len(val) > 0 && val[0] == '{' && t.Kind() == reflect.Struct && t != timeType:
		if p, sf, v, ok := failing(val, t); ok {
			return "." + p, sf, v, true
		}
	case len(val) > 0 && val[0] == '[' && t.Kind() == reflect.Slice && t != rawType:
		var elems []json.RawMessage
		if json.Unmarshal(val, &elems) != nil {
			return "", reflect.StructField{}, nil, false
		}
		for i, e := range elems {
			if json.Unmarshal(e, reflect.New(t.Elem()).Interface()) == nil {
				continue
			}
			if p, sf, v, ok := failingIn(e, t.Elem()); ok {
				return "[" + strconv.Itoa(i) + "]" + p, sf, v, true
			}
			return "", reflect.StructField{}, nil, false
		}
	}
	return "", reflect.StructField{}, nil, false
}

func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}

// checkTexts runs Text over every string in the JSON text raw, keys
// included, naming each by its path under prefix, and refuses an object
// that names a field twice: encoding/json would keep the last value, and a
// proxy, a log or an auditor reading the first would see another request.
// A body of printable ASCII without a backslash can hold no control
// character and no bad UTF-8 in a string (JSON forbids them raw), so the
// common small body skips the walk and is only scanned for duplicates.
func checkTexts(prefix string, raw []byte) error {
	plain := true
	for _, b := range raw {
		if b == '\\' || b >= 0x7f {
			plain = false
			break
		}
	}
	if plain {
		return plainDuplicates(prefix, raw)
	}
	w := walker{raw: raw, dec: json.NewDecoder(bytes.NewReader(raw))}
	w.dec.UseNumber()
	return w.value(prefix, lastName(prefix))
}

type walker struct {
	raw []byte
	dec *json.Decoder
}

// value checks the next JSON value, found at path; name is the JSON name
// that decides whether it may span lines.
func (w *walker) value(path, name string) error {
	start := w.dec.InputOffset()
	tok, err := w.dec.Token()
	if err != nil {
		return levee.Invalid("body", "invalid JSON body")
	}
	switch t := tok.(type) {
	case string:
		return w.text(path, t, start, Multiline(name))
	case json.Delim:
		switch t {
		case '{':
			var seen []string
			for w.dec.More() {
				kstart := w.dec.InputOffset()
				ktok, err := w.dec.Token()
				if err != nil {
					return levee.Invalid("body", "invalid JSON body")
				}
				key, _ := ktok.(string)
				if err := w.text(path, key, kstart, false); err != nil { // a field name: blame its object
					return err
				}
				if slices.Contains(seen, key) {
					return duplicate(join(path, key))
				}
				seen = append(seen, key)
				if err := w.value(join(path, key), key); err != nil {
					return err
				}
			}
		case '[':
			for i := 0; w.dec.More(); i++ {
				if err := w.value(path+"["+strconv.Itoa(i)+"]", name); err != nil {
					return err
				}
			}
		}
		_, err := w.dec.Token() // the closing delimiter
		if err != nil {
			return levee.Invalid("body", "invalid JSON body")
		}
	}
	return nil
}

// text checks the string s whose JSON text lies in raw after start: the
// decoder turns bytes that are not UTF-8 into U+FFFD, so those are looked
// for in the raw text.
func (w *walker) text(path, s string, start int64, multiline bool) error {
	field := orBody(path)
	if end := w.dec.InputOffset(); !utf8.Valid(w.raw[start:end]) {
		return levee.Invalid(field, "%s: not valid UTF-8 text", field)
	}
	return Text(field, s, multiline)
}

// lastName is the JSON name at the end of path ("a.b[2]" → "b").
func lastName(path string) string {
	if i := strings.IndexByte(path, '['); i >= 0 {
		path = path[:i]
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		path = path[i+1:]
	}
	return path
}

func duplicate(field string) error {
	field = orBody(field)
	return levee.Invalid(field, "%s is given twice; give each field once", field)
}

// plainDuplicates refuses an object in raw that names a field twice, for a
// body checkTexts found plain (no escapes, so a key's raw bytes are the
// key): one pass over the bytes, without decoding, since it runs on every
// order. raw is valid JSON or the decoder refuses it next anyway.
func plainDuplicates(prefix string, raw []byte) error {
	type frame struct {
		path  string   // the JSON path of this object or array
		keys  [][]byte // an object's keys so far
		array bool
		index int    // an array's current element
		last  []byte // an object's latest key
	}
	var stack []frame
	open := func(array bool) {
		path := prefix
		if n := len(stack); n > 0 {
			if p := stack[n-1]; p.array {
				path = p.path + "[" + strconv.Itoa(p.index) + "]"
			} else {
				path = join(p.path, string(p.last))
			}
		}
		stack = append(stack, frame{path: path, array: array})
	}
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '{', '[':
			open(raw[i] == '[')
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case ',':
			if n := len(stack); n > 0 && stack[n-1].array {
				stack[n-1].index++
			}
		case '"':
			end := bytes.IndexByte(raw[i+1:], '"')
			if end < 0 {
				return nil
			}
			key := raw[i+1 : i+1+end]
			i += end + 1
			j := i + 1
			for j < len(raw) && (raw[j] == ' ' || raw[j] == '\t' || raw[j] == '\n' || raw[j] == '\r') {
				j++
			}
			n := len(stack)
			if j == len(raw) || raw[j] != ':' || n == 0 || stack[n-1].array {
				continue // a value, not a key
			}
			f := &stack[n-1]
			for _, k := range f.keys {
				if bytes.Equal(k, key) {
					return duplicate(join(f.path, string(key)))
				}
			}
			f.keys, f.last = append(f.keys, key), key
		}
	}
	return nil
}
