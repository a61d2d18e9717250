// Package deploy holds what operators install next to edgevitals: Prometheus recording and
// alerting rules (prometheus/) with a runbook per alert (runbooks.md), an example scrape
// config, a Grafana dashboard with provisioning examples (grafana/), a systemd unit
// (systemd/), a Helm chart (helm/edgevitals/) and example configs for WordPress and Drupal
// (examples/). The repository's Dockerfile is checked here too.
//
// The package has no code of its own; its tests hold the assets to their contract: promtool
// checks and unit-tests the rules, every alert has a summary, a description and a runbook
// that exists, every dashboard expression is evaluated by a real Prometheus and the
// dashboard passes Grafana's dashboard-linter rules, every metric name they use is one
// edgevitals exposes (the families of each package's MetricHelp), the example configs load, systemd-analyze
// verifies the unit, helm lints and renders the chart (whose rules and dashboard are the
// files here, byte for byte), and the Dockerfile has its two targets, health check,
// labels and non-root user. Subpackage promtest runs that Prometheus for these tests and
// for end-to-end tests of the proxy.
package deploy
