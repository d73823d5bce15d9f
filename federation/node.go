package federation

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"levee"
	"levee/ledger"
	"levee/pgtx"
)

// Peer is a neighbour node as the charter names it.
type Peer struct {
	ID        int64
	Name      string
	URL       string
	Key       ed25519.PublicKey
	Suspended bool
}

// Network is what federation needs of the charter (crisis.Service): which
// keys are neighbours, and that one was heard from.
type Network interface {
	// PeerByKey returns the neighbour with this pinned key; ENOTFOUND if
	// none has it.
	PeerByKey(ctx context.Context, q sqlx.QueryerContext, key ed25519.PublicKey) (Peer, error)
	// Peers lists the neighbours that are nodes.
	Peers(ctx context.Context, q sqlx.QueryerContext) ([]Peer, error)
	// Heard records that a neighbour spoke (and restores it if suspended).
	Heard(ctx context.Context, tx *sqlx.Tx, p Peer) error
	// CharterHash is the hash of the charter in force.
	CharterHash(ctx context.Context) (string, error)
}

// Handler receives a verified statement of its kind from peer inside tx
// (where the statement is being stored). A coded error refuses it: nothing
// is stored and the refusal is recorded. A statement it returns is the
// signed reply, stored and returned to the sender.
type Handler func(ctx context.Context, tx *sqlx.Tx, from Peer, st Statement) (*Statement, error)

// Options configure a Node.
type Options struct {
	Name   string // this city's name
	URL    string // where neighbours reach this node
	Clock  func() time.Time
	Logger *slog.Logger
	HTTP   *http.Client
	// MaxBackoff caps the wait between delivery attempts (default 10 min);
	// the first retry waits a second and each one doubles it.
	MaxBackoff time.Duration
}

// Node is this node in the network: its key, its outbox, its witnessing.
type Node struct {
	db       *sqlx.DB
	key      ed25519.PrivateKey
	opts     Options
	net      Network
	handlers map[string]Handler
}

// New returns the node that signs with key.
func New(db *sqlx.DB, key ed25519.PrivateKey, opts Options) *Node {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HTTP == nil {
		// No redirects: a statement goes to the URL the charter names or
		// not at all (a POST redirected would arrive as a GET elsewhere).
		opts.HTTP = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Minute
	}
	n := &Node{db: db, key: key, opts: opts, handlers: map[string]Handler{}}
	n.handlers[KindLedgerHead] = n.handleHead
	n.handlers[KindCosign] = n.handleCosign
	n.handlers[KindAlarm] = n.handleAlarm
	return n
}

// SetURL sets where neighbours reach this node, once it listens.
func (n *Node) SetURL(url string) { n.opts.URL = url }

// SetNetwork wires the charter once crisis exists.
func (n *Node) SetNetwork(net Network) { n.net = net }

// Handle registers the handler of a statement kind.
func (n *Node) Handle(kind string, h Handler) { n.handlers[kind] = h }

func (n *Node) now() time.Time { return n.opts.Clock().UTC().Truncate(time.Microsecond) }

// PublicKey is this node's public key.
func (n *Node) PublicKey() ed25519.PublicKey { return n.key.Public().(ed25519.PublicKey) }

// Name is this city's name.
func (n *Node) Name() string { return n.opts.Name }

// Head is a ledger head: the last entry's seq and hash.
type Head struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// Identity is what GET /api/v1/node says about this node.
type Identity struct {
	Name        string `json:"name"`
	URL         string `json:"url"`
	PublicKey   string `json:"public_key"`
	Fingerprint string `json:"fingerprint"`
	CharterHash string `json:"charter_hash"`
	LedgerHead  Head   `json:"ledger_head"`
}

// Identity returns this node's name, URL, key and the heads of its charter
// and ledger. The private key never leaves this package.
func (n *Node) Identity(ctx context.Context) (Identity, error) {
	seq, hash, err := ledger.Head(ctx, n.db)
	if err != nil {
		return Identity{}, pgtx.Unavailable(err)
	}
	id := Identity{Name: n.opts.Name, URL: n.opts.URL, PublicKey: hex.EncodeToString(n.PublicKey()),
		Fingerprint: Fingerprint(n.PublicKey()), LedgerHead: Head{Seq: seq, Hash: hex.EncodeToString(hash)}}
	if n.net != nil {
		if id.CharterHash, err = n.net.CharterHash(ctx); err != nil {
			return Identity{}, err
		}
	}
	return id, nil
}

// Sign makes a statement signed by this node, without storing it.
func (n *Node) Sign(kind string, payload any) (Statement, error) {
	return Sign(n.key, kind, n.now(), payload)
}

// Publish signs a statement, stores it in tx and queues its delivery to
// each of to (every neighbour node when to is nil). It is part of tx: a
// decision and its announcement commit together or not at all.
func (n *Node) Publish(ctx context.Context, tx *sqlx.Tx, kind string, payload any, to []Peer) (Statement, error) {
	st, err := n.Sign(kind, payload)
	if err != nil {
		return Statement{}, err
	}
	if to == nil {
		if to, err = n.net.Peers(ctx, tx); err != nil {
			return Statement{}, err
		}
	}
	if _, err := storeStatement(ctx, tx, &st, true, n.now(), nil); err != nil {
		return Statement{}, fmt.Errorf("publish %s: %w", kind, err)
	}
	for _, p := range to {
		if err := enqueue(ctx, tx, st.Hash(), p, n.now()); err != nil {
			return Statement{}, fmt.Errorf("publish %s to %s: %w", kind, p.Name, err)
		}
	}
	return st, nil
}

// Statement returns a stored statement by hash. Errors: ENOTFOUND.
func (n *Node) Statement(ctx context.Context, hash []byte) (Statement, error) {
	return getStatement(ctx, n.db, hash)
}

// GetStatements reads stored statements inside q, in one query (for
// crisis's views of votes): by hash, as a string of its bytes; a hash not
// stored is absent.
func GetStatements(ctx context.Context, q sqlx.QueryerContext, hashes [][]byte) (map[string]Statement, error) {
	var rs []statementRow
	if err := sqlx.SelectContext(ctx, q, &rs, `SELECT `+statementColumns+` FROM statements WHERE hash = ANY($1)`, pq.ByteaArray(hashes)); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("statements: %w", err))
	}
	out := make(map[string]Statement, len(rs))
	for _, r := range rs {
		st := r.statement()
		out[string(r.Hash)] = st
	}
	return out, nil
}

func refuse(format string, args ...any) error { return levee.Errorf(levee.EFORBIDDEN, format, args...) }

// CheckKey records this node's public key the first time its database is
// run, and says whether the key now in use is that one: every instance of
// a node must sign with the same key (LEVEE_NODE_KEY_FILE shared by the
// instances of a cluster, copied beside a restored database), or its
// neighbours refuse what it signs.
func (n *Node) CheckKey(ctx context.Context) (same bool, first []byte, err error) {
	err = n.db.GetContext(ctx, &first, `UPDATE node SET public_key = coalesce(public_key, $1) RETURNING public_key`, []byte(n.PublicKey()))
	if err != nil {
		return false, nil, pgtx.Unavailable(fmt.Errorf("node key: %w", err))
	}
	return string(first) == string(n.PublicKey()), first, nil
}
