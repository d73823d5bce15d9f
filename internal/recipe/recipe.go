// Package recipe runs the code recipes printed in the docs from tests, so
// that what a citizen copies out of docs/ledger.md or docs/juries.md keeps
// working.
package recipe

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Python writes the first ```python block of the Markdown file doc to a
// temporary file and returns the python3 to run it with and the script's
// path. It skips the test where python3 is not installed.
func Python(t testing.TB, doc string) (python, script string) {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	_, code, ok := strings.Cut(string(b), "```python\n")
	code, _, ok2 := strings.Cut(code, "```")
	if !ok || !ok2 {
		t.Fatalf("%s has no python block", doc)
	}
	script = filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(doc), ".md")+".py")
	if err := os.WriteFile(script, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	return python, script
}
