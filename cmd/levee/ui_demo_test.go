package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// demoSignIn is one printed sign-in of the demo city and where it starts.
type demoSignIn struct {
	name, role, password, path, try string
}

var (
	startRE    = regexp.MustCompile(`^\s+(\S+) \((\w+)\)\s+(/\S*)\s+(.+)$`)
	residentRE = regexp.MustCompile(`Residents for juries: .*all with password (\S+)`)
)

// MustDemoSignIns reads the demo city's printed sign-ins from its
// credentials file: every "where each sign-in starts" line with the
// password printed for that account.
func MustDemoSignIns(t *testing.T, m *Main) []demoSignIn {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.Config.DataDir, "demo-credentials.txt"))
	if err != nil {
		t.Fatal(err)
	}
	passwords := map[string]string{}
	var residents string
	var out []demoSignIn
	starts := false
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 4 && !starts {
			passwords[f[1]] = f[2]
		}
		if r := residentRE.FindStringSubmatch(line); r != nil {
			residents = r[1]
		}
		if strings.Contains(line, "where each sign-in starts") {
			starts = true
			continue
		}
		if r := startRE.FindStringSubmatch(line); starts && r != nil {
			s := demoSignIn{name: r[1], role: r[2], path: r[3], try: r[4], password: passwords[r[1]]}
			switch s.role {
			case "juror":
				s.password = residents
			}
			out = append(out, s)
		}
	}
	if len(out) < 10 {
		t.Fatalf("the demo city prints %d starting points:\n%s", len(out), b)
	}
	return out
}

