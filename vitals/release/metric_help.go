package release

// MetricHelp is the HELP text of the metric families this package
// defines, by family name, for the admin listener's /metrics page
// (VictoriaMetrics/metrics writes "# HELP name" with no text, which
// promtool's lint flags and which leaves a Grafana user guessing).
func MetricHelp() map[string]string {
	return map[string]string{
		"edgevitals_release_info":               "Start time of each release in unix seconds, for release annotations.",
		"edgevitals_release_regressed":          "1 when the report of the site's latest release has a regressed line, else 0.",
		"edgevitals_release_write_errors_total": "Releases (from the API, the CLI or the origin's release header) the store failed to write; a header release is tried again on a later response.",
	}
}
