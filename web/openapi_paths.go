package web

import (
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"levee"
	"levee/accounts"
	"levee/budgets"
	"levee/census"
	"levee/contracting"
	"levee/crisis"
	"levee/federation"
	"levee/ledger"
	"levee/market"
	"levee/market/engine"
	"levee/outbox"
	"levee/residents"
	"levee/settlement"
)

// apiOp describes one route of the API for the OpenAPI document.
type apiOp struct {
	method, path string // echo's path, with :name parameters
	tag, summary string
	who          string   // who may call: public, signed-in, or a role
	query        []schema // query parameters
	body         schema   // a JSON request body; nil for none
	bodyRequired bool
	multipart    schema // a multipart/form-data request body
	example      any    // an example request body
	status       int    // the success status
	resp         schema // the success body (JSON); nil for none
	respType     string // the success body's media type when not JSON
	respHeaders  schema
}

// Who may call a route (mirrors the authorization matrix in
// cmd/levee/authz_test.go).
const (
	whoPublic    = "public"
	whoSignedIn  = "signed-in"
	whoResident  = accounts.RoleResident
	whoTreasurer = accounts.RoleTreasurer
	whoAdmin     = accounts.RoleAdmin
	whoSteward   = accounts.RoleSteward
)

// Query parameters: an empty value is the same as none.
func qInt(name string, lo, hi int64, desc string) schema {
	return schema{"name": name, "in": "query", "description": desc, "allowEmptyValue": true,
		"schema": schema{"type": "integer", "minimum": lo, "maximum": hi}}
}
func qEnum(name, desc string, values ...string) schema {
	return schema{"name": name, "in": "query", "description": desc, "allowEmptyValue": true, "schema": schema{"type": "string", "enum": values}}
}
func qStr(name, desc string, s schema) schema {
	return schema{"name": name, "in": "query", "description": desc, "allowEmptyValue": true, "schema": s}
}

// qPage is the keyset cursor queryPage reads, for a list of noun newest
// first: the next page is before= the last id of this one.
func qPage(noun string, maxLimit int) []schema {
	return []schema{qInt("before", 0, 1<<62, noun+" with ids below this; 0 or absent: from the newest"),
		qInt("limit", 1, int64(maxLimit), fmt.Sprintf("default %d", defaultPage))}
}

// list is {"<key>": [items]}: the handlers' list answers, never null.
func listOf(key string, items schema) schema {
	return object(schema{key: arrayOf(items)}, key)
}

var amountIn = ref("AmountInput")
var idIn = ref("Id")
var timeIn = schema{"type": "string", "format": "date-time", "examples": []string{"2027-03-01T00:00:00Z"}}
var durationIn = ref("Duration")

// paragraph and line are request texts (README, "Input rules").
var paragraph = schema{"type": "string"}
var line = schema{"type": "string", "pattern": `^[^\x00-\x1f\x7f-\x9f]*$`}

