package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// MustOCDSReleasePackageSchema compiles the official release package schema
// from the contracting package's fixtures, each file registered under its id
// URL (no network).
func MustOCDSReleasePackageSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	const base = "https://standard.open-contracting.org/schema/1__1__5/"
	c := jsonschema.NewCompiler()
	files, _ := filepath.Glob(filepath.Join("..", "..", "contracting", "testdata", "ocds", "*.json"))
	if len(files) == 0 {
		t.Fatal("no OCDS schemas in contracting/testdata/ocds")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddResource(base+filepath.Base(f), doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile(base + "release-package-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOCDSOverHTTP exports a tender while bidding (no bid data for anyone,
// not even the treasurer), after close and after the award, validating each
// package, and reads a contractor's track record.
func TestOCDSOverHTTP(t *testing.T) {
	m, _ := MustRunMain(t)
	tess, alice, bob := MustCity(t, m)
	admin := newClient(t, m, testAdminToken)
	anon := newClient(t, m, "")
	mk := func(body string) (*client, string) {
		st, a := admin.do("POST", "/api/v1/admin/accounts", body)
		if st != 201 {
			t.Fatalf("create account: %d %v", st, a)
		}
		return newClient(t, m, a["token"].(string)), a["id"].(string)
	}
	dyke, dykeID := mk(`{"name":"dykeworks","roles":["contractor"]}`)
	polder, polderID := mk(`{"name":"polderco","roles":["contractor"]}`)
	line := MustBudgetLine(t, m, tess, alice, bob)
	schema := MustOCDSReleasePackageSchema(t)
	validate := func(pkg map[string]any) string {
		t.Helper()
		b, _ := json.Marshal(pkg)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(inst); err != nil {
			t.Fatalf("release package: %v\n%s", err, b)
		}
		return string(b)
	}

	now := time.Now().UTC()
	closes := now.Add(3 * time.Second)
	decision := closes.Add(3 * time.Second)
	completion := decision.Add(5 * time.Minute)
	rfc := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	st, tender := tess.do("POST", "/api/v1/tenders", `{"budget_line":"`+line+`","title":"Repair the north dyke","scope":"200 m","districts":["north"],
		"budget_cap":"150","closes_at":"`+rfc(closes)+`","decision_at":"`+rfc(decision)+`","min_confidence":"0.5",
		"twap_window":"1s","milestones":[{"title":"All","share":"1"}]}`)
	if st != 201 {
		t.Fatalf("create tender: %d %v", st, tender)
	}
	tid := tender["id"].(string)
	for _, b := range []struct {
		c          *client
		org, price string
	}{{dyke, dykeID, "100"}, {polder, polderID, "98.765432"}} {
		if st, r := b.c.do("POST", "/api/v1/tenders/"+tid+"/bids", `{"organisation":"`+b.org+`","price":"`+b.price+`","completion_at":"`+
			rfc(completion)+`","milestone_dates":["`+rfc(completion)+`"],"method_statement":"secret method"}`); st != 201 {
			t.Fatalf("bid: %d %v", st, r)
		}
	}
	if st, _ := anon.do("GET", "/api/v1/ocds/releases/999999", ""); st != 404 {
		t.Fatalf("missing tender: %d", st)
	}

	// Sealed: nobody, not even a bidder or the treasurer, gets bid data.
	for name, c := range map[string]*client{"anonymous": anon, "treasurer": tess, "bidder": dyke} {
		for _, kind := range []string{"releases", "records"} {
			st, pkg := c.do("GET", "/api/v1/ocds/"+kind+"/"+tid, "")
			if st != 200 || !strings.HasSuffix(pkg["uri"].(string), "/api/v1/ocds/"+kind+"/"+tid) {
				t.Fatalf("%s %s: %d %v", name, kind, st, pkg)
			}
			b, _ := json.Marshal(pkg)
			for _, secret := range []string{"dykeworks", "polderco", "98.765432", `"bids"`, "tenderer"} {
				if strings.Contains(string(b), secret) {
					t.Fatalf("%s sees %q in the %s before close: %s", name, secret, kind, b)
				}
			}
		}
	}
	_, pkg := anon.do("GET", "/api/v1/ocds/releases/"+tid, "")
	validate(pkg)
	if r := pkg["releases"].([]any)[0].(map[string]any); r["ocid"] != "ocds-levee-"+tid || r["initiationType"] != "tender" {
		t.Fatalf("release: %v", r)
	}

	waitUntil(t, closes)
	if st, b := tess.do("POST", "/api/v1/tenders/"+tid+"/close-bids", ``); st != 200 {
		t.Fatalf("close bids: %d %v", st, b)
	}
	_, pkg = anon.do("GET", "/api/v1/ocds/releases/"+tid, "")
	if raw := validate(pkg); !strings.Contains(raw, "98.765432") || !strings.Contains(raw, `"forecast"`) || strings.Contains(raw, "secret method") {
		t.Fatalf("after close: %s", raw)
	}

	waitUntil(t, decision)
	if st, b := tess.do("POST", "/api/v1/tenders/"+tid+"/award", ``); st != 200 || b["status"] != "awarded" {
		t.Fatalf("award: %d %v", st, b)
	}
	_, pkg = anon.do("GET", "/api/v1/ocds/releases/"+tid, "")
	validate(pkg)
	st, rec := anon.do("GET", "/api/v1/ocds/records/"+tid, "")
	compiled := rec["records"].([]any)[0].(map[string]any)["compiledRelease"].(map[string]any)
	award := compiled["awards"].([]any)[0].(map[string]any)
	if st != 200 || award["suppliers"].([]any)[0].(map[string]any)["name"] != "polderco" || len(compiled["contracts"].([]any)) != 1 {
		t.Fatalf("record after award: %d %v", st, compiled)
	}

	st, tr := anon.do("GET", "/api/v1/contractors/"+polderID+"/track-record", "")
	if st != 200 || tr["contracts"] != 1.0 || tr["active"] != 1.0 || tr["brier_score"] != nil {
		t.Fatalf("track record: %d %v", st, tr)
	}
	if st, _ := anon.do("GET", "/api/v1/contractors/999999/track-record", ""); st != 404 {
		t.Fatalf("track record of nobody: %d", st)
	}
}
