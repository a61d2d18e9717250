package admin

import (
	"bytes"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

func TestWriteExpositionAddsHelp(t *testing.T) {
	set := metrics.NewSet()
	set.NewCounter(`edgevitals_requests_total{site="blog",cache="hit"}`).Inc()
	set.NewCounter(`other_total`).Inc()
	metrics.ExposeMetadata(true)
	defer metrics.ExposeMetadata(false)
	var raw, out bytes.Buffer
	set.WritePrometheus(&raw)
	help := []map[string]string{{"edgevitals_other_total": "Not in the set."}, {"edgevitals_requests_total": "Client requests, by cache outcome."}}
	writeExposition(&out, set, help)
	want := strings.Replace(raw.String(), "# HELP edgevitals_requests_total\n",
		"# HELP edgevitals_requests_total "+help[1]["edgevitals_requests_total"]+"\n", 1)
	if out.String() != want || want == raw.String() {
		t.Errorf("writeExposition wrote\n%s\nwant\n%s", out.String(), want)
	}
}
