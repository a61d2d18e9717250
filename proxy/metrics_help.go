package proxy

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// metricHelp is the HELP text of every edgevitals_ family. VictoriaMetrics/
// metrics writes "# HELP name" with no text, which promtool's lint flags and
// which leaves a Grafana user guessing; writeExposition fills it in.
// TestMetricHelpCoversEveryFamily keeps this list complete.
var metricHelp = map[string]string{
	"edgevitals_beacons_rejected_total":                 "Field beacons refused, by reason; none of them is stored.",
	"edgevitals_beacons_total":                          "Field beacons accepted from visitors' browsers.",
	"edgevitals_body_buffer_bytes":                      "Bytes that bodies in flight hold now: request bodies and uncached responses in memory, and temporary files on disk.",
	"edgevitals_body_buffer_full_total":                 "Bodies the buffers had no room for: request bodies answered 503, responses cut or streamed at the client's pace.",
	"edgevitals_build_info":                             "Always 1; the labels name the running build.",
	"edgevitals_cache_bytes":                            "Bytes of responses held in the cache.",
	"edgevitals_cache_evictions_total":                  "Objects evicted from the cache to make room.",
	"edgevitals_cache_hit_ratio":                        "Share of requests served from cache (hit or stale) over the last 5 minutes; pass and miss count against it.",
	"edgevitals_cache_objects":                          "Objects held in the cache.",
	"edgevitals_coalesced_total":                        "Requests that waited for another request's origin fetch instead of making their own.",
	"edgevitals_conversions_total":                      "Sessions that reached a conversion goal.",
	"edgevitals_field_aggregates_dropped_total":         "Field data aggregates lost because too many waited for the next write to the store.",
	"edgevitals_field_cls":                              "Cumulative Layout Shift reported by real visitors.",
	"edgevitals_field_inp_seconds":                      "Interaction to Next Paint reported by real visitors, in seconds.",
	"edgevitals_field_lcp_seconds":                      "Largest Contentful Paint reported by real visitors, in seconds.",
	"edgevitals_field_ttfb_seconds":                     "Time to First Byte reported by real visitors, in seconds.",
	"edgevitals_lab_cls":                                "Cumulative Layout Shift of the last lab sample.",
	"edgevitals_lab_fcp_seconds":                        "First Contentful Paint of the last lab sample, in seconds.",
	"edgevitals_lab_inp_seconds":                        "Interaction to Next Paint of the last lab sample's synthetic click, in seconds.",
	"edgevitals_lab_lcp_seconds":                        "Largest Contentful Paint of the last lab sample, in seconds.",
	"edgevitals_lab_tbt_seconds":                        "Total Blocking Time of the last lab sample, in seconds.",
	"edgevitals_lab_ttfb_seconds":                       "Time to First Byte of the last lab sample, in seconds.",
	"edgevitals_origin_circuit_opens_total":             "Times an origin's circuit breaker opened after consecutive missing answers.",
	"edgevitals_origin_duration_seconds":                "Time the origin took to answer, in seconds.",
	"edgevitals_origin_requests_total":                  "Requests sent to the origin, by status code.",
	"edgevitals_origin_up":                              "1 while the origin gets requests; 0 while its circuit is open or health checks mark it down.",
	"edgevitals_panics_total":                           "Request handler panics recovered; each one was answered with a 500.",
	"edgevitals_purged_objects_total":                   "Objects removed or marked stale by purges.",
	"edgevitals_access_log_dropped_total":               "Access log lines that could not be written (log.access); the requests were served.",
	"edgevitals_purges_total":                           "Purges applied, by kind (url, key, regex, prefix, all; unsafe_method: a POST, PUT, DELETE or PATCH the origin accepted, RFC 9111 §4.4) and mode (hard, soft).",
	"edgevitals_release_info":                           "Start time of each release in unix seconds, for release annotations.",
	"edgevitals_release_regressed":                      "1 when the report of the site's latest release has a regressed line, else 0.",
	"edgevitals_release_write_errors_total":             "Releases (from the API, the CLI or the origin's release header) the store failed to write; a header release is tried again on a later response.",
	"edgevitals_requests_total":                         "Client requests, by cache outcome.",
	"edgevitals_response_duration_seconds":              "Time to answer the client, in seconds, by cache outcome.",
	"edgevitals_sampler_duration_seconds":               "Time one lab sample took, in seconds.",
	"edgevitals_sampler_failures_total":                 "Lab samples that failed.",
	"edgevitals_sampler_last_success_timestamp_seconds": "Unix time of the last lab sample that succeeded.",
	"edgevitals_sessions_total":                         "Visitor sessions that sent field data.",
	"edgevitals_uncacheable_total":                      "Responses that could not be stored, by reason.",
}

