package hostile

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"levee/web"
)

// demoCredentials is what cmd/levee/demo.go writes, abridged.
const demoCredentials = `
Demo city sign-ins (web UI: name + password; API: Authorization: Bearer <token>)
  ROLE        NAME        PASSWORD           API TOKEN
  admin       admin       -                  (LEVEE_ADMIN_TOKEN)
  resident    alice       demo-3f9c1a2b7d4e  lv_alice
  contractor  dykeworks   demo-0a1b2c3d4e5f  lv_dyke
  steward     sam         demo-aaaaaaaaaaaa  lv_sam
  Residents for juries: north-1..6, south-1..6, harbour-1..6, all with password demo-jjjjjjjjjjjj
  Neighbour delegates: delta-delegate, estuary-delegate, ridge-delegate, password demo-dddddddddddd
  Jury duty: case 1 (alice disputes a market's proposed outcome); jurors north-3, north-1, harbour-2

Try: curl -H 'Authorization: Bearer <token>' http://127.0.0.1:8080/api/v1/me
`

func TestParseCredentials(t *testing.T) {
	c, err := ParseCredentials(demoCredentials)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Accounts) != 3 || c.Accounts[0] != (Credential{"resident", "alice", "demo-3f9c1a2b7d4e", "lv_alice"}) {
		t.Fatalf("accounts: %+v", c.Accounts)
	}
	if c.ResidentPassword != "demo-jjjjjjjjjjjj" || c.DelegatePassword != "demo-dddddddddddd" ||
		!slices.Equal(c.Delegates, []string{"delta-delegate", "estuary-delegate", "ridge-delegate"}) ||
		!slices.Equal(c.Jurors, []string{"north-3", "north-1", "harbour-2"}) {
		t.Fatalf("parsed %+v", c)
	}
	if _, err := ParseCredentials("nothing here"); err == nil {
		t.Fatal("no sign-ins parsed without an error")
	}
}

// TestGeneratedRequestsCanBeSent generates many requests without a server:
// each must be one Go's client will send (a request it refuses would count
// against the server as "no answer"), and none may revoke a caller's own
// token.
func TestGeneratedRequestsCanBeSent(t *testing.T) {
	routes := []Route{{"GET", "/api/v1/markets/:id/quote"}, {"POST", "/api/v1/markets/:id/orders"}, {"DELETE", "/api/v1/me/tokens/:id"},
		{"POST", "/api/v1/cases/:id/evidence"}, {"POST", "/api/v1/bids/:id/attachments"}, {"GET", "/assets/*"},
		{"POST", "/api/v1/tenders"}, {"DELETE", "/api/v1/session"}, {"POST", "/api/v1/contracts/:id/milestones/:n/dispute"}}
	cfg := Config{BaseURL: "http://127.0.0.1:1", Routes: routes, Revoked: "lv_revoked",
		Principals: []Principal{{Role: "resident", Name: "alice", Token: "lv_alice"}, {Role: "resident", Name: "alice", Session: "s", CSRF: "c"}}}
	st := newState(cfg, http.DefaultClient)
	st.ownTokens[7] = true
	st.add("markets", "3")
	g := &gen{st: st, r: rand.New(rand.NewPCG(1, 2))}
	for i := range 5000 {
		rt := routes[i%len(routes)]
		rq := g.request(rt)
		if i%50 == 0 {
			rq = g.burst(rt, i%100 == 0)[0]
		}
		req, err := http.NewRequest(rq.method, cfg.BaseURL+rq.url, strings.NewReader(string(rq.body)))
		if err != nil {
			t.Fatalf("%s %s: %v", rq.method, rq.url, err)
		}
		req.Header = rq.header
		if err := req.Write(discard{}); err != nil {
			t.Fatalf("%s %s with %v: %v", rq.method, rq.url, rq.header, err)
		}
		if rt.Method == "DELETE" && strings.HasPrefix(rt.Path, "/api/v1/me/tokens/") {
			raw, _ := url.PathUnescape(strings.TrimPrefix(strings.SplitN(rq.url, "?", 2)[0], "/api/v1/me/tokens/"))
			if n, err := strconv.ParseInt(raw, 10, 64); err == nil && n == 7 {
				t.Fatalf("aimed at a caller's own token: %s", rq.url)
			}
		}
		if rt.Path == "/api/v1/session" && rq.header.Get("Cookie") == sessionCookie+"=s" {
			t.Fatalf("signs the run's own session out: %v", rq.header)
		}
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// TestSignInPassesOverJurorsWithoutThePassword: a jury may seat an account
// the demo did not make (the benchmark's traders share its database), whose
// password is not the residents'; SignIn passes over it and signs the other
// jurors in.
func TestSignInPassesOverJurorsWithoutThePassword(t *testing.T) {
	var signedIn []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/session":
			var body map[string]string
			json.NewDecoder(r.Body).Decode(&body)
			if strings.HasPrefix(body["name"], "trader-") {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			signedIn = append(signedIn, body["name"])
			http.SetCookie(w, &http.Cookie{Name: web.SessionCookie, Value: "s-" + body["name"]})
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(`{"csrf_token":"c"}`))
		case "/api/v1/me/tokens":
			if r.Method == "DELETE" {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(`{"id":"1","token":"lv_t"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	creds := Credentials{ResidentPassword: "pw", Jurors: []string{"trader-00000", "north-1", "trader-00001", "north-2", "south-1", "south-2"}}
	ps, _, err := SignIn(context.Background(), srv.Client(), srv.URL, creds, "admin-token")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"north-1", "north-2", "south-1"}; !slices.Equal(signedIn, want) {
		t.Fatalf("signed in %v, want %v", signedIn, want)
	}
	if len(ps) != 4 { // the admin and three jurors
		t.Fatalf("%d principals, want 4", len(ps))
	}

	creds.Jurors = []string{"trader-00000", "trader-00001"}
	if _, _, err := SignIn(context.Background(), srv.Client(), srv.URL, creds, "admin-token"); err == nil {
		t.Fatal("no juror signed in, and no error")
	}
}
