package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestUIIncomingRequest: on a neighbour's node its treasurer answers Leyte's
// request from the neighbours' page in a real browser; the vote, signed by
// that node, is counted on Leyte.
func TestUIIncomingRequest(t *testing.T) {
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	root := MustBrowser(t)
	leyte, samar := MustNode(t, "Leyte"), MustNode(t, "Samar")
	leyte.found(1, samar)
	samar.found(1, leyte)
	tess := leyte.person("tess", "treasurer")
	_, p := tess.do("POST", "/api/v1/quorum/proposals", `{"kind":"issue","payload":{"amount":"250","memo":"pumps"},"reason":"Fuel for the north pumps"}`)
	pid := p["id"].(string)
	anonS := anonymous(t, samar.m)
	eventually(t, 5*time.Second, "the request on Samar", func() bool {
		_, in := anonS.do("GET", "/api/v1/quorum/incoming", "")
		return len(in["requests"].([]any)) == 1
	})
	st, a := samar.admin.do("POST", "/api/v1/admin/accounts", `{"name":"sara","roles":["treasurer"]}`)
	if st != 201 {
		t.Fatalf("sara: %d %v", st, a)
	}
	b := newBrowser(t, root, "incoming", "http://"+samar.addr, 1280, 900)
	b.signInWithToken("sara", a["token"].(string))
	b.open("/quorum/incoming")
	if got := b.js(text("#requests")); !strings.Contains(got, "Leyte proposes: issue 250.000000") || !strings.Contains(got, "Fuel for the north pumps") {
		t.Fatalf("the request on the page: %q", got)
	}
	b.screenshot("incoming")
	b.do("approve", chromedp.Click(chromedp.CSS(`form.answer-form button[data-approve="true"]`)))
	b.waitJS("the answer", text("#requests")+`.includes('this city approved') ? 'yes' : ''`, 10*time.Second)
	anonL := anonymous(t, leyte.m)
	eventually(t, 5*time.Second, "the signed vote executes the issue on Leyte", func() bool {
		_, p = anonL.do("GET", "/api/v1/quorum/proposals/"+pid, "")
		return p["status"] == "executed"
	})
}