// TestUIDemoCity signs in as every printed demo account in a real browser,
// opens the page the sign-in list says to start on, and finds it with
// something on it and the suggested action possible. dave and rivalbuild
// both bid on the open tender without seeing each other's bid. The census
// has every figure. With LEVEE_SCREENSHOTS set (make screenshots) it takes
// the README's pictures on the way.
func TestUIDemoCity(t *testing.T) {
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	root := MustBrowser(t)
	m, _, _ := MustRunMainClock(t, func(c *Config) { c.Demo = true })
	base := "http://" + m.Addr()
	signIns := MustDemoSignIns(t, m)
	seen := map[string]bool{}
	var daveBid string
	for _, s := range signIns {
		seen[s.name] = true
		t.Run(s.name, func(t *testing.T) {
			width, height := int64(1280), int64(900)
			if s.role == "juror" {
				width, height = 360, 740 // the jury ballot on a phone
			}
			b := newBrowser(t, root, "demo-"+s.name, base, width, height)
			if s.name == "admin" {
				b.signInWithToken("admin", testAdminToken)
			} else {
				if s.password == "" {
					t.Fatalf("no password printed for %s", s.name)
				}
				b.signIn(s.name, s.password)
			}
			b.open(s.path)
			if b.js(`document.getElementById('error-banner').hidden ? '' : 'error'`) != "" {
				t.Fatalf("%s on %s: %s", s.name, s.path, b.js(text("#error-banner")))
			}
			if n := len(b.js(text("main"))); n < 200 {
				t.Fatalf("%s's first page %s is nearly empty: %q", s.name, s.path, b.js(text("main")))
			}
			has := func(what, css string) {
				t.Helper()
				if b.js(fmt.Sprintf(`document.querySelector(%q) ? 'yes' : ''`, css)) == "" {
					b.screenshot("failed")
					t.Fatalf("%s on %s (%q): no %s (%s)", s.name, s.path, s.try, what, css)
				}
			}
			switch s.name {
			case "admin":
				has("admission form", "#admit-form")
				has("account list", "#account-table tbody tr")
				b.do("fill an admission",
					chromedp.SendKeys(chromedp.ID("admit-name"), "rosa"),
					chromedp.SetValue(chromedp.ID("admit-district"), "north"),
					chromedp.SetValue(chromedp.ID("admit-credit"), "100"),
					chromedp.Click(chromedp.ID("admit-submit")))
				b.waitJS("the confirmation", `document.querySelector('#admit-form .confirm').hidden ? '' : 'yes'`, 5*time.Second)
				b.do("show the form", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
				b.picture("admin")
				b.do("confirm", chromedp.Click(chromedp.ID("admit-confirm")))
				if tok := b.waitJS("rosa's first sign-in", `document.getElementById('first-signin').hidden ? '' : `+text("#first-token"), 10*time.Second); !strings.HasPrefix(tok, "lv_") {
					t.Errorf("rosa's first sign-in: %q", tok)
				}
			case "alice":
				has("order ticket", "#place-order")
				b.waitJS("the price history", `document.querySelectorAll('#history-table tbody tr').length > 5 || document.querySelector('.uplot') ? 'yes' : ''`, 5*time.Second)
				b.picture("market")
				b.do("type an amount", chromedp.SendKeys(chromedp.ID("qty"), "20"))
				b.waitJS("the preview", text("#preview-cost"), 5*time.Second)
				b.do("show the ticket", chromedp.Evaluate[chromedp.Void](`document.getElementById('place-order').scrollIntoView({block: 'center'})`))
				b.picture("order-preview")
			case "bob":
				has("decision market", `#bid-table a[href^="/markets/"]`)
				b.picture("tender")
			case "carol":
				has("contribution form", "form.contribute")
			case "dykeworks":
				has("claim of milestone 2", "#claim-2")
				if st := b.js(text("#milestone-status-1")); st != "Claimed" {
					t.Errorf("milestone 1 of the sea wall: %q, want Claimed (in its dispute window)", st)
				}
			case "dave", "rivalbuild":
				has("bid form", "#bid-form")
				if s.name == "rivalbuild" && daveBid != "" && strings.Contains(b.js(`document.documentElement.outerHTML`), daveBid) {
					t.Errorf("rivalbuild sees dave's sealed bid")
				}
				method := s.name + "'s method: precast units, two crews"
				now := time.Now()
				if org := b.js(`document.getElementById('bid-org')?.value ?? 'none'`); org == "" {
					t.Fatalf("%s's bid form does not know its organisation", s.name)
				}
				b.do("fill the bid",
					chromedp.SendKeys(chromedp.ID("bid-price"), "140"),
					setLocal("bid-completion", now.Add(40*24*time.Hour)),
					setLocal("bid-ms-1", now.Add(20*24*time.Hour)),
					setLocal("bid-ms-2", now.Add(40*24*time.Hour)),
					chromedp.SendKeys(chromedp.ID("bid-method"), method))
				b.do("send the bid", chromedp.Click(chromedp.ID("submit-bid")))
				b.waitJS("the sent bid", `document.querySelector('#my-bids .bid')?.dataset.bid ?? ''`, 10*time.Second)
				if s.name == "dave" {
					daveBid = method
				}
			case "tess":
				has("new tender form", "#new-tender")
			case "sam":
				has("declare form", "#declare-form")
				// The storm comes: sam declares and acts from the panel.
				b.do("fill the declaration",
					chromedp.SendKeys(chromedp.ID("declare-reason"), "Spring storm: the north pumps must run all night"),
					chromedp.Click(chromedp.CSS(`input[name="districts"][value="north"]`)),
					chromedp.Click(chromedp.CSS(`input[name="districts"][value="harbour"]`)),
					chromedp.SendKeys(chromedp.ID("declare-cap"), "600"))
				b.do("declare", chromedp.Click(chromedp.ID("declare")))
				b.waitJS("the active emergency", text("#now-h")+`.includes('is active') ? 'yes' : ''`, 10*time.Second)
				b.do("fill a reallocation",
					chromedp.SetValue(chromedp.ID("re-from"), "2"),
					chromedp.SetValue(chromedp.ID("re-to"), "1"),
					chromedp.SendKeys(chromedp.ID("re-amount"), "80"),
					chromedp.SendKeys(chromedp.ID("re-reason"), "Diesel for the mobile pumps"))
				b.do("reallocate", chromedp.Click(chromedp.ID("reallocate")))
				b.waitJS("the act", text("#acts")+`.includes('Diesel') ? 'yes' : ''`, 10*time.Second)
				b.do("back to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
				b.picture("emergency")
			default:
				switch s.role {
				case "juror":
					todo := b.js(`[...document.querySelectorAll('#my-cases [id^="todo-"]')].map(e => e.textContent).join(' | ')`)
					if !strings.Contains(todo, "seal your vote") {
						t.Fatalf("juror %s has nothing to seal: %q", s.name, todo)
					}
					c := b.js(`document.querySelector('#my-cases [data-todo="commit"]')?.dataset.case ?? ''`)
					b.open("/cases/" + c + "#ballot")
					b.do("show the ballot", chromedp.Evaluate[chromedp.Void](`document.getElementById('ballot')?.scrollIntoView({block: 'start'})`))
					b.picture("jury-phone")
				default:
					t.Fatalf("no check for %s (%s)", s.name, s.role)
				}
			}
			b.screenshot("first-page")
		})
	}
	for _, name := range []string{"admin", "alice", "bob", "carol", "dykeworks", "dave", "rivalbuild", "tess", "sam"} {
		if !seen[name] {
			t.Errorf("the sign-in list does not say where %s starts", name)
		}
	}

	// The census has every figure, forecast accuracy included.
	visitor := newBrowser(t, root, "demo-census", base, 1280, 900)
	visitor.open("/census")
	page := visitor.js(text("main"))
	for _, bad := range []string{"not yet available (", "No contract has been awarded yet", "No budget lines yet", "No treasury flows yet"} {
		if strings.Contains(page, bad) {
			t.Errorf("the demo city's census says %q", bad)
		}
	}
	if visitor.js(`document.getElementById('not-yet') ? 'yes' : ''`) != "" {
		t.Errorf("the census lists figures not yet available: %s", visitor.js(text("#not-yet")))
	}
	if brier := visitor.js(text("#brier")); brier == "" || strings.Contains(brier, "not") {
		t.Errorf("Brier score %q", brier)
	}
	if rows := visitor.js(`String([...document.querySelectorAll('#calibration tbody tr')].filter(r => r.cells[1].textContent !== '0').length)`); rows == "0" {
		t.Errorf("the calibration table is empty")
	}
	visitor.do("show the forecasts", chromedp.Evaluate[chromedp.Void](`document.getElementById('fig-rounds').scrollIntoView({block: 'start'})`))
	visitor.picture("census")
	visitor.screenshot("census")
	// A jury case at each stage.
	_, cs := anonymous(t, m).do("GET", "/api/v1/cases", "")
	stages := map[string]int{}
	for _, x := range cs["cases"].([]any) {
		stages[x.(map[string]any)["status"].(string)]++
	}
	for _, want := range []string{"evidence", "commit", "reveal", "appealable", "settled"} {
		if stages[want] == 0 {
			t.Errorf("no case in its %s stage: %v", want, stages)
		}
	}
	st, c := anonymous(t, m).do("GET", "/api/v1/census", "")
	if st != 200 || len(c["not_yet_available"].([]any)) != 0 || c["forecast_accuracy"].(map[string]any)["brier_score"] == nil {
		t.Errorf("census: %d not yet %v, forecasts %v", st, c["not_yet_available"], c["forecast_accuracy"])
	}
}
