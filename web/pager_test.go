package web

import (
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v5"
)

// TestListPage: a list page links to older rows exactly when its store
// returned the one row past the page, with the cursor of the last row shown
// and the filters kept, and a later page links back to the newest.
func TestListPage(t *testing.T) {
	ids := func(n int) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(1000 - i) // newest first
		}
		return out
	}
	for _, tc := range []struct {
		name, url     string
		before        int64
		rows, shown   int
		older, newest string
	}{
		{"less than a page", "/markets?status=open", 0, 3, 3, "", ""},
		{"exactly a page", "/markets?status=open", 0, listPageSize, listPageSize, "", ""},
		{"more than a page", "/markets?status=open", 0, listPageSize + 1, listPageSize, "/markets?before=901&status=open", ""},
		{"a later page", "/markets?before=901&status=open", 901, 2, 2, "", "/markets?status=open"},
		{"a later full page", "/tenders?before=1001", 1001, listPageSize + 1, listPageSize, "/tenders?before=901", "/tenders"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := echo.New().NewContext(httptest.NewRequest("GET", tc.url, nil), httptest.NewRecorder())
			p := &page{}
			got := listPage(p, c, tc.before, ids(tc.rows), func(id *int64) int64 { return *id })
			if len(got) != tc.shown || p.Older != tc.older || p.Newest != tc.newest {
				t.Fatalf("%d rows shown, older %q, newest %q; want %d, %q, %q", len(got), p.Older, p.Newest, tc.shown, tc.older, tc.newest)
			}
		})
	}
}
