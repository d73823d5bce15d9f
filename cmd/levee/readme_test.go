package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmePictures checks that the README shows at least four of the
// screenshots near its top, and that every committed one exists and is
// small (make screenshots regenerates them).
func TestReadmePictures(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	top := readme[:strings.Index(readme, "## Two commands")]
	shown := regexp.MustCompile(`!\[[^\]]+\]\((docs/screenshots/[a-z-]+\.png)\)`).FindAllStringSubmatch(top, -1)
	if len(shown) < 4 {
		t.Fatalf("the README shows %d pictures before \"Two commands\", want at least 4", len(shown))
	}
	files, err := filepath.Glob("../../docs/screenshots/*.png")
	if err != nil || len(files) < 7 {
		t.Fatalf("docs/screenshots has %d pictures (%v), want the 7 of make screenshots", len(files), err)
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > maxPicture {
			t.Errorf("%s weighs %d bytes, more than %d", f, st.Size(), maxPicture)
		}
	}
	for _, m := range shown {
		if _, err := os.Stat("../../" + m[1]); err != nil {
			t.Errorf("the README shows %s: %v", m[1], err)
		}
	}
}
