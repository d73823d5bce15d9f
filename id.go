package levee

import "strconv"

// FormatID writes an identifier the one way ids appear in text: decimal
// digits, as in JSON bodies ("id":"12"), ledger account keys ("cash:12") and
// subjects ("market:12").
func FormatID(id int64) string { return strconv.FormatInt(id, 10) }
