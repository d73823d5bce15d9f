package layout

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// root is the module's root, two levels up from this package.
const root = "../.."

var (
	createTable = regexp.MustCompile(`(?m)^CREATE TABLE (?:IF NOT EXISTS )?([a-z_]+)`)
	// sqlTable finds a table named by a statement: SQL here is written with
	// upper-case keywords, so English prose ("from the treasury") is not
	// mistaken for it.
	sqlTable = regexp.MustCompile(`\b(?:FROM|JOIN|INTO|UPDATE)\s+([a-z_]+)`)
)

// MustMigratedTables returns every table the migrations create.
func MustMigratedTables(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("migrations: %v (%d files)", err, len(files))
	}
	var tables []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range createTable.FindAllSubmatch(b, -1) {
			tables = append(tables, string(m[1]))
		}
	}
	sort.Strings(tables)
	return tables
}

// MustDocSection returns the lines of a fenced block that follows heading in
// docs/architecture.md.
func MustDocSection(t *testing.T, heading string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := bytes.Cut(b, []byte("\n"+heading+"\n"))
	if !ok {
		t.Fatalf("docs/architecture.md has no heading %q", heading)
	}
	_, rest, ok = bytes.Cut(rest, []byte("```\n"))
	block, _, ok2 := bytes.Cut(rest, []byte("```"))
	if !ok || !ok2 {
		t.Fatalf("docs/architecture.md: no fenced block under %q", heading)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(block))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// names splits "a, b, c: what they are" into a, b and c.
func names(line string) []string {
	list, _, _ := strings.Cut(line, ":")
	var out []string
	for _, n := range strings.Split(list, ",") {
		out = append(out, strings.TrimSpace(n))
	}
	return out
}

func TestEveryTableHasOneOwner(t *testing.T) {
	tables := MustMigratedTables(t)
	for _, tb := range tables {
		if Owners[tb] == "" {
			t.Errorf("table %s has no owner in internal/layout/owners.go", tb)
		}
	}
	for tb := range Owners {
		if !slices.Contains(tables, tb) {
			t.Errorf("owners.go names table %s, which no migration creates", tb)
		}
	}
	// The table list in docs/architecture.md is this map, owner by owner.
	documented := map[string]string{}
	for _, line := range MustDocSection(t, "## Tables") {
		owner, list, ok := strings.Cut(line, ":")
		if !ok {
			t.Errorf("docs/architecture.md tables: %q is not \"package: table, table\"", line)
			continue
		}
		for _, tb := range strings.Split(list, ",") {
			documented[strings.TrimSpace(tb)] = strings.TrimSpace(owner)
		}
	}
	for tb, owner := range Owners {
		if documented[tb] != owner {
			t.Errorf("docs/architecture.md lists table %s under %q; owners.go says %q", tb, documented[tb], owner)
		}
	}
	for tb := range documented {
		if Owners[tb] == "" {
			t.Errorf("docs/architecture.md lists table %s, which owners.go does not", tb)
		}
	}
}

// TestTablesAreReadOnlyByTheirOwner scans the SQL of every package (tests
// aside: they set up whatever they need) for a table named in FROM, JOIN,
// INTO or UPDATE, and fails on a table that another package owns.
func TestTablesAreReadOnlyByTheirOwner(t *testing.T) {
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "node_modules" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || rel == "internal/layout/owners.go" {
			return nil
		}
		for _, o := range Outside {
			if strings.HasPrefix(rel, o) {
				return nil
			}
		}
		pkg := filepath.ToSlash(filepath.Dir(rel))
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for n, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue
			}
			for _, m := range sqlTable.FindAllStringSubmatch(line, -1) {
				if owner := Owners[m[1]]; owner != "" && owner != pkg {
					t.Errorf("%s:%d: %s names table %s, which %s owns: go through %s's exported functions", rel, n+1, pkg, m[1], owner, owner)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestImportLayers checks `go list` against the picture in
// docs/architecture.md: a package imports only packages on lines below its
// own. Every package of the module is in the picture ("dir/..." stands for
// a tree).
func TestImportLayers(t *testing.T) {
	layers := MustDocSection(t, "## Layers")
	// tree is the "dir/..." entry pkg falls under, if any: packages of one
	// tree may import each other.
	tree := func(pkg string) string {
		rel := strings.TrimPrefix(pkg, "levee/")
		for _, line := range layers {
			for _, n := range names(line) {
				if strings.HasSuffix(n, "/...") && strings.HasPrefix(rel+"/", strings.TrimSuffix(n, "...")) {
					return n
				}
			}
		}
		return ""
	}
	level := func(pkg string) int {
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, "levee"), "/")
		if rel == "" {
			rel = "levee"
		}
		for i, line := range layers {
			for _, n := range names(line) {
				if n == rel || strings.HasSuffix(n, "/...") && strings.HasPrefix(rel+"/", strings.TrimSuffix(n, "...")) {
					return len(layers) - i // higher in the picture, higher the level
				}
			}
		}
		return -1
	}
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, lv := fields[0], level(fields[0])
		if lv < 0 {
			t.Errorf("%s is not in the picture of docs/architecture.md", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if imp != "levee" && !strings.HasPrefix(imp, "levee/") {
				continue
			}
			if t := tree(pkg); t != "" && t == tree(imp) {
				continue
			}
			if il := level(imp); il >= lv {
				t.Errorf("%s imports %s, which is not below it in docs/architecture.md", pkg, imp)
			}
		}
	}
}
