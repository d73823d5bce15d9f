package input

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"levee"
)

// representative bodies: one of each shape the API takes, with texts that
// are single lines and texts that span lines, in lists and nested objects.
var representative = []string{
	`{"name":"alice","password":"secret"}`,
	`{"question":"Will it flood?","outcomes":["yes","no"],"liquidity":"10","closes_at":"2030-01-01T00:00:00Z","district":"north"}`,
	`{"kind":"reallocation","payload":{"from_line":"1","to_line":"2","amount":"10"},"reason":"routine"}`,
	`{"kind":"direct_award","reason":"r","title":"Sandbags","scope":"s","milestones":[{"title":"Delivered","share":"1"}]}`,
	`{"title":"Dyke","scope":"raise it","districts":["north"],"acceptance_criteria":"inspected","milestones":[{"title":"Foundations","share":"0.4"}]}`,
	`{"amount":"5","memo":"opening balance"}`,
	`{"neighbours":[{"name":"Delta","delegate":"dd"}],"reason":"x","label":"laptop","evidence":"e","body":"b","method_statement":"m"}`,
}

// leaves lists the paths and JSON names of the strings in v, in order.
func leaves(v any, path, name string, out *[]textLeaf) {
	switch x := v.(type) {
	case string:
		*out = append(*out, textLeaf{path, name, nil})
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			leaves(x[k], join(path, k), k, out)
		}
	case []any:
		for i := range x {
			leaves(x[i], path+"["+strconv.Itoa(i)+"]", name, out)
		}
	}
}

type textLeaf struct {
	path, name string
	_          func()
}

// set replaces the string at path in v.
func set(v any, path []string, s string) any {
	if len(path) == 0 {
		return s
	}
	switch x := v.(type) {
	case map[string]any:
		x[path[0]] = set(x[path[0]], path[1:], s)
	case []any:
		i, _ := strconv.Atoi(path[0])
		x[i] = set(x[i], path[1:], s)
	}
	return v
}

// splitPath turns "a.b[2].c" into [a b 2 c].
func splitPath(p string) []string {
	return strings.FieldsFunc(strings.NewReplacer("[", ".", "]", "").Replace(p), func(r rune) bool { return r == '.' })
}

// FuzzControlCharacters puts a rune into one text of a representative body:
// a control character (but a line break or tab in a text of paragraphs) is
// refused naming exactly that text, anything else is accepted.
func FuzzControlCharacters(f *testing.F) {
	for i := range representative {
		for _, r := range []rune{0, '\t', '\n', '\r', 0x1b, 0x7f, 0x85, 0x9f, 'a', 'é', 0x2028, 0xfffd} {
			f.Add(uint8(i), uint8(i*3), uint8(1), r)
		}
	}
	f.Fuzz(func(t *testing.T, body, leaf, pos uint8, r rune) {
		if !utf8ValidRune(r) {
			return
		}
		var v any
		json.Unmarshal([]byte(representative[int(body)%len(representative)]), &v)
		var ls []textLeaf
		leaves(v, "", "", &ls)
		l := ls[int(leaf)%len(ls)]
		old := ""
		json.Unmarshal(mustJSON(get(v, splitPath(l.path))), &old)
		at := int(pos) % (len(old) + 1)
		v = set(v, splitPath(l.path), old[:at]+string(r)+old[at:])
		b := mustJSON(v)
		var into map[string]any
		err := DecodeJSON(strings.NewReader(string(b)), &into)
		allowed := !unicode.IsControl(r) || (Multiline(l.name) && (r == '\n' || r == '\t' || r == '\r'))
		switch {
		case allowed && err != nil:
			t.Fatalf("%s: %q in %s refused: %v", b, r, l.path, err)
		case !allowed && (levee.ErrorCode(err) != levee.EINVALID || levee.ErrorField(err) != l.path):
			t.Fatalf("%s: %q in %s: got %v, want invalid %s", b, r, l.path, err, l.path)
		}
	})
}

func utf8ValidRune(r rune) bool { return r >= 0 && r <= unicode.MaxRune && (r < 0xd800 || r > 0xdfff) }

func get(v any, path []string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, _ := strconv.Atoi(p)
			v = x[i]
		}
	}
	return v
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzDecodeJSON feeds arbitrary bodies to the decoder: it never panics, a
// refusal is always a coded 4xx error naming a field in words without Go
// types, and whatever it accepts holds only clean text.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range representative {
		f.Add(s)
	}
	for _, s := range []string{`{"outcome":1.5}`, `{"ref":{"emergency":1.5}}`, `{"milestones":[{"share":"x"}]}`, `{"at":5}`,
		`{"name":"a\u0000"}`, "{\"name\":\"\xff\"}", `{"payload":{"\u0085":1}}`, `{"account":"007"}`, `{`, `[]`, `{} {}`,
		`{"amount":"1","amount":"2"}`, `{"payload":{"a":1,"\u0061":2}}`, `{"milestones":[{"title":"a"},{"title":"b","title":"c"}]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b body
		err := DecodeJSON(strings.NewReader(s), &b)
		if err != nil {
			msg := levee.ErrorMessage(err)
			if levee.ErrorCode(err) != levee.EINVALID || levee.ErrorField(err) == "" {
				t.Fatalf("%q: %v", s, err)
			}
			for _, goish := range []string{"json:", "Go ", "int64", "struct", "levee.", "input.", "[]string", "time.Time"} {
				if strings.Contains(msg, goish) {
					t.Fatalf("%q: message %q speaks Go", s, msg)
				}
			}
			return
		}
		checkClean(t, reflect.ValueOf(b), "")
		if duplicateKeys(s) {
			t.Fatalf("%q: accepted with a field named twice", s)
		}
		if len(b.Payload) > 0 {
			var into map[string]any
			if err := DecodeNested("payload", b.Payload, &into); err != nil && b.Payload[0] == '{' {
				t.Fatalf("%q: payload accepted outside, refused inside: %v", s, err)
			}
		}
	})
}

// checkClean fails if a string in v has a character DecodeJSON refuses.
func checkClean(t *testing.T, v reflect.Value, name string) {
	switch v.Kind() {
	case reflect.String:
		if err := Text(name, v.String(), Multiline(name)); err != nil {
			t.Fatalf("accepted %q: %v", v.String(), err)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			checkClean(t, v.Elem(), name)
		}
	case reflect.Slice:
		if v.Type() == rawType {
			return
		}
		for i := 0; i < v.Len(); i++ {
			checkClean(t, v.Index(i), name)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if sf := v.Type().Field(i); sf.IsExported() {
				checkClean(t, v.Field(i), jsonName(sf))
			}
		}
	}
}

// duplicateKeys reports whether some object in the JSON text s names a key
// twice (after unescaping): the reference DecodeJSON's check must agree with.
func duplicateKeys(s string) bool {
	dec := json.NewDecoder(strings.NewReader(s))
	var walk func() bool
	walk = func() bool {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return false
				}
				key, _ := k.(string)
				if seen[key] {
					return true
				}
				seen[key] = true
				if walk() {
					return true
				}
			}
			dec.Token()
		case json.Delim('['):
			for dec.More() {
				if walk() {
					return true
				}
			}
			dec.Token()
		}
		return false
	}
	return walk()
}
