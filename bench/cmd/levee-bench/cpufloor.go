package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"levee"
	"levee/bench/load"
	"levee/market/engine"
	"levee/web"
)

// CPUFloor is what an order costs the machine's CPU with nothing of Levee's
// in between, in two halves measured apart (issue 18's goal is 0.06 core-ms
// per order for the server and PostgreSQL together):
//
//   - HTTP: a net/http server that reads each order's request and writes the
//     answer Levee gave to one, the same bytes, and does nothing else, under
//     the same 256-client closed loop: the server's CPU per request is what
//     Go's HTTP and the kernel's loopback TCP cost an order;
//   - rows: the rows an order makes PostgreSQL write (its trade, its
//     position, its ledger posting and balance, and per commit the entry,
//     the market row and the ledger head), in copies of those tables with
//     the same indexes and constraints, written by one connection in
//     batches of floorBatch orders, each batch one prepared round trip as
//     the journal sends it: PostgreSQL's CPU per order for the writes
//     alone, with no locks taken, no hashing, no checks.
type CPUFloor struct {
	HTTP            load.Result
	HTTPServer      float64 // cores used by the floor's server process
	HTTPGenerator   float64 // cores used by this process (the load generator)
	Rows            int     // orders whose rows were written
	RowsRate        float64 // orders/s
	RowsPG          float64 // cores used by PostgreSQL
	Answer          int     // bytes of the answer replayed (headers and body)
	HTTPErr, RowErr string
}

// HTTPPerOrder is the floor server's core-ms per request.
func (f CPUFloor) HTTPPerOrder() float64 {
	if f.HTTP.Throughput == 0 {
		return 0
	}
	return 1000 * f.HTTPServer / f.HTTP.Throughput
}

// RowsPerOrder is PostgreSQL's core-ms per order for the rows alone.
func (f CPUFloor) RowsPerOrder() float64 {
	if f.RowsRate == 0 {
		return 0
	}
	return 1000 * f.RowsPG / f.RowsRate
}

// floorBatch is how many orders each batch of the rows' floor carries: about
// what a commit carries at 256 clients.
const floorBatch = 128

// orderAnswer is one order's answer as a Levee server wrote it, replayed by
// the HTTP floor: the status, the headers net/http does not write itself,
// and the body.
type orderAnswer struct {
	Status int         `json:"status"`
	Header http.Header `json:"header"`
	Body   []byte      `json:"body"`
}

