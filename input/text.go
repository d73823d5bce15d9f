// Package input checks what arrives from outside before any of it reaches a
// service or the database: JSON bodies decoded strictly with messages that
// name the field and what it expects, texts free of control characters, and
// whole numbers within their column's range. Every refusal is a levee.Error
// with code invalid, so the caller answers 400 naming the field.
package input

import (
	"unicode"
	"unicode/utf8"

	"levee"
)

// multiline lists the JSON names (the last element of a field's path) of the
// texts people write in paragraphs: the web UI gives each a textarea, so
// tab, newline and carriage return (browsers send CRLF from a textarea in a
// form) are allowed in them. Every other text is a single line: a name, a
// label, an outcome, an id or an amount has no use for a line break, and one
// would only garble a list or a log line.
var multiline = map[string]bool{
	"acceptance_criteria": true,
	"body":                true,
	"description":         true,
	"eligibility_rules":   true,
	"evidence":            true,
	"memo":                true,
	"method_statement":    true,
	"question":            true, // a textarea on the new-market page
	"reason":              true,
	"scope":               true,
}

// Multiline reports whether the field with this JSON name may hold line
// breaks and tabs.
func Multiline(name string) bool { return multiline[name] }

// Text checks s, the value of field: valid UTF-8 and no control characters
// (C0, DEL and C1), except tab, newline and carriage return when multiline.
// PostgreSQL refuses NUL in text and jsonb outright, and the other control
// characters only ever come from a mistake or an attack: they hide text on a
// page, forge log lines, or make one name look like another.
func Text(field, s string, multiline bool) error {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !validAt(s, i):
			return levee.Invalid(field, "%s: not valid UTF-8 text (byte %d)", field, i+1)
		case multiline && (r == '\n' || r == '\t' || r == '\r'):
		case r == '\n' || r == '\r':
			return levee.Invalid(field, "%s: a single line of text (no line breaks)", field)
		case unicode.IsControl(r):
			return levee.Invalid(field, "%s: control characters such as U+%04X are not allowed", field, r)
		}
	}
	return nil
}

// validAt reports whether the U+FFFD at byte i of s was written as such,
// rather than being how range reports a byte that is not UTF-8.
func validAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size == 3
}

// Length checks that s, the value of field, is valid UTF-8 of lo to hi
// characters (runes).
func Length(field, s string, lo, hi int) error {
	if !utf8.ValidString(s) {
		return levee.Invalid(field, "%s: not valid UTF-8 text", field)
	}
	if n := utf8.RuneCountInString(s); n < lo || n > hi {
		if lo > 0 {
			return levee.Invalid(field, "%s must be %d to %d characters", field, lo, hi)
		}
		return levee.Invalid(field, "%s must be at most %d characters", field, hi)
	}
	return nil
}
