// Package layout states the shape of the house that the code must keep: which
// package owns each table (Owners; every other package goes through the
// owner's exported functions), checked by this package's tests together with
// the import layers drawn in docs/architecture.md. Nothing imports it.
package layout

// Owners maps every table to the one package (by its directory) whose SQL may
// name it. docs/architecture.md lists the same map under "Tables".
var Owners = map[string]string{
	"ledger_accounts": "ledger", "ledger_entries": "ledger", "ledger_head": "ledger", "ledger_postings": "ledger",

	"accounts": "accounts", "account_emails": "accounts", "api_tokens": "accounts", "audit_log": "accounts", "districts": "accounts",
	"organisation_members": "accounts", "password_resets": "accounts", "sessions": "accounts", "settings": "accounts",

	"markets": "market/engine", "market_stakes": "market/engine", "order_keys": "market/engine", "positions": "market/engine", "trades": "market/engine",
	"market_leases": "market/engine", "cluster_nodes": "market/engine",

	"budget_lines": "budgets", "qf_contributions": "budgets", "qf_projects": "budgets", "qf_results": "budgets", "qf_rounds": "budgets",

	"bid_attachments": "contracting", "bids": "contracting", "contract_evidence": "contracting", "contract_milestones": "contracting",
	"contracts": "contracting", "tender_amendments": "contracting", "tender_awards": "contracting", "tender_milestones": "contracting",
	"tenders": "contracting",

	"case_draws": "settlement", "case_evidence": "settlement", "case_markets": "settlement", "case_parties": "settlement",
	"case_rounds": "settlement", "case_settlements": "settlement", "cases": "settlement", "jurors": "settlement",
	"jury_opt_outs": "settlement", "proposals": "settlement",

	"notifications": "outbox",

	"charter": "crisis", "charter_changes": "crisis", "emergencies": "crisis", "emergency_acts": "crisis",
	"emergency_petitions": "crisis", "incoming_requests": "crisis", "neighbour_notices": "crisis", "neighbour_petition_signatures": "crisis",
	"neighbour_petitions": "crisis", "neighbours": "crisis",
	"quorum_proposals": "crisis", "quorum_votes": "crisis",

	"alarms": "federation", "deliveries": "federation", "node": "federation", "refusals": "federation", "statements": "federation",
}

// Outside are the trees whose SQL is not a package's own: the load, fault
// and hostile tools in bench read (and bench/naive, a baseline of one
// transaction per order, writes) the tables the way an auditor or a rival
// implementation would, from outside the program.
var Outside = []string{"bench/"}