// size is the answer's bytes on the wire, about: status line, headers, body.
func (a orderAnswer) size() int {
	n := len("HTTP/1.1 201 Created\r\n\r\n") + len(a.Body)
	for k, vs := range a.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// captureAnswer places one order on the server at addr and keeps its answer.
func captureAnswer(ctx context.Context, addr string, market int64, token string) (orderAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/v1/markets/"+strconv.FormatInt(market, 10)+"/orders",
		strings.NewReader(`{"outcome":0,"side":"buy","shares":"1"}`))
	if err != nil {
		return orderAnswer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return orderAnswer{}, fmt.Errorf("capture an order's answer: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return orderAnswer{}, fmt.Errorf("capture an order's answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return orderAnswer{}, fmt.Errorf("capture an order's answer: %s: %s", resp.Status, body)
	}
	h := resp.Header.Clone()
	h.Del("Date") // net/http writes these itself
	h.Del("Content-Length")
	return orderAnswer{Status: resp.StatusCode, Header: h, Body: body}, nil
}

// httpFloorProcess is levee-bench run as the HTTP floor's server
// (-http-floor-answer): it answers every order with the answer in the file
// and prints "serving on http://ADDR" once it listens.
func httpFloorProcess(ctx context.Context, answerFile string, stdout io.Writer) error {
	b, err := os.ReadFile(answerFile)
	if err != nil {
		return err
	}
	var a orderAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("%s: %w", answerFile, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// levee serve's server and limits, and its garbage collector setting
	// (main calls gctune.Server).
	srv := web.NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/orders") || r.Header.Get("Authorization") == "" {
			http.NotFound(w, r)
			return
		}
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		h := w.Header()
		for k, v := range a.Header {
			h[k] = v
		}
		w.WriteHeader(a.Status)
		w.Write(a.Body)
	}), slog.Default())
	fmt.Fprintf(stdout, "serving on http://%s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// measureCPUFloor measures both halves of the floor for d each; a.Status
// zero skips the HTTP half (no answer was captured).
func (e *env) measureCPUFloor(ctx context.Context, a orderAnswer, d time.Duration) CPUFloor {
	var f CPUFloor
	// PostgreSQL's CPU counts all its processes: autovacuum after the
	// variants' writes would be counted as the rows' floor's.
	if w, ok := e.waitIdle(ctx, 0, 30*time.Second); !ok {
		e.say("the floor of CPU per order: PostgreSQL still busy after %s; measuring anyway", w.Round(time.Second))
	}
	if a.Status != 0 {
		f.Answer = a.size()
		if err := e.measureHTTPFloor(ctx, a, d, &f); err != nil {
			f.HTTPErr = err.Error()
		}
	} else {
		f.HTTPErr = "no order's answer to replay"
	}
	if err := e.measureRowsFloor(ctx, d, &f); err != nil {
		f.RowErr = err.Error()
	}
	return f
}

// measureHTTPFloor runs the closed loop of e.cfg.Clients against the HTTP
// floor's server, in a process of its own.
func (e *env) measureHTTPFloor(ctx context.Context, a orderAnswer, d time.Duration, f *CPUFloor) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	file := filepath.Join(e.dir, "order-answer.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return err
	}
	srv, err := e.startServing(exec.CommandContext(ctx, self, "-http-floor-answer", file), "http-floor.log")
	if err != nil {
		return err
	}
	defer srv.stop()
	r := load.New(load.Target{Addr: srv.addr, MarketID: e.hot, Outcomes: 2, Tokens: e.tokens(e.cfg.Clients), Seed: 9})
	defer r.Close()
	if err := r.Warm(ctx, 2); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	pid := srv.cmd.Process.Pid
	s0, c0 := procCPU(pid), sampleCPU(e.pgPID)
	f.HTTP = r.Run(ctx, load.Step{Name: fmt.Sprintf("closed loop, %d clients", e.cfg.Clients), Duration: d})
	s1, c1 := procCPU(pid), sampleCPU(e.pgPID)
	f.HTTPGenerator, _ = cores(c0, c1)
	f.HTTPServer = (s1 - s0).Seconds() / c1.at.Sub(c0.at).Seconds()
	if n := f.HTTP.Errors(); n > 0 {
		return fmt.Errorf("%d of %d requests failed: %s", n, f.HTTP.Sent, f.HTTP.FirstError)
	}
	return nil
}

// floorTables are the rows' floor's copies of the tables an order writes.
var floorTables = []struct{ copy, of string }{
	{"bench_floor_trades", "trades"}, {"bench_floor_positions", "positions"}, {"bench_floor_entries", "ledger_entries"},
	{"bench_floor_postings", "ledger_postings"}, {"bench_floor_accounts", "ledger_accounts"},
	{"bench_floor_markets", "markets"}, {"bench_floor_head", "ledger_head"},
}

