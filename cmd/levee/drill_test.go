package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// demoClient signs in as a demo city account by name with a fresh token.
func demoClient(t *testing.T, m *Main, name string) *client {
	t.Helper()
	ctx := context.Background()
	id, err := m.Accounts.IDByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := m.Accounts.CreateToken(ctx, id, "test")
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, m, token)
}

// TestDrill runs `levee drill`'s scenario on the demo city and checks what
// it leaves behind through the public API.
func TestDrill(t *testing.T) {
	m, _, clk := MustRunMainClock(t, func(c *Config) { c.Demo = true })
	var out bytes.Buffer
	if err := m.Drill(context.Background(), clk, &out); err != nil {
		t.Fatalf("drill: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	anon := anonymous(t, m)

	// The emergency ended, with every act reviewed and shown (the demo
	// city's storm of six weeks ago is the other one).
	_, es := anon.do("GET", "/api/v1/emergencies", "")
	list := es["emergencies"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["end_reason"] != "expired" || !strings.HasPrefix(list[0].(map[string]any)["reason"].(string), "Hurricane") {
		t.Fatalf("emergencies: %v", es)
	}
	if _, cur := anon.do("GET", "/api/v1/emergency", ""); cur["emergency"] != nil {
		t.Fatalf("an emergency is still current: %v", cur)
	}
	_, e := anon.do("GET", "/api/v1/emergencies/"+list[0].(map[string]any)["id"].(string), "")
	var reviews []string
	for _, a := range e["acts"].([]any) {
		reviews = append(reviews, a.(map[string]any)["review"].(string))
	}
	if strings.Join(reviews, ",") != "refer,ratify,ratify" {
		t.Fatalf("reviews (newest first): %v", reviews)
	}

	// The direct award is published as OCDS limited procurement with the
	// emergency as its rationale, and validates against the schema.
	_, ts := anon.do("GET", "/api/v1/tenders", "")
	var direct string
	for _, x := range ts["tenders"].([]any) {
		if x := x.(map[string]any); x["method"] == "limited" {
			direct = x["id"].(string)
		}
	}
	if direct == "" {
		t.Fatalf("no limited tender: %v", ts)
	}
	st, pkg := anon.do("GET", "/api/v1/ocds/releases/"+direct, "")
	if st != 200 {
		t.Fatalf("ocds: %d %v", st, pkg)
	}
	b, _ := json.Marshal(pkg)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := MustOCDSReleasePackageSchema(t).Validate(inst); err != nil {
		t.Fatalf("release package: %v\n%s", err, b)
	}
	if !strings.Contains(string(b), `"procurementMethod":"limited"`) || !strings.Contains(string(b), `"procurementMethodRationale":"Emergency 2: Hurricane`) {
		t.Fatalf("not published as limited procurement: %s", b)
	}
	if st, r := anon.do("GET", "/api/v1/ledger/verify", ""); st != 200 || r["ok"] != true {
		t.Fatalf("ledger: %v", r)
	}
}
