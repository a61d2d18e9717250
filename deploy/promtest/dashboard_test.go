package promtest

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSubstitute(t *testing.T) {
	tests := []struct{ in, want string }{
		{`rate(x{site=~"$site"}[$__rate_interval])`, `rate(x{site=~".*"}[5m])`},
		{`rate(x{site=~"${site}"}[${__interval}])`, `rate(x{site=~".*"}[1m])`},
		{`x{site=~"${site:regex}",page=~"[[page]]"}`, `x{site=~".*",page=~".*"}`},
		{`increase(x[$__range])`, `increase(x[1h])`},
		{`sum(rate(x[5m:1m]))`, `sum(rate(x[5m:1m]))`},
		{`up`, `up`},
	}
	for _, tt := range tests {
		if got := Substitute(tt.in); got != tt.want {
			t.Errorf("Substitute(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDashboardExprsJSON(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    []string
		wantErr string
	}{
		{name: "panels rows annotations variables", json: `{
			"panels": [
				{"type": "row", "panels": [{"targets": [{"expr": "a{site=~\"$site\"}"}]}]},
				{"targets": [{"expr": " b "}, {"expr": ""}, {"expr": "a{site=~\"$site\"}"}]}
			],
			"annotations": {"list": [{"expr": "c * 1000"}, {"builtIn": 1}]},
			"templating": {"list": [
				{"type": "datasource", "query": "prometheus"},
				{"type": "query", "query": {"query": "label_values(edgevitals_requests_total, site)"}},
				{"type": "query", "query": "label_values(d{site=~\"$site\"}, page)"},
				{"type": "query", "query": "query_result(topk(3, e))"},
				{"type": "query", "query": "label_values(site)"},
				{"type": "custom", "query": "a,b"}
			]}}`,
			want: []string{`a{site=~".*"}`, "b", "c * 1000", "edgevitals_requests_total", `d{site=~".*"}`, "topk(3, e)"}},
		{name: "empty", json: `{}`, want: nil},
		{name: "not json", json: `[`, wantErr: "parse"},
		{name: "bad variable query", json: `{"templating": {"list": [{"type": "query", "query": 3}]}}`, wantErr: "template variable"},
		{name: "too deep", json: `{"panels": [{"panels": [{"panels": [{"panels": []}]}]}]}`, wantErr: "nested"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dashboardExprs([]byte(tt.json))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("dashboardExprs() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("dashboardExprs() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("dashboardExprs() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDashboardExprsFile(t *testing.T) {
	got, err := DashboardExprs(filepath.Join("..", "grafana", "edgevitals.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 15 {
		t.Errorf("DashboardExprs(edgevitals.json) = %d expressions, want every panel's (15 or more)", len(got))
	}
	for _, e := range got {
		if strings.Contains(e, "$") {
			t.Errorf("DashboardExprs(edgevitals.json) left a variable in %q", e)
		}
	}
	if _, err := DashboardExprs(filepath.Join(t.TempDir(), "none.json")); err == nil {
		t.Error("DashboardExprs(missing file) error = nil, want one")
	}
}

// FuzzDashboardExprs feeds dashboards as users export them; nothing may panic, and every
// expression returned is free of Grafana variables.
func FuzzDashboardExprs(f *testing.F) {
	f.Add([]byte(`{"panels":[{"targets":[{"expr":"rate(x[$__rate_interval])"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		exprs, err := dashboardExprs(data)
		if err != nil {
			return
		}
		for _, e := range exprs {
			if e == "" || variableRe.MatchString(e) {
				t.Errorf("dashboardExprs(%q) returned %q", data, e)
			}
		}
	})
}
