package vitals

// MetricHelp is the HELP text of the metric families this package
// defines, by family name, for the admin listener's /metrics page
// (VictoriaMetrics/metrics writes "# HELP name" with no text, which
// promtool's lint flags and which leaves a Grafana user guessing).
func MetricHelp() map[string]string {
	return map[string]string{
		"edgevitals_beacons_rejected_total":                 "Field beacons refused, by reason; none of them is stored.",
		"edgevitals_beacons_total":                          "Field beacons accepted from visitors' browsers.",
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
		"edgevitals_sampler_duration_seconds":               "Time one lab sample took, in seconds.",
		"edgevitals_sampler_failures_total":                 "Lab samples that failed.",
		"edgevitals_sampler_last_success_timestamp_seconds": "Unix time of the last lab sample that succeeded.",
		"edgevitals_sessions_total":                         "Visitor sessions that sent field data.",
	}
}
