package engine

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// VoidVerdict is the verdict that cancels a market instead of naming one
// of its outcomes (settlement's VerdictVoid spells it the same).
const VoidVerdict = "void"

// ClashesWithVoid reports whether an outcome's name could be read as the
// void verdict: compared after compatibility normalisation (full-width and
// other look-alike forms), case folding, and without spaces or
// punctuation, so "Void", "VOID", "v.o.i.d" and "ｖｏｉｄ" all clash. A
// market whose outcome is called void would make a proposal or a jury's
// verdict ambiguous.
func ClashesWithVoid(name string) bool {
	var b strings.Builder
	for _, r := range norm.NFKC.String(name) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String() == VoidVerdict
}