func apiOps() []apiOp {
	session := object(schema{"id": idIn, "name": str(""), "roles": arrayOf(str("")), "csrf_token": str("Send it back in X-CSRF-Token on every change made with the session cookie.")},
		"id", "name", "roles", "csrf_token")
	order := object(schema{
		"outcome": schema{"type": "integer", "minimum": 0, "maximum": 32767, "description": "The index of the outcome, from 0."},
		"side":    schema{"type": "string", "enum": []string{"buy", "sell"}},
		"shares":  amountIn, "amount": amountIn, "all": schema{"type": "boolean"},
		"limit_price": amountIn, "max_cost": amountIn, "min_proceeds": amountIn,
	}, "outcome", "side")
	fill := object(schema{"trade_id": str("market-seq"), "market": idIn, "outcome": schema{"type": "integer"}, "side": schema{"type": "string", "enum": []string{"buy", "sell"}},
		"shares": ref("Amount"), "cost": ref("Amount"), "proceeds": ref("Amount"), "prices": arrayOf(ref("Amount")), "seq": schema{"type": "integer"}},
		"trade_id", "market", "outcome", "side", "shares", "prices", "seq")
	quote := object(schema{"outcome": schema{"type": "integer"}, "side": schema{"type": "string", "enum": []string{"buy", "sell"}},
		"shares": ref("Amount"), "cost": ref("Amount"), "proceeds": ref("Amount"), "prices": nullable(arrayOf(ref("Amount"))), "seq": schema{"type": "integer"}},
		"outcome", "side", "shares", "cost", "proceeds", "prices", "seq")
	bid := object(schema{"organisation": idIn, "price": amountIn, "completion_at": timeIn, "milestone_dates": arrayOf(timeIn),
		"method_statement": paragraph}, "price", "completion_at")
	// Multipart forms: other parts are ignored, so they are allowed.
	file := openObject(object(schema{"file": schema{"type": "string", "contentMediaType": "application/octet-stream", "description": "at most 5 MiB"}}, "file"))
	binary := schema{"type": "string", "contentMediaType": "application/octet-stream"}
	fileHeaders := schema{"X-Content-SHA256": schema{"description": "The file's SHA-256, hex.", "schema": schema{"type": "string"}}}
	caseStatus := qEnum("status", "", "evidence", "commit", "reveal", "appealable", "final", "settled")
	health := object(schema{"status": str("")}, "status")

	return []apiOp{
		{method: "GET", path: "/healthz", tag: "health", summary: "Liveness", who: whoPublic, status: 200, resp: health},
		{method: "GET", path: "/readyz", tag: "health", summary: "Readiness: database reachable, schema current (503 {status,reason} when not); with several instances also node, nats and markets_owned (docs/cluster.md)", who: whoPublic, status: 200,
			resp: object(schema{"status": str(""), "node": str("this instance's name"), "nats": schema{"type": "boolean", "description": "the NATS connection is up"},
				"markets_owned": schema{"type": "integer", "description": "markets whose book runs here under a lease"}}, "status")},
		{method: "GET", path: "/metrics", tag: "health", summary: "Prometheus metrics", who: whoPublic, status: 200, respType: "text/plain", resp: schema{"type": "string"}},
		{method: "GET", path: "/api/v1/openapi.json", tag: "documents", summary: "This document", who: whoPublic, status: 200, resp: schema{"type": "object"}},
		{method: "GET", path: "/api/v1/asyncapi.json", tag: "documents", summary: "The websocket protocol (AsyncAPI 3.0)", who: whoPublic, status: 200, resp: schema{"type": "object"}},

		{method: "POST", path: "/api/v1/session", tag: "session", summary: "Browser sign-in with a name and password or an API token: sets the HttpOnly session cookie", who: whoPublic,
			body: object(schema{"name": line, "password": str(""), "token": str("")}), bodyRequired: true,
			example: map[string]string{"name": "alice", "password": "alice's long password"}, status: 201, resp: session},
		{method: "DELETE", path: "/api/v1/session", tag: "session", summary: "Sign out", who: whoPublic, status: 204},
		{method: "GET", path: "/api/v1/session", tag: "session", summary: "The signed-in session and its CSRF token", who: whoSignedIn, status: 200, resp: session},

		{method: "GET", path: "/api/v1/me", tag: "me", summary: "Your account and cash", who: whoSignedIn, status: 200, resp: of[accounts.Account]()},
		{method: "GET", path: "/api/v1/me/tokens", tag: "me", summary: "Your API tokens", who: whoSignedIn, status: 200, resp: listOf("tokens", of[accounts.Token]())},
		{method: "POST", path: "/api/v1/me/tokens", tag: "me", summary: "Issue an API token (shown only here)", who: whoSignedIn,
			body: object(schema{"label": line}), bodyRequired: true, example: map[string]string{"label": "laptop"}, status: 201,
			resp: object(schema{"id": idIn, "label": str(""), "token": str("")}, "id", "label", "token")},
		{method: "DELETE", path: "/api/v1/me/tokens/:id", tag: "me", summary: "Revoke one of your tokens", who: whoSignedIn, status: 204},
		{method: "GET", path: "/api/v1/me/export", tag: "me", summary: "Everything Levee holds about you, to keep and to check against the public ledger (docs/privacy.md)", who: whoSignedIn,
			status: 200, resp: of[residents.Export]()},
		{method: "POST", path: "/api/v1/me/exit", tag: "me", summary: "Leave the city with what is yours, or preview it (docs/privacy.md)", who: whoSignedIn,
			body: object(schema{"positions": schema{"type": "string", "enum": []string{"sell", "keep"}}, "preview": schema{"type": "boolean"}}, "positions"), bodyRequired: true,
			example: map[string]any{"positions": "sell", "preview": true}, status: 200, resp: of[residents.ExitPlan]()},
		{method: "GET", path: "/api/v1/exits", tag: "ledger", summary: "What the treasury owes people who left, by pseudonym", who: whoTreasurer,
			status: 200, resp: listOf("exits", of[ledger.Owed]())},
		{method: "POST", path: "/api/v1/exits/:pseudonym/payout", tag: "ledger", summary: "Record paying out what was owed to a person who left", who: whoTreasurer,
			body: object(schema{"reference": line}, "reference"), bodyRequired: true, example: map[string]string{"reference": "bank transfer 2026-118"},
			status: 201, resp: of[residents.Payout]()},
		{method: "GET", path: "/api/v1/me/positions", tag: "me", summary: "Shares, cost basis, value and P&L per position", who: whoSignedIn, status: 200, resp: listOf("positions", of[engine.Position]())},
		{method: "GET", path: "/api/v1/me/history", tag: "me", summary: "Your cash statement and your organisations'", who: whoSignedIn,
			query: []schema{qInt("limit", 1, 1000, "movements per account (default 100)")}, status: 200, resp: object(schema{"statements": nullable(arrayOf(of[statement]()))}, "statements")},
		{method: "GET", path: "/api/v1/me/cases", tag: "juries", summary: "Your cases and what to do next", who: whoSignedIn, status: 200, resp: listOf("cases", of[settlement.CaseSummary]())},
		{method: "GET", path: "/api/v1/me/notifications", tag: "juries", summary: "Your notification outbox", who: whoSignedIn, status: 200, resp: listOf("notifications", of[outbox.Notification]())},
		{method: "GET", path: "/api/v1/me/jury-duty", tag: "juries", summary: "Whether you opted out of jury duty", who: whoSignedIn, status: 200, resp: object(schema{"opt_out": schema{"type": "boolean"}}, "opt_out")},
		{method: "PUT", path: "/api/v1/me/jury-duty", tag: "juries", summary: "Opt out of (or back into) jury duty", who: whoSignedIn,
			body: object(schema{"opt_out": schema{"type": "boolean"}}, "opt_out"), bodyRequired: true, example: map[string]bool{"opt_out": true},
			status: 200, resp: object(schema{"opt_out": schema{"type": "boolean"}}, "opt_out")},

		{method: "GET", path: "/api/v1/me/email", tag: "me", summary: "Your email address, whether it is confirmed, and what you are mailed about", who: whoSignedIn, status: 200, resp: of[emailView]()},
		{method: "PUT", path: "/api/v1/me/email", tag: "me", summary: "Set your email address: a confirmation link is mailed to it", who: whoSignedIn,
			body: object(schema{"address": line}, "address"), bodyRequired: true, example: map[string]string{"address": "alice@example.org"}, status: 202, resp: of[emailView]()},
		{method: "DELETE", path: "/api/v1/me/email", tag: "me", summary: "Remove your address: no more mail", who: whoSignedIn, status: 204},
		{method: "PUT", path: "/api/v1/me/email/categories", tag: "me", summary: "Choose what you are mailed about", who: whoSignedIn,
			body: object(schema{"categories": arrayOf(schema{"type": "string", "enum": accounts.MailCategories})}, "categories"), bodyRequired: true,
			example: map[string][]string{"categories": {accounts.MailSeats, accounts.MailPayments}}, status: 200, resp: of[emailView]()},
		{method: "POST", path: "/api/v1/email/confirm", tag: "me", summary: "Confirm an address with the token from its link", who: whoPublic,
			body: object(schema{"token": line}, "token"), bodyRequired: true, example: map[string]string{"token": "the token from the link"}, status: 200,
			resp: object(schema{"address": str(""), "confirmed": schema{"type": "boolean"}}, "address", "confirmed")},

		{method: "PUT", path: "/api/v1/me/password", tag: "me", summary: "Change your password (give the current one); every other session of yours is signed out, throttled per client address", who: whoSignedIn,
			body: object(schema{"current": str(""), "new": schema{"type": "string", "minLength": 10, "maxLength": 256}}, "current", "new"), bodyRequired: true,
			example: map[string]string{"current": "my old long password", "new": "my new longer password"}, status: 204},
		{method: "POST", path: "/api/v1/me/sign-out-everywhere", tag: "me", summary: "End every browser session of yours, this one included; with tokens, revoke every API token too", who: whoSignedIn,
			body: object(schema{"tokens": schema{"type": "boolean"}}), example: map[string]bool{"tokens": false}, status: 200, resp: of[accounts.SignedOut]()},
		{method: "POST", path: "/api/v1/password/reset", tag: "me", summary: "Choose a new password with the token of an admin's one-time reset link (throttled per client address)", who: whoPublic,
			body: object(schema{"token": line, "password": schema{"type": "string", "minLength": 10, "maxLength": 256}}, "token", "password"), bodyRequired: true,
			example: map[string]string{"token": "the token from the link", "password": "my new long password"}, status: 200,
			resp: object(schema{"name": str("")}, "name")},

		{method: "GET", path: "/api/v1/districts", tag: "city", summary: "The city's districts", who: whoPublic, status: 200, resp: object(schema{"districts": nullable(arrayOf(of[accounts.District]()))}, "districts")},
		{method: "GET", path: "/api/v1/ledger/entries", tag: "ledger", summary: "The public ledger export (docs/ledger.md)", who: whoPublic,
			query: []schema{qInt("after", 0, 1<<62, "entries after this seq"), qInt("limit", 1, 1000, "default 100")}, status: 200, resp: of[ledger.Page]()},
		{method: "GET", path: "/api/v1/ledger/verify", tag: "ledger", summary: "The hash chain and trial balance, verified (cached, with its age)", who: whoPublic, status: 200, resp: of[ledger.Verified]()},

		{method: "POST", path: "/api/v1/admin/districts", tag: "admin", summary: "Add a district", who: whoAdmin,
			body: object(schema{"name": line}, "name"), bodyRequired: true, example: map[string]string{"name": "north"}, status: 201, resp: of[accounts.District]()},
		{method: "POST", path: "/api/v1/admin/accounts", tag: "admin", summary: "Open an account; credit moves from the treasury's issuance account", who: whoAdmin,
			body: object(schema{"name": line, "kind": schema{"type": "string", "enum": []string{"person", "organisation"}}, "roles": arrayOf(schema{"type": "string"}),
				"district": line, "credit": amountIn, "password": str("")}, "name"), bodyRequired: true,
			example: map[string]any{"name": "alice", "roles": []string{"resident"}, "district": "north", "credit": "1000", "password": "alice's long password"}, status: 201,
			resp: object(schema{"id": idIn, "name": str(""), "kind": str(""), "roles": nullable(arrayOf(str(""))), "district": str(""), "cash": ref("Amount"), "token": str("")},
				"id", "name", "kind", "roles", "district", "cash", "token")},
		{method: "GET", path: "/api/v1/admin/accounts", tag: "admin", summary: "Every account, by id", who: whoAdmin, status: 200,
			resp: object(schema{"accounts": nullable(arrayOf(of[accounts.Listed]()))}, "accounts")},
		{method: "PATCH", path: "/api/v1/admin/accounts/:id", tag: "admin", summary: "Change an account's roles or district, or disable it (fields left out stay)", who: whoAdmin,
			body: object(schema{"roles": nullable(arrayOf(schema{"type": "string"})), "district": nullable(line), "disabled": nullable(schema{"type": "boolean"})}), bodyRequired: true,
			example: map[string]any{"roles": []string{"resident", "steward"}}, status: 200, resp: of[accounts.Listed]()},
		{method: "POST", path: "/api/v1/admin/accounts/:id/password-reset", tag: "admin", summary: "Reset a person's password: the old one stops working, their sessions end, and they get a one-time link (mailed to a confirmed address, else returned once for the admin to hand over)", who: whoAdmin,
			status: 201, resp: of[resetStarted]()},
		{method: "POST", path: "/api/v1/admin/organisations/:id/members", tag: "admin", summary: "Let a person act for a contractor organisation", who: whoAdmin,
			body: object(schema{"account": idIn}, "account"), bodyRequired: true, example: map[string]string{"account": "2"}, status: 204},
		{method: "GET", path: "/api/v1/admin/audit", tag: "admin", summary: "The audit log of admin actions", who: whoAdmin,
			query: []schema{qInt("limit", 1, 1000, "default 100")}, status: 200, resp: object(schema{"entries": nullable(arrayOf(of[accounts.AuditEntry]()))}, "entries")},
		{method: "POST", path: "/api/v1/admin/treasury/issue", tag: "admin", summary: "Create money in the treasury (audited)", who: whoAdmin,
			body: object(schema{"amount": amountIn, "memo": paragraph}, "amount"), bodyRequired: true, example: map[string]string{"amount": "100000", "memo": "budget"}, status: 201, resp: ref("LedgerEntry")},
		{method: "PUT", path: "/api/v1/admin/charter", tag: "crisis", summary: "Found the node's charter (once)", who: whoAdmin,
			body: reflectedRequest(of[crisis.CharterChange]()), bodyRequired: true, example: map[string]any{"stewards": []string{"sam"}, "quorum": 2}, status: 200, resp: of[crisis.Charter]()},

		{method: "GET", path: "/api/v1/markets", tag: "markets", summary: "Markets, newest first", who: whoPublic,
			query:  []schema{qEnum("status", "", "open", "closed", "resolved", "void"), qStr("district", "a district's name", line), qInt("before", 0, 1<<62, "ids below this"), qInt("limit", 1, 200, "default 50")},
			status: 200, resp: listOf("markets", of[marketView]())},
		{method: "POST", path: "/api/v1/markets", tag: "markets", summary: "Open an LMSR market; its subsidy moves from the treasury into its collateral", who: whoTreasurer,
			body: object(schema{"question": paragraph, "outcomes": arrayOf(line), "liquidity": amountIn, "initial_probabilities": arrayOf(amountIn),
				"closes_at": timeIn, "district": line}, "question", "outcomes", "liquidity", "closes_at"), bodyRequired: true,
			example: map[string]any{"question": "Will the north seawall be finished by March?", "outcomes": []string{"yes", "no"}, "liquidity": "100", "closes_at": "2027-03-01T00:00:00Z"},
			status:  201, resp: of[marketView]()},
		{method: "GET", path: "/api/v1/markets/:id", tag: "markets", summary: "A market", who: whoPublic, status: 200, resp: of[marketView]()},
		{method: "GET", path: "/api/v1/markets/:id/quote", tag: "markets", summary: "Exactly what an order would do now, without doing it", who: whoPublic,
			query: []schema{qInt("outcome", 0, 32767, "the outcome's index"), qEnum("side", "", "buy", "sell"), qStr("shares", "", amountIn), qStr("amount", "", amountIn),
				qStr("limit_price", "", amountIn), qEnum("all", "", "true", "false"), qStr("max_cost", "", amountIn), qStr("min_proceeds", "", amountIn)},
			status: 200, resp: quote},
		{method: "POST", path: "/api/v1/markets/:id/orders", tag: "markets", summary: "Trade; an Idempotency-Key makes retries safe", who: whoResident,
			body: order, bodyRequired: true, example: map[string]any{"outcome": 0, "side": "buy", "shares": "5"}, status: 201, resp: fill},
		{method: "GET", path: "/api/v1/markets/:id/trades", tag: "markets", summary: "Recent trades", who: whoPublic,
			query: []schema{qInt("before", 0, 1<<62, "trades below this seq"), qInt("limit", 1, 500, "default 50")}, status: 200, resp: object(schema{"trades": nullable(arrayOf(of[market.Trade]()))}, "trades")},
		{method: "GET", path: "/api/v1/markets/:id/history", tag: "markets", summary: "A downsampled price series", who: whoPublic,
			query:  []schema{qStr("from", "", timeIn), qStr("to", "", timeIn), qInt("points", 2, 2000, "default 200")},
			status: 200, resp: object(schema{"market": idIn, "from": ref("Time"), "to": ref("Time"), "points": nullable(arrayOf(of[engine.Point]()))}, "market", "from", "to", "points")},
		{method: "POST", path: "/api/v1/markets/:id/close", tag: "markets", summary: "End trading", who: whoTreasurer, status: 200, resp: of[marketView]()},
		{method: "POST", path: "/api/v1/markets/:id/void", tag: "markets", summary: "Unwind the market as if it never happened (docs/lmsr.md, Voids)", who: whoTreasurer, status: 200, resp: of[marketView]()},
		{method: "POST", path: "/api/v1/markets/:id/proposal", tag: "juries", summary: "Propose a closed market's outcome (or void)", who: whoTreasurer,
			body: object(schema{"verdict": line, "evidence": paragraph}, "verdict"), bodyRequired: true, example: map[string]string{"verdict": "yes", "evidence": "the inspection report"}, status: 201, resp: of[settlement.Proposal]()},
		{method: "GET", path: "/api/v1/markets/:id/proposal", tag: "juries", summary: "A market's proposed outcome", who: whoPublic, status: 200, resp: of[settlement.Proposal]()},
		{method: "POST", path: "/api/v1/markets/:id/dispute", tag: "juries", summary: "Dispute a proposal with a bond: opens a case", who: whoSignedIn,
			body: object(schema{"reason": paragraph}, "reason"), bodyRequired: true, example: map[string]string{"reason": "the wall is not finished"}, status: 201, resp: of[settlement.Case]()},

		{method: "GET", path: "/api/v1/cases", tag: "juries", summary: "Cases, newest first, a page at a time (the next page: before= the last id, the same status)", who: whoPublic,
			query: append([]schema{caseStatus}, qPage("cases", settlement.MaxCasePage)...), status: 200, resp: listOf("cases", of[settlement.CaseSummary]())},
		{method: "GET", path: "/api/v1/cases/:id", tag: "juries", summary: "A case, its rounds and (after the tally) votes", who: whoPublic, status: 200, resp: of[settlement.CaseView]()},
		{method: "GET", path: "/api/v1/cases/:id/draw", tag: "juries", summary: "The published jury draw, to recompute", who: whoPublic, status: 200, resp: of[settlement.DrawReport]()},
		{method: "POST", path: "/api/v1/cases/:id/evidence", tag: "juries", summary: "Submit evidence (text, and a file when sent as multipart)", who: whoSignedIn,
			body: object(schema{"body": paragraph}, "body"), bodyRequired: true, example: map[string]string{"body": "photos of the site"},
			multipart: openObject(object(schema{"body": paragraph, "file": schema{"type": "string", "contentMediaType": "application/octet-stream"}})),
			status:    201, resp: of[settlement.CaseView]()},
		{method: "GET", path: "/api/v1/cases/:id/evidence/:eid", tag: "juries", summary: "An evidence file", who: whoPublic, status: 200, respType: "application/octet-stream", resp: binary, respHeaders: fileHeaders},
		{method: "POST", path: "/api/v1/cases/:id/commit", tag: "juries", summary: "Commit a ballot (seated jurors)", who: whoSignedIn,
			body: object(schema{"commitment": line}, "commitment"), bodyRequired: true, example: map[string]string{"commitment": strings.Repeat("ab", 32)}, status: 200, resp: of[settlement.CaseView]()},
		{method: "POST", path: "/api/v1/cases/:id/reveal", tag: "juries", summary: "Reveal a ballot", who: whoSignedIn,
			body: object(schema{"verdict": line, "salt": line}, "verdict", "salt"), bodyRequired: true, example: map[string]string{"verdict": "yes", "salt": "a long random salt"}, status: 200, resp: of[settlement.CaseView]()},
		{method: "POST", path: "/api/v1/cases/:id/appeal", tag: "juries", summary: "Appeal to 2k+1 jurors (parties)", who: whoSignedIn,
			body: object(schema{"reason": paragraph}, "reason"), bodyRequired: true, example: map[string]string{"reason": "new evidence"}, status: 200, resp: of[settlement.CaseView]()},
		{method: "GET", path: "/api/v1/jurors/:pseudonym/record", tag: "juries", summary: "A juror's record, no-shows included", who: whoPublic, status: 200, resp: of[settlement.JurorRecord]()},

		{method: "GET", path: "/api/v1/charter", tag: "crisis", summary: "The node's charter (docs/crisis.md)", who: whoPublic, status: 200, resp: of[crisis.Charter]()},
		{method: "GET", path: "/api/v1/quorum/proposals", tag: "crisis", summary: "Decisions for the neighbours' quorum, newest first, a page at a time (the next page: before= the last id, the same status)", who: whoPublic,
			query: append([]schema{qEnum("status", "", "open", "executed", "rejected", "expired")}, qPage("proposals", crisis.MaxProposalPage)...), status: 200, resp: object(schema{"proposals": nullable(arrayOf(of[crisis.Proposal]()))}, "proposals")},
		{method: "POST", path: "/api/v1/quorum/proposals", tag: "crisis", summary: "Propose a decision (the role depends on the kind)", who: whoSignedIn,
			body:         object(schema{"kind": schema{"type": "string", "enum": []string{"reallocation", "charter", "renew", "end", "declare", "issue"}}, "payload": schema{"type": "object"}, "reason": paragraph}, "kind"),
			bodyRequired: true, example: map[string]any{"kind": "end", "payload": map[string]string{"emergency": "1"}, "reason": "the storm has passed"}, status: 201, resp: of[crisis.Proposal]()},
		{method: "GET", path: "/api/v1/quorum/proposals/:id", tag: "crisis", summary: "A quorum decision", who: whoPublic, status: 200, resp: of[crisis.Proposal]()},
		{method: "GET", path: "/api/v1/quorum/incoming", tag: "federation", summary: "Neighbour nodes' requests for this city's vote, and their emergency notices", who: whoPublic,
			status: 200, resp: of[crisis.Inbox]()},
		{method: "POST", path: "/api/v1/quorum/incoming/:id/votes", tag: "federation", summary: "Answer a neighbour's request (the charter's voter_roles); this node signs and delivers the vote", who: whoSignedIn,
			body: object(schema{"approve": schema{"type": "boolean"}}, "approve"), bodyRequired: true, example: map[string]bool{"approve": true}, status: 200, resp: of[crisis.Incoming]()},
		{method: "POST", path: "/api/v1/quorum/end-requests", tag: "federation", summary: "Propose from this node that a neighbour's emergency end (the charter's voter_roles); signed and delivered", who: whoSignedIn,
			body: object(schema{"neighbour": line, "emergency": idIn, "reason": paragraph}, "neighbour", "emergency", "reason"), bodyRequired: true,
			example: map[string]string{"neighbour": "Leyte", "emergency": "1", "reason": "the water is down"}, status: 202, resp: of[endRequestReceipt]()},
		{method: "GET", path: "/api/v1/neighbour-petitions", tag: "federation", summary: "Residents' petitions to replace a neighbour suspended for its silence", who: whoPublic,
			status: 200, resp: object(schema{"petitions": nullable(arrayOf(of[crisis.NeighbourPetition]()))}, "petitions")},
		{method: "POST", path: "/api/v1/neighbours/:id/petitions", tag: "federation", summary: "Petition to replace a suspended neighbour with another node (you sign first)", who: whoResident,
			body: object(schema{"name": line, "url": line, "public_key": line, "reason": paragraph}, "name", "url", "public_key", "reason"), bodyRequired: true,
			example: map[string]string{"name": "Ormoc", "url": "https://ormoc.example.org", "public_key": strings.Repeat("ab", 32), "reason": "Tacloban has been silent since the storm"},
			status:  201, resp: of[crisis.NeighbourPetition]()},
		{method: "POST", path: "/api/v1/neighbour-petitions/:id/signatures", tag: "federation", summary: "Sign a petition to replace a neighbour; at the charter's petition_threshold it is carried", who: whoResident,
			status: 200, resp: of[crisis.NeighbourPetition]()},
		{method: "GET", path: "/api/v1/node", tag: "federation", summary: "This node: name, URL, public key and fingerprint, charter hash, ledger head", who: whoPublic,
			status: 200, resp: of[federation.Identity]()},
		{method: "POST", path: "/api/v1/federation/statements", tag: "federation", summary: "Deliver a signed statement (neighbour nodes; the signature is the credential)", who: whoPublic,
			body: reflectedRequest(of[federation.Wire]()), bodyRequired: true,
			example: map[string]any{"hash": strings.Repeat("ab", 32), "signer": strings.Repeat("cd", 32), "kind": "vote", "at": 1796000000000000, "payload": `{"approve":true,"proposal":"ab"}`, "signature": strings.Repeat("ef", 64)},
			status:  200, resp: of[statementReceipt]()},
		{method: "GET", path: "/api/v1/federation/statements", tag: "federation", summary: "Every statement signed or received here (docs/federation.md)", who: whoPublic,
			query:  []schema{qInt("after", 0, 1<<62, "statements stored after this seq"), qInt("limit", 1, 1000, "default 100"), qEnum("kind", "", "proposal", "vote", "notice", "ledger_head", "cosign", "alarm")},
			status: 200, resp: of[federation.Page]()},
		{method: "GET", path: "/api/v1/federation/refusals", tag: "federation", summary: "Statements refused on arrival, and why", who: whoPublic,
			status: 200, resp: object(schema{"refusals": nullable(arrayOf(of[federation.Refusal]()))}, "refusals")},
		{method: "GET", path: "/api/v1/federation/alarms", tag: "federation", summary: "Ledger alarms raised here or by a neighbour", who: whoPublic,
			status: 200, resp: object(schema{"alarms": nullable(arrayOf(of[federation.AlarmView]()))}, "alarms")},
		{method: "GET", path: "/api/v1/ledger/witnesses", tag: "federation", summary: "Neighbours' cosignatures of this node's ledger heads", who: whoPublic,
			status: 200, resp: object(schema{"witnesses": nullable(arrayOf(of[federation.Witnessed]()))}, "witnesses")},
		{method: "GET", path: "/api/v1/audit", tag: "federation", summary: "The public audit log of officials' actions, without secrets", who: whoPublic,
			query: []schema{qInt("limit", 1, 1000, "default 100")}, status: 200, resp: object(schema{"entries": nullable(arrayOf(of[accounts.AuditEntry]()))}, "entries")},
		{method: "GET", path: "/api/v1/emergency", tag: "crisis", summary: "The active emergency, or null", who: whoPublic, status: 200, resp: object(schema{"emergency": of[*crisis.Emergency]()}, "emergency")},
		{method: "GET", path: "/api/v1/emergencies", tag: "crisis", summary: "Emergencies, newest first, a page at a time (the next page: before= the last id)", who: whoPublic,
			query: qPage("emergencies", crisis.MaxEmergencyPage), status: 200, resp: object(schema{"emergencies": nullable(arrayOf(of[crisis.Emergency]()))}, "emergencies")},
		{method: "POST", path: "/api/v1/emergencies", tag: "crisis", summary: "Declare an emergency (a charter's steward)", who: whoSteward,
			body: reflectedRequest(of[crisis.Declaration]()), bodyRequired: true, example: map[string]any{"reason": "hurricane", "districts": []string{"north"}, "duration": "72h", "cap": "5000"},
			status: 201, resp: of[crisis.Emergency]()},
		{method: "GET", path: "/api/v1/emergencies/:id", tag: "crisis", summary: "An emergency and its acts", who: whoPublic, status: 200, resp: of[crisis.Emergency]()},
		{method: "POST", path: "/api/v1/emergencies/:id/acts", tag: "crisis", summary: "Act within scope and cap (the declaring steward)", who: whoSteward,
			body: reflectedRequest(of[crisis.ActRequest]()), bodyRequired: true, example: map[string]any{"kind": "reallocate", "reason": "pumps", "from_line": "1", "to_line": "2", "amount": "100"},
			status: 201, resp: of[crisis.Act]()},
		{method: "POST", path: "/api/v1/emergencies/:id/petition", tag: "crisis", summary: "Petition to end an emergency", who: whoResident, status: 200, resp: of[crisis.Emergency]()},
		{method: "GET", path: "/api/v1/stewards/:id/record", tag: "crisis", summary: "A steward's public record", who: whoPublic, status: 200, resp: of[crisis.StewardRecord]()},

		{method: "GET", path: "/api/v1/qf/rounds", tag: "budgets", summary: "Quadratic funding rounds, newest first, a page at a time (the next page: before= the last id)", who: whoPublic,
			query: qPage("rounds", budgets.MaxRoundPage), status: 200, resp: object(schema{"rounds": nullable(arrayOf(of[budgets.Round]()))}, "rounds")},
		{method: "POST", path: "/api/v1/qf/rounds", tag: "budgets", summary: "Open a funding round", who: whoTreasurer,
			body:         object(schema{"title": line, "pool": amountIn, "cap_share": amountIn, "eligibility_rules": paragraph, "opens_at": timeIn, "closes_at": timeIn}, "title", "pool", "closes_at"),
			bodyRequired: true, example: map[string]string{"title": "Spring 2027", "pool": "10000", "closes_at": "2027-03-01T00:00:00Z"}, status: 201, resp: of[budgets.Round]()},
		{method: "GET", path: "/api/v1/qf/rounds/:id", tag: "budgets", summary: "A round with its projects and matches", who: whoPublic, status: 200, resp: of[budgets.RoundDetail]()},
		{method: "POST", path: "/api/v1/qf/rounds/:id/projects", tag: "budgets", summary: "Propose a project", who: whoResident,
			body: object(schema{"title": line, "description": paragraph, "district": line, "estimated_cost": amountIn}, "title"), bodyRequired: true,
			example: map[string]string{"title": "Benches", "description": "six benches", "district": "north", "estimated_cost": "1200"}, status: 201, resp: of[budgets.Project]()},
		{method: "POST", path: "/api/v1/qf/projects/:id/eligibility", tag: "budgets", summary: "Rule on a project's eligibility", who: whoTreasurer,
			body: object(schema{"eligible": schema{"type": "boolean"}, "reason": paragraph}, "eligible"), bodyRequired: true, example: map[string]any{"eligible": true}, status: 200, resp: of[budgets.Project]()},
		{method: "POST", path: "/api/v1/qf/projects/:id/contributions", tag: "budgets", summary: "Contribute to a project", who: whoResident,
			body: object(schema{"amount": amountIn}, "amount"), bodyRequired: true, example: map[string]string{"amount": "10"}, status: 201, resp: of[budgets.ContributionRecord]()},
		{method: "POST", path: "/api/v1/qf/rounds/:id/finalize", tag: "budgets", summary: "Finalize a round: exact matching, budget lines", who: whoTreasurer, status: 200, resp: of[budgets.RoundDetail]()},
		{method: "GET", path: "/api/v1/qf/rounds/:id/explain", tag: "budgets", summary: "How your contributions are matched", who: whoSignedIn, status: 200, resp: of[budgets.ExplainView]()},
		{method: "GET", path: "/api/v1/budget-lines", tag: "budgets", summary: "Budget lines", who: whoPublic, status: 200, resp: object(schema{"budget_lines": nullable(arrayOf(of[budgets.BudgetLine]()))}, "budget_lines")},
		{method: "GET", path: "/api/v1/census", tag: "census", summary: "The public census", who: whoPublic, status: 200, resp: of[census.Census]()},
		{method: "GET", path: "/api/v1/census.csv", tag: "census", summary: "The census as rows of figure, key, value, source", who: whoPublic, status: 200, respType: "text/csv", resp: schema{"type": "string"}},

		{method: "GET", path: "/api/v1/tenders", tag: "contracting", summary: "Tenders, newest first, a page at a time (the next page: before= the last id)", who: whoPublic,
			query: qPage("tenders", contracting.MaxTenderPage), status: 200, resp: object(schema{"tenders": nullable(arrayOf(of[contracting.Tender]()))}, "tenders")},
		{method: "POST", path: "/api/v1/tenders", tag: "contracting", summary: "Open a tender with its decision market", who: whoTreasurer,
			body: object(schema{"budget_line": idIn, "title": line, "scope": paragraph, "districts": arrayOf(line), "budget_cap": amountIn, "opens_at": timeIn, "closes_at": timeIn,
				"decision_at": timeIn, "min_confidence": amountIn, "twap_window": durationIn, "dispute_window": durationIn, "liquidity": amountIn, "acceptance_criteria": paragraph,
				"milestones": arrayOf(object(schema{"title": line, "share": amountIn}, "title", "share"))}, "budget_line", "title"),
			bodyRequired: true, example: map[string]any{"budget_line": "1", "title": "North seawall", "scope": "rebuild 200 m", "budget_cap": "5000", "closes_at": "2027-03-01T00:00:00Z",
				"decision_at": "2027-03-08T00:00:00Z", "milestones": []map[string]string{{"title": "done", "share": "1"}}},
			status: 201, resp: of[contracting.TenderView]()},
		{method: "GET", path: "/api/v1/tenders/:id", tag: "contracting", summary: "A tender (bids as the caller may see them)", who: whoPublic, status: 200, resp: of[contracting.TenderView]()},
		{method: "PATCH", path: "/api/v1/tenders/:id", tag: "contracting", summary: "Edit a tender (every edit is published with its reason)", who: whoTreasurer,
			body: object(schema{"title": nullable(line), "scope": nullable(paragraph), "acceptance_criteria": nullable(paragraph), "budget_cap": nullable(amountIn),
				"min_confidence": nullable(amountIn), "reason": paragraph}, "reason"),
			bodyRequired: true, example: map[string]string{"budget_cap": "6000", "reason": "steel prices"}, status: 200, resp: of[contracting.TenderView]()},
		{method: "GET", path: "/api/v1/tenders/:id/bids", tag: "contracting", summary: "Bids, sealed until the window closes (your own only)", who: whoPublic, status: 200, resp: listOf("bids", of[bidWithRecord]())},
		{method: "POST", path: "/api/v1/tenders/:id/bids", tag: "contracting", summary: "Bid for an organisation you act for", who: whoSignedIn,
			body: bid, bodyRequired: true, example: map[string]any{"organisation": "3", "price": "4500", "completion_at": "2027-06-01T00:00:00Z"}, status: 201, resp: of[contracting.Bid]()},
		{method: "POST", path: "/api/v1/tenders/:id/close-bids", tag: "contracting", summary: "Close the bid window", who: whoTreasurer, status: 200, resp: of[contracting.TenderView]()},
		{method: "POST", path: "/api/v1/tenders/:id/award", tag: "contracting", summary: "Award by the decision markets", who: whoTreasurer, status: 200, resp: of[contracting.TenderView]()},
		{method: "GET", path: "/api/v1/bids/:id", tag: "contracting", summary: "A bid (sealed: only its bidder until close)", who: whoPublic, status: 200, resp: of[contracting.Bid]()},
		{method: "PUT", path: "/api/v1/bids/:id", tag: "contracting", summary: "Revise your bid", who: whoSignedIn,
			body: bid, bodyRequired: true, example: map[string]any{"price": "4400", "completion_at": "2027-06-01T00:00:00Z"}, status: 200, resp: of[contracting.Bid]()},
		{method: "DELETE", path: "/api/v1/bids/:id", tag: "contracting", summary: "Withdraw your bid", who: whoSignedIn, status: 200, resp: of[contracting.Bid]()},
		{method: "GET", path: "/api/v1/contracts/:id", tag: "contracting", summary: "A contract, its escrow and milestones", who: whoPublic, status: 200, resp: of[contracting.Contract]()},
		{method: "POST", path: "/api/v1/contracts/:id/milestones/:n/claim", tag: "contracting", summary: "Claim a milestone done", who: whoSignedIn,
			body: object(schema{"evidence": paragraph}), bodyRequired: true, example: map[string]string{"evidence": "see the photos"}, status: 200, resp: of[contracting.Contract]()},
		{method: "POST", path: "/api/v1/contracts/:id/milestones/:n/dispute", tag: "juries", summary: "Dispute a milestone with a bond: opens a case", who: whoSignedIn,
			body: object(schema{"reason": paragraph}, "reason"), bodyRequired: true, example: map[string]string{"reason": "not done"}, status: 201, resp: of[settlement.Case]()},
		{method: "POST", path: "/api/v1/contracts/:id/milestones/:n/evidence", tag: "contracting", summary: "Attach a file to a milestone", who: whoSignedIn,
			multipart: file, status: 201, resp: of[contracting.EvidenceFile]()},
		{method: "GET", path: "/api/v1/contracts/:id/milestones/:n/evidence", tag: "contracting", summary: "A milestone's files", who: whoPublic, status: 200, resp: object(schema{"files": nullable(arrayOf(of[contracting.EvidenceFile]()))}, "files")},
		{method: "GET", path: "/api/v1/evidence/:id", tag: "contracting", summary: "A milestone file", who: whoPublic, status: 200, respType: "application/octet-stream", resp: binary, respHeaders: fileHeaders},
		{method: "POST", path: "/api/v1/bids/:id/attachments", tag: "contracting", summary: "Attach a file to your bid", who: whoSignedIn, multipart: file, status: 201, resp: of[contracting.Attachment]()},
		{method: "GET", path: "/api/v1/bids/:id/attachments", tag: "contracting", summary: "A bid's files (sealed like the bid)", who: whoPublic, status: 200, resp: object(schema{"files": nullable(arrayOf(of[contracting.Attachment]()))}, "files")},
		{method: "GET", path: "/api/v1/bid-attachments/:id", tag: "contracting", summary: "A bid's file (sealed like the bid)", who: whoPublic, status: 200, respType: "application/octet-stream", resp: binary, respHeaders: fileHeaders},
		{method: "GET", path: "/api/v1/ocds/releases/:id", tag: "contracting", summary: "A tender as an OCDS 1.1 release package", who: whoPublic, status: 200, resp: of[contracting.ReleasePackage]()},
		{method: "GET", path: "/api/v1/ocds/records/:id", tag: "contracting", summary: "A tender as an OCDS 1.1 record package", who: whoPublic, status: 200, resp: of[contracting.RecordPackage]()},
		{method: "GET", path: "/api/v1/contractors/:id/track-record", tag: "contracting", summary: "A contractor's public track record", who: whoPublic, status: 200, resp: of[contracting.TrackRecord]()},
	}
}

