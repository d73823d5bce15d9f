package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSectionsSurviveEachOther checks that each scenario replaces only its
// own section and that the main report carries both over.
func TestSectionsSurviveEachOther(t *testing.T) {
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	steps := []struct {
		name        string
		write       func() error
		want, never []string
	}{
		{"faults into a missing file", func() error { return writeSection(path, "faults", "## 8. Faults\n\nfirst faults") },
			[]string{"first faults"}, nil},
		{"soak appended", func() error { return writeSection(path, "soak", "## 9. Soak\n\nfirst soak") },
			[]string{"first faults", "first soak"}, nil},
		{"faults replaced", func() error { return writeSection(path, "faults", "## 8. Faults\n\nsecond faults") },
			[]string{"second faults", "first soak"}, []string{"first faults"}},
		{"hostile appended", func() error { return writeSection(path, "hostile", "## 10. Hostile requests\n\nfirst hostile") },
			[]string{"second faults", "first soak", "first hostile"}, nil},
		{"cluster faults appended", func() error {
			return writeSection(path, "cluster-faults", "## Cluster faults\n\nfirst cluster faults")
		}, []string{"second faults", "first soak", "first hostile", "first cluster faults"}, nil},
		{"main report rewritten", func() error { return writeReport(path, &Report{}) },
			[]string{"# Levee benchmarks", "second faults", "first soak", "first hostile", "first cluster faults"}, nil},
		{"soak replaced after the main report", func() error { return writeSection(path, "soak", "## 9. Soak\n\nsecond soak") },
			[]string{"# Levee benchmarks", "second faults", "second soak", "first hostile"}, []string{"first soak"}},
	}
	for _, s := range steps {
		if err := s.write(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(b)
		for _, w := range s.want {
			if strings.Count(doc, w) != 1 {
				t.Errorf("%s: %q appears %d times, want once:\n%s", s.name, w, strings.Count(doc, w), doc)
			}
		}
		for _, n := range s.never {
			if strings.Contains(doc, n) {
				t.Errorf("%s: %q is still there", s.name, n)
			}
		}
	}
}
