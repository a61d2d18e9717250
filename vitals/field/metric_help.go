package field

// MetricHelp is the HELP text of the metric families this package
// defines, by family name, for the admin listener's /metrics page
// (VictoriaMetrics/metrics writes "# HELP name" with no text, which
// promtool's lint flags and which leaves a Grafana user guessing).
func MetricHelp() map[string]string {
	return map[string]string{
		"edgevitals_beacons_rejected_total":         "Field beacons refused, by reason; none of them is stored.",
		"edgevitals_beacons_total":                  "Field beacons accepted from visitors' browsers.",
		"edgevitals_conversions_total":              "Sessions that reached a conversion goal.",
		"edgevitals_field_aggregates_dropped_total": "Field data aggregates lost because too many waited for the next write to the store.",
		"edgevitals_field_cls":                      "Cumulative Layout Shift reported by real visitors.",
		"edgevitals_field_inp_seconds":              "Interaction to Next Paint reported by real visitors, in seconds.",
		"edgevitals_field_lcp_seconds":              "Largest Contentful Paint reported by real visitors, in seconds.",
		"edgevitals_field_ttfb_seconds":             "Time to First Byte reported by real visitors, in seconds.",
		"edgevitals_sessions_total":                 "Visitor sessions that sent field data.",
	}
}
