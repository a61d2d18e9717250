package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Grafana's dashboard-linter (github.com/grafana/dashboard-linter) is the check teams run
// on dashboards they import. It cannot be installed here: upstream's go.mod has a replace
// directive, so `go install` refuses it (its README says so), and the Go module proxy does
// not serve it. So this file ports its rules for Prometheus dashboards to Go, with the
// same names, messages and .lint exclusions (deploy/grafana/.lint), and
// TestDashboardLinter runs the real binary when one is on PATH.
//
// Ported: template-datasource-rule, template-job-rule, template-instance-rule,
// template-label-promql-rule, template-on-time-change-reload-rule, uneditable-dashboard,
// panel-datasource-rule, panel-title-description-rule, panel-units-rule,
// panel-no-targets-rule, target-job-rule, target-instance-rule, target-rate-interval-rule,
// target-counter-agg-rule. target-promql-rule (every expression parses) is
// TestDashboardQueries, which has a real Prometheus evaluate each. The LogQL rules do not
// apply (no Loki data source). The linter parses PromQL with Prometheus' parser; the port
// reads selectors with promSelectors below, tested on its own.

var lintConfig = filepath.Join("grafana", ".lint")

// lintDashboard is the part of the dashboard model the rules read (lint/lint.go).
type lintDashboard struct {
	Title      string `json:"title"`
	Editable   bool   `json:"editable"`
	Templating struct {
		List []lintTemplate `json:"list"`
	} `json:"templating"`
	Panels []lintPanel `json:"panels"`
}

type lintTemplate struct {
	Name       string          `json:"name"`
	Label      string          `json:"label"`
	Type       string          `json:"type"`
	RawQuery   json.RawMessage `json:"query"`
	Datasource json.RawMessage `json:"datasource"`
	Multi      bool            `json:"multi"`
	AllValue   string          `json:"allValue"`
	Refresh    int             `json:"refresh"`
}

// query is the template's query: a string, or the "query" field of an object.
func (t lintTemplate) query() string {
	var s string
	if json.Unmarshal(t.RawQuery, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(t.RawQuery, &o) // a query of another shape reads as "", which the rules report
	return o.Query
}

type lintPanel struct {
	ID          int             `json:"id"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Type        string          `json:"type"`
	Datasource  json.RawMessage `json:"datasource"`
	Targets     []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels      []lintPanel `json:"panels"`
	FieldConfig *struct {
		Defaults struct {
			Unit     string          `json:"unit"`
			Mappings json.RawMessage `json:"mappings"`
		} `json:"defaults"`
		Overrides []struct {
			Properties []struct {
				ID    string `json:"id"`
				Value any    `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
	Options struct {
		ReduceOptions struct {
			Fields string `json:"fields"`
		} `json:"reduceOptions"`
	} `json:"options"`
}

// datasourceUID reads a datasource reference: a string (older dashboards) or {uid, type}.
func datasourceUID(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		UID string `json:"uid"`
	}
	_ = json.Unmarshal(raw, &o) // no datasource reads as "", which the rules report
	return o.UID
}

// lintResult is one error a rule found. target is the target's index, -1 for a panel or
// dashboard finding.
type lintResult struct {
	rule, panel string
	target      int
	msg         string
}

func (r lintResult) String() string {
	where := "dashboard"
	if r.panel != "" {
		where = fmt.Sprintf("panel %q", r.panel)
		if r.target >= 0 {
			where += fmt.Sprintf(" target %d", r.target)
		}
	}
	return fmt.Sprintf("[%s] %s: %s", r.rule, where, r.msg)
}

// The panel types the linter's panel rules look at (lint/constants.go).
var (
	lintQueryPanels   = []string{"singlestat", "graph", "table", "timeseries"}
	lintDisplayPanels = []string{"stat", "singlestat", "graph", "table", "timeseries", "gauge"}
)

