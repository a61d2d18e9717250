// Package archtest holds edgevitals' import rules (the "may import" column
// of the design's Layout table) and checks a package graph against them.
// Its test runs the check on the module itself (`go list -deps -json`), so
// a change that breaks the layering fails `go test ./...`.
package archtest

import (
	"fmt"
	"sort"
	"strings"
)

// Module is the module path; rules and graphs name packages relative to it.
const Module = "github.com/edgevitals/edgevitals"

// Any in a may-import list stands for every package of the module.
const Any = "*"

// Rules maps a package of the module (its path relative to the module) or
// a prefix ending in "/..." to the packages of the module it may import,
// themselves paths or "/..." prefixes. A package matching no rule is a
// violation: a new package has to say where it sits. Imports from outside
// the module (standard library, third party) are not checked here.
var Rules = map[string][]string{
	"cmd/...":           {Any},
	"bench/...":         {Any},
	"deploy":            {Any}, // assets and their tests
	"deploy/...":        {Any},
	"internal/...":      nil,
	"config":            {"internal/label"},
	"cache":             nil,
	"proxy":             {"cache"},
	"proxy/proxytest":   {"proxy", "cache"}, // a proxy on loopback for the tests of the packages above it
	"admin":             {"proxy", "cache", "config", "vitals/..."},
	"dashboard":         {"vitals/report", "vitals/store", "cache"}, // cache: what an uncacheable reason means
	"vitals/lab":        {"vitals/store"},                           // Sample is the store's record
	"vitals/field":      {"vitals/lab", "vitals/store", "internal/label"},
	"vitals/release":    {"vitals/store"},
	"vitals/insight":    nil,
	"vitals/report":     {"vitals/store"},
	"vitals/store":      nil,
	"vitals/vitalstest": {"vitals/store"}, // pages for the lab and field tests to measure, a store for their tests
}

// Package is one node of an import graph: its path relative to the module
// and the packages of the module its non-test files import. Tests are not
// held to the rules: they may run real components of any layer (a proxy
// test feeds beacons to the real field collector), and an external test
// importing a package above its own is no cycle in the build.
type Package struct {
	Path    string
	Imports []string
}

// Check returns the violations of rules in graph, sorted: imports a
// package's rule does not allow, packages with no rule, and import cycles
// (the compiler refuses them too; here a cycle is named with its path).
func Check(rules map[string][]string, graph []Package) []string {
	var out []string
	edges := map[string][]string{}
	for _, p := range graph {
		may, ok := ruleFor(rules, p.Path)
		if !ok {
			out = append(out, fmt.Sprintf("%s: no rule (add one to archtest.Rules)", name(p.Path)))
		}
		for _, imp := range p.Imports {
			if imp == p.Path {
				continue // an external test of the package itself
			}
			edges[p.Path] = append(edges[p.Path], imp)
			if ok && !allowed(may, imp) {
				out = append(out, fmt.Sprintf("%s imports %s", name(p.Path), name(imp)))
			}
		}
	}
	out = append(out, cycles(edges)...)
	sort.Strings(out)
	return dedupe(out)
}

func name(p string) string {
	if p == "" {
		return "(module root)"
	}
	return p
}

// ruleFor finds the rule of pkg: its own, else the longest "/..." prefix.
func ruleFor(rules map[string][]string, pkg string) ([]string, bool) {
	if may, ok := rules[pkg]; ok {
		return may, true
	}
	best, found := "", false
	var may []string
	for k, v := range rules {
		prefix, ok := strings.CutSuffix(k, "/...")
		if ok && strings.HasPrefix(pkg, prefix+"/") && len(prefix) >= len(best) {
			best, may, found = prefix, v, true
		}
	}
	return may, found
}

func allowed(may []string, imp string) bool {
	for _, m := range may {
		if m == Any || m == imp {
			return true
		}
		if prefix, ok := strings.CutSuffix(m, "/..."); ok && (imp == prefix || strings.HasPrefix(imp, prefix+"/")) {
			return true
		}
	}
	return false
}

// cycles reports each import cycle once, as "cycle: a -> b -> a".
func cycles(edges map[string][]string) []string {
	const (
		unseen = iota
		open
		done
	)
	state := map[string]int{}
	var stack, out []string
	var visit func(string)
	visit = func(p string) {
		state[p] = open
		stack = append(stack, p)
		for _, q := range edges[p] {
			switch state[q] {
			case unseen:
				visit(q)
			case open:
				i := len(stack) - 1
				for stack[i] != q {
					i--
				}
				loop := append(append([]string{}, stack[i:]...), q)
				out = append(out, "cycle: "+strings.Join(loop, " -> "))
			}
		}
		stack = stack[:len(stack)-1]
		state[p] = done
	}
	keys := make([]string, 0, len(edges))
	for k := range edges {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if state[k] == unseen {
			visit(k)
		}
	}
	return out
}

func dedupe(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
