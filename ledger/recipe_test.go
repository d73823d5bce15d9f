package ledger_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"levee/internal/recipe"
)

// TestPythonRecipe runs the verification script printed in docs/ledger.md
// against an export served from a real ledger, so the recipe cannot rot.
func TestPythonRecipe(t *testing.T) {
	python, path := recipe.Python(t, "../docs/ledger.md")

	ctx := context.Background()
	l, sqldb := MustLedger(t)
	// A ledger from before pseudonyms, whose private epoch begins after 60
	// entries: the recipe checks both epochs in one pass (docs/ledger.md,
	// "Epochs"). Accounts 0-9 are people's, the rest organisations'.
	if _, err := sqldb.ExecContext(ctx, `UPDATE ledger_head SET private_from = NULL`); err != nil {
		t.Fatal(err)
	}
	accounts, ts := batchFlow(1100) // more than one page of 1,000
	pseudonyms := map[string]string{}
	for i := range 10 {
		pseudonyms[accounts[i]] = "cash:" + mustPersonal(t, sqldb, int64(i))
	}
	MustOpen(t, l, accounts...)
	for _, tr := range ts[:60] {
		if _, err := l.Transfer(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	if ep, err := l.BeginPrivateEpoch(ctx); err != nil || ep.PrivateFrom != 62 {
		t.Fatalf("epoch %+v, %v", ep, err)
	}
	if err := postBatchTx(ctx, sqldb, ts[60:]); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		p, err := l.Page(r.Context(), after, limit)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		json.NewEncoder(w).Encode(p)
	}))
	defer srv.Close()

	out, err := exec.CommandContext(ctx, python, path, srv.URL).CombinedOutput()
	if err != nil {
		t.Fatalf("recipe failed: %v\n%s", err, out)
	}
	rep := MustVerify(t, l)
	if !strings.Contains(string(out), "1102 entries verified; head hash "+rep.HeadHash) {
		t.Fatalf("recipe output:\n%s\nwant head %s", out, rep.HeadHash)
	}
	// A person's balance is under their pseudonym, their old name is empty;
	// an organisation's stays under its id.
	for _, k := range []string{"cash:7", "cash:20", "fees", "treasury:issuance"} {
		name := k
		if p, ok := pseudonyms[k]; ok {
			name = p
			if line := k + " 0.000000"; !strings.Contains(string(out), line+"\n") {
				t.Errorf("recipe output lacks %q", line)
			}
		}
		if line := name + " " + MustBalance(t, l, k).String(); !strings.Contains(string(out), line+"\n") {
			t.Errorf("recipe output lacks %q", line)
		}
	}
}
