package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The fault, soak, hostile, reads, orders, cluster and cluster-faults scenarios
// write their own sections of RESULTS.md (and fanout-pool is written by hand
// from bench/cmd/levee-fanout),
// between markers, so that each run replaces only its own figures: the main
// benchmark keeps the sections it did not measure, and a scenario leaves
// everything else as it was.
var scenarioSections = []string{"faults", "soak", "hostile", "reads", "orders", "fanout-pool", "cluster", "cluster-faults"}

func sectionMarkers(name string) (begin, end string) {
	return fmt.Sprintf("<!-- levee-bench:%s:begin -->", name), fmt.Sprintf("<!-- levee-bench:%s:end -->", name)
}

// findSection returns the marked section name of doc, markers included.
func findSection(doc, name string) (string, bool) {
	begin, end := sectionMarkers(name)
	i := strings.Index(doc, begin)
	if i < 0 {
		return "", false
	}
	j := strings.Index(doc[i:], end)
	if j < 0 {
		return "", false
	}
	return doc[i : i+j+len(end)], true
}

// preservedSections returns the scenario sections of the report at path, to
// be carried over into a rewritten report.
func preservedSections(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var out strings.Builder
	for _, name := range scenarioSections {
		if s, ok := findSection(string(b), name); ok {
			out.WriteString(s)
			out.WriteString("\n\n")
		}
	}
	return out.String()
}

// writeSection replaces the marked section name of the report at path with
// body, or appends it; the rest of the file is left as it was.
func writeSection(path, name, body string) error {
	begin, end := sectionMarkers(name)
	section := begin + "\n\n" + strings.TrimSpace(body) + "\n\n" + end
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	doc := string(b)
	if old, ok := findSection(doc, name); ok {
		doc = strings.Replace(doc, old, section, 1)
	} else {
		if doc != "" && !strings.HasSuffix(doc, "\n\n") {
			doc = strings.TrimRight(doc, "\n") + "\n\n"
		}
		doc += section + "\n"
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

// finishScenario rewrites a scenario's section of cfg.Out with section, once
// it has run, and returns its error: err, else the failures it found.
func finishScenario(cfg Config, stdout io.Writer, name, section string, failures []string, err error) error {
	if werr := writeSection(cfg.Out, name, section); werr != nil {
		err = errors.Join(err, werr)
	} else {
		fmt.Fprintf(stdout, "wrote the %s section of %s\n", name, cfg.Out)
	}
	if err == nil && len(failures) > 0 {
		err = fmt.Errorf("%s: %s", name, strings.Join(failures, "; "))
	}
	return err
}

// writeFailures lists a scenario's failures in its section or, if there are
// none and pass says what held, the result line.
func writeFailures(b *strings.Builder, failures []string, pass string) {
	switch {
	case len(failures) > 0:
		b.WriteString("**Failures:**\n\n")
		for _, f := range failures {
			fmt.Fprintf(b, "- %s\n", oneLine(f))
		}
		b.WriteString("\n")
	case pass != "":
		fmt.Fprintf(b, "**Result: %s** — %s.\n\n", passMark, pass)
	}
}
