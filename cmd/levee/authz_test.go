package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// access says who may call a route.
type access int

const (
	public access = iota
	signedIn
	residentOnly
	treasurerOnly
	adminOnly
	stewardOnly
)

// routeAccess declares the access rule of every route. A route missing here
// fails TestAuthorizationMatrix, so a new endpoint cannot ship without one.
var routeAccess = map[string]access{
	"GET /healthz":                                      public,
	"GET /readyz":                                       public,
	"GET /metrics":                                      public,
	"POST /api/v1/session":                              public,
	"DELETE /api/v1/session":                            public,
	"GET /api/v1/districts":                             public,
	"GET /api/v1/ledger/entries":                        public,
	"GET /api/v1/ledger/verify":                         public,
	"GET /api/v1/markets":                               public,
	"GET /api/v1/markets/:id":                           public,
	"GET /api/v1/markets/:id/quote":                     public,
	"GET /api/v1/markets/:id/trades":                    public,
	"GET /api/v1/markets/:id/history":                   public,
	"GET /api/v1/ws":                                    public,
	"GET /api/v1/me":                                    signedIn,
	"GET /api/v1/me/tokens":                             signedIn,
	"POST /api/v1/me/tokens":                            signedIn,
	"DELETE /api/v1/me/tokens/:id":                      signedIn,
	"GET /api/v1/me/email":                              signedIn,
	"PUT /api/v1/me/email":                              signedIn,
	"DELETE /api/v1/me/email":                           signedIn,
	"PUT /api/v1/me/email/categories":                   signedIn,
	"POST /api/v1/email/confirm":                        public, // the link's token is the proof
	"PUT /api/v1/me/password":                           signedIn,
	"POST /api/v1/me/sign-out-everywhere":               signedIn,
	"POST /api/v1/password/reset":                       public, // the link's token is the proof
	"GET /password/reset":                               public,
	"POST /api/v1/admin/accounts/:id/password-reset":    adminOnly,
	"GET /email/confirm":                                public,
	"GET /api/v1/me/positions":                          signedIn,
	"GET /api/v1/me/history":                            signedIn,
	"POST /api/v1/markets/:id/orders":                   residentOnly,
	"POST /api/v1/markets":                              treasurerOnly,
	"POST /api/v1/markets/:id/close":                    treasurerOnly,
	"POST /api/v1/markets/:id/proposal":                 treasurerOnly,
	"GET /api/v1/markets/:id/proposal":                  public,
	"POST /api/v1/markets/:id/dispute":                  signedIn, // the service checks district, trading or party
	"GET /api/v1/cases":                                 public,
	"GET /api/v1/cases/:id":                             public, // votes hidden until tallied, evidence until a verdict
	"GET /api/v1/cases/:id/draw":                        public,
	"POST /api/v1/cases/:id/evidence":                   signedIn, // parties only (the service checks)
	"GET /api/v1/cases/:id/evidence/:eid":               public,   // parties and jurors until a verdict
	"POST /api/v1/cases/:id/commit":                     signedIn, // seated jurors only
	"POST /api/v1/cases/:id/reveal":                     signedIn,
	"POST /api/v1/cases/:id/appeal":                     signedIn, // parties only
	"GET /api/v1/me/cases":                              signedIn,
	"GET /api/v1/jurors/:id/record":                     public,
	"GET /api/v1/me/notifications":                      signedIn,
	"GET /api/v1/me/jury-duty":                          signedIn,
	"GET /api/v1/charter":                               public,
	"PUT /api/v1/admin/charter":                         adminOnly,
	"GET /api/v1/quorum/proposals":                      public,
	"POST /api/v1/quorum/proposals":                     signedIn, // the service checks the role each kind needs
	"GET /api/v1/quorum/proposals/:id":                  public,
	"GET /api/v1/emergency":                             public,
	"GET /api/v1/emergencies":                           public,
	"POST /api/v1/emergencies":                          stewardOnly, // and the service checks the charter names them
	"GET /api/v1/emergencies/:id":                       public,
	"POST /api/v1/emergencies/:id/acts":                 stewardOnly, // and the service checks it is the declaring one
	"POST /api/v1/emergencies/:id/petition":             residentOnly,
	"GET /api/v1/stewards/:id/record":                   public,
	"GET /emergency":                                    public, // the panel's forms only for the charter's stewards
	"GET /quorum":                                       public,
	"GET /quorum/incoming":                              public, // the answer buttons only for the charter's voters
	"GET /api/v1/quorum/incoming":                       public,
	"POST /api/v1/quorum/incoming/:id/votes":            signedIn, // the service checks the charter's voter_roles
	"POST /api/v1/quorum/end-requests":                  signedIn, // the service checks the charter's voter_roles
	"GET /api/v1/node":                                  public,
	"GET /api/v1/neighbour-petitions":                   public,
	"POST /api/v1/neighbours/:id/petitions":             residentOnly,
	"POST /api/v1/neighbour-petitions/:id/signatures":   residentOnly,
	"POST /api/v1/federation/statements":                public, // the signature against a pinned key is the credential
	"GET /api/v1/federation/statements":                 public,
	"GET /api/v1/federation/refusals":                   public,
	"GET /api/v1/federation/alarms":                     public,
	"GET /api/v1/ledger/witnesses":                      public,
	"GET /api/v1/audit":                                 public,
	"GET /stewards/:id":                                 public,
	"GET /ledger":                                       public,
	"PUT /api/v1/me/jury-duty":                          signedIn,
	"POST /api/v1/markets/:id/void":                     treasurerOnly,
	"POST /api/v1/admin/districts":                      adminOnly,
	"POST /api/v1/admin/accounts":                       adminOnly,
	"POST /api/v1/admin/organisations/:id/members":      adminOnly,
	"GET /api/v1/admin/audit":                           adminOnly,
	"POST /api/v1/admin/treasury/issue":                 adminOnly,
	"GET /api/v1/admin/accounts":                        adminOnly,
	"PATCH /api/v1/admin/accounts/:id":                  adminOnly,
	"GET /admin":                                        adminOnly,
	"GET /admin/audit":                                  adminOnly,
	"GET /":                                             public,
	"GET /markets":                                      public,
	"GET /markets/:id":                                  public,
	"GET /signin":                                       public,
	"POST /signout":                                     public,
	"GET /portfolio":                                    signedIn,
	"GET /api/v1/session":                               signedIn,
	"GET /markets/new":                                  treasurerOnly,
	"GET /api/v1/qf/rounds":                             public,
	"GET /api/v1/qf/rounds/:id":                         public,
	"GET /api/v1/budget-lines":                          public,
	"GET /api/v1/census":                                public,
	"GET /api/v1/census.csv":                            public,
	"GET /api/v1/qf/rounds/:id/explain":                 signedIn,
	"POST /api/v1/qf/rounds/:id/projects":               residentOnly,
	"POST /api/v1/qf/projects/:id/contributions":        residentOnly,
	"POST /api/v1/qf/rounds":                            treasurerOnly,
	"POST /api/v1/qf/projects/:id/eligibility":          treasurerOnly,
	"POST /api/v1/qf/rounds/:id/finalize":               treasurerOnly,
	"GET /api/v1/tenders":                               public,
	"GET /api/v1/tenders/:id":                           public,
	"GET /api/v1/tenders/:id/bids":                      public, // sealed: the store shows only the caller's own until close
	"GET /api/v1/bids/:id":                              public,
	"GET /api/v1/contracts/:id":                         public,
	"POST /api/v1/tenders/:id/bids":                     signedIn, // the service checks contractor membership
	"PUT /api/v1/bids/:id":                              signedIn,
	"DELETE /api/v1/bids/:id":                           signedIn,
	"POST /api/v1/contracts/:id/milestones/:n/claim":    signedIn,
	"POST /api/v1/contracts/:id/milestones/:n/dispute":  signedIn,
	"POST /api/v1/tenders":                              treasurerOnly,
	"PATCH /api/v1/tenders/:id":                         treasurerOnly,
	"POST /api/v1/tenders/:id/close-bids":               treasurerOnly,
	"POST /api/v1/tenders/:id/award":                    treasurerOnly,
	"GET /rounds":                                       public,
	"GET /rounds/:id":                                   public,
	"GET /census":                                       public,
	"GET /tenders":                                      public,
	"GET /tenders/:id":                                  public, // bids as the store shows them to the caller
	"GET /bids/:id":                                     public, // sealed: not found for anyone but the bidder until close
	"GET /contracts/:id":                                public,
	"GET /jury":                                         signedIn,
	"GET /cases":                                        public,
	"GET /cases/:id":                                    public, // votes hidden until tallied, evidence until a verdict
	"GET /api/v1/ocds/releases/:id":                     public, // bids only once the window has closed
	"GET /api/v1/ocds/records/:id":                      public,
	"GET /api/v1/contractors/:id/track-record":          public,
	"POST /api/v1/contracts/:id/milestones/:n/evidence": signedIn,
	"GET /api/v1/contracts/:id/milestones/:n/evidence":  public,
	"GET /api/v1/evidence/:id":                          public,
	"POST /api/v1/bids/:id/attachments":                 signedIn,
	"GET /api/v1/bids/:id/attachments":                  public, // sealed like the bid
	"GET /api/v1/bid-attachments/:id":                   public, // sealed like the bid
	"GET /api/v1/openapi.json":                          public,
	"GET /api/v1/asyncapi.json":                         public,
	"GET /api/docs":                                     public,
}

