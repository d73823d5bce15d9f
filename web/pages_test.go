package web

import (
	"testing"
)

// TestPagesLoad parses every template and reads every asset, so a broken
// template fails here rather than as a 500 in a browser.
func TestPagesLoad(t *testing.T) {
	st, err := loadSite()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"layout", "markets", "market", "portfolio", "signin", "newmarket", "error"} {
		if name != "layout" && st.pages[name] == nil {
			t.Errorf("no page %q", name)
		}
	}
	for _, name := range []string{"app.css", "app.js", "market.js", "favicon.svg"} {
		if st.assets[name] == nil {
			t.Errorf("no asset %q", name)
		}
	}
}
