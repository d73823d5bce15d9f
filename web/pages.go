package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
	"levee/crisis"
)

// The pages are server-rendered html/template documents; a little vanilla
// JavaScript under /assets/ enhances them (the CSP forbids inline scripts and
// styles). The whole assets directory is embedded, so the binary builds
// whether or not `make assets` has fetched the vendored chart library into
// assets/vendor/: without it the market page shows its price history as a
// table only.

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// chartScript and chartStyle are uPlot's files, present after `make assets`.
const (
	chartScript = "vendor/uPlot.iife.min.js"
	chartStyle  = "vendor/uPlot.min.css"
)

// site is what the pages are made of, loaded once from the embedded files.
type site struct {
	assets map[string]*asset
	pages  map[string]*template.Template
}

// asset is one static file, with its gzip form when that is smaller.
type asset struct {
	body    []byte
	gz      []byte
	ctype   string
	version string // first 12 hex digits of the SHA-256 of body
}

// loadSite parses the templates and reads the assets once. An error here is
// a bug in the embedded files; the tests render every page.
var loadSite = sync.OnceValues(func() (*site, error) {
	st := &site{assets: map[string]*asset{}, pages: map[string]*template.Template{}}
	sub, err := fs.Sub(assetFiles, "assets")
	if err != nil {
		return nil, fmt.Errorf("load assets: %w", err)
	}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		a := &asset{body: body, ctype: mime.TypeByExtension(path.Ext(name)), version: hex.EncodeToString(sum[:6])}
		if a.ctype == "" {
			a.ctype = "application/octet-stream"
		}
		if len(body) > 512 {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			zw.Write(body)
			zw.Close()
			if buf.Len() < len(body) {
				a.gz = buf.Bytes()
			}
		}
		st.assets[name] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load assets: %w", err)
	}
	funcs := template.FuncMap{
		"asset": func(name string) (string, error) {
			a, ok := st.assets[name]
			if !ok {
				return "", fmt.Errorf("no asset %q", name)
			}
			return "/assets/" + name + "?v=" + a.version, nil
		},
		"price":  func(m levee.Micros) string { return fixed(m, 3) },
		"money":  func(m levee.Micros) string { return fixed(m, 2) },
		"signed": signedMoney,
		"pnlClass": func(m levee.Micros) string {
			switch {
			case m > 0:
				return "pnl up"
			case m < 0:
				return "pnl down"
			}
			return "pnl"
		},
		"exact": func(m levee.Micros) string { return m.String() },
		"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"short": func(t time.Time) string { return t.UTC().Format("Jan 2 15:04") },
		"join":  strings.Join,
		"inc":   func(n int) int { return n + 1 },
		"dec":   func(n int64) int64 { return max(n-1, 0) },
		"deref": func(b *bool) bool { return b != nil && *b },
		// text: a nullable text column for display ("" when NULL).
		"text": func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		},
		"title": func(s string) string {
			if s == "" {
				return s
			}
			return strings.ToUpper(s[:1]) + s[1:]
		},
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	names, _ := fs.Glob(templateFiles, "templates/*.html")
	for _, name := range names {
		if name == "templates/layout.html" {
			continue
		}
		t, err := base.Clone()
		if err == nil {
			t, err = t.ParseFS(templateFiles, name)
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		st.pages[strings.TrimSuffix(path.Base(name), ".html")] = t
	}
	return st, nil
})

// fixed formats m with places decimal places (at most 6), rounding half away
// from zero.
func fixed(m levee.Micros, places int) string {
	neg := m < 0
	u := int64(m)
	if neg {
		u = -u
	}
	unit := int64(1)
	for i := places; i < 6; i++ {
		unit *= 10
	}
	u = (u + unit/2) / unit
	scale := levee.Scale / unit
	s := fmt.Sprintf("%d", u/scale)
	if places > 0 {
		s += fmt.Sprintf(".%0*d", places, u%scale)
	}
	if neg && u != 0 {
		s = "−" + s // U+2212 MINUS SIGN reads better than a hyphen
	}
	return s
}

// signedMoney is money with an explicit sign, for profit and loss.
func signedMoney(m levee.Micros) string {
	s := fixed(m, 2)
	if m > 0 && s != "0.00" {
		s = "+" + s
	}
	return s
}

// page is what every template receives.
type page struct {
	Title   string
	Nav     string // the nav entry to mark current
	User    *accounts.Principal
	CSRF    string
	Scripts []string // page scripts after app.js
	// WantChart asks for the chart library; Chart says it is embedded and
	// loaded (set by render).
	WantChart bool
	Chart     bool
	Error     *errorBody
	Data      any
	// Emergency is the active emergency, shown in the banner on every page.
	Emergency *crisis.Emergency
	// Older links a list shown newest first to its next, older page, and
	// Newest back to its first page; empty when there is none (listPage).
	Older, Newest string
}