// openObject lets s have properties it does not list.
func openObject(s schema) schema {
	s["additionalProperties"] = true
	return s
}

// reflectedRequest turns a reflected response schema into one for a request
// decoded into the same type: amounts as AmountInput, nothing required (the
// service says what is missing, naming the field).
func reflectedRequest(s schema) schema {
	if r, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(r, "#/components/schemas/")
		s = current.components[name].(schema)
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case schema:
			if v["$ref"] == "#/components/schemas/Amount" {
				return amountIn
			}
			if r, ok := v["$ref"].(string); ok && strings.HasPrefix(r, "#/components/schemas/") && r != "#/components/schemas/Time" {
				return walk(current.components[strings.TrimPrefix(r, "#/components/schemas/")])
			}
			out := schema{}
			for k, x := range v {
				if k == "required" {
					continue
				}
				out[k] = walk(x)
			}
			return out
		case []any:
			out := make([]any, len(v))
			for i, x := range v {
				out[i] = walk(x)
			}
			return out
		}
		return v
	}
	return walk(s).(schema)
}

var pathParam = regexp.MustCompile(`:([a-z]+)`)

// openAPIPath turns echo's /markets/:id into OpenAPI's /markets/{id}.
func openAPIPath(p string) string { return pathParam.ReplaceAllString(p, "{$1}") }

