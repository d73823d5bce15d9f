package hostile

// seed is a valid request for a route, as its rightful caller would send
// it: the generator mutates it, so that most hostile requests get past
// authentication and decoding to the checks behind them. Placeholders:
// {id:POOL} a real id, {rand} a fresh number, {future}/{later}/{done} dates
// one, two and three months ahead, {hex64} 64 hex digits.
type seed struct {
	role   string // "" for anyone
	body   string // JSON; "" for none
	query  string // for GETs
	upload bool   // multipart/form-data with a "file"
	// final: it ends what it aims at (closes, voids, awards, withdraws), so
	// the opening valid requests leave it out and the others do not aim at
	// the newest ids with it.
	final bool
	// step orders the opening valid requests: what a step needs, an
	// earlier step created (a round, then a project in it, then its
	// eligibility, then a contribution to it).
	step int
}

// The bodies are those of cmd/levee's tests and web's request structs.
var seeds = map[string]seed{
	"POST /api/v1/session":                         {body: `{"name":"alice","password":"not alice's password"}`},
	"POST /api/v1/admin/districts":                 {role: "admin", body: `{"name":"district-{rand}"}`},
	"POST /api/v1/admin/accounts":                  {role: "admin", body: `{"name":"hostile-{rand}","kind":"person","roles":["resident"],"district":"north","credit":"1","password":"a long password {rand}"}`},
	"POST /api/v1/admin/organisations/:id/members": {role: "admin", body: `{"account":"{id:accounts}"}`},
	"POST /api/v1/admin/treasury/issue":            {role: "admin", body: `{"amount":"5","memo":"hostile run {rand}"}`},
	"PUT /api/v1/admin/charter":                    {role: "admin", body: `{"quorum":2}`},
	"PATCH /api/v1/admin/accounts/:id":             {role: "admin", body: `{"disabled":false}`},
	"POST /api/v1/me/tokens":                       {role: "resident", body: `{"label":"laptop {rand}"}`},
	"PUT /api/v1/me/jury-duty":                     {role: "juror", body: `{"opt_out":false}`},
	"POST /api/v1/markets": {role: "treasurer", body: `{"question":"Will the levee hold, take {rand}?","outcomes":["yes","no"],"liquidity":"10",` +
		`"initial_probabilities":["0.5","0.5"],"closes_at":"{future}","district":"north"}`},
	"POST /api/v1/markets/:id/orders":   {step: 1, role: "resident", body: `{"outcome":0,"side":"buy","shares":"1","limit_price":"0.99","max_cost":"5"}`},
	"POST /api/v1/markets/:id/proposal": {role: "treasurer", body: `{"verdict":"yes","evidence":"the gauge read 3.1 m"}`},
	"POST /api/v1/markets/:id/dispute":  {role: "resident", body: `{"reason":"the gauge was under water"}`},
	"POST /api/v1/markets/:id/close":    {role: "treasurer", final: true},
	"POST /api/v1/markets/:id/void":     {role: "treasurer", final: true},
	"POST /api/v1/qf/rounds": {role: "treasurer", body: `{"title":"Round {rand}","pool":"10","cap_share":"0.5","eligibility_rules":"Public works only.",` +
		`"closes_at":"{future}"}`},
	"POST /api/v1/qf/rounds/:id/projects":        {step: 1, role: "resident", body: `{"title":"Sandbags {rand}","description":"for the north","district":"north","estimated_cost":"100"}`},
	"POST /api/v1/qf/projects/:id/eligibility":   {step: 2, role: "treasurer", body: `{"eligible":true,"reason":"public works"}`},
	"POST /api/v1/qf/projects/:id/contributions": {step: 3, role: "resident", body: `{"amount":"1"}`},
	"POST /api/v1/qf/rounds/:id/finalize":        {role: "treasurer", final: true},
	"POST /api/v1/tenders": {role: "treasurer", body: `{"budget_line":"{id:budget-lines}","title":"Repair the dyke {rand}","scope":"200 m","districts":["north"],` +
		`"budget_cap":"150","closes_at":"{future}","decision_at":"{later}","min_confidence":"0.5","twap_window":"1s","dispute_window":"1h",` +
		`"liquidity":"10","acceptance_criteria":"Inspector sign-off","milestones":[{"title":"All","share":"1"}]}`},
	"PATCH /api/v1/tenders/:id":           {role: "treasurer", body: `{"budget_cap":"100","reason":"smaller"}`},
	"POST /api/v1/tenders/:id/close-bids": {role: "treasurer", final: true},
	"POST /api/v1/tenders/:id/award":      {role: "treasurer", final: true},
	"POST /api/v1/tenders/:id/bids": {step: 1, role: "contractor", body: `{"organisation":"{id:organisations}","price":"90","completion_at":"{done}",` +
		`"milestone_dates":["{done}"],"method_statement":"sheet piles"}`},
	"PUT /api/v1/bids/:id":                              {step: 2, role: "contractor", body: `{"price":"80","completion_at":"{done}","milestone_dates":["{done}"]}`},
	"DELETE /api/v1/bids/:id":                           {role: "contractor", final: true},
	"POST /api/v1/bids/:id/attachments":                 {step: 2, role: "contractor", upload: true},
	"POST /api/v1/contracts/:id/milestones/:n/claim":    {role: "contractor", body: `{"evidence":"inspector signed off"}`},
	"POST /api/v1/contracts/:id/milestones/:n/dispute":  {role: "resident", body: `{"reason":"the foundations are not to the drawings"}`},
	"POST /api/v1/contracts/:id/milestones/:n/evidence": {role: "contractor", upload: true},
	"POST /api/v1/cases/:id/evidence":                   {role: "resident", body: `{"body":"the inspector's report"}`, upload: true},
	"POST /api/v1/cases/:id/commit":                     {role: "juror", body: `{"commitment":"{hex64}"}`},
	"POST /api/v1/cases/:id/reveal":                     {role: "juror", body: `{"verdict":"no","salt":"{hex64}"}`},
	"POST /api/v1/cases/:id/appeal":                     {role: "resident", body: `{"reason":"the south was not heard"}`},
	"POST /api/v1/quorum/proposals":                     {role: "steward", body: `{"kind":"charter","payload":{"petition_threshold":3},"reason":"smaller city"}`},
	"POST /api/v1/quorum/proposals/:id/votes":           {step: 1, role: "delegate", body: `{"approve":true}`},
	"POST /api/v1/emergencies":                          {role: "steward", body: `{"reason":"Storm surge","districts":["north","harbour"],"duration":"3d","cap":"500"}`},
	"POST /api/v1/emergencies/:id/acts": {step: 1, role: "steward", body: `{"kind":"reallocate","reason":"pumps","from_line":"{id:budget-lines}",` +
		`"to_line":"{id:budget-lines}","amount":"1"}`},
	"POST /api/v1/emergencies/:id/petition": {step: 1, role: "resident", body: `{}`},
	"DELETE /api/v1/me/tokens/:id":          {role: "resident", final: true},

	"GET /api/v1/markets":               {query: "status=open&district=north&limit=10"},
	"GET /api/v1/markets/:id/quote":     {query: "outcome=0&side=buy&shares=5"},
	"GET /api/v1/markets/:id/history":   {query: "points=50"},
	"GET /api/v1/markets/:id/trades":    {query: "limit=10"},
	"GET /api/v1/ledger/entries":        {query: "after=0&limit=10"},
	"GET /api/v1/cases":                 {query: "status=open"},
	"GET /api/v1/qf/rounds/:id/explain": {role: "resident", query: "project=1&amount=5"},
	"GET /api/v1/me/cases":              {role: "juror"},
	"GET /api/v1/admin/audit":           {role: "admin", query: "limit=10"},
}

// seedFor returns a route's valid request, if it has one worth sending as
// it is (a body, a query or an upload).
func seedFor(rt Route) (seed, bool) {
	s, ok := seeds[rt.String()]
	return s, ok && (s.body != "" || s.upload || s.role != "" && rt.Method != "GET")
}

// queryNames are the query parameters some route reads; a hostile request
// adds a few of them anywhere.
var queryNames = []string{"status", "district", "before", "after", "limit", "outcome", "side", "shares", "amount", "all",
	"limit_price", "max_cost", "min_proceeds", "from", "to", "points", "project", "account", "kind", "page", "q"}