// lintValidUnits are the units panel-units-rule accepts (lint/rule_panel_units.go, from
// Grafana's valueFormats/categories.ts).
var lintValidUnits = strings.Fields(`none string short percent percentunit humidity dB hex0x hex sci locale pixel
	accMS2 accFS2 accG degree radian grad arcmin arcsec areaM2 areaF2 areaMI2
	flops mflops gflops tflops pflops eflops zflops yflops
	ppm conppb conngm3 conngNm3 conμgm3 conμgNm3 conmgm3 conmgNm3 congm3 congNm3 conmgdL conmmolL
	currencyUSD currencyGBP currencyEUR currencyJPY currencyRUB currencyUAH currencyBRL currencyDKK currencyISK
	currencyNOK currencySEK currencyCZK currencyCHF currencyPLN currencyBTC currencymBTC currencyμBTC currencyZAR
	currencyINR currencyKRW currencyIDR currencyPHP currencyVND
	bytes decbytes bits decbits kbytes deckbytes mbytes decmbytes gbytes decgbytes tbytes dectbytes pbytes decpbytes
	pps binBps Bps binbps bps KiBs Kibits KBs Kbits MiBs Mibits MBs Mbits GiBs Gibits GBs Gbits TiBs Tibits TBs Tbits PiBs Pibits PBs Pbits
	dateTimeAsIso dateTimeAsIsoNoDateIfToday dateTimeAsUS dateTimeAsUSNoDateIfToday dateTimeAsLocal
	dateTimeAsLocalNoDateIfToday dateTimeAsSystem dateTimeFromNow
	watt kwatt megwatt gwatt mwatt Wm2 voltamp kvoltamp voltampreact kvoltampreact watth watthperkg kwatth kwattm
	amph kamph mamph joule ev amp kamp mamp volt kvolt mvolt dBm ohm kohm Mohm farad µfarad nfarad pfarad ffarad
	henry mhenry µhenry lumens flowgpm flowcms flowcfs flowcfm litreh flowlpm flowmlpm lux
	forceNm forcekNm forceN forcekN Hs KHs MHs GHs THs PHs EHs massmg massg masslb masskg masst
	lengthmm lengthin lengthft lengthm lengthkm lengthmi
	pressurembar pressurebar pressurekbar pressurepa pressurehpa pressurekpa pressurehg pressurepsi
	radbq radci radgy radrad radsv radmsv radusv radrem radexpckg radr radsvh radmsvh radusvh
	rotrpm rothz rotrads rotdegs celsius fahrenheit kelvin
	hertz ns µs ms s m h d dtdurationms dtdurations dthms dtdhms timeticks clockms clocks
	cps ops reqps rps wps iops cpm opm rpm wpm mps mpm velocityms velocitykmh velocitymph velocityknot
	mlitre litre m3 Nm3 dm3 gallons bool bool_yes_no bool_on_off`)

