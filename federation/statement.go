// Package federation is how a Levee node speaks to its neighbours: its own
// Ed25519 identity, signed statements in one canonical byte encoding that
// anyone can check years later from the public exports alone
// (docs/federation.md), a PostgreSQL outbox that delivers them with retries
// and backoff, the handlers that receive them, and the witnessing of each
// other's ledgers. What the statements mean for the charter and the quorum
// belongs to crisis, which registers handlers for its kinds.
package federation

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"levee"
)

// Header is the first line of every statement's encoding; a new version of
// the format gets a new header, so old statements keep verifying.
const Header = "levee-statement/1"

// MaxPayload bounds a statement's payload (bytes).
const MaxPayload = 64 << 10

var kindRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// Statement is the durable unit that crosses nodes: who says it (Signer,
// the node's public key), what kind of statement it is, when (At, to the
// microsecond), the payload (compact JSON, kept as the exact bytes signed)
// and the signature over the canonical encoding.
type Statement struct {
	Signer    ed25519.PublicKey
	Kind      string
	At        time.Time
	Payload   []byte
	Signature []byte
}

// Encoding returns the canonical bytes a statement's signature and hash
// cover (docs/federation.md, "The encoding"):
//
//	levee-statement/1\n
//	signer=<64 lowercase hex digits>\n
//	kind=<kind>\n
//	at=<unix microseconds>\n
//	payload=<byte length>\n
//	<payload bytes>\n
func (s *Statement) Encoding() []byte {
	var b bytes.Buffer
	b.WriteString(Header + "\n")
	b.WriteString("signer=" + hex.EncodeToString(s.Signer) + "\n")
	b.WriteString("kind=" + s.Kind + "\n")
	b.WriteString("at=" + strconv.FormatInt(s.At.UnixMicro(), 10) + "\n")
	b.WriteString("payload=" + strconv.Itoa(len(s.Payload)) + "\n")
	b.Write(s.Payload)
	b.WriteByte('\n')
	return b.Bytes()
}

// Hash is SHA-256 of the encoding: the statement's name everywhere
// (idempotent delivery, votes naming a proposal, exports).
func (s *Statement) Hash() []byte {
	h := sha256.Sum256(s.Encoding())
	return h[:]
}

// HashHex is Hash in lowercase hex.
func (s *Statement) HashHex() string { return hex.EncodeToString(s.Hash()) }

// Sign makes a statement by key of kind with payload (which must be JSON;
// it is compacted so the same value always has the same bytes).
func Sign(key ed25519.PrivateKey, kind string, at time.Time, payload any) (Statement, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return Statement{}, fmt.Errorf("sign %s: %w", kind, err)
	}
	s := Statement{Signer: key.Public().(ed25519.PublicKey), Kind: kind, At: at.UTC().Truncate(time.Microsecond), Payload: raw}
	if err := s.check(); err != nil {
		return Statement{}, fmt.Errorf("sign %s: %w", kind, err)
	}
	s.Signature = ed25519.Sign(key, s.Encoding())
	return s, nil
}

// check validates the fields the encoding relies on: a kind and a payload
// that cannot smuggle a line break into the header.
func (s *Statement) check() error {
	if len(s.Signer) != ed25519.PublicKeySize {
		return levee.Invalid("signer", "signer must be a %d-byte Ed25519 public key in hex", ed25519.PublicKeySize)
	}
	if !kindRE.MatchString(s.Kind) {
		return levee.Invalid("kind", "kind must match %s", kindRE)
	}
	if len(s.Payload) > MaxPayload || !utf8.Valid(s.Payload) || !json.Valid(s.Payload) {
		return levee.Invalid("payload", "payload must be valid JSON text of at most %d bytes", MaxPayload)
	}
	return nil
}

// Verify checks the statement's fields and its signature against its own
// signer. Whether that signer is someone we listen to is the caller's
// question. Errors: EINVALID.
func (s *Statement) Verify() error {
	if err := s.check(); err != nil {
		return err
	}
	if len(s.Signature) != ed25519.SignatureSize || !ed25519.Verify(s.Signer, s.Encoding(), s.Signature) {
		return levee.Invalid("signature", "the signature does not verify against the statement's signer")
	}
	return nil
}

// Wire is a statement's public form: the body of POST
// /api/v1/federation/statements and each item of the exports. Payload is
// the payload's exact bytes as a string, so that the encoding can be
// rebuilt byte for byte from these fields alone.
type Wire struct {
	Hash      string `json:"hash"`
	Signer    string `json:"signer"`
	Kind      string `json:"kind"`
	At        int64  `json:"at"` // unix microseconds
	Payload   string `json:"payload"`
	Signature string `json:"signature"`
}

// Wire returns s in its public form.
func (s *Statement) Wire() Wire {
	return Wire{Hash: s.HashHex(), Signer: hex.EncodeToString(s.Signer), Kind: s.Kind, At: s.At.UnixMicro(),
		Payload: string(s.Payload), Signature: hex.EncodeToString(s.Signature)}
}

// Statement reads the public form back and verifies it (signature, and the
// hash when given). Errors: EINVALID naming the field.
func (w Wire) Statement() (Statement, error) {
	signer, err := hex.DecodeString(w.Signer)
	if err != nil {
		return Statement{}, levee.Invalid("signer", "signer must be hex")
	}
	sig, err := hex.DecodeString(w.Signature)
	if err != nil {
		return Statement{}, levee.Invalid("signature", "signature must be hex")
	}
	s := Statement{Signer: signer, Kind: w.Kind, At: time.UnixMicro(w.At).UTC(), Payload: []byte(w.Payload), Signature: sig}
	if err := s.Verify(); err != nil {
		return Statement{}, err
	}
	if w.Hash != "" && w.Hash != s.HashHex() {
		return Statement{}, levee.Invalid("hash", "hash is not SHA-256 of the statement's encoding")
	}
	return s, nil
}

// Fingerprint is the short form of a public key to read over the phone:
// the first 16 bytes of its SHA-256, in groups of four hex digits.
func Fingerprint(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	x := hex.EncodeToString(h[:16])
	var b bytes.Buffer
	for i := 0; i < len(x); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x[i : i+4])
	}
	return b.String()
}