// floorStatements are the rows' floor's statements, prepared once: $1 is
// the market in the first two and the batch's number (its entry's seq) in
// the ledger's.
var floorStatements = []struct{ name, sql string }{
	{"floor_trades", `INSERT INTO bench_floor_trades (market_id, seq, account_id, outcome, side, shares, amount, prices, at)
		SELECT $1, s, a, o, 'buy', sh, am, p::numeric[], t
		FROM unnest($2::bigint[], $3::bigint[], $4::smallint[], $5::numeric[], $6::numeric[], $7::text[], $8::timestamptz[]) AS v(s, a, o, sh, am, p, t)`},
	{"floor_positions", `UPDATE bench_floor_positions p SET shares = p.shares + v.sh, paid = p.paid + v.am
		FROM unnest($2::bigint[], $3::smallint[], $4::numeric[], $5::numeric[]) AS v(a, o, sh, am)
		WHERE p.market_id = $1 AND p.account_id = v.a AND p.outcome = v.o`},
	{"floor_ledger", `WITH e AS (
			INSERT INTO bench_floor_entries (seq, at, kind, ref, prev_hash, hash) VALUES ($1, now(), 'trades', 'market/1', $2, $3)
		), p AS (
			INSERT INTO bench_floor_postings (entry_seq, idx, account, amount)
			SELECT $1, i - 1, k, am FROM unnest($4::text[], $5::numeric[]) WITH ORDINALITY AS v(k, am, i)
		), b AS (
			UPDATE bench_floor_accounts a SET balance = a.balance + v.am
			FROM unnest($4::text[], $5::numeric[]) AS v(k, am) WHERE a.key = v.k
		), m AS (
			UPDATE bench_floor_markets SET q = $6::numeric[], seq = $7, volume = volume + 1 WHERE id = $8
		)
		UPDATE bench_floor_head SET seq = $1, hash = $3`},
}