// lint runs the ported rules on a dashboard.
func lint(d lintDashboard) []lintResult {
	var out []lintResult
	dash := func(rule, msg string) { out = append(out, lintResult{rule: rule, target: -1, msg: msg}) }

	// template-datasource-rule
	var dsVars []lintTemplate
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			dsVars = append(dsVars, v)
		}
	}
	if len(dsVars) == 0 {
		dash("template-datasource-rule", "does not have a templated data source")
	}
	for _, v := range dsVars {
		q := v.query()
		names := []string{strings.ToLower(q) + "_datasource"}
		if len(dsVars) == 1 {
			names = append(names, "datasource")
		}
		if !slices.Contains(names, v.Name) {
			dash("template-datasource-rule", fmt.Sprintf("templated data source variable named '%s', should be named one of %q", v.Name, names))
		}
	}
	prometheus := len(dsVars) > 0 && dsVars[0].query() == "prometheus"

	// template-job-rule, template-instance-rule
	for _, name := range []string{"job", "instance"} {
		if !prometheus {
			break
		}
		rule := "template-" + name + "-rule"
		i := slices.IndexFunc(d.Templating.List, func(v lintTemplate) bool { return v.Name == name })
		if i < 0 {
			dash(rule, "is missing the "+name+" template")
			continue
		}
		v := d.Templating.List[i]
		if uid := datasourceUID(v.Datasource); !slices.Contains([]string{"$datasource", "${datasource}", "$prometheus_datasource", "${prometheus_datasource}"}, uid) {
			dash(rule, fmt.Sprintf("%s template should use datasource '$datasource', is currently '%s'", name, uid))
		}
		if v.Type != "query" {
			dash(rule, fmt.Sprintf("%s template should be a Prometheus query, is currently '%s'", name, v.Type))
		}
		if !v.Multi {
			dash(rule, name+" template should be a multi select")
		}
		if v.AllValue != ".+" {
			dash(rule, fmt.Sprintf("%s template allValue should be '.+', is currently '%s'", name, v.AllValue))
		}
	}

	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		// template-label-promql-rule: label_names(), label_values(), metrics() or
		// query_result() around a PromQL selector or expression.
		if prometheus {
			fn, arg, ok := strings.Cut(v.query(), "(")
			if !ok || !strings.HasSuffix(arg, ")") || !slices.Contains([]string{"label_names", "label_values", "metrics", "query_result"}, fn) {
				dash("template-label-promql-rule", fmt.Sprintf("template '%s' invalid templated label '%s'", v.Name, v.query()))
			} else if _, err := promSelectors(strings.TrimSuffix(arg, ")")); err != nil {
				dash("template-label-promql-rule", fmt.Sprintf("template '%s' invalid templated label '%s': %v", v.Name, v.query(), err))
			}
		}
		// template-on-time-change-reload-rule
		if v.Refresh != 2 {
			dash("template-on-time-change-reload-rule", fmt.Sprintf("templated datasource variable named '%s', should be set to be refreshed 'On Time Range Change (value 2)', is currently '%d'", v.Name, v.Refresh))
		}
	}

	// uneditable-dashboard
	if d.Editable {
		dash("uneditable-dashboard", "is editable, it should be set to 'editable: false'")
	}

	var panels []lintPanel
	var walk func([]lintPanel)
	walk = func(ps []lintPanel) {
		for _, p := range ps {
			panels = append(panels, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, p := range panels {
		pan := func(rule, msg string) {
			out = append(out, lintResult{rule: rule, panel: p.Title, target: -1, msg: msg})
		}
		if slices.Contains(lintQueryPanels, p.Type) {
			if uid := datasourceUID(p.Datasource); !slices.ContainsFunc(dsVars, func(v lintTemplate) bool { return uid == "$"+v.Name || uid == "${"+v.Name+"}" }) {
				pan("panel-datasource-rule", fmt.Sprintf("does not use a templated datasource, uses '%s'", uid))
			}
		}
		if slices.Contains(lintDisplayPanels, p.Type) {
			if p.Title == "" || p.Description == "" {
				pan("panel-title-description-rule", fmt.Sprintf("has missing title or description, currently has title '%s' and description: '%s'", p.Title, p.Description))
			}
			if p.Targets == nil {
				pan("panel-no-targets-rule", "has no targets")
			}
			if unit := panelUnit(p); !panelHasMappings(p) && !(p.Type == "stat" && p.Options.ReduceOptions.Fields != "") && !slices.Contains(lintValidUnits, unit) {
				pan("panel-units-rule", fmt.Sprintf("has no or invalid units defined: '%s'", unit))
			}
		}
		if !prometheus || !slices.Contains(lintDisplayPanels, p.Type) {
			continue
		}
		for i, tg := range p.Targets {
			tgt := func(rule, msg string) {
				out = append(out, lintResult{rule: rule, panel: p.Title, target: i, msg: fmt.Sprintf("invalid PromQL query '%s': %s", tg.Expr, msg)})
			}
			sels, err := promSelectors(tg.Expr)
			if err != nil {
				continue // target-promql-rule: TestDashboardQueries
			}
			for _, s := range sels {
				for _, name := range []string{"job", "instance"} {
					if !slices.Contains(s.matchers, name+`=~"$`+name+`"`) {
						tgt("target-"+name+"-rule", fmt.Sprintf("%s selector %s has no %s=~\"$%s\" matcher", s.name, s.String(), name, name))
					}
				}
				if s.rng != "" && s.rng != "$__rate_interval" && (s.call == "rate" || s.call == "irate") {
					tgt("target-rate-interval-rule", "should use $__rate_interval")
				}
				if strings.HasSuffix(s.name, "_total") && (s.rng == "" || !slices.Contains([]string{"rate", "irate", "increase"}, s.call)) {
					tgt("target-counter-agg-rule", fmt.Sprintf("counter metric '%s' is not aggregated with rate, irate, or increase", s.String()))
				}
			}
		}
	}
	return out
}

// panelUnit is the unit of a panel: an override's, else the default's
// (getConfiguredUnit in lint/rule_panel_units.go).
func panelUnit(p lintPanel) string {
	if p.FieldConfig == nil {
		return ""
	}
	unit := ""
	for _, o := range p.FieldConfig.Overrides {
		for _, prop := range o.Properties {
			if s, ok := prop.Value.(string); ok && prop.ID == "unit" {
				unit = s
			}
		}
	}
	if unit == "" {
		unit = p.FieldConfig.Defaults.Unit
	}
	return unit
}

func panelHasMappings(p lintPanel) bool {
	if p.FieldConfig == nil {
		return false
	}
	for _, o := range p.FieldConfig.Overrides {
		for _, prop := range o.Properties {
			if prop.ID == "mappings" && prop.Value != nil {
				return true
			}
		}
	}
	m := strings.TrimSpace(string(p.FieldConfig.Defaults.Mappings))
	return m != "" && m != "null"
}

// lintExclusion is one rule's exclusions of a .lint file: every finding when entries is
// empty, else those whose panel title (and target index, when given) match an entry.
type lintExclusion struct {
	reason  string
	entries []struct {
		panel  string
		target int // -1: any target
	}
}

// readLintConfig reads the exclusions of a .lint file. The file is YAML; this reads the
// subset the linter's ConfigurationFile uses (exclusions: rule: reason, entries: - panel,
// targetIdx) and refuses anything else, so the file stays readable by both.
func readLintConfig(path string) (map[string]*lintExclusion, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]*lintExclusion{}
	var cur *lintExclusion
	inReason := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		bad := func() error { return fmt.Errorf("%s:%d: %q is not in the .lint subset this test reads", path, n, line) }
		switch {
		case trim == "" || strings.HasPrefix(trim, "#"):
		case indent == 0:
			if trim != "exclusions:" {
				return nil, bad()
			}
			inReason = false
		case indent == 2 && strings.HasSuffix(trim, ":"):
			cur = &lintExclusion{}
			out[strings.TrimSuffix(trim, ":")] = cur
			inReason = false
		case cur != nil && indent == 4 && strings.HasPrefix(trim, "reason:"):
			cur.reason = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(trim, "reason:"), " >-"))
			inReason = true
		case cur != nil && indent == 4 && trim == "entries:":
			inReason = false
		case cur != nil && indent == 6 && strings.HasPrefix(trim, "- panel: "):
			cur.entries = append(cur.entries, struct {
				panel  string
				target int
			}{strings.TrimPrefix(trim, "- panel: "), -1})
		case cur != nil && indent == 8 && strings.HasPrefix(trim, "targetIdx: ") && len(cur.entries) > 0:
			idx, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(trim, "targetIdx: "), `"'`))
			if err != nil {
				return nil, bad()
			}
			cur.entries[len(cur.entries)-1].target = idx
		case inReason && indent >= 6:
			cur.reason += " " + trim
		default:
			return nil, bad()
		}
	}
	return out, sc.Err()
}