// listCursor reads ?before= of a list page shown newest first: 0 (or
// absent) is the newest page, and the next page is before= the last id of
// this one. A value that is not an id is a 400 naming it.
func listCursor(c *echo.Context) (int64, error) { return queryInt(c, "before", 0, 0, 1<<62) }

// listPageSize is how many rows a list page shows at a time, newest first.
// It asks its store for one more: that row says there are older ones.
const listPageSize = 100

// listPage trims rows, asked for with limit listPageSize+1, to one page,
// and links the page to its older rows when the extra row came back, and
// back to the newest rows when it is not the first page. The list's other
// query parameters (its filters) are kept in both links. id is a row's id,
// the cursor of the next page.
func listPage[T any](p *page, c *echo.Context, before int64, rows []T, id func(*T) int64) []T {
	u := c.Request().URL
	q := u.Query()
	if len(rows) > listPageSize {
		rows = rows[:listPageSize]
		q.Set("before", strconv.FormatInt(id(&rows[len(rows)-1]), 10))
		p.Older = u.Path + "?" + q.Encode()
	}
	if before > 0 {
		q.Del("before")
		p.Newest = u.Path
		if e := q.Encode(); e != "" {
			p.Newest += "?" + e
		}
	}
	return rows
}

// IsTreasurer says whether the signed-in user may open markets.
func (p *page) IsTreasurer() bool { return p.User.Has(accounts.RoleTreasurer) }

// IsResident says whether the signed-in user may trade.
func (p *page) IsResident() bool { return p.User.Has(accounts.RoleResident) }

// newPage starts the page data for the caller of c.
func newPage(c *echo.Context, title, nav string) *page {
	p := &page{Title: title, Nav: nav, User: principal(c)}
	if p.User != nil {
		p.CSRF = p.User.CSRFToken
	}
	return p
}

// render executes the named page into a buffer first, so a template error is
// a clean 500 rather than half a page.
func (s *Server) render(c *echo.Context, status int, name string, p *page) error {
	st, err := loadSite()
	if err != nil {
		return err
	}
	t, ok := st.pages[name]
	if !ok {
		return fmt.Errorf("render: no page %q", name)
	}
	p.Chart = p.WantChart && st.assets[chartScript] != nil && st.assets[chartStyle] != nil
	if s.deps.Crisis != nil && p.Emergency == nil {
		// A page still renders if the banner cannot be read; emergency.js
		// retries it.
		if e, err := s.deps.Crisis.Current(c.Request().Context()); err == nil {
			p.Emergency = e
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

// renderError shows err as a page with the error banner, with the status the
// API would give it. Uncoded errors are logged and shown as "internal error".
func (s *Server) renderError(c *echo.Context, err error) error {
	var body errorBody
	body.Error.Code = levee.ErrorCode(err)
	body.Error.Message = levee.ErrorMessage(err)
	body.Error.Field = levee.ErrorField(err)
	if body.Error.Code == levee.EINTERNAL {
		s.logger.Error("internal error", slog.String("method", c.Request().Method), slog.String("path", c.Path()), slog.Any("error", err))
	}
	status, ok := statusOf[body.Error.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	p := newPage(c, "Something went wrong", "")
	p.Error = &body
	return s.render(c, status, "error", p)
}

// requireSignIn answers an anonymous visitor with the sign-in page (401),
// which comes back to this address once signed in. It reports whether the
// caller may go on.
func (s *Server) requireSignIn(c *echo.Context) (bool, error) {
	if principal(c) != nil {
		return true, nil
	}
	p := newPage(c, "Sign in", "signin")
	p.Data = &signInPage{Next: localPath(c.Request().URL.RequestURI()), Reason: "Sign in to see this page."}
	return false, s.render(c, http.StatusUnauthorized, "signin", p)
}

// serveAsset serves an embedded file. A request naming the file's current
// version (?v=) may be cached for a year; any other must revalidate.
func (s *Server) serveAsset(c *echo.Context) error {
	st, err := loadSite()
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(path.Clean("/"+c.Param("*")), "/")
	a, ok := st.assets[name]
	if !ok {
		return levee.Errorf(levee.ENOTFOUND, "no such file")
	}
	h := c.Response().Header()
	etag := `"` + a.version + `"`
	h.Set("ETag", etag)
	h.Set("Vary", "Accept-Encoding")
	if c.QueryParam("v") == a.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if c.Request().Header.Get("If-None-Match") == etag {
		return c.NoContent(http.StatusNotModified)
	}
	body := a.body
	if a.gz != nil && strings.Contains(c.Request().Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	return c.Blob(http.StatusOK, a.ctype, body)
}
