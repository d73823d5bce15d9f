package main

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestListPagesPage: a list page shown newest first (here the markets page,
// a hundred at a time) links to the older rows when it is full, keeps its
// filters in the link, and the older page links back to the newest; a bad
// cursor is a 400 page. Every list page (markets, tenders, cases, budget
// rounds, the quorum's proposals) pages the same way (web.listPage).
func TestListPagesPage(t *testing.T) {
	m, _ := MustRunMain(t)
	tess, _, _ := MustCity(t, m)
	closes := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for i := range 101 {
		if st, mk := tess.do("POST", "/api/v1/markets", fmt.Sprintf(`{"question":"Market %d?","outcomes":["yes","no"],"liquidity":"1","closes_at":"%s"}`, i, closes)); st != 201 {
			t.Fatalf("market %d: %d %v", i, st, mk)
		}
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + m.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	link := func(page, id string) string {
		t.Helper()
		m := regexp.MustCompile(`href="([^"]*)" id="` + id + `"`).FindStringSubmatch(page)
		if m == nil {
			return ""
		}
		return html.UnescapeString(m[1])
	}

	st, first := get("/markets?status=open")
	if st != 200 || !strings.Contains(first, "Market 100?") || strings.Contains(first, "Market 0?") {
		t.Fatalf("first page: %d, newest shown: %t, oldest shown: %t", st, strings.Contains(first, "Market 100?"), strings.Contains(first, "Market 0?"))
	}
	older := link(first, "pager-older")
	if !strings.HasPrefix(older, "/markets?") || !strings.Contains(older, "status=open") || !strings.Contains(older, "before=") {
		t.Fatalf("first page's older link: %q", older)
	}
	if link(first, "pager-newest") != "" {
		t.Fatal("the first page links to the newest")
	}
	st, second := get(older)
	if st != 200 || !strings.Contains(second, "Market 0?") || strings.Contains(second, "Market 1?") {
		t.Fatalf("second page: %d, oldest shown: %t, second oldest shown: %t", st, strings.Contains(second, "Market 0?"), strings.Contains(second, "Market 1?"))
	}
	if link(second, "pager-older") != "" {
		t.Fatal("the last page links to older rows")
	}
	if newest := link(second, "pager-newest"); newest != "/markets?status=open" {
		t.Fatalf("second page's link to the newest: %q", newest)
	}
	if st, _ := get("/markets?before=x"); st != 400 {
		t.Fatalf("a bad cursor: %d, want 400", st)
	}
}
