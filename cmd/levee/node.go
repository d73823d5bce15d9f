package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"levee/crisis"
	"levee/federation"
)

// keyFile is where this node's private key lives.
func (c Config) keyFile() string {
	if c.NodeKeyFile != "" {
		return c.NodeKeyFile
	}
	return filepath.Join(c.DataDir, federation.KeyFileName)
}

// openNode loads (or makes, on first start) this node's key and builds its
// place in the network. The key itself is never logged: only its
// fingerprint.
func (m *Main) openNode() error {
	key, err := federation.LoadOrCreateKey(m.Config.keyFile())
	if err != nil {
		return err
	}
	name := m.Config.NodeName
	if name == "" {
		name = "Levee"
	}
	m.Node = federation.New(m.DB, key, federation.Options{Name: name, URL: m.Config.PublicURL, Clock: m.now, Logger: m.logger,
		MaxBackoff: m.Config.DeliveryMaxBackoff})
	m.logger.Info("node identity", slog.String("name", name), slog.String("fingerprint", federation.Fingerprint(m.Node.PublicKey())))
	same, first, err := m.Node.CheckKey(context.Background())
	if err != nil {
		return err
	}
	if !same {
		m.logger.Error("this instance signs with another key than this node's database was first run with: its neighbours will refuse what it signs; "+
			"point LEVEE_NODE_KEY_FILE at the node's key (shared by every instance of a cluster, copied beside a restored database)",
			slog.String("key_file", m.Config.keyFile()), slog.String("fingerprint", federation.Fingerprint(m.Node.PublicKey())),
			slog.String("node_fingerprint", federation.Fingerprint(first)))
	}
	return nil
}

// startNetwork delivers the statement outbox every DeliverEvery and sends
// the ledger head to the neighbours every WitnessEvery (the first at once).
func (m *Main) startNetwork() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	m.stopNetwork = func() { cancel(); wg.Wait() }
	deliver, witness := m.Config.DeliverEvery, m.Config.WitnessEvery
	if deliver <= 0 {
		deliver = time.Second
	}
	if witness <= 0 {
		witness = 10 * time.Minute
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		m.Node.Run(ctx, deliver)
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(witness)
		defer t.Stop()
		for {
			if err := m.Node.Witness(ctx); err != nil && ctx.Err() == nil {
				m.logger.Warn("witnessing: publish the ledger head", slog.Any("error", err))
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// nodeShow prints GET /api/v1/node for this node, with the fingerprint to
// read over the phone when neighbours found their charters.
func nodeShow(ctx context.Context, m *Main, stdout io.Writer) (int, error) {
	m.Node.SetNetwork(crisis.New(m.DB, crisis.Options{Clock: m.now, Logger: m.logger}))
	id, err := m.Node.Identity(ctx)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(stdout, "name          %s\nurl           %s\npublic_key    %s\nfingerprint   %s\ncharter_hash  %s\nledger_head   %d %s\n",
		id.Name, orNone(id.URL), id.PublicKey, id.Fingerprint, id.CharterHash, id.LedgerHead.Seq, id.LedgerHead.Hash)
	fmt.Fprintf(stdout, "\nRead the fingerprint to each neighbour's operator when founding: they compare it with what their node fetched.\n")
	return 0, nil
}

func orNone(s string) string {
	if s == "" {
		return "(set LEVEE_PUBLIC_URL)"
	}
	return s
}

// verifyWitnesses checks the local ledger against every head the
// neighbours cosigned (levee ledger verify --witnesses).
func verifyWitnesses(ctx context.Context, m *Main, stdout io.Writer) (int, error) {
	r, err := federation.VerifyWitnesses(ctx, m.DB, m.Node.PublicKey())
	if err != nil {
		return 1, err
	}
	for _, p := range r.Problems {
		fmt.Fprintf(stdout, "WITNESS MISMATCH: %s\n", p)
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(stdout, "the ledger does NOT match %d of %d cosigned heads: its history was rewritten after the neighbours saw it\n", len(r.Problems), r.Checked)
		return 1, nil
	}
	fmt.Fprintf(stdout, "witnesses OK: the ledger matches all %d heads its neighbours cosigned\n", r.Checked)
	return 0, nil
}

// retire is levee admin retire: the founder steps back.
func retire(ctx context.Context, m *Main, stdout io.Writer) (int, error) {
	n, err := crisis.New(m.DB, crisis.Options{Clock: m.now, Logger: m.logger}).Retire(ctx)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(stdout, "the founder has retired: %d admin tokens revoked, the admin role removed; the charter now changes only by the neighbours' quorum\n", n)
	return 0, nil
}
