package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/config"
	"github.com/edgevitals/edgevitals/deploy/promtest"
)

var (
	rulesFile     = filepath.Join("prometheus", "edgevitals.rules.yml")
	rulesTestFile = filepath.Join("prometheus", "edgevitals.rules.test.yml")
	promConfig    = filepath.Join("prometheus", "prometheus.yml")
	dashboardFile = filepath.Join("grafana", "edgevitals.json")
)

// exposed lists every series name edgevitals exposes (the families of each package's MetricHelp), so a
// typo in a rule or panel, which Prometheus answers with an empty result, fails here.
var exposed = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range []string{
		"edgevitals_requests_total", "edgevitals_uncacheable_total", "edgevitals_cache_hit_ratio",
		"edgevitals_origin_requests_total", "edgevitals_cache_bytes", "edgevitals_cache_objects",
		"edgevitals_cache_evictions_total", "edgevitals_coalesced_total", "edgevitals_purges_total",
		"edgevitals_lab_lcp_seconds", "edgevitals_lab_fcp_seconds", "edgevitals_lab_ttfb_seconds",
		"edgevitals_lab_tbt_seconds", "edgevitals_lab_inp_seconds", "edgevitals_lab_cls",
		"edgevitals_sessions_total", "edgevitals_conversions_total", "edgevitals_release_info",
		"edgevitals_build_info", "edgevitals_sampler_last_success_timestamp_seconds",
		// Set for a site's latest release while its report says regressed
		// (vitals/release).
		"edgevitals_release_regressed",
		// Panics the proxy's outermost handler recovered (proxy/server.go).
		"edgevitals_panics_total",
	} {
		m[n] = true
	}
	for _, h := range []string{
		"edgevitals_response_duration_seconds", "edgevitals_origin_duration_seconds",
		"edgevitals_field_lcp_seconds", "edgevitals_field_inp_seconds",
		"edgevitals_field_ttfb_seconds", "edgevitals_field_cls",
	} {
		m[h] = true // named in prose
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			m[h+suffix] = true
		}
	}
	return m
}()

// alerts are the alert rules operators are promised.
var alerts = []string{
	"EdgevitalsHitRatioLow", "EdgevitalsHitRatioDropWeekOverWeek", "EdgevitalsOriginErrors",
	"EdgevitalsServingStaleIfError", "EdgevitalsEvictionChurn", "EdgevitalsLabLCPRegression",
	"EdgevitalsSamplerDown", "EdgevitalsReleaseRegressed",
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPromtool(t *testing.T) {
	t.Parallel()
	promtool := promtest.Binary(t, "promtool")
	tests := []struct {
		name string
		dir  string
		args []string
	}{
		{name: "check rules", dir: "prometheus", args: []string{"check", "rules", filepath.Base(rulesFile)}},
		{name: "check config", dir: "prometheus", args: []string{"check", "config", filepath.Base(promConfig)}},
		{name: "test rules", dir: "prometheus", args: []string{"test", "rules", filepath.Base(rulesTestFile)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, promtool, tt.args...)
			cmd.Dir = tt.dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(tt.args, " "), err, out)
			}
		})
	}
}

var (
	recordRe = regexp.MustCompile(`(?m)^\s*- record:\s*(\S+)\s*$`)
	alertRe  = regexp.MustCompile(`(?m)^\s*- alert:\s*(\S+)\s*$`)
	// A metric name not inside a recorded name (level:metric:operations).
	metricRe = regexp.MustCompile(`(^|[^:\w])(edgevitals_\w+)(:?)`)
)

// metricNames returns the edgevitals_ names in text, leaving out parts of recorded names.
func metricNames(text string) []string {
	var out []string
	for _, m := range metricRe.FindAllStringSubmatch(text, -1) {
		if m[3] == "" {
			out = append(out, m[2])
		}
	}
	return out
}

func TestMetricNames(t *testing.T) {
	t.Parallel()
	for _, f := range []string{rulesFile, rulesTestFile, dashboardFile} {
		names := metricNames(read(t, f))
		if len(names) == 0 {
			t.Errorf("%s names no edgevitals_ metric", f)
		}
		for _, n := range names {
			if !exposed[n] {
				t.Errorf("%s uses %s, which edgevitals does not expose", f, n)
			}
		}
	}
}

// TestRulesCovered holds the promise of the rules file: every alert exists, and every
// recording and alert rule is exercised by a promtool unit test.
func TestRulesCovered(t *testing.T) {
	t.Parallel()
	rules, tests := read(t, rulesFile), read(t, rulesTestFile)
	var gotAlerts []string
	for _, m := range alertRe.FindAllStringSubmatch(rules, -1) {
		gotAlerts = append(gotAlerts, m[1])
		if !strings.Contains(tests, "alertname: "+m[1]+"\n") {
			t.Errorf("alert %s has no alert_rule_test in %s", m[1], rulesTestFile)
		}
	}
	slices.Sort(gotAlerts)
	want := slices.Clone(alerts)
	slices.Sort(want)
	if !slices.Equal(gotAlerts, want) {
		t.Errorf("alerts in %s = %q, want %q", rulesFile, gotAlerts, want)
	}
	records := recordRe.FindAllStringSubmatch(rules, -1)
	if len(records) == 0 {
		t.Fatalf("%s has no recording rules", rulesFile)
	}
	for _, m := range records {
		if !regexp.MustCompile(`expr: .*` + regexp.QuoteMeta(m[1])).MatchString(tests) {
			t.Errorf("recording rule %s has no promql_expr_test in %s", m[1], rulesTestFile)
		}
	}
	if !strings.Contains(rules, "- record: site:edgevitals_cache_hit_ratio:rate5m\n") {
		t.Errorf("%s does not record site:edgevitals_cache_hit_ratio:rate5m", rulesFile)
	}
}