// DocumentedRoutes lists every route the OpenAPI document describes, in
// echo's form, for the test that compares them with the registered routes.
func DocumentedRoutes() []Route {
	var rs []Route
	for _, o := range apiOps() {
		rs = append(rs, Route{Method: o.method, Path: o.path})
	}
	return rs
}

// errorStatuses are the error answers an operation can give: every route can
// refuse text (400), a bad bearer token (401), a body over the limit (413),
// floods (429) and overload (503); the rest depend on what the route takes.
func errorStatuses(o apiOp) []int {
	st := []int{400, 401, 413, 429, 503} // the body limit holds on every route, GETs included
	unsafe := o.method != http.MethodGet
	if o.who != whoPublic || unsafe {
		st = append(st, 403)
	}
	if strings.Contains(o.path, ":") || unsafe {
		st = append(st, 404)
	}
	if unsafe || o.path == "/api/v1/markets/:id/quote" { // a quote on a closed market: 409
		st = append(st, 409)
	}
	sort.Ints(st)
	return st
}

var errorDescriptions = map[int]string{
	400: "invalid: the message names the field (JSON path, query parameter or header)",
	401: "unauthorized: sign in, or the bearer token is not valid",
	403: "forbidden: your role may not do this, or the session's CSRF token is missing or wrong",
	404: "not_found: nothing by that id (an id not written as a plain positive number names nothing)",
	409: "conflict: the state does not allow it now, or money would pass its bound",
	413: "too_large: the body is over its limit (1 MiB; files 5 MiB)",
	429: "rate_limited: too many requests; see Retry-After",
	503: "unavailable: overloaded or the database is unreachable; retry after Retry-After",
}

