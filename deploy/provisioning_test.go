package deploy

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The Grafana provisioning examples are checked as text (no Grafana runs here): the keys
// Grafana's provisioning reads are there, the dashboards path is the one the install
// line uses, and the data source's timeInterval is the example Prometheus' scrape
// interval, from which $__rate_interval is computed.
func TestGrafanaProvisioning(t *testing.T) {
	t.Parallel()
	ds := read(t, filepath.Join("grafana", "provisioning", "datasources", "edgevitals.yaml"))
	dash := read(t, filepath.Join("grafana", "provisioning", "dashboards", "edgevitals.yaml"))
	for name, text := range map[string]string{"datasources": ds, "dashboards": dash} {
		if !regexp.MustCompile(`(?m)^apiVersion: 1$`).MatchString(text) {
			t.Errorf("%s provisioning has no apiVersion: 1", name)
		}
	}
	wantIn(t, "datasources provisioning", ds, "\ndatasources:\n  - name: ", "\n    type: prometheus\n", "\n    url: ")

	wantIn(t, "dashboards provisioning", dash, "\nproviders:\n  - name: ", "\n    type: file\n")
	path := regexp.MustCompile(`(?m)^      path: (\S+)$`).FindStringSubmatch(dash)
	if path == nil {
		t.Fatal("dashboards provisioning has no options.path")
	}
	if !strings.Contains(dash, "install -D -m 0644 deploy/grafana/edgevitals.json "+path[1]+"/edgevitals.json") {
		t.Errorf("dashboards provisioning: the install line does not put the dashboard under options.path %s", path[1])
	}

	scrape := regexp.MustCompile(`(?m)^  scrape_interval: (\S+)$`).FindStringSubmatch(read(t, promConfig))
	interval := regexp.MustCompile(`(?m)^      timeInterval: (\S+)$`).FindStringSubmatch(ds)
	if scrape == nil || interval == nil || scrape[1] != interval[1] {
		t.Errorf("datasource timeInterval %v, %s scrape_interval %v: want them equal", interval, promConfig, scrape)
	}
}
