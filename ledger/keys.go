package ledger

import (
	"strconv"
	"strings"

	"levee"
)

// The account-key vocabulary. Every ledger account is named by one of these
// functions, so a key is spelled in one place and read back by one parser
// (ParseKey) instead of by string surgery where it is used.
const (
	// Treasury is the city's own money: market subsidies, funding pools and
	// jury fees come from it, and leftovers return to it.
	Treasury = "treasury"
	// Issuance is the only account that may go negative: money enters the
	// ledger from it (docs/ledger.md).
	Issuance = "treasury:issuance"
)

// fixed are the accounts the schema opens (migrations/0002_ledger.sql).
var fixed = map[string]bool{Treasury: true, Issuance: true, "fees": true, "jury_fees": true}

// Key kinds, the first part of a key.
const (
	KindCash   = "cash"
	KindMarket = "market"
	KindBudget = "budget"
	KindEscrow = "escrow"
	KindCase   = "case"
	KindRound  = "qf"
	KindExit   = "exit"
	KindEpoch  = "epoch"
)

// idKey is prefix, id and suffix in one string, made in one allocation:
// keys are made several times for every order (issue 18), and
// concatenating levee.FormatID's string made two.
func idKey(prefix string, id int64, suffix string) string {
	var b [64]byte
	return string(append(strconv.AppendInt(append(b[:0], prefix...), id, 10), suffix...))
}

// Cash is the spendable balance of account id.
func Cash(id int64) string { return idKey(KindCash+":", id, "") }

// Collateral is a market's collateral: its subsidy and what its traders paid.
func Collateral(market int64) string {
	return idKey(KindMarket+":", market, ":collateral")
}

// Held is a decision market's account for the traders' balances inside it
// (the sum of market_stakes.held), returned when the market is voided.
func Held(market int64) string { return idKey(KindMarket+":", market, ":held") }

// BudgetLine is the money of budget line id.
func BudgetLine(id int64) string { return idKey(KindBudget+":", id, "") }

// Escrow is the money a contract holds for its milestones.
func Escrow(contract int64) string { return idKey(KindEscrow+":", contract, "") }

// CaseFees holds a case's jury fees until the tally pays them.
func CaseFees(c int64) string { return idKey(KindCase+":", c, ":fees") }

// CaseSeats holds the seat deposits of a case's jurors.
func CaseSeats(c int64) string { return idKey(KindCase+":", c, ":seats") }

// CaseBonds holds the dispute and appeal bonds of a case.
func CaseBonds(c int64) string { return idKey(KindCase+":", c, ":bonds") }

// RoundPool is a funding round's matching pool.
func RoundPool(round int64) string { return idKey(KindRound+":", round, ":pool") }

// RoundEscrow holds a funding round's contributions until it is finalised.
func RoundEscrow(round int64) string { return idKey(KindRound+":", round, ":escrow") }

// Exit holds what the treasury owes person id after they left the city,
// until a treasurer pays it out (docs/privacy.md).
func Exit(id int64) string { return idKey(KindExit+":", id, "") }

// Key is an account key taken apart: "market:7:collateral" is
// {Kind: "market", ID: 7, Part: "collateral"}; the accounts the schema opens
// itself ("treasury", "treasury:issuance", ...) are {Kind: key}.
type Key struct {
	Kind string
	ID   int64
	Part string
}

// ParseKey takes key apart. It reports false for a key that none of the
// functions above would build: an unknown kind, an id that is not written as
// FormatID writes it, or a part where none belongs.
func ParseKey(key string) (Key, bool) {
	if fixed[key] {
		return Key{Kind: key}, true
	}
	kind, rest, _ := strings.Cut(key, ":")
	idText, part, _ := strings.Cut(rest, ":")
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id < 0 || levee.FormatID(id) != idText {
		return Key{}, false
	}
	k := Key{Kind: kind, ID: id, Part: part}
	switch kind {
	case KindCash, KindBudget, KindEscrow, KindExit:
		return k, part == ""
	case KindEpoch:
		return k, part == "carry"
	case KindMarket:
		return k, part == "collateral" || part == "held"
	case KindCase:
		return k, part == "fees" || part == "seats" || part == "bonds"
	case KindRound:
		return k, part == "pool" || part == "escrow"
	}
	return Key{}, false
}
