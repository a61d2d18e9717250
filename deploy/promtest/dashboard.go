package promtest

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// DashboardExprs returns every PromQL expression of a Grafana dashboard file, in order and
// without duplicates: panel targets (also inside collapsed rows), Prometheus annotation
// queries, and the metric queried by label_values() or query_result() template variables.
// Grafana variables are replaced so that Prometheus can evaluate the result:
// $__rate_interval and $__interval by 5m and 1m, $__range by 1h, and any dashboard
// variable ($site, ${site}, ${site:regex}, [[site]]) by .* as in an "All" selection.
func DashboardExprs(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	exprs, err := dashboardExprs(data)
	if err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", path, err)
	}
	return exprs, nil
}

// dashboard is the part of Grafana's dashboard JSON that holds queries.
type dashboard struct {
	Panels      []panel `json:"panels"`
	Annotations struct {
		List []struct {
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []struct {
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row keeps its panels here
}

func dashboardExprs(data []byte) ([]string, error) {
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var out []string
	seen := map[string]bool{}
	add := func(expr string) {
		expr = strings.TrimSpace(expr)
		if expr == "" {
			return
		}
		expr = Substitute(expr)
		if !seen[expr] {
			seen[expr] = true
			out = append(out, expr)
		}
	}
	var walk func([]panel, int) error
	walk = func(ps []panel, depth int) error {
		if depth > 2 {
			return fmt.Errorf("panels nested %d deep: Grafana nests only rows", depth)
		}
		for _, p := range ps {
			for _, t := range p.Targets {
				add(t.Expr)
			}
			if err := walk(p.Panels, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Panels, 0); err != nil {
		return nil, err
	}
	for _, a := range d.Annotations.List {
		add(a.Expr)
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" || len(v.Query) == 0 {
			continue
		}
		q, err := variableQuery(v.Query)
		if err != nil {
			return nil, err
		}
		add(variableExpr(q))
	}
	return out, nil
}

// variableQuery reads a query variable's query: a string (older Grafana) or an object
// with a "query" field (Grafana 10).
func variableQuery(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var o struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return "", fmt.Errorf("template variable query: want a string or {\"query\": ...}: %w", err)
	}
	return o.Query, nil
}

var (
	// label_values(selector, label) and query_result(expr) carry PromQL; label_values(label),
	// label_names() and metrics(re) do not.
	labelValuesRe = regexp.MustCompile(`^\s*label_values\(\s*(.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)
	queryResultRe = regexp.MustCompile(`^\s*query_result\(\s*(.+)\)\s*$`)
)

func variableExpr(q string) string {
	if m := labelValuesRe.FindStringSubmatch(q); m != nil {
		return m[1]
	}
	if m := queryResultRe.FindStringSubmatch(q); m != nil {
		return m[1]
	}
	return ""
}

// builtins are Grafana's global variables that stand for durations in PromQL.
var builtins = map[string]string{
	"__rate_interval": "5m",
	"__interval":      "1m",
	"__interval_ms":   "60000",
	"__range":         "1h",
	"__range_s":       "3600",
	"__range_ms":      "3600000",
}

// variableRe matches $name, ${name}, ${name:format} and [[name]].
var variableRe = regexp.MustCompile(`\$\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[^}]*)?\}|\$([a-zA-Z_][a-zA-Z0-9_]*)|\[\[([a-zA-Z_][a-zA-Z0-9_]*)\]\]`)

// Substitute replaces Grafana variables in expr as DashboardExprs does.
func Substitute(expr string) string {
	return variableRe.ReplaceAllStringFunc(expr, func(m string) string {
		sub := variableRe.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3] // exactly one group matched
		if v, ok := builtins[name]; ok {
			return v
		}
		return ".*"
	})
}
