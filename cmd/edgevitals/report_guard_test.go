package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// TestReportGuardrailCannotCompare: `report -fail-on regressed` passes
// only a site's very first release without a comparison. Retention goes by
// the end of a release's window, so the release a new one compares
// against is still there (pruned by its start, the guardrail would pass a
// regressed release as "first release"); a report
// with no line that could compare, or whose predecessor retention did
// delete, stops the pipeline and says why. Prune is handed the bound the
// app's clock would give it.
func TestReportGuardrailCannotCompare(t *testing.T) {
	origin := newCacheableOrigin(t)
	a := startTestApp(t, origin.URL)
	admin := "http://" + a.adminLn.Addr().String()
	t.Setenv("EDGEVITALS_ADMIN_TOKEN", "e2e-token")
	const retention = 30 * 24 * time.Hour
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// v1 shipped 40 days ago and ran until v2, an hour ago, which made
	// most pages uncacheable.
	must(a.vstore.AddRelease(store.Release{Site: "blog", ID: "v1", At: now.Add(-40 * 24 * time.Hour), Source: store.SourceAPI}))
	must(a.vstore.AddRelease(store.Release{Site: "blog", ID: "v2", At: now.Add(-time.Hour), Source: store.SourceAPI}))
	for i := range 30 {
		must(a.vstore.AddTraffic(store.TrafficPoint{Site: "blog", At: now.Add(-3*time.Hour + time.Duration(i)*time.Minute), Hit: 90, Miss: 10}))
		must(a.vstore.AddTraffic(store.TrafficPoint{Site: "blog", At: now.Add(-50*time.Minute + time.Duration(i)*time.Minute), Hit: 40, Miss: 10, Pass: 50,
			Uncacheable: map[string]uint64{"set_cookie": 50}}))
	}
	report := func(args ...string) (int, string, string) {
		var out, errs bytes.Buffer
		code := run(append([]string{"report", "-admin", admin}, args...), &out, &errs)
		return code, out.String(), errs.String()
	}

	_, err := a.vstore.Prune(now.Add(-retention))
	must(err)
	code, out, errs := report("-release", "v2", "-fail-on", "regressed")
	if code != 1 || !strings.Contains(out, "hit_ratio") || !strings.Contains(errs, "regressed") {
		t.Errorf("guardrail on v2, v1 within retention by its window = %d\n%s\n%s\nwant 1, v2 regressed against v1", code, out, errs)
	}

	// v3 just shipped: nothing measured in its window yet.
	must(a.vstore.AddRelease(store.Release{Site: "blog", ID: "v3", At: time.Now(), Source: store.SourceAPI}))
	code, out, errs = report("-release", "v3", "-fail-on", "regressed")
	if code != 1 || !strings.Contains(errs, "cannot compare release v3 of blog with v2") || !strings.Contains(errs, "not enough data") {
		t.Errorf("guardrail on v3 with no data = %d\n%s\n%s\nwant 1 and that it cannot compare", code, out, errs)
	}

	// Retention passes v3's start: v1 and v2 go, v3, the latest, stays.
	_, err = a.vstore.Prune(time.Now().Add(time.Second))
	must(err)
	for _, args := range [][]string{{"-fail-on", "regressed"}, {}} {
		code, out, errs = report(args...)
		if code != 1 || !strings.Contains(errs, "cannot compare") || !strings.Contains(errs, `"v2"`) || !strings.Contains(errs, "retention") || strings.Contains(errs, "first") {
			t.Errorf("report %q of v3 with its predecessor pruned = %d\n%s\n%s\nwant 1, cannot compare, naming v2 and retention, not a first release", args, code, out, errs)
		}
	}

	// The curl-only hook for CI runners says the same and fails, at once.
	hook := exec.Command("sh", "../../deploy/ci/release.sh", "blog", "v3", "", "--guard", "1")
	hook.Env = append(os.Environ(), "EDGEVITALS_ADMIN="+admin, "EDGEVITALS_ADMIN_TOKEN=e2e-token")
	hookOut, err := hook.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 || !strings.Contains(string(hookOut), "cannot compare") {
		t.Errorf("deploy/ci/release.sh --guard on v3 with its predecessor pruned = %v:\n%s\nwant exit 1, cannot compare", err, hookOut)
	}
}
