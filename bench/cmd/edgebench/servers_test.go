package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func moduleRootForTest(t *testing.T) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("moduleRoot: %v", err)
	}
	return root
}

// TestPeerConfigs renders the Varnish and nginx configs kept in bench/ and has the real
// programs check them, so a change to a template is caught before a benchmark run.
func TestPeerConfigs(t *testing.T) {
	root := moduleRootForTest(t)
	dir := t.TempDir()
	tests := []struct {
		name, tool, src string
		data            map[string]any
		check           func(out string) []string
	}{
		{"varnish", "varnishd", filepath.Join(root, "bench", "varnish", "edgebench.vcl"),
			map[string]any{"OriginPort": 8081},
			func(out string) []string {
				argv := []string{"varnishd", "-C", "-n", filepath.Join(dir, "vwork"), "-f", out}
				if os.Geteuid() == 0 {
					argv = append(argv, "-j", "none") // as the harness runs it
				}
				return argv
			}},
		{"nginx", "nginx", filepath.Join(root, "bench", "nginx", "edgebench.conf"),
			map[string]any{"Root": os.Geteuid() == 0, "Dir": dir, "Port": 8080, "OriginPort": 8081, "CacheBytes": "1024k"},
			func(out string) []string {
				return []string{"nginx", "-t", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", out}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, tt.name+".conf")
			if err := renderTemplate(tt.src, out, tt.data); err != nil {
				t.Fatalf("renderTemplate(%s): %v", tt.src, err)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "{{") || !strings.Contains(string(b), "8081") {
				t.Errorf("rendered %s has placeholders left or no origin port:\n%s", tt.name, b)
			}
			if _, err := exec.LookPath(tt.tool); err != nil {
				t.Skipf("%s not installed: rendered but not checked", tt.tool)
			}
			argv := tt.check(out)
			if b, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
				t.Errorf("%s rejects the rendered config: %v\n%s", strings.Join(argv, " "), err, b)
			}
		})
	}
	if err := renderTemplate(filepath.Join(root, "bench", "nginx", "edgebench.conf"), filepath.Join(dir, "x"), map[string]any{}); err == nil {
		t.Error("renderTemplate with missing fields = nil error, want one")
	}
}
