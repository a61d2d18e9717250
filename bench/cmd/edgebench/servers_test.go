package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/config"
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

// TestEdgevitalsConfigs loads the configs the harness writes for edgevitals
// and edgevitals-rum with edgevitals' own loader: both valid, and only the
// second with field data on for every visitor.
func TestEdgevitalsConfigs(t *testing.T) {
	o, err := newOrigin(1000, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer o.close()
	for _, rum := range []bool{false, true} {
		dir := t.TempDir()
		s := &server{name: "edgevitals"}
		argv, err := edgevitalsArgs(s, dir, env{dir: dir, origin: o, cacheBytes: 64 << 20}, rum)
		if err != nil {
			t.Fatal(err)
		}
		path := argv[len(argv)-1]
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("rum=%v: the written config does not load: %v", rum, err)
		}
		if cfg.RUM.Enabled != rum || rum && cfg.RUM.SampleRate != 1 {
			t.Errorf("rum=%v: config has [rum] enabled=%v sample_rate=%v", rum, cfg.RUM.Enabled, cfg.RUM.SampleRate)
		}
		hit := http.Header{"Cache-Status": {"edgevitals; hit"}}
		if got := s.isHit(hit); got == rum {
			t.Errorf("rum=%v: a hit without Server-Timing counts as a hit: %v", rum, got)
		}
		hit.Set("Server-Timing", `edgevitals;desc="hit"`)
		if !s.isHit(hit) {
			t.Errorf("rum=%v: a hit with Server-Timing is not a hit", rum)
		}
	}
}
