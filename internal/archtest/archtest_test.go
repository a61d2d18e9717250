package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// allowedViolations are today's violations, to be removed as the layering is fixed;
// a violation not listed fails, and so does a listed one that is gone.
var allowedViolations = []string{}

func TestModuleLayering(t *testing.T) {
	graph := moduleGraph(t)
	got := Check(Rules, graph)
	for _, v := range got {
		if !slices.Contains(allowedViolations, v) {
			t.Errorf("layering: %s", v)
		}
	}
	for _, v := range allowedViolations {
		if !slices.Contains(got, v) {
			t.Errorf("fixed, remove it from allowedViolations: %s", v)
		}
	}
}

// moduleGraph lists the module's packages with `go list -deps -json ./...`
// and keeps their non-test imports within the module.
func moduleGraph(t *testing.T) []Package {
	t.Helper()
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	cmd := exec.Command("go", "list", "-deps", "-test=false", "-json", "./...")
	cmd.Dir = strings.TrimSpace(string(root))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v: %s", err, stderr.String())
	}
	var graph []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath                         string
			Imports, TestImports, XTestImports []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list: %v", err)
		}
		rel, ok := relative(p.ImportPath)
		if !ok {
			continue
		}
		n := Package{Path: rel}
		for _, imp := range p.Imports {
			if r, ok := relative(imp); ok && !slices.Contains(n.Imports, r) {
				n.Imports = append(n.Imports, r)
			}
		}
		graph = append(graph, n)
	}
	if len(graph) < 5 {
		t.Fatalf("go list found %d packages of the module: not the module?", len(graph))
	}
	return graph
}

func relative(path string) (string, bool) {
	if path == Module {
		return "", true
	}
	rel, ok := strings.CutPrefix(path, Module+"/")
	return rel, ok
}

func TestCheck(t *testing.T) {
	rules := map[string][]string{
		"cmd/...":       {Any},
		"cache":         nil,
		"proxy":         {"cache"},
		"admin":         {"proxy", "vitals/..."},
		"vitals/store":  nil,
		"vitals/report": {"vitals/store"},
	}
	f := func(name string, graph []Package, want ...string) {
		t.Helper()
		got := Check(rules, graph)
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	clean := []Package{
		{Path: "cmd/edgevitals", Imports: []string{"proxy", "admin", "cache"}},
		{Path: "admin", Imports: []string{"proxy", "vitals/report", "vitals/store"}},
		{Path: "proxy", Imports: []string{"cache"}},
		{Path: "cache"},
		{Path: "vitals/report", Imports: []string{"vitals/store"}},
		{Path: "vitals/store"},
	}
	f("the layered graph", clean)
	with := func(pkg string, imports ...string) []Package {
		g := slices.Clone(clean)
		for i := range g {
			if g[i].Path == pkg {
				g[i].Imports = append(slices.Clone(g[i].Imports), imports...)
				return g
			}
		}
		return append(g, Package{Path: pkg, Imports: imports})
	}
	f("proxy importing vitals", with("proxy", "vitals/report"), "proxy imports vitals/report")
	f("proxy importing admin", with("proxy", "admin"), "cycle: admin -> proxy -> admin", "proxy imports admin")
	f("cache importing the project", with("cache", "proxy"), "cache imports proxy", "cycle: proxy -> cache -> proxy")
	f("vitals importing proxy", with("vitals/store", "proxy"), "vitals/store imports proxy")
	f("a package with no rule", with("dashboard", "vitals/report"), "dashboard: no rule (add one to archtest.Rules)")
	f("a cycle through cmd", with("vitals/store", "cmd/edgevitals"),
		"cycle: admin -> vitals/report -> vitals/store -> cmd/edgevitals -> admin", "vitals/store imports cmd/edgevitals")
}
