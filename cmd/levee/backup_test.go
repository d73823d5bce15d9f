package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/bench/faults"
	"levee/ledger"
	"levee/migrations"
	"levee/pgserver"
)

// MustBackupDir returns a directory the postgres user can pass through when
// the tests run as root, removed after the test.
func MustBackupDir(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "levee-backup-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o711)
	t.Cleanup(func() { os.RemoveAll(base) })
	return base
}

// MustRestoredDB starts the private cluster of a restored data directory
// and opens its database.
func MustRestoredDB(t *testing.T, data string) *sqlx.DB {
	t.Helper()
	srv, err := pgserver.Start(context.Background(), pgserver.Options{Dir: filepath.Join(data, "pg"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("start the restored cluster: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	db := sqlx.MustOpen("postgres", srv.URL("postgres"))
	t.Cleanup(func() { db.Close() })
	return db
}

var backupLine = regexp.MustCompile(`ledger head (\d+) ([0-9a-f]{64})`)

// TestBackupUnderLoadAndRestore backs Levee up through its private cluster
// while residents trade, restores the backup into a new data directory, and
// checks that the restored database holds every order acknowledged before
// the backup began, exactly as acknowledged, with positions, cash and the
// ledger agreeing; then that a backup of a tampered ledger is refused.
func TestBackupUnderLoadAndRestore(t *testing.T) {
	ctx := context.Background()
	t.Setenv("DATABASE_URL", "") // the private cluster's socket, as in production
	base := MustBackupDir(t)
	data := filepath.Join(base, "data")
	cfg := Config{Addr: "127.0.0.1:0", DataDir: data, AdminToken: testAdminToken, LogFormat: "text",
		RatePerAccount: 1e6, RatePerAddress: 1e6}
	m := NewMain(cfg, slog.New(slog.DiscardHandler), io.Discard)
	if err := m.Run(ctx); err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	tess, alice, _ := MustCity(t, m)
	_, path := MustMarket(t, tess)
	st, me := alice.do("GET", "/api/v1/me", "")
	if st != 200 {
		t.Fatalf("me: %d %v", st, me)
	}
	aliceID := me["id"].(string)

	load := startOrderLoad("http://"+m.Addr(), alice.token, path, "bk", 4)
	acked := func() (n int) {
		load.mu.Lock()
		defer load.mu.Unlock()
		for _, o := range load.results {
			if o.status == 201 {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(20 * time.Second); acked() < 50; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			load.finish()
			t.Fatalf("only %d orders acknowledged in 20 s", acked())
		}
	}

	// Every answer recorded now arrived before the backup began.
	load.mu.Lock()
	before := append([]orderOutcome(nil), load.results...)
	load.mu.Unlock()
	file := filepath.Join(base, "backups", "levee.dump")
	var out bytes.Buffer
	began := time.Now()
	code, err := run(ctx, []string{"backup", "--out", file, "--data", data}, &out, io.Discard)
	backupTook := time.Since(began)
	if code != 0 || err != nil {
		load.finish()
		t.Fatalf("backup: exit %d: %v\n%s", code, err, out.String())
	}
	ended := time.Now()
	for acked() < len(before)+20 && time.Since(ended) < 5*time.Second {
		time.Sleep(20 * time.Millisecond)
	}
	results := load.finish()
	head := backupLine.FindStringSubmatch(out.String())
	if head == nil {
		t.Fatalf("backup printed no ledger head: %q", out.String())
	}
	var during, ackedBefore int
	for _, o := range results {
		if o.status == 201 && o.sent.Before(ended) && o.sent.Add(o.took).After(began) {
			during++
		}
	}
	for _, o := range before {
		if o.status == 201 {
			ackedBefore++
		}
	}
	if during == 0 {
		t.Fatalf("no order was acknowledged while the backup ran (%s): not a backup under load", backupTook)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v, want mode 0600", fi, err)
	}
	if partials, _ := filepath.Glob(filepath.Join(base, "backups", ".*partial*")); len(partials) != 0 {
		t.Fatalf("partial files left behind: %v", partials)
	}

	restored := filepath.Join(base, "restored")
	out.Reset()
	began = time.Now()
	code, err = run(ctx, []string{"restore", "--in", file, "--data", restored}, &out, io.Discard)
	restoreTook := time.Since(began)
	if code != 0 || err != nil {
		t.Fatalf("restore: exit %d: %v\n%s", code, err, out.String())
	}
	if want := "ledger OK: " + head[1] + " entries, head " + head[1] + " " + head[2]; !strings.Contains(out.String(), want) {
		t.Fatalf("restore printed %q, want %q (the backup's head)", out.String(), want)
	}
	if _, err := os.Stat(filepath.Join(restored, restoreStaging)); !os.IsNotExist(err) {
		t.Fatalf("the staging cluster is still there after a restore: %v", err)
	}
	if code, err := run(ctx, []string{"restore", "--in", file, "--data", restored}, io.Discard, io.Discard); code == 0 || err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore over a restored directory: exit %d, %v", code, err)
	}

	db := MustRestoredDB(t, restored)
	if err := migrations.Check(ctx, db); err != nil {
		t.Fatalf("restored schema: %v", err)
	}
	stored, err := faults.StoredByKey(ctx, db, "bk-%")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range before {
		if seqs := stored[o.key]; o.status == 201 && (len(seqs) != 1 || seqs[0] != o.seq) {
			t.Fatalf("order %s, acknowledged as seq %d before the backup, is restored as %v", o.key, o.seq, seqs)
		}
	}
	answered := map[string]orderOutcome{}
	for _, o := range results {
		answered[o.key] = o
	}
	for key, seqs := range stored {
		o, ok := answered[key]
		switch {
		case !ok || len(seqs) != 1:
			t.Fatalf("restored order %s (seqs %v) was never sent once", key, seqs)
		case o.status == 201 && seqs[0] != o.seq:
			t.Fatalf("restored order %s has seq %d, acknowledged as %d", key, seqs[0], o.seq)
		}
	}
	if n, err := faults.PositionMismatches(ctx, db); err != nil || n != 0 {
		t.Fatalf("%d restored positions disagree with the restored trades (%v)", n, err)
	}
	id, _ := strconv.ParseInt(aliceID, 10, 64)
	spent, err := faults.NetSpent(ctx, db, id)
	if err != nil {
		t.Fatal(err)
	}
	cash, err := ledger.Balance(ctx, db, "cash:"+aliceID)
	if err != nil {
		t.Fatal(err)
	}
	if want := levee.Units(1000) - levee.MustMicros(spent); cash != want {
		t.Fatalf("restored cash of alice: %s, want %s from the restored trades", cash, want)
	}
	r, err := ledger.New(db).Verify(ctx)
	if err != nil || !r.OK || strconv.FormatInt(r.HeadSeq, 10) != head[1] {
		t.Fatalf("restored ledger: %+v %v, want head %s", r, err, head[1])
	}
	t.Logf("%d orders acknowledged before the backup, %d while it ran; %d restored; backup %s (%s), restore %s",
		ackedBefore, during, len(stored), backupTook.Round(time.Millisecond), head[0], restoreTook.Round(time.Millisecond))

	// A backup whose ledger was changed behind its back does not restore.
	tx := db.MustBegin()
	tx.MustExec(`SET LOCAL session_replication_role = replica`)
	tx.MustExec(`UPDATE ledger_postings SET amount = amount + 1 WHERE entry_seq = 3 AND amount > 0`)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(base, "tampered.dump")
	if code, err := run(ctx, []string{"backup", "--out", tampered, "--data", restored}, io.Discard, io.Discard); code != 0 || err != nil {
		t.Fatalf("backup of the restored cluster, running: exit %d: %v", code, err)
	}
	third := filepath.Join(base, "third")
	out.Reset()
	code, err = run(ctx, []string{"restore", "--in", tampered, "--data", third}, &out, io.Discard)
	if code == 0 || err == nil || !strings.Contains(err.Error(), "does not verify") || !strings.Contains(out.String(), "BROKEN at entry 3") {
		t.Fatalf("restore of a tampered ledger: exit %d, %v, %q", code, err, out.String())
	}
	if _, err := os.Stat(filepath.Join(third, "pg")); !os.IsNotExist(err) {
		t.Fatalf("a restore that does not verify was put in place for levee serve: %v", err)
	}
	if !pgserver.Initialised(filepath.Join(third, restoreStaging)) {
		t.Fatal("the unverified restore was not kept for inspection")
	}

	// With Levee stopped, backup starts the private cluster itself.
	m.Close()
	out.Reset()
	if code, err := run(ctx, []string{"backup", "--out", file, "--data", data}, &out, io.Discard); code != 0 || err != nil {
		t.Fatalf("backup with levee stopped: exit %d: %v", code, err)
	}
	after := backupLine.FindStringSubmatch(out.String())
	if after == nil || mustAtoi(t, after[1]) < mustAtoi(t, head[1]) {
		t.Fatalf("backup with levee stopped printed %q, want a head at or after %s", out.String(), head[1])
	}
}

func TestBackupRefusesWhatIsNotThere(t *testing.T) {
	ctx := context.Background()
	t.Setenv("DATABASE_URL", "")
	base := MustBackupDir(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"backup"}, 2, ""},
		{[]string{"restore", "--data", base}, 2, ""},
		{[]string{"restore", "--in", filepath.Join(base, "x.dump")}, 2, ""},
		{[]string{"backup", "--out", filepath.Join(base, "x.dump"), "--data", filepath.Join(base, "nothing")}, 1, "no Levee database"},
		{[]string{"restore", "--in", filepath.Join(base, "missing.dump"), "--data", filepath.Join(base, "new")}, 1, "no such file"},
	} {
		code, err := run(ctx, tc.args, io.Discard, io.Discard)
		if code != tc.code || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("levee %v: exit %d, %v; want exit %d and %q", tc.args, code, err, tc.code, tc.want)
		}
	}
	garbage := filepath.Join(base, "garbage.dump")
	os.WriteFile(garbage, []byte("not a backup at all"), 0o600)
	code, err := run(ctx, []string{"restore", "--in", garbage, "--data", filepath.Join(base, "new")}, io.Discard, io.Discard)
	if code != 1 || err == nil || !strings.Contains(err.Error(), "does not read as a backup") {
		t.Fatalf("restore of garbage: exit %d, %v", code, err)
	}
	if _, err := os.Stat(filepath.Join(base, "new", "pg")); !os.IsNotExist(err) {
		t.Fatalf("restore of garbage made a cluster: %v", err)
	}
	t.Setenv("DATABASE_URL", "host=/nowhere dbname=levee")
	if code, err := run(ctx, []string{"restore", "--in", garbage, "--data", filepath.Join(base, "new2")}, io.Discard, io.Discard); code != 1 || err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("restore with DATABASE_URL set: exit %d, %v", code, err)
	}
}

