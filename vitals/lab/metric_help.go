package lab

// MetricHelp is the HELP text of the metric families this package
// defines, by family name, for the admin listener's /metrics page
// (VictoriaMetrics/metrics writes "# HELP name" with no text, which
// promtool's lint flags and which leaves a Grafana user guessing).
func MetricHelp() map[string]string {
	return map[string]string{
		"edgevitals_lab_cls":                                "Cumulative Layout Shift of the last lab sample.",
		"edgevitals_lab_fcp_seconds":                        "First Contentful Paint of the last lab sample, in seconds.",
		"edgevitals_lab_inp_seconds":                        "Interaction to Next Paint of the last lab sample's synthetic click, in seconds.",
		"edgevitals_lab_lcp_seconds":                        "Largest Contentful Paint of the last lab sample, in seconds.",
		"edgevitals_lab_tbt_seconds":                        "Total Blocking Time of the last lab sample, in seconds.",
		"edgevitals_lab_ttfb_seconds":                       "Time to First Byte of the last lab sample, in seconds.",
		"edgevitals_sampler_duration_seconds":               "Time one lab sample took, in seconds.",
		"edgevitals_sampler_failures_total":                 "Lab samples that failed.",
		"edgevitals_sampler_last_success_timestamp_seconds": "Unix time of the last lab sample that succeeded.",
	}
}