func (e *lintExclusion) excludes(r lintResult) bool {
	if len(e.entries) == 0 {
		return true
	}
	for _, en := range e.entries {
		if en.panel == r.panel && (en.target < 0 || en.target == r.target) {
			return true
		}
	}
	return false
}

func loadLintDashboard(t *testing.T, path string) lintDashboard {
	t.Helper()
	var d lintDashboard
	if err := json.Unmarshal([]byte(read(t, path)), &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return d
}

// TestDashboardLintRules: the dashboard passes the linter's rules, less the exclusions of
// .lint, each of which has a reason and is still needed.
func TestDashboardLintRules(t *testing.T) {
	t.Parallel()
	ex, err := readLintConfig(lintConfig)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]int{}
	for _, r := range lint(loadLintDashboard(t, dashboardFile)) {
		if e, ok := ex[r.rule]; ok && e.excludes(r) {
			used[r.rule]++
			continue
		}
		t.Errorf("%s: %s", dashboardFile, r)
	}
	for rule, e := range ex {
		if strings.TrimSpace(e.reason) == "" {
			t.Errorf("%s: the exclusion of %s gives no reason", lintConfig, rule)
		}
		if used[rule] == 0 {
			t.Errorf("%s: the exclusion of %s excludes nothing: remove it", lintConfig, rule)
		}
	}
}

