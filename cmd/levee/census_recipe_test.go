package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"levee/bench/hostile"
	"levee/internal/recipe"
)

// TestPublicRecipesOnTheDemoCity runs, against the demo city (treasury,
// budget lines, contracts in escrow, trading, juries), the census recipe of
// docs/budgets.md and the export check of docs/privacy.md, as a resident
// would: from public exports and their own export alone.
func TestPublicRecipesOnTheDemoCity(t *testing.T) {
	censusPy, censusScript := recipe.Python(t, "../../docs/budgets.md")
	_, exportScript := recipe.Python(t, "../../docs/privacy.md")
	m, _, _ := MustRunMainClock(t, func(c *Config) { c.Demo = true })
	base := "http://" + m.Addr()

	out, err := exec.CommandContext(t.Context(), censusPy, censusScript, base).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "census OK: ") {
		t.Fatalf("census recipe: %v\n%s", err, out)
	}
	t.Logf("%s", out)

	text, err := os.ReadFile(m.credentialsPath())
	if err != nil {
		t.Fatal(err)
	}
	creds, err := hostile.ParseCredentials(string(text))
	if err != nil {
		t.Fatal(err)
	}
	var alice string
	for _, c := range creds.Accounts {
		if c.Name == "alice" {
			alice = c.Token
		}
	}
	st, body := newClient(t, m, alice).raw("/api/v1/me/export")
	if st != 200 {
		t.Fatalf("export: %d", st)
	}
	file := filepath.Join(t.TempDir(), "levee-export.json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.CommandContext(t.Context(), censusPy, exportScript, file, base).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "entries match the public chain") {
		t.Fatalf("export recipe: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
