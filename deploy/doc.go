// Package deploy holds what operators install next to edgevitals: Prometheus recording and
// alerting rules (prometheus/), an example scrape config, a Grafana dashboard (grafana/)
// and example configs for WordPress and Drupal (examples/).
//
// The package has no code of its own; its tests hold the assets to their contract: promtool
// checks and unit-tests the rules, every dashboard expression is evaluated by a real
// Prometheus, every metric name they use is one edgevitals exposes (shared/DESIGN.md), and
// the example configs load. Subpackage promtest runs that Prometheus for these tests and
// for end-to-end tests of the proxy.
package deploy
