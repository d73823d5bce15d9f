// Package ledger is the treasury's double-entry, tamper-evident ledger. Every
// movement of money in Levee is one journal entry of two or more postings
// that sum to zero, between named ledger accounts ("cash:42", "treasury",
// "market:7:collateral"...). Entries are numbered densely and chained by
// SHA-256, so anyone holding the public export can recompute every hash; see
// docs/ledger.md for the exact encoding.
//
// Lock order: docs/locks.md. The ledger takes ledger_head, then
// ledger_accounts rows in key order, and holds the head until the caller's
// transaction ends: callers post last, after taking their own locks.
package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"levee"
)

// HashSize is the length of every hash in the chain (SHA-256).
const HashSize = sha256.Size

// canonicalHeader starts the canonical encoding and names its version, so a
// future encoding can never be confused with this one.
const canonicalHeader = "levee-ledger-v1\n"

// timeLayout is how entry times appear in JSON: RFC 3339 in UTC with exactly
// microsecond precision, the precision PostgreSQL stores and the hash covers.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Posting is one line of an entry: Amount is added to Account's balance.
type Posting struct {
	Account string       `json:"account"`
	Amount  levee.Micros `json:"amount"`
}

// Transfer asks for one entry to be appended. At is truncated to microseconds;
// zero means now. A non-empty IdempotencyKey makes retries safe: the same key
// moves money once and returns the original entry.
type Transfer struct {
	Kind           string
	Ref            string
	IdempotencyKey string
	At             time.Time
	Postings       []Posting
}

// Entry is one appended journal entry, as exported publicly. Hash is
// SHA-256(PrevHash ‖ Canonical()); PrevHash is the previous entry's Hash, or
// HashSize zero bytes for seq 1. An entry of the private epoch is hashed
// under its accounts' public names (a person's cash is cash:<pseudonym>):
// the export serves it so (Entries), and ComputeHash then recomputes its
// Hash; the entries Post returns name the accounts by their keys.
type Entry struct {
	Seq      int64
	At       time.Time
	Kind     string
	Ref      string
	Postings []Posting
	PrevHash []byte
	Hash     []byte
}

// Page is one page of the public export, the body of
// GET /api/v1/ledger/entries. NextAfter is the after= value for the next
// page: the last seq in Entries, or the request's after if Entries is empty.
type Page struct {
	Entries   []Entry `json:"entries"`
	NextAfter int64   `json:"next_after"`
}

// Report is the outcome of Verify. FirstBrokenSeq is the first entry found
// wrong (0 if no entry is); a balance that disagrees with its postings names
// the account in BrokenAccount instead. Problem says in words which check
// failed first. TrialBalance is the exact sum of every stored balance, even
// of balances that are beyond levee.MaxMoney or cannot be added in int64.
type Report struct {
	OK             bool   `json:"ok"`
	Entries        int64  `json:"entries"`
	HeadSeq        int64  `json:"head_seq"`
	HeadHash       string `json:"head_hash"`
	FirstBrokenSeq int64  `json:"first_broken_seq"`
	BrokenAccount  string `json:"broken_account,omitempty"`
	Problem        string `json:"problem,omitempty"`
	TrialBalance   Sum    `json:"trial_balance"`
}

// AppendCanonical appends the canonical encoding of e, the bytes its hash
// covers, to b. The format is written down in docs/ledger.md; changing it
// breaks every existing hash.
func (e *Entry) AppendCanonical(b []byte) []byte { return e.appendCanonical(b, nil) }

// appendCanonical is AppendCanonical with the postings' accounts spelled
// names[i] instead, when names is not empty: an entry of the private epoch
// is hashed under its accounts' public names (docs/privacy.md).
func (e *Entry) appendCanonical(b []byte, names []string) []byte {
	b = append(b, canonicalHeader...)
	b = append(b, "seq="...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, "\nat="...)
	b = strconv.AppendInt(b, e.At.UnixMicro(), 10)
	b = append(b, "\nkind="...)
	b = append(b, e.Kind...)
	b = append(b, "\nref="...)
	b = append(b, e.Ref...)
	b = append(b, '\n')
	for i, p := range e.Postings {
		if len(names) > 0 {
			b = append(b, names[i]...)
		} else {
			b = append(b, p.Account...)
		}
		b = append(b, ' ')
		b = p.Amount.AppendTo(b)
		b = append(b, '\n')
	}
	return b
}

// Canonical returns the canonical encoding of e.
func (e *Entry) Canonical() []byte { return e.AppendCanonical(nil) }

// ComputeHash returns SHA-256(e.PrevHash ‖ e.Canonical()), what e.Hash must be.
func (e *Entry) ComputeHash() []byte {
	var buf [512]byte
	return chainHash(e.PrevHash, e.AppendCanonical(buf[:0]))
}

func chainHash(prev, canonical []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(canonical)
	return h.Sum(make([]byte, 0, HashSize))
}

// entryJSON is the public shape of an Entry. The idempotency key is
// deliberately absent: it is the caller's private retry token.
type entryJSON struct {
	Seq      int64     `json:"seq"`
	At       string    `json:"at"`
	Kind     string    `json:"kind"`
	Ref      string    `json:"ref"`
	Postings []Posting `json:"postings"`
	PrevHash string    `json:"prev_hash"`
	Hash     string    `json:"hash"`
}

// MarshalJSON writes e in its public export form: at in RFC 3339 UTC with
// microseconds, hashes in lowercase hex.
func (e Entry) MarshalJSON() ([]byte, error) {
	ps := e.Postings
	if ps == nil {
		ps = []Posting{}
	}
	return json.Marshal(entryJSON{
		Seq:      e.Seq,
		At:       e.At.UTC().Format(timeLayout),
		Kind:     e.Kind,
		Ref:      e.Ref,
		Postings: ps,
		PrevHash: hex.EncodeToString(e.PrevHash),
		Hash:     hex.EncodeToString(e.Hash),
	})
}

// UnmarshalJSON reads the public export form, so Go programs can check an
// export with ComputeHash.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var j entryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	at, err := time.Parse(time.RFC3339Nano, j.At)
	if err != nil {
		return fmt.Errorf("entry %d: at: %w", j.Seq, err)
	}
	prev, err := hex.DecodeString(j.PrevHash)
	if err != nil {
		return fmt.Errorf("entry %d: prev_hash: %w", j.Seq, err)
	}
	hash, err := hex.DecodeString(j.Hash)
	if err != nil {
		return fmt.Errorf("entry %d: hash: %w", j.Seq, err)
	}
	*e = Entry{Seq: j.Seq, At: at.UTC(), Kind: j.Kind, Ref: j.Ref, Postings: j.Postings, PrevHash: prev, Hash: hash}
	return nil
}
