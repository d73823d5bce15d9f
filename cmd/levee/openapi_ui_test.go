package main

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"levee/web"
)

// TestAPIDocsPage renders /api/docs in Chromium: Swagger UI loads the
// document and lists the operations, under the site's strict CSP (a
// violation fails the test, see newBrowser).
func TestAPIDocsPage(t *testing.T) {
	if _, err := os.Stat("../../web/assets/vendor/swagger-ui-bundle.js"); err != nil {
		t.Fatal("Swagger UI is missing: run `make assets` (make test does)")
	}
	m, _ := MustRunMain(t)
	b := newBrowser(t, MustBrowser(t), "apidocs", "http://"+m.Addr(), 1280, 900)
	b.do("open /api/docs", chromedp.Navigate(b.base+"/api/docs"), chromedp.WaitReady(chromedp.CSS("body")))
	b.waitJS("the title", text(".swagger-ui .info .title"), 20*time.Second)
	n, _ := strconv.Atoi(b.waitJS("the operations", `String(document.querySelectorAll('.opblock').length || '')`, 20*time.Second))
	if want := len(web.DocumentedRoutes()); n != want {
		t.Errorf("%d operations shown, want %d", n, want)
	}
	b.screenshot("apidocs")
}
