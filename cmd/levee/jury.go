package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"levee"
	"levee/ledger"
	"levee/settlement"
	"levee/settlement/draw"
)

// juryVerify is `levee jury verify [--url URL] CASE`: it loads a case's
// published draws (from the database, or from a running server's
// GET /api/v1/cases/{id}/draw when url is set), recomputes each one the way
// docs/juries.md states it, and prints OK or the first mismatch (exit 1).
func juryVerify(ctx context.Context, m *Main, url string, args []string, stdout, stderr io.Writer) (int, error) {
	if len(args) != 1 {
		fmt.Fprintln(stderr, usage)
		return 2, nil
	}
	id, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || id <= 0 {
		fmt.Fprintf(stderr, "CASE must be a case id, not %q\n", args[0])
		return 2, nil
	}
	var src drawSource
	if url != "" {
		src = &httpDraws{base: strings.TrimRight(url, "/"), client: &http.Client{Timeout: 30 * time.Second}}
	} else {
		defer m.Close()
		if err := m.Open(ctx); err != nil {
			return 1, err
		}
		src = &dbDraws{svc: settlement.New(m.DB, settlement.Options{Logger: m.logger}), ledger: m.Ledger}
	}
	rep, err := src.draws(ctx, id)
	if err != nil {
		return 1, err
	}
	jurors := 0
	for i, d := range rep.Draws {
		problem, err := checkDraw(ctx, src, id, i, d)
		if err != nil {
			return 1, err
		}
		if problem != "" {
			fmt.Fprintf(stdout, "jury MISMATCH in case %d, draw %d: %s\n", id, d.N, problem)
			return 1, nil
		}
		fmt.Fprintf(stdout, "draw %d OK: pool of %d, pool_hash %s, beacon = hash of ledger entry %d, seed %s, jurors %s\n",
			d.N, len(d.Pool), d.PoolHash, d.BeaconSeq, d.Seed, strings.Join(d.Jurors, " "))
		jurors += len(d.Jurors)
	}
	if len(rep.Draws) == 0 {
		fmt.Fprintf(stdout, "jury MISMATCH in case %d: no draws are published\n", id)
		return 1, nil
	}
	fmt.Fprintf(stdout, "jury OK: case %d, %d draws, %d jurors recomputed\n", id, len(rep.Draws), jurors)
	return 0, nil
}

// checkDraw recomputes one published draw and describes the first thing
// that does not match ("" if everything does).
func checkDraw(ctx context.Context, src drawSource, caseID int64, i int, d settlement.DrawRecord) (string, error) {
	if d.N != i {
		return fmt.Sprintf("draw numbered %d is in place %d", d.N, i), nil
	}
	// Members are pseudonyms, or account ids in draws made before them.
	pool := d.Pool
	for _, s := range pool {
		id, err := strconv.ParseInt(s, 10, 64)
		if !ledger.ValidPseudonym(s) && (err != nil || strconv.FormatInt(id, 10) != s) {
			return fmt.Sprintf("pool: %q is neither a pseudonym nor an account id", s), nil
		}
	}
	if !slices.Equal(draw.SortPool(pool), pool) {
		return "pool: not in byte order without duplicates", nil
	}
	var union []string
	for _, s := range d.Strata {
		if !slices.Equal(draw.SortPool(s.IDs), []string(s.IDs)) {
			return fmt.Sprintf("stratum %s: not in byte order without duplicates", s.Key), nil
		}
		union = append(union, s.IDs...)
	}
	if sorted := draw.SortPool(union); len(sorted) != len(union) || !slices.Equal(sorted, pool) {
		return "pool: the strata are not exactly the pool", nil
	}
	poolHash := draw.PoolHash(pool)
	if got := hex.EncodeToString(poolHash); got != d.PoolHash {
		return fmt.Sprintf("pool_hash: published %s, recomputed %s", d.PoolHash, got), nil
	}
	e, err := src.entry(ctx, d.BeaconSeq)
	if err != nil {
		return "", err
	}
	if e == nil {
		return fmt.Sprintf("beacon: ledger entry %d does not exist", d.BeaconSeq), nil
	}
	if !bytes.Equal(e.ComputeHash(), e.Hash) {
		return fmt.Sprintf("beacon: ledger entry %d does not hash to its published hash (run levee ledger verify)", d.BeaconSeq), nil
	}
	if e.Kind != "jury_seats" || e.Ref != "case:"+strconv.FormatInt(caseID, 10) {
		return fmt.Sprintf("beacon: ledger entry %d is %s %s, not this case's jury_seats", d.BeaconSeq, e.Kind, e.Ref), nil
	}
	if got := hex.EncodeToString(e.Hash); got != d.Beacon {
		return fmt.Sprintf("beacon: published %s, ledger entry %d has hash %s", d.Beacon, d.BeaconSeq, got), nil
	}
	seed := draw.Seed(poolHash, caseID, e.Hash)
	if got := hex.EncodeToString(seed); got != d.Seed {
		return fmt.Sprintf("seed: published %s, recomputed %s", d.Seed, got), nil
	}
	drawer := draw.NewDrawer(seed, d.Strata)
	var jurors []string
	for _, k := range d.Seats {
		jurors = append(jurors, drawer.Next(k)...)
	}
	for k := range max(len(jurors), len(d.Jurors)) {
		var got, want string
		if k < len(d.Jurors) {
			got = d.Jurors[k]
		}
		if k < len(jurors) {
			want = jurors[k]
		}
		if got != want {
			return fmt.Sprintf("jurors: seat %d (in draw order) is %q, recomputed %q", k, got, want), nil
		}
	}
	return "", nil
}

// drawSource is where the published draws and the ledger come from.
type drawSource interface {
	draws(ctx context.Context, caseID int64) (settlement.DrawReport, error)
	// entry returns ledger entry seq, nil if there is none.
	entry(ctx context.Context, seq int64) (*ledger.Entry, error)
}

type dbDraws struct {
	svc    *settlement.Service
	ledger *ledger.Ledger
}

func (s *dbDraws) draws(ctx context.Context, caseID int64) (settlement.DrawReport, error) {
	return s.svc.Draw(ctx, caseID)
}

func (s *dbDraws) entry(ctx context.Context, seq int64) (*ledger.Entry, error) {
	es, err := s.ledger.Entries(ctx, seq-1, 1)
	if err != nil || len(es) == 0 || es[0].Seq != seq {
		return nil, err
	}
	return &es[0], nil
}

type httpDraws struct {
	base   string
	client *http.Client
}

func (s *httpDraws) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return levee.Invalid("url", "bad --url: %v", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

func (s *httpDraws) draws(ctx context.Context, caseID int64) (settlement.DrawReport, error) {
	var rep settlement.DrawReport
	err := s.get(ctx, fmt.Sprintf("/api/v1/cases/%d/draw", caseID), &rep)
	return rep, err
}

func (s *httpDraws) entry(ctx context.Context, seq int64) (*ledger.Entry, error) {
	var p ledger.Page
	if err := s.get(ctx, fmt.Sprintf("/api/v1/ledger/entries?after=%d&limit=1", seq-1), &p); err != nil {
		return nil, err
	}
	if len(p.Entries) == 0 || p.Entries[0].Seq != seq {
		return nil, nil
	}
	return &p.Entries[0], nil
}
