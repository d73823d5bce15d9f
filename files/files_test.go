package files

import (
	"bytes"
	"strings"
	"testing"

	"levee"
)

func TestCheck(t *testing.T) {
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{1}, 100)...)
	tests := []struct {
		name, file string
		data       []byte
		code, ct   string
		clean      string
	}{
		{"png", "site.png", png, "", "image/png", "site.png"},
		{"pdf", "report.pdf", []byte("%PDF-1.7\n..."), "", "application/pdf", "report.pdf"},
		{"text", "notes.txt", []byte("the pump runs"), "", "text/plain", "notes.txt"},
		{"a path is cut to its name", `..\..\C\x.png`, png, "", "image/png", "x.png"},
		{"html refused whatever its name", "x.png", []byte("<!DOCTYPE html><p>hi"), levee.EINVALID, "", ""},
		{"executable", "x.pdf", []byte("MZ\x90\x00\x03"), levee.EINVALID, "", ""},
		{"empty", "x.txt", nil, levee.EINVALID, "", ""},
		{"too large", "x.png", append(append([]byte{}, png...), make([]byte, MaxBytes)...), levee.ETOOLARGE, "", ""},
		{"no name", "", png, levee.EINVALID, "", ""},
		{"newline in name", "a\nb.png", png, levee.EINVALID, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clean, ct, err := Check(tt.file, tt.data)
			if tt.code != "" {
				if levee.ErrorCode(err) != tt.code || levee.ErrorField(err) != "file" {
					t.Fatalf("got %v, want %s on file", err, tt.code)
				}
				return
			}
			if err != nil || ct != tt.ct || clean != tt.clean {
				t.Fatalf("got %q %q %v, want %q %q", clean, ct, err, tt.clean, tt.ct)
			}
		})
	}
}

// FuzzCheck feeds arbitrary names and bytes to the upload check: it never
// panics, refuses only with a coded error on the field "file", and accepts
// only the listed types.
func FuzzCheck(f *testing.F) {
	f.Add("site.png", []byte("\x89PNG\r\n\x1a\nxxxx"))
	f.Add("a.pdf", []byte("%PDF-1.7"))
	f.Add("../../etc/passwd", []byte("root:x:0:0"))
	f.Add("x\x00.txt", []byte("hi"))
	f.Add("", []byte{})
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		clean, ct, err := Check(name, data)
		if err != nil {
			if c := levee.ErrorCode(err); (c != levee.EINVALID && c != levee.ETOOLARGE) || levee.ErrorField(err) != "file" {
				t.Fatalf("%q: %v", name, err)
			}
			return
		}
		if !types[ct] || clean == "" || strings.ContainsAny(clean, "/\\\x00\r\n") {
			t.Fatalf("%q accepted as %q %q", name, clean, ct)
		}
	})
}