// TestDashboardLintRulesCatch: each ported rule finds what it is for, so a rule that
// silently stopped working does not pass a bad dashboard.
func TestDashboardLintRulesCatch(t *testing.T) {
	t.Parallel()
	good := loadLintDashboard(t, dashboardFile)
	clone := func() lintDashboard {
		var d lintDashboard
		b, err := json.Marshal(good)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	firstTS := func(d *lintDashboard) *lintPanel {
		for i := range d.Panels {
			if d.Panels[i].Type == "timeseries" && strings.Contains(d.Panels[i].Targets[0].Expr, "_total") {
				return &d.Panels[i]
			}
		}
		t.Fatal("no timeseries panel over a counter")
		return nil
	}
	tests := []struct {
		rule   string
		damage func(*lintDashboard)
	}{
		{"uneditable-dashboard", func(d *lintDashboard) { d.Editable = true }},
		{"template-job-rule", func(d *lintDashboard) {
			d.Templating.List = slices.DeleteFunc(d.Templating.List, func(v lintTemplate) bool { return v.Name == "job" })
		}},
		{"template-instance-rule", func(d *lintDashboard) {
			for i := range d.Templating.List {
				if d.Templating.List[i].Name == "instance" {
					d.Templating.List[i].AllValue = ".*"
				}
			}
		}},
		{"template-on-time-change-reload-rule", func(d *lintDashboard) {
			for i := range d.Templating.List {
				if d.Templating.List[i].Type == "query" {
					d.Templating.List[i].Refresh = 1
				}
			}
		}},
		{"template-label-promql-rule", func(d *lintDashboard) {
			for i := range d.Templating.List {
				if d.Templating.List[i].Name == "site" {
					d.Templating.List[i].RawQuery = json.RawMessage(`"label_vals(edgevitals_requests_total, site)"`)
				}
			}
		}},
		{"panel-datasource-rule", func(d *lintDashboard) {
			firstTS(d).Datasource = json.RawMessage(`{"type":"prometheus","uid":"P1809F7CD0C75ACF3"}`)
		}},
		{"panel-title-description-rule", func(d *lintDashboard) { firstTS(d).Description = "" }},
		{"panel-units-rule", func(d *lintDashboard) { firstTS(d).FieldConfig.Defaults.Unit = "requests" }},
		{"target-job-rule", func(d *lintDashboard) {
			p := firstTS(d)
			p.Targets[0].Expr = strings.ReplaceAll(p.Targets[0].Expr, `job=~"$job"`, `job="edgevitals"`)
		}},
		{"target-instance-rule", func(d *lintDashboard) {
			p := firstTS(d)
			p.Targets[0].Expr = strings.ReplaceAll(p.Targets[0].Expr, `, instance=~"$instance"`, "")
		}},
		{"target-rate-interval-rule", func(d *lintDashboard) {
			p := firstTS(d)
			p.Targets[0].Expr = strings.ReplaceAll(p.Targets[0].Expr, "[$__rate_interval]", "[5m]")
		}},
		{"target-counter-agg-rule", func(d *lintDashboard) {
			p := firstTS(d)
			p.Targets[0].Expr = `sum(edgevitals_requests_total{job=~"$job", instance=~"$instance"})`
		}},
	}
	for _, tt := range tests {
		d := clone()
		tt.damage(&d)
		found := false
		for _, r := range lint(d) {
			found = found || r.rule == tt.rule
		}
		if !found {
			t.Errorf("%s found nothing in a dashboard damaged for it", tt.rule)
		}
	}
}

// TestDashboardLinter runs Grafana's dashboard-linter itself when it is on PATH. It is
// not required under CI: it cannot be installed from the Go module proxy (see the top of
// this file), and the port above runs everywhere.
func TestDashboardLinter(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("dashboard-linter")
	if err != nil {
		t.Skipf("!!! SKIPPED: dashboard-linter not found (%v): it cannot be installed from the Go module "+
			"proxy; its rules ran as a Go port (TestDashboardLintRules). Put a dashboard-linter on PATH to run it.", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "lint", "--strict", "-c", lintConfig, dashboardFile).CombinedOutput()
	if err != nil {
		t.Errorf("dashboard-linter lint --strict %s: %v\n%s", dashboardFile, err, out)
	}
}