// grafana is the part of the dashboard model these tests check.
type grafana struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Panels        []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		GridPos struct{ H, W, X, Y int } `json:"gridPos"`
		Targets []struct {
			Expr  string `json:"expr"`
			RefID string `json:"refId"`
		} `json:"targets"`
	} `json:"panels"`
	Annotations struct {
		List []struct {
			Name            string `json:"name"`
			Expr            string `json:"expr"`
			UseValueForTime bool   `json:"useValueForTime"`
			TitleFormat     string `json:"titleFormat"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			IncludeAll bool            `json:"includeAll"`
			AllValue   string          `json:"allValue"`
		} `json:"list"`
	} `json:"templating"`
}

func TestDashboard(t *testing.T) {
	t.Parallel()
	raw := []byte(read(t, dashboardFile))
	var d grafana
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.SchemaVersion < 38 {
		t.Errorf("schemaVersion = %d, want 38 or later (Grafana 10)", d.SchemaVersion)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid = %q, title = %q: want both set so imports update in place", d.UID, d.Title)
	}

	vars := map[string]string{} // name -> type
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		switch v.Name {
		case "datasource":
			if v.Type != "datasource" || string(v.Query) != `"prometheus"` {
				t.Errorf("variable datasource: type %q query %s, want a prometheus datasource variable", v.Type, v.Query)
			}
		case "site":
			if v.Type != "query" || v.Definition != "label_values(edgevitals_requests_total, site)" ||
				!strings.Contains(string(v.Query), "label_values(edgevitals_requests_total, site)") {
				t.Errorf("variable site: type %q definition %q, want label_values(edgevitals_requests_total, site)", v.Type, v.Definition)
			}
			if !v.IncludeAll || v.AllValue != ".*" {
				t.Errorf("variable site: includeAll %v allValue %q, want an All option matching every site", v.IncludeAll, v.AllValue)
			}
		}
	}
	for _, name := range []string{"datasource", "site"} {
		if _, ok := vars[name]; !ok {
			t.Errorf("dashboard has no %q variable", name)
		}
	}

	ids := map[int]string{}
	var all strings.Builder
	for _, p := range d.Panels {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panel %q has id %d, like %q", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q gridPos %+v does not fit the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q datasource = %+v, want prometheus ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no targets", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q target %+v: want an expr and a unique refId", p.Title, tg)
			}
			refs[tg.RefID] = true
			if strings.Contains(tg.Expr, "edgevitals_requests_total") && !strings.Contains(tg.Expr, `site=~"$site"`) {
				t.Errorf("panel %q: %s ignores the site variable", p.Title, tg.Expr)
			}
			all.WriteString(tg.Expr + "\n")
		}
	}

	// What the issue promises the dashboard shows.
	exprs := all.String()
	for _, want := range []string{
		"site:edgevitals_cache_hit_ratio:rate5m",
		"sum by (cache) (rate(edgevitals_requests_total",
		"sum by (reason) (rate(edgevitals_uncacheable_total",
		"histogram_quantile(0.5, sum by (site, le) (rate(edgevitals_origin_duration_seconds_bucket",
		"histogram_quantile(0.95, sum by (site, le) (rate(edgevitals_origin_duration_seconds_bucket",
		`edgevitals_origin_requests_total{site=~"$site", code=~"5..|error", `,
		`edgevitals_requests_total{site=~"$site", cache="error", `,
		"process_open_fds", "process_max_fds", "edgevitals_panics_total",
		"edgevitals_cache_bytes", "edgevitals_cache_objects", "edgevitals_cache_evictions_total",
		"edgevitals_purges_total", "edgevitals_coalesced_total",
		"edgevitals_lab_lcp_seconds", "edgevitals_lab_cls", "edgevitals_lab_inp_seconds",
	} {
		if !strings.Contains(exprs, want) {
			t.Errorf("no panel queries %s", want)
		}
	}

	var release bool
	for _, a := range d.Annotations.List {
		if strings.Contains(a.Expr, "edgevitals_release_info") {
			release = true
			// The series' value is the start time in seconds; Grafana wants milliseconds.
			if !a.UseValueForTime || !strings.Contains(a.Expr, "* 1000") || !strings.Contains(a.TitleFormat, "{{release}}") {
				t.Errorf("release annotation %+v: want useValueForTime on the value * 1000, titled by release", a)
			}
		}
	}
	if !release {
		t.Error("no annotation from edgevitals_release_info")
	}
}

// TestDashboardQueries evaluates every dashboard expression, with the rules loaded, on a
// real Prometheus: each must parse and run. Without traffic the results are empty; the
// end-to-end test of the proxy checks them with data.
func TestDashboardQueries(t *testing.T) {
	t.Parallel()
	exprs, err := promtest.DashboardExprs(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(exprs) == 0 {
		t.Fatalf("DashboardExprs(%s) found no expressions", dashboardFile)
	}
	s := promtest.Start(t, nil, []string{rulesFile})
	for _, e := range exprs {
		if _, err := s.Query(e); err != nil {
			t.Errorf("dashboard query: %v", err)
		}
	}
}

func TestExamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("examples", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("examples = %q, want wordpress.toml and drupal.toml", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := config.Load(f)
			if err != nil {
				t.Fatalf("config.Load(%s): %v", f, err)
			}
			if len(c.Sites) == 0 {
				t.Errorf("config.Load(%s) has no site", f)
			}
		})
	}
}