// measureRowsFloor writes the rows of floorBatch orders per transaction on
// one connection, each transaction one simple query of EXECUTEs as
// ledger.Session sends them, for d.
func (e *env) measureRowsFloor(ctx context.Context, d time.Duration, f *CPUFloor) error {
	drop := func() {
		for _, t := range floorTables {
			e.db.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS `+t.copy)
		}
	}
	drop()
	defer drop()
	traders := max(e.cfg.Clients, floorBatch)
	for _, t := range floorTables {
		if _, err := e.db.ExecContext(ctx, `CREATE TABLE `+t.copy+` (LIKE `+t.of+` INCLUDING ALL)`); err != nil {
			return fmt.Errorf("rows' floor: %w", err)
		}
	}
	for _, q := range []string{
		`INSERT INTO bench_floor_markets OVERRIDING SYSTEM VALUE SELECT * FROM markets WHERE id = ` + strconv.FormatInt(e.hot, 10),
		`INSERT INTO bench_floor_positions (market_id, account_id, outcome, shares)
			SELECT ` + strconv.FormatInt(e.hot, 10) + `, a, o, 1 FROM generate_series(1, ` + strconv.Itoa(traders) + `) a, generate_series(0, 1) o`,
		`INSERT INTO bench_floor_accounts (key, kind, balance) SELECT 'cash:' || a, 'cash', 1000000 FROM generate_series(1, ` + strconv.Itoa(traders) + `) a`,
		`INSERT INTO bench_floor_accounts (key, kind, may_go_negative) VALUES ('market:floor', 'market', true)`,
		`INSERT INTO bench_floor_head (seq, hash) VALUES (0, '\x` + strings.Repeat("00", 32) + `')`,
		`VACUUM ANALYZE bench_floor_positions, bench_floor_accounts, bench_floor_markets, bench_floor_head`,
	} {
		if _, err := e.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("rows' floor: %w", err)
		}
	}
	conn, err := e.db.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	setup := "SET " + strings.Join(engine.JournalSettings, "; SET ")
	for _, s := range floorStatements {
		setup += "; PREPARE " + s.name + " AS " + s.sql
	}
	if _, err := conn.ExecContext(ctx, setup); err != nil {
		return fmt.Errorf("rows' floor: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DEALLOCATE ALL")
	var q strings.Builder
	start, c0 := time.Now(), sampleCPU(e.pgPID)
	batches := 0
	for time.Since(start) < d && ctx.Err() == nil {
		batches++
		q.Reset()
		writeFloorBatch(&q, e.hot, batches, traders)
		if _, err := conn.ExecContext(ctx, q.String()); err != nil {
			return fmt.Errorf("rows' floor, batch %d: %w", batches, err)
		}
	}
	c1 := sampleCPU(e.pgPID)
	if err := ctx.Err(); err != nil {
		return err
	}
	_, f.RowsPG = cores(c0, c1)
	f.Rows = batches * floorBatch
	f.RowsRate = float64(f.Rows) / c1.at.Sub(c0.at).Seconds()
	return e.checkRowsFloor(ctx, batches)
}

// checkRowsFloor checks that the floor wrote every row it counts: a floor
// whose statements matched nothing would be cheap and wrong.
func (e *env) checkRowsFloor(ctx context.Context, batches int) error {
	var got struct {
		Trades   int          `db:"trades"`
		Postings int          `db:"postings"`
		Entries  int          `db:"entries"`
		Shares   levee.Micros `db:"shares"`
		Sum      levee.Micros `db:"sum"`
		Head     int          `db:"head"`
	}
	if err := e.db.GetContext(ctx, &got, `SELECT (SELECT count(*) FROM bench_floor_trades) AS trades,
		(SELECT count(*) FROM bench_floor_postings) AS postings, (SELECT count(*) FROM bench_floor_entries) AS entries,
		(SELECT sum(shares) - count(*) FROM bench_floor_positions) AS shares,
		(SELECT sum(balance) - 1000000 * (count(*) - 1) FROM bench_floor_accounts) AS sum, (SELECT seq FROM bench_floor_head) AS head`); err != nil {
		return fmt.Errorf("rows' floor: %w", err)
	}
	n := batches * floorBatch
	if got.Trades != n || got.Postings != n+batches || got.Entries != batches || got.Shares != levee.Units(int64(n)) || got.Sum != 0 || got.Head != batches {
		return fmt.Errorf("rows' floor: %d batches of %d wrote %+v", batches, floorBatch, got)
	}
	return nil
}

// writeFloorBatch writes batch n's transaction: floorBatch buys of one share
// by as many different traders, in turn among traders.
func writeFloorBatch(q *strings.Builder, market int64, n, traders int) {
	m := strconv.FormatInt(market, 10)
	at := `"` + time.Now().UTC().Format("2006-01-02 15:04:05.999999Z07") + `"`
	account := func(i int) string { return strconv.Itoa((n*floorBatch+i)%traders + 1) }
	seqs := floorArray(func(i int) string { return strconv.Itoa(n*floorBatch + i) })
	accts := floorArray(account)
	outs := floorArray(func(int) string { return "0" })
	shares := floorArray(func(int) string { return "1.000000" })
	amounts := floorArray(func(int) string { return "0.512345" })
	prices := floorArray(func(int) string { return `"{0.512345,0.487655}"` })
	ats := floorArray(func(int) string { return at })
	// The traders' postings and the market's, which balances them
	// (floorBatch × 0.512345).
	keys := strings.TrimSuffix(floorArray(func(i int) string { return "cash:" + account(i) }), "}") + ",market:floor}"
	moves := strings.TrimSuffix(floorArray(func(int) string { return "-0.512345" }), "}") + "," + levee.Micros(floorBatch*512345).String() + "}"
	hash := func() string {
		var b [32]byte
		rand.Read(b[:])
		return `'\x` + hex.EncodeToString(b[:]) + `'`
	}
	seq := strconv.Itoa(n)
	fmt.Fprintf(q, "BEGIN; EXECUTE floor_trades(%s, '%s', '%s', '%s', '%s', '%s', '%s', '%s'); ", m, seqs, accts, outs, shares, amounts, prices, ats)
	fmt.Fprintf(q, "EXECUTE floor_positions(%s, '%s', '%s', '%s', '%s'); ", m, accts, outs, shares, amounts)
	fmt.Fprintf(q, "EXECUTE floor_ledger(%s, %s, %s, '%s', '%s', '{1.5,0.5}', %s, %s); COMMIT", seq, hash(), hash(), keys, moves, seq, m)
}

// floorArray is the array literal of floorBatch elements, element i
// written by elem (already quoted where it needs to be).
func floorArray(elem func(i int) string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range floorBatch {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(elem(i))
	}
	b.WriteByte('}')
	return b.String()
}

// writeCPUFloor writes round's floor of CPU per order, beside the current
// path's closed loop of the same round (cur, if it ran).
func writeCPUFloor(b *strings.Builder, round int, f CPUFloor, cur *OrdersStep) {
	fmt.Fprintf(b, "### The floor of CPU per order (round %d)\n\n", round)
	b.WriteString("Measured after the round's variants. **HTTP**: a net/http server in a process of its own that reads each " +
		"order's request and writes the answer `levee serve` gave to one (the same headers and body), and does nothing else, " +
		"under the same closed loop. **Rows**: the rows an order makes PostgreSQL write (its trade, position, ledger posting " +
		"and balance; per commit the entry, the market row and the ledger head) into copies of those tables with the same " +
		"indexes and constraints, by one connection, in batches of " + strconv.Itoa(floorBatch) + " orders, each batch one " +
		"round trip of prepared statements as the journal sends them, with no locks, hashing or checks. Issue 18's goal is " +
		"0.06 core-ms per order for the server and PostgreSQL together.\n\n")
	b.WriteString(cpuFloorMD(f, cur))
	b.WriteString("\n")
}

// cpuFloorMD is the floor's table, with the current path beside it.
func cpuFloorMD(f CPUFloor, cur *OrdersStep) string {
	var b strings.Builder
	b.WriteString("| | orders/s | server core-ms/order | PostgreSQL core-ms/order | together | generator cores |\n|---|---:|---:|---:|---:|---:|\n")
	httpCell, rowsCell := "-", "-"
	if f.HTTPErr == "" {
		httpCell = fmt.Sprintf("%.4f", f.HTTPPerOrder())
		fmt.Fprintf(&b, "| HTTP floor (answer of %d bytes) | %.0f | %s | - | - | %.2f |\n", f.Answer, f.HTTP.Throughput, httpCell, f.HTTPGenerator)
	} else {
		fmt.Fprintf(&b, "| HTTP floor | not measured: %s | | | | |\n", f.HTTPErr)
	}
	if f.RowErr == "" {
		rowsCell = fmt.Sprintf("%.4f", f.RowsPerOrder())
		fmt.Fprintf(&b, "| rows floor (%d orders) | %.0f | - | %s | - | - |\n", f.Rows, f.RowsRate, rowsCell)
	} else {
		fmt.Fprintf(&b, "| rows floor | not measured: %s | | | | |\n", f.RowErr)
	}
	if f.HTTPErr == "" && f.RowErr == "" {
		fmt.Fprintf(&b, "| **the floor** | | %s | %s | **%.4f** | |\n", httpCell, rowsCell, f.HTTPPerOrder()+f.RowsPerOrder())
	}
	if cur != nil && cur.Throughput > 0 {
		server, pg := 1000*cur.CPUServer/cur.Throughput, 1000*cur.CPUPG/cur.Throughput
		fmt.Fprintf(&b, "| current, %s | %.0f | %.4f | %.4f | **%.4f** | %.2f |\n", cur.Step.Name, cur.Throughput, server, pg, server+pg, cur.CPUGen)
		if f.HTTPErr == "" && f.RowErr == "" {
			fmt.Fprintf(&b, "| current / the floor | | %s | %s | %s | |\n", ratio(server, f.HTTPPerOrder()), ratio(pg, f.RowsPerOrder()),
				ratio(server+pg, f.HTTPPerOrder()+f.RowsPerOrder()))
		}
	}
	return b.String()
}