func buildOpenAPI() schema {
	current = &reflector{components: schema{}, names: map[reflect.Type]string{}}
	ops := apiOps()
	paths := schema{}
	for _, o := range ops {
		p := openAPIPath(o.path)
		item, _ := paths[p].(schema)
		if item == nil {
			item = schema{}
			paths[p] = item
		}
		item[strings.ToLower(o.method)] = operation(o)
	}
	components := schema{}
	for k, v := range baseSchemas() {
		components[k] = v
	}
	for k, v := range current.components {
		components[k] = v
	}
	responses := schema{}
	for st, desc := range errorDescriptions {
		responses[levee.FormatID(int64(st))] = schema{"description": desc, "content": schema{"application/json": schema{"schema": ref("Error"),
			"example": schema{"error": schema{"code": codeOfStatus(st), "message": http.StatusText(st)}}}}}
	}
	return schema{
		"openapi": "3.1.0",
		"info": schema{"title": "Levee API", "version": "1",
			"summary": "Public works contracted through prediction markets, juries and a hash-chained ledger.",
			"description": "Amounts are decimal strings with six places (`\"12.500000\"`); requests may send up to six. " +
				"Ids are whole numbers in quotes. Errors are `{\"error\":{\"code\",\"message\",\"field\"}}`. " +
				"Call with `Authorization: Bearer <token>`, or from a browser with the session cookie set by `POST /api/v1/session` " +
				"and its CSRF token in `X-CSRF-Token` on every change. Live market data: the websocket at `/api/v1/ws`, described in `/api/v1/asyncapi.json`.",
			"license": schema{"name": "UNLICENSED", "identifier": "UNLICENSED"}},
		"servers": []schema{{"url": "/"}},
		"tags":    tagList(ops),
		"paths":   paths,
		"components": schema{
			"schemas":   components,
			"responses": responses,
			"securitySchemes": schema{
				"bearer":  schema{"type": "http", "scheme": "bearer", "description": "An API token (lv_...), from `levee demo`, `POST /api/v1/admin/accounts` or `POST /api/v1/me/tokens`."},
				"session": schema{"type": "apiKey", "in": "cookie", "name": SessionCookie, "description": "The browser session set by POST /api/v1/session (HttpOnly)."},
				"csrf":    schema{"type": "apiKey", "in": "header", "name": "X-CSRF-Token", "description": "The session's CSRF token, required with the session cookie on every request that is not GET."},
			},
		},
	}
}