func allowed(a access, role string) bool {
	switch a {
	case public:
		return true
	case signedIn:
		return role != "anonymous"
	case residentOnly:
		return role == "resident" || role == "steward" // the demo steward is also a resident
	case treasurerOnly:
		return role == "treasurer"
	case adminOnly:
		return role == "admin"
	case stewardOnly:
		return role == "steward"
	}
	return false
}

// TestAuthorizationMatrix calls every route as every role and checks that
// exactly the allowed callers get past authentication and authorization.
func TestAuthorizationMatrix(t *testing.T) {
	m, _ := MustRunMain(t)
	admin := newClient(t, m, testAdminToken)
	admin.do("POST", "/api/v1/admin/districts", `{"name":"north"}`)
	admin.do("POST", "/api/v1/admin/treasury/issue", `{"amount":"100000"}`)
	tokens := map[string]string{"anonymous": "", "admin": testAdminToken}
	for role, body := range map[string]string{
		"resident":   `{"name":"alice","roles":["resident"],"district":"north","credit":"100"}`,
		"contractor": `{"name":"dykeworks","roles":["contractor"]}`,
		"treasurer":  `{"name":"tess","roles":["treasurer"]}`,
		"steward":    `{"name":"sam","roles":["steward","resident"],"district":"north"}`,
	} {
		st, a := admin.do("POST", "/api/v1/admin/accounts", body)
		if st != 201 {
			t.Fatalf("%s: %d %v", role, st, a)
		}
		tokens[role] = a["token"].(string)
	}
	closes := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	_, mk := newClient(t, m, tokens["treasurer"]).do("POST", "/api/v1/markets", `{"question":"q?","outcomes":["y","n"],"liquidity":"10","closes_at":"`+closes+`"}`)
	marketID := mk["id"].(string)

	seen := map[string]bool{}
	for _, r := range m.web.Routes() {
		key := r.Method + " " + r.Path
		if seen[key] || strings.HasPrefix(r.Path, "/assets") || r.Method == "echo_route_not_found" {
			continue
		}
		seen[key] = true
		rule, ok := routeAccess[key]
		if !ok {
			t.Errorf("route %s has no declared access rule in routeAccess", key)
			continue
		}
		path := strings.ReplaceAll(r.Path, ":id", marketID)
		if strings.HasPrefix(r.Path, "/api/v1/me/tokens/") {
			path = strings.ReplaceAll(r.Path, ":id", "999999") // not someone's real token
		}
		for role, token := range tokens {
			c := newClient(t, m, token)
			body := ""
			if r.Method == http.MethodPost {
				body = `{}`
			}
			st, resp := c.do(r.Method, path, body)
			denied := st == http.StatusUnauthorized || st == http.StatusForbidden
			if st >= 500 {
				t.Errorf("%s as %s: %d %v", key, role, st, resp)
			}
			if allowed(rule, role) == denied && !(key == "POST /api/v1/session" && st == 401) {
				t.Errorf("%s as %s: status %d (allowed=%v) %v", key, role, st, allowed(rule, role), resp)
			}
		}
	}
	for key := range routeAccess {
		if !seen[key] {
			t.Errorf("routeAccess lists %s, which is not a route", key)
		}
	}
}