func TestLibpqConninfo(t *testing.T) {
	for _, tc := range []struct{ in, conninfo, password string }{
		{"host=/tmp/x port=5432 user=levee dbname=postgres sslmode=disable", "host='/tmp/x' port='5432' user='levee' dbname='postgres' sslmode='disable'", ""},
		{"host=db user=levee password=s3cret dbname=levee", "host='db' user='levee' dbname='levee'", "s3cret"},
		{`host=db password='a\'b c' dbname='my db' application_name=o\'k`, `host='db' dbname='my db' application_name='o\'k'`, "a'b c"},
		{"postgres://levee:s3cret@db:5432/levee?sslmode=require", "postgres://levee@db:5432/levee?sslmode=require", "s3cret"},
		{"postgresql://db/levee?password=s3cret&sslmode=disable", "postgresql://db/levee?sslmode=disable", "s3cret"},
	} {
		conninfo, password, err := libpqConninfo(tc.in)
		if err != nil || conninfo != tc.conninfo || password != tc.password {
			t.Errorf("%q: got %q %q %v, want %q %q", tc.in, conninfo, password, err, tc.conninfo, tc.password)
		}
	}
	for _, bad := range []string{"host=db password='open", "host", "=x"} {
		if c, _, err := libpqConninfo(bad); err == nil {
			t.Errorf("%q: parsed as %q", bad, c)
		}
	}
}
