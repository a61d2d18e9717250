package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestMetricHelpCoversEveryFamily: every edgevitals_ family the product
// creates in its code has HELP text, so promtool's lint and a Grafana user
// both get a description; a new metric without one fails here.
func TestMetricHelpCoversEveryFamily(t *testing.T) {
	families := map[string]bool{}
	re := regexp.MustCompile(`"(edgevitals_[a-z_]+)`)
	err := filepath.WalkDir("../..", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "bench" || d.Name() == "deploy" || d.Name() == "testdata" || d.Name() == "internal") {
			return filepath.SkipDir // scrapers, dashboards and the demo name families they do not define
		}
		if d.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllSubmatch(src, -1) {
			f := string(m[1])
			if strings.HasSuffix(f, "_") { // a prefix built upon, e.g. edgevitals_lab_
				continue
			}
			families[strings.TrimSuffix(strings.TrimSuffix(f, "_bucket"), "_count")] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(families) < 20 {
		t.Fatalf("found only %d metric families in the code: %v", len(families), families)
	}
	for f := range families {
		if !slices.ContainsFunc(metricHelp(), func(m map[string]string) bool { return m[f] != "" }) {
			t.Errorf("%s has no HELP text in the MetricHelp of its package", f)
		}
	}
}
