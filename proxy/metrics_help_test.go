package proxy

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

// TestMetricHelpCoversEveryFamily: every edgevitals_ family the product
// creates in its code has HELP text, so promtool's lint and a Grafana user
// both get a description; a new metric without one fails here.
func TestMetricHelpCoversEveryFamily(t *testing.T) {
	families := map[string]bool{}
	re := regexp.MustCompile(`"(edgevitals_[a-z_]+)`)
	for _, dir := range []string{".", "../vitals", "../cmd/edgevitals"} {
		names, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			src, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range re.FindAllSubmatch(src, -1) {
				f := string(m[1])
				if strings.HasSuffix(f, "_") { // a prefix built upon, e.g. edgevitals_lab_
					continue
				}
				families[strings.TrimSuffix(strings.TrimSuffix(f, "_bucket"), "_count")] = true
			}
		}
	}
	if len(families) < 20 {
		t.Fatalf("found only %d metric families in the code: %v", len(families), families)
	}
	for f := range families {
		if metricHelp[f] == "" {
			t.Errorf("%s has no HELP text in metricHelp", f)
		}
	}
}

func TestWriteExpositionAddsHelp(t *testing.T) {
	set := metrics.NewSet()
	set.NewCounter(`edgevitals_requests_total{site="blog",cache="hit"}`).Inc()
	set.NewCounter(`other_total`).Inc()
	metrics.ExposeMetadata(true)
	defer metrics.ExposeMetadata(false)
	var raw, out bytes.Buffer
	set.WritePrometheus(&raw)
	writeExposition(&out, set)
	want := strings.Replace(raw.String(), "# HELP edgevitals_requests_total\n",
		"# HELP edgevitals_requests_total "+metricHelp["edgevitals_requests_total"]+"\n", 1)
	if out.String() != want || want == raw.String() {
		t.Errorf("writeExposition wrote\n%s\nwant\n%s", out.String(), want)
	}
}
