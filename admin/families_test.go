package admin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/edgevitals/edgevitals/proxy/proxytest"
	"github.com/edgevitals/edgevitals/vitals/release"
	"github.com/edgevitals/edgevitals/vitals/store"
	"github.com/edgevitals/edgevitals/vitals/vitalstest"
)

// checkFamilies fails unless every family of a Prometheus text exposition
// has exactly one HELP and one TYPE line, the TYPE before its first sample,
// and all its lines together, as promtool and expfmt demand.
func checkFamilies(t *testing.T, text string) {
	t.Helper()
	kinds := map[string]string{}
	for line := range strings.Lines(text) {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			kinds[f[2]] = f[3]
		}
	}
	help, typ := map[string]int{}, map[string]int{}
	sampled, closed := map[string]bool{}, map[string]bool{}
	current := ""
	enter := func(name string) {
		if name == current {
			return
		}
		if closed[name] {
			t.Errorf("%s: its lines are not together", name)
		}
		closed[current] = true
		current = name
	}
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "#" && len(f) >= 3 && (f[1] == "HELP" || f[1] == "TYPE"):
			enter(f[2])
			if f[1] == "HELP" {
				help[f[2]]++
				continue
			}
			typ[f[2]]++
			if sampled[f[2]] {
				t.Errorf("%s: TYPE after its samples", f[2])
			}
		case f[0] == "#":
		default:
			name := sampleFamily([]byte(line), kinds)
			enter(name)
			sampled[name] = true
		}
	}
	for name := range sampled {
		if help[name] != 1 || typ[name] != 1 {
			t.Errorf("%s: %d HELP and %d TYPE lines, want 1 and 1", name, help[name], typ[name])
		}
	}
	if len(sampled) == 0 {
		t.Errorf("no samples in\n%s", text)
	}
}

// promtoolCheck pipes an exposition through promtool check metrics when
// promtool is installed.
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not on PATH: the pure-Go check stands alone")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() == 3:
		// Lint advice, not a parse error (exit 1): the library's go_ and
		// process_ series keep their historical names; ours draw none.
		for line := range strings.Lines(string(out)) {
			if strings.HasPrefix(line, "edgevitals_") {
				t.Errorf("promtool check metrics: %s", strings.TrimSpace(line))
			}
		}
	default:
		t.Errorf("promtool check metrics refused the page: %v\n%s", err, out)
	}
}

// releasesAt is when the first release of twoSitesOfReleases starts.
var releasesAt = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// twoSitesOfReleases is a release registry over a real store, registered
// on set, holding three releases of blog (the latest regressed) and one of
// shop.
func twoSitesOfReleases(t *testing.T, set *metrics.Set) *release.Registry {
	t.Helper()
	st := vitalstest.OpenStore(t, filepath.Join(t.TempDir(), "edgevitals.db"))
	reg, err := release.New(release.Options{Store: st, Sites: func() []string { return []string{"blog", "shop"} }, Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	at := releasesAt
	for _, rel := range []store.Release{
		{Site: "blog", ID: "v1", At: at}, {Site: "blog", ID: "v2", At: at.Add(time.Hour)}, {Site: "blog", ID: "v3", At: at.Add(2 * time.Hour)},
		{Site: "shop", ID: "2026.12.1", At: at},
	} {
		if err := reg.Record(rel); err != nil {
			t.Fatal(err)
		}
	}
	reg.MarkVerdict("blog", "v3", true)
	return reg
}

// TestReleaseInfoFamiliesOnce: with several releases, edgevitals_release_info
// and edgevitals_release_regressed each have one HELP and one TYPE line.
func TestReleaseInfoFamiliesOnce(t *testing.T) {
	metrics.ExposeMetadata(true)
	defer metrics.ExposeMetadata(false)
	set := metrics.NewSet()
	twoSitesOfReleases(t, set)
	var b bytes.Buffer
	set.WritePrometheus(&b)
	text := b.String()
	checkFamilies(t, text)
	at := releasesAt.Add(time.Hour).Unix()
	for _, want := range []string{
		fmt.Sprintf(`edgevitals_release_info{site="blog",release="v2"} %d`, at),
		fmt.Sprintf(`edgevitals_release_info{site="shop",release="2026.12.1"} %d`, at-3600),
		`edgevitals_release_regressed{site="blog",release="v3"} 1`,
		`edgevitals_release_regressed{site="shop",release="2026.12.1"} 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("writeInfo lacks %s in\n%s", want, text)
		}
	}
	if n := strings.Count(text, "edgevitals_release_info{"); n != 4 {
		t.Errorf("%d release_info series, want 4", n)
	}
}

// TestMetricsPageFamiliesOnce: the admin /metrics page keeps every family
// whole whatever the writers do: the release writer, and a writer that
// emits series of a family the Set also has, with metadata on each call.
func TestMetricsPageFamiliesOnce(t *testing.T) {
	metrics.ExposeMetadata(true)
	defer metrics.ExposeMetadata(false)
	h := proxytest.New(t, proxytest.Page("x", "Cache-Control: max-age=60"))
	h.Get("/a/")
	h.Get("/a/")
	twoSitesOfReleases(t, h.Set)
	h.Set.RegisterMetricsWriter(func(w io.Writer) {
		metrics.WriteCounterUint64(w, `edgevitals_requests_total{site="elsewhere",cache="hit"}`, 3)
		metrics.WriteCounterUint64(w, `edgevitals_requests_total{site="elsewhere",cache="miss"}`, 1)
	})
	admin := startAdmin(t, h, nil)
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	checkFamilies(t, text)
	promtoolCheck(t, text)
	for _, want := range []string{
		`edgevitals_requests_total{site="elsewhere",cache="hit"} 3`,
		`edgevitals_requests_total{site="blog",cache="hit"} 1`,
		`edgevitals_release_info{site="blog",release="v1"}`,
		"# HELP edgevitals_release_info " + release.MetricHelp()["edgevitals_release_info"],
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
