package settlement_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"levee/internal/recipe"
	"levee/settlement"
)

// TestJuryPythonRecipe runs the Python recipe printed in docs/juries.md
// against draws served the way GET /api/v1/cases/{id}/draw and
// GET /api/v1/ledger/entries serve them — a stratified draw with an outside
// share, and an unstratified one with a redraw and an appeal — so the
// recipe cannot rot.
func TestJuryPythonRecipe(t *testing.T) {
	python, path := recipe.Python(t, "../docs/juries.md")

	act := baseRules()
	act.Stratify, act.OutsideShare, act.Bond = true, 300000, 0
	flat := baseRules()
	w := MustWorld(t, []int{9, 7, 5}, act, flat)
	party := w.residents[2][0]
	w.MustSubject("act:1", settlement.Facts{Kind: "act", Question: "Was the emergency closure justified?", Districts: w.districts[:2]})
	w.MustSubject("flat:2", settlement.Facts{Kind: "flat", Question: "Did the pump run?", Parties: map[int64]string{party: "steward"}})
	stratified, err := w.svc.OpenReview(w.ctx, "act:1", "review")
	if err != nil {
		t.Fatal(err)
	}
	c, err := w.svc.OpenReview(w.ctx, "flat:2", "review")
	if err != nil {
		t.Fatal(err)
	}
	// A tie, a redraw that decides, and an appeal.
	w.MustVote(c.ID, "accept", "accept", "reject", "reject", "")
	if v := w.MustVote(c.ID, "accept", "accept", "accept", "accept", "accept"); v.Status != settlement.StatusAppealable {
		t.Fatalf("flat case: %s", v.Status)
	}
	if _, err := w.svc.Appeal(w.ctx, principal(party), c.ID, "again"); err != nil {
		t.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/cases/{id}/draw", func(rw http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		rep, err := w.svc.Draw(r.Context(), id)
		if err != nil {
			http.Error(rw, err.Error(), 404)
			return
		}
		json.NewEncoder(rw).Encode(rep)
	})
	mux.HandleFunc("GET /api/v1/cases/{id}", func(rw http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		v, err := w.svc.Case(r.Context(), nil, id)
		if err != nil {
			http.Error(rw, err.Error(), 404)
			return
		}
		json.NewEncoder(rw).Encode(v)
	})
	mux.HandleFunc("GET /api/v1/ledger/entries", func(rw http.ResponseWriter, r *http.Request) {
		after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		p, err := w.ledger.Page(r.Context(), after, limit)
		if err != nil {
			http.Error(rw, err.Error(), 400)
			return
		}
		json.NewEncoder(rw).Encode(p)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, id := range []int64{stratified.ID, c.ID} {
		draws := w.MustRecompute(id)
		out, err := exec.CommandContext(w.ctx, python, path, srv.URL, strconv.FormatInt(id, 10)).CombinedOutput()
		if err != nil {
			t.Fatalf("recipe failed on case %d: %v\n%s", id, err, out)
		}
		want := ""
		for _, d := range draws {
			want += fmt.Sprintf("draw %d: jurors %s recomputed\n", d.N, strings.Join(d.Jurors, " "))
		}
		want += fmt.Sprintf("case %d: %d draws recomputed; 0 pseudonyms that traded in its market or disputed it are in no pool\n", id, len(draws))
		if string(out) != want {
			t.Fatalf("recipe output for case %d:\n%s\nwant:\n%s", id, out, want)
		}
		t.Logf("case %d:\n%s", id, out)
	}
	// The stratified case has district strata and an outside stratum with
	// floor(5 × 0.3) = 1 seat of its first round (while the flat case was
	// voting, its own rounds passed with no votes and were redrawn).
	draws := w.MustRecompute(stratified.ID)
	if st := draws[0].Strata; len(st) != 3 || st[2].Key != "outside" || st[2].Share != 0.3 || draws[0].Seats[0] != 5 {
		t.Fatalf("strata %+v, seats %v", st, draws[0].Seats)
	}
	outside := 0
	for _, j := range draws[0].Jurors[:5] {
		for _, id := range draws[0].Strata[2].IDs {
			if id == j {
				outside++
			}
		}
	}
	if outside != 1 {
		t.Fatalf("%d outside jurors, want 1", outside)
	}
	if d := w.MustRecompute(c.ID); len(d) != 2 || len(d[0].Seats) != 2 {
		t.Fatalf("flat case draws %+v", d)
	}

	// A tampered draw makes the recipe fail.
	bad := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/draw") {
			mux.ServeHTTP(rw, r)
			return
		}
		rep, _ := w.svc.Draw(r.Context(), c.ID)
		rep.Draws[0].Jurors[0], rep.Draws[0].Jurors[1] = rep.Draws[0].Jurors[1], rep.Draws[0].Jurors[0]
		json.NewEncoder(rw).Encode(rep)
	}))
	defer bad.Close()
	if out, err := exec.CommandContext(w.ctx, python, path, bad.URL, strconv.FormatInt(c.ID, 10)).CombinedOutput(); err == nil || !strings.Contains(string(out), "recomputed") {
		t.Fatalf("recipe accepted swapped jurors: %v\n%s", err, out)
	}
}
