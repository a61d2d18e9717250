package proxy

// MetricHelp is the HELP text of the metric families this package
// defines, by family name, for the admin listener's /metrics page
// (VictoriaMetrics/metrics writes "# HELP name" with no text, which
// promtool's lint flags and which leaves a Grafana user guessing).
func MetricHelp() map[string]string {
	return map[string]string{
		"edgevitals_body_buffer_bytes":          "Bytes that bodies in flight hold now: request bodies and uncached responses in memory, and temporary files on disk.",
		"edgevitals_body_buffer_full_total":     "Bodies the buffers had no room for: request bodies answered 503, responses cut or streamed at the client's pace.",
		"edgevitals_cache_bytes":                "Bytes of responses held in the cache.",
		"edgevitals_cache_evictions_total":      "Objects evicted from the cache to make room.",
		"edgevitals_cache_hit_ratio":            "Share of requests served from cache (hit or stale) over the last 5 minutes; pass and miss count against it.",
		"edgevitals_cache_objects":              "Objects held in the cache.",
		"edgevitals_coalesced_total":            "Requests that waited for another request's origin fetch instead of making their own.",
		"edgevitals_origin_circuit_opens_total": "Times an origin's circuit breaker opened after consecutive missing answers.",
		"edgevitals_origin_duration_seconds":    "Time the origin took to answer, in seconds.",
		"edgevitals_origin_requests_total":      "Requests sent to the origin, by status code.",
		"edgevitals_origin_up":                  "1 while the origin gets requests; 0 while its circuit is open or health checks mark it down.",
		"edgevitals_panics_total":               "Request handler panics recovered; each one was answered with a 500.",
		"edgevitals_purged_objects_total":       "Objects removed or marked stale by purges.",
		"edgevitals_purges_total":               "Purges applied, by kind (url, key, regex, prefix, all; unsafe_method: a POST, PUT, DELETE or PATCH the origin accepted, RFC 9111 §4.4) and mode (hard, soft).",
		"edgevitals_requests_total":             "Client requests, by cache outcome.",
		"edgevitals_response_duration_seconds":  "Time to answer the client, in seconds, by cache outcome.",
		"edgevitals_uncacheable_total":          "Responses that could not be stored, by reason.",
	}
}
