// Package files checks files that people upload as evidence (milestone
// claims, bid attachments, case evidence): a plain name, a size limit, and
// a content type detected from the bytes, never taken from the uploader.
package files

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"levee"
)

// MaxBytes bounds one uploaded file.
const MaxBytes = 5 << 20

// types are the content types accepted, as detected from the file's bytes:
// documents and photographs a jury can open safely in a browser.
var types = map[string]bool{
	"application/pdf": true,
	"image/png":       true,
	"image/jpeg":      true,
	"image/webp":      true,
	"text/plain":      true,
}

// Check validates a file by its name, size and detected content, and
// returns its cleaned name and content type. Errors: EINVALID, ETOOLARGE,
// both on the field "file".
func Check(name string, data []byte) (cleanName, contentType string, err error) {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "." || name == "/" || name == "" || len(name) > 200 || !utf8.ValidString(name) || strings.ContainsAny(name, "\x00\r\n\"") {
		return "", "", levee.Invalid("file", "the file needs a plain name of at most 200 characters")
	}
	switch {
	case len(data) == 0:
		return "", "", levee.Invalid("file", "the file is empty")
	case len(data) > MaxBytes:
		return "", "", &levee.Error{Code: levee.ETOOLARGE, Field: "file", Message: fmt.Sprintf("evidence files are limited to %d MiB", MaxBytes>>20)}
	}
	ct, _, _ := strings.Cut(http.DetectContentType(data), ";")
	if !types[ct] {
		return "", "", levee.Invalid("file", "evidence must be a PDF, PNG, JPEG, WebP or plain-text file (this one looks like %s)", ct)
	}
	return name, ct, nil
}
