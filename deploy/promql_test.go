package deploy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// promSelector is one vector selector of a PromQL expression.
type promSelector struct {
	name     string   // the metric name, "" for {...} alone
	matchers []string // as written without spaces: site=~"$site"
	rng      string   // the range of foo[5m], "" without one
	call     string   // the innermost function (or aggregation) around it, "" at top level
}

func (s promSelector) String() string {
	out := s.name + "{" + strings.Join(s.matchers, ",") + "}"
	if s.rng != "" {
		out += "[" + s.rng + "]"
	}
	return out
}

var (
	promAggregations = []string{"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
	promGrouping     = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}
	promKeywords     = []string{"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
)

// promSelectors lists the vector selectors of a PromQL expression with their matchers,
// range and enclosing function: enough of a PromQL reader for the linter's target rules.
// Grafana variables may stand in ranges and matcher values. An expression it cannot read
// is an error.
func promSelectors(expr string) ([]promSelector, error) {
	var out []promSelector
	var calls []string // open parentheses: the function each belongs to, "" for grouping
	pending := ""      // a function or aggregation name waiting for its "("
	lastSel := -1      // the selector just read, which a [range] belongs to
	i := 0
	skipSpace := func() {
		for i < len(expr) && unicode.IsSpace(rune(expr[i])) {
			i++
		}
	}
	peek := func() byte {
		j := i
		for j < len(expr) && unicode.IsSpace(rune(expr[j])) {
			j++
		}
		if j < len(expr) {
			return expr[j]
		}
		return 0
	}
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
	}
	readString := func() (string, error) {
		q, err := strconv.QuotedPrefix(expr[i:])
		if err != nil {
			if expr[i] == '\'' { // PromQL allows single quotes; no escapes checked
				end := strings.IndexByte(expr[i+1:], '\'')
				if end < 0 {
					return "", fmt.Errorf("unterminated string at %d", i)
				}
				q = expr[i : i+end+2]
			} else {
				return "", fmt.Errorf("bad string at %d: %w", i, err)
			}
		}
		i += len(q)
		return q, nil
	}
	matchers := func() ([]string, error) {
		var ms []string
		i++ // {
		for {
			skipSpace()
			if i >= len(expr) {
				return nil, fmt.Errorf("unterminated {")
			}
			if expr[i] == '}' {
				i++
				return ms, nil
			}
			if expr[i] == ',' {
				i++
				continue
			}
			start := i
			for i < len(expr) && isIdent(expr[i], i == start) {
				i++
			}
			name := expr[start:i]
			if name == "" {
				return nil, fmt.Errorf("bad matcher at %d", i)
			}
			skipSpace()
			op := ""
			for _, o := range []string{"=~", "!~", "!=", "="} {
				if strings.HasPrefix(expr[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, fmt.Errorf("matcher %s: no operator at %d", name, i)
			}
			i += len(op)
			skipSpace()
			if i >= len(expr) || (expr[i] != '"' && expr[i] != '\'' && expr[i] != '`') {
				return nil, fmt.Errorf("matcher %s: value is not a string", name)
			}
			v, err := readString()
			if err != nil {
				return nil, err
			}
			ms = append(ms, name+op+v)
		}
	}
	call := func() string {
		if len(calls) == 0 {
			return ""
		}
		return calls[len(calls)-1]
	}
	for {
		skipSpace()
		if i >= len(expr) {
			break
		}
		c := expr[i]
		switch {
		case c == '(':
			calls = append(calls, pending)
			pending, lastSel = "", -1
			i++
		case c == ')':
			if len(calls) == 0 {
				return nil, fmt.Errorf("unbalanced ) at %d", i)
			}
			calls = calls[:len(calls)-1]
			lastSel = -1
			i++
		case c == '[':
			end := strings.IndexByte(expr[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unterminated [ at %d", i)
			}
			if lastSel >= 0 {
				out[lastSel].rng = strings.TrimSpace(expr[i+1 : i+end])
			}
			lastSel = -1
			i += end + 1
		case c == '{':
			ms, err := matchers()
			if err != nil {
				return nil, err
			}
			out = append(out, promSelector{matchers: ms, call: call()})
			lastSel = len(out) - 1
		case c == '"' || c == '\'' || c == '`':
			if _, err := readString(); err != nil {
				return nil, err
			}
			lastSel = -1
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i], false) || expr[i] == '.') {
				i++ // a number, or a duration after offset
			}
		case c == '$':
			i++
			for i < len(expr) && (isIdent(expr[i], false) || expr[i] == '{' || expr[i] == '}') {
				i++
			}
		case isIdent(c, true):
			start := i
			for i < len(expr) && isIdent(expr[i], false) {
				i++
			}
			id := expr[start:i]
			low := strings.ToLower(id)
			switch {
			case slices.Contains(promGrouping, low):
				if peek() == '(' {
					skipSpace()
					end := strings.IndexByte(expr[i:], ')')
					if end < 0 {
						return nil, fmt.Errorf("unterminated %s ( at %d", id, i)
					}
					i += end + 1
				}
			case slices.Contains(promKeywords, low):
				lastSel = -1
			case slices.Contains(promAggregations, low) || peek() == '(':
				pending = id
			default:
				sel := promSelector{name: id, call: call()}
				if peek() == '{' {
					skipSpace()
					ms, err := matchers()
					if err != nil {
						return nil, err
					}
					sel.matchers = ms
				}
				out = append(out, sel)
				lastSel = len(out) - 1
			}
		default:
			lastSel = -1 // an operator
			i++
		}
	}
	if len(calls) > 0 {
		return nil, fmt.Errorf("unbalanced ( in %q", expr)
	}
	return out, nil
}

func TestPromSelectors(t *testing.T) {
	t.Parallel()
	f := func(expr string, want ...string) {
		t.Helper()
		sels, err := promSelectors(expr)
		if err != nil {
			t.Errorf("promSelectors(%q): %v", expr, err)
			return
		}
		var got []string
		for _, s := range sels {
			got = append(got, s.call+":"+s.String())
		}
		if !slices.Equal(got, want) {
			t.Errorf("promSelectors(%q) = %q, want %q", expr, got, want)
		}
	}
	f(`edgevitals_cache_bytes`, `:edgevitals_cache_bytes{}`)
	f(`sum by (cache) (rate(edgevitals_requests_total{site=~"$site", job=~"$job"}[$__rate_interval]))`,
		`rate:edgevitals_requests_total{site=~"$site",job=~"$job"}[$__rate_interval]`)
	f(`sum(rate(a_total[5m])) by (site) / on (site) group_left sum without (x) (b)`,
		`rate:a_total{}[5m]`, `sum:b{}`)
	f(`histogram_quantile(0.95, sum by (le) (rate(x_bucket{le!="1"}[1m]))) > bool 0.5`, `rate:x_bucket{le!="1"}[1m]`)
	f(`site:edgevitals_cache_hit_ratio:rate5m{site=~"$site"} offset 1w`, `:site:edgevitals_cache_hit_ratio:rate5m{site=~"$site"}`)
	f(`time() - {__name__="up", a='b'}`, `:{__name__="up",a='b'}`)
	f(`increase(c_total{a="}{,"}[$__range])`, `increase:c_total{a="}{,"}[$__range]`)
	for _, bad := range []string{`rate(x[5m]`, `x{a="b"`, `x{a}`, `x{a=b}`, `sum)`, `x[5m`, `x{a="b`} {
		if sels, err := promSelectors(bad); err == nil {
			t.Errorf("promSelectors(%q) = %v, want an error", bad, sels)
		}
	}
}

// FuzzPromSelectors: any text, as a dashboard may hold, gives selectors or an error,
// never a panic or a loop, and every selector's matchers read back as matchers.
func FuzzPromSelectors(f *testing.F) {
	for _, s := range []string{
		`sum by (cache) (rate(edgevitals_requests_total{site=~"$site", job=~"$job"}[$__rate_interval]))`,
		`histogram_quantile(0.95, sum by (le) (rate(x_bucket{le!="1"}[1m]))) > bool 0.5`,
		`time() - {__name__="up", a='b'} offset 1w`,
		`x{a="\"}"}`, `sum(`, `{`, `x[`, `'`, "`a`",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		sels, err := promSelectors(expr)
		if err != nil {
			return
		}
		for _, s := range sels {
			if _, err := promSelectors("x{" + strings.Join(s.matchers, ",") + "}"); err != nil {
				t.Errorf("promSelectors(%q): matchers %q do not read back: %v", expr, s.matchers, err)
			}
		}
	})
}