// writeExposition writes set in the Prometheus text format with the HELP
// text of metricHelp. Each family is written once, its lines together: one
// HELP, one TYPE, then every series, whatever the number of series and of
// writers that emitted them (metrics.WriteGauge* and friends repeat HELP and
// TYPE on every call, and promtool and expfmt reject a second HELP or TYPE
// line, or a TYPE after samples). Families keep the order they first appear in.
func writeExposition(w io.Writer, set *metrics.Set) {
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	for _, f := range families(buf.Bytes()) {
		if f.help != nil {
			if text, known := metricHelp[f.name]; known {
				fmt.Fprintf(w, "# HELP %s %s\n", f.name, text)
			} else {
				w.Write(f.help)
			}
		}
		if f.typ != nil {
			w.Write(f.typ)
		}
		for _, l := range f.lines {
			w.Write(l)
		}
	}
}

// family is one metric family of an exposition: its first HELP and TYPE
// lines and its other lines (samples, other comments), newline included.
type family struct {
	name      string
	help, typ []byte
	lines     [][]byte
}

// families groups the lines of a Prometheus text exposition by family, in
// the order families first appear. A sample's family is its name, or for
// name_bucket, name_sum and name_count the histogram or summary name when a
// TYPE line declares one. Blank lines are dropped.
func families(b []byte) []*family {
	var lines [][]byte
	for line := range bytes.Lines(b) {
		if len(bytes.TrimSpace(line)) > 0 {
			if line[len(line)-1] != '\n' {
				line = append(line[:len(line):len(line)], '\n')
			}
			lines = append(lines, line)
		}
	}
	kinds := map[string]string{} // family -> declared type
	for _, l := range lines {
		if rest, ok := bytes.CutPrefix(l, []byte("# TYPE ")); ok {
			if f := bytes.Fields(rest); len(f) == 2 {
				kinds[string(f[0])] = string(f[1])
			}
		}
	}
	byName := map[string]*family{}
	var out []*family
	get := func(name string) *family {
		f := byName[name]
		if f == nil {
			f = &family{name: name}
			byName[name] = f
			out = append(out, f)
		}
		return f
	}
	var last *family
	for _, l := range lines {
		switch {
		case bytes.HasPrefix(l, []byte("# HELP ")), bytes.HasPrefix(l, []byte("# TYPE ")):
			fields := bytes.Fields(l)
			if len(fields) < 3 {
				continue // "# HELP" without a name says nothing
			}
			last = get(string(fields[2]))
			if fields[1][0] == 'H' && last.help == nil {
				last.help = l
			} else if fields[1][0] == 'T' && last.typ == nil {
				last.typ = l
			}
		case l[0] == '#':
			if last == nil {
				last = get("")
			}
			last.lines = append(last.lines, l)
		default:
			last = get(sampleFamily(l, kinds))
			last.lines = append(last.lines, l)
		}
	}
	return out
}

// sampleFamily is the family name of a sample line.
func sampleFamily(l []byte, kinds map[string]string) string {
	end := bytes.IndexAny(l, "{ \t")
	if end < 0 {
		end = len(l)
	}
	name := string(bytes.TrimSpace(l[:end]))
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if k := kinds[base]; k == "histogram" || k == "summary" || k == "gaugehistogram" {
				return base
			}
		}
	}
	return name
}