func tagList(ops []apiOp) []schema {
	seen := map[string]bool{}
	var tags []schema
	for _, o := range ops {
		if !seen[o.tag] {
			seen[o.tag] = true
			tags = append(tags, schema{"name": o.tag})
		}
	}
	return tags
}

func operation(o apiOp) schema {
	op := schema{"tags": []string{o.tag}, "summary": o.summary,
		"operationId": operationID(o), "description": "Who may call: " + o.who + "."}
	var params []schema
	for _, m := range pathParam.FindAllStringSubmatch(o.path, -1) {
		if m[1] == "pseudonym" {
			params = append(params, schema{"name": m[1], "in": "path", "required": true,
				"schema":      schema{"type": "string", "pattern": "^p[0-9a-f]{20}$", "examples": []string{"p3f9c1a2b7d4e5f60a1b2"}},
				"description": "A resident's pseudonym (docs/privacy.md); anything else names nothing (404)."})
			continue
		}
		params = append(params, schema{"name": m[1], "in": "path", "required": true, "schema": ref("Id"),
			"description": "A positive whole number; anything else names nothing (404)."})
	}
	params = append(params, o.query...)
	switch {
	case o.method == http.MethodPost && o.path == "/api/v1/markets/:id/orders":
		params = append(params, schema{"name": "Idempotency-Key", "in": "header", "schema": line,
			"description": fmt.Sprintf("Retries with the same key (per account, at most 200 bytes) return the first answer and trade once, "+
				"for at least %d hours after the first attempt, whatever happens to the server meanwhile; a key used for a different "+
				"order is refused (409). After that the key is forgotten (within minutes: it is pruned every 10): a retry then trades again.", int(engine.KeyRetention.Hours()))})
	case o.path == "/api/v1/qf/projects/:id/contributions":
		params = append(params, schema{"name": "Idempotency-Key", "in": "header", "schema": line,
			"description": "Retries with the same key return the first answer and move money once."})
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	if o.body != nil || o.multipart != nil {
		content := schema{}
		if o.body != nil {
			mt := schema{"schema": o.body}
			if o.example != nil {
				mt["example"] = o.example
			}
			content["application/json"] = mt
		}
		if o.multipart != nil {
			content["multipart/form-data"] = schema{"schema": o.multipart}
		}
		op["requestBody"] = schema{"required": o.bodyRequired || o.multipart != nil, "content": content}
	}
	responses := schema{}
	ok := schema{"description": http.StatusText(o.status)}
	if o.resp != nil {
		mt := o.respType
		if mt == "" {
			mt = "application/json"
		}
		ok["content"] = schema{mt: schema{"schema": o.resp}}
	}
	if o.respHeaders != nil {
		ok["headers"] = o.respHeaders
	}
	responses[levee.FormatID(int64(o.status))] = ok
	for _, st := range errorStatuses(o) {
		responses[levee.FormatID(int64(st))] = schema{"$ref": "#/components/responses/" + levee.FormatID(int64(st))}
	}
	if o.path == "/readyz" { // not ready: {"status":"unavailable","reason"}
		responses["503"] = schema{"description": "not ready: the database is unreachable or the schema is not current",
			"content": schema{"application/json": schema{"schema": object(schema{"status": schema{"const": "unavailable"}, "reason": str(""), "node": str(""), "nats": schema{"type": "boolean"}, "markets_owned": schema{"type": "integer"}}, "status", "reason")}}}
	}
	op["responses"] = responses
	switch o.who {
	case whoPublic:
		op["security"] = []schema{{}, {"bearer": []string{}}, {"session": []string{}, "csrf": []string{}}}
	default:
		op["security"] = []schema{{"bearer": []string{}}, {"session": []string{}, "csrf": []string{}}}
	}
	if o.method == http.MethodGet {
		op["security"] = []schema{{"bearer": []string{}}, {"session": []string{}}}
		if o.who == whoPublic {
			op["security"] = []schema{{}, {"bearer": []string{}}, {"session": []string{}}}
		}
	}
	return op
}

// operationID is e.g. post_api_v1_markets_id_orders.
func operationID(o apiOp) string {
	id := strings.ToLower(o.method) + strings.NewReplacer("/", "_", ":", "", "-", "_", ".", "_", "{", "", "}", "").Replace(o.path)
	return id
}
