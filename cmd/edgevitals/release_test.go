package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/edgevitals/edgevitals/config"
	"github.com/edgevitals/edgevitals/vitals/report"
)

// TestReleaseGuardrail follows a release through the product: the origin's
// release header registers the running release, CI records the next one
// with `edgevitals release`, the new release adds a Set-Cookie to every page,
// and `edgevitals report -fail-on regressed` stops the pipeline, naming
// set_cookie.
func TestReleaseGuardrail(t *testing.T) {
	var bad atomic.Bool
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bad.Load() {
			w.Header().Set("X-Release", "v2")
			w.Header().Set("Set-Cookie", "ab=1; Path=/")
		} else {
			w.Header().Set("X-Release", "v1")
		}
		fmt.Fprintf(w, "<html><head></head><body>%s</body></html>", r.URL.Path)
	}))
	defer origin.Close()
	hooks := make(chan map[string]any, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p map[string]any
		json.NewDecoder(r.Body).Decode(&p)
		hooks <- p
	}))
	defer receiver.Close()
	a := startTestAppWith(t, origin.URL, func(c *config.Config) {
		c.Sites[0].ReleaseHeader = "X-Release"
		c.Alerts.Webhook = receiver.URL
	})
	proxyURL := "http://" + a.proxyLn.Addr().String()
	admin := "http://" + a.adminLn.Addr().String()
	t.Setenv("EDGEVITALS_ADMIN_TOKEN", "e2e-token")

	get := func(n int) {
		for i := range n {
			resp, err := http.Get(fmt.Sprintf("%s/post/%d/", proxyURL, i%10))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	a.releases.RecordTraffic() // baseline
	get(200)
	// The origin's header named the running release.
	waitRelease(t, a, "v1")
	a.releases.RecordTraffic()

	var out, errs bytes.Buffer
	// The first release has nothing to compare with: the guardrail lets a
	// site's first deploy through, a plain report says it cannot report.
	if code := run([]string{"report", "-release", "v1", "-fail-on", "regressed", "-admin", admin}, &out, &errs); code != 0 || !strings.Contains(errs.String(), "is the first of site") {
		t.Errorf("guardrail on the first release = %d %q, want 0 and why", code, errs.String())
	}
	errs.Reset()
	if code := run([]string{"report", "-release", "v1", "-admin", admin}, &out, &errs); code != 1 || !strings.Contains(errs.String(), "nothing to compare") {
		t.Errorf("report of the first release = %d %q, want 1 and why", code, errs.String())
	}
	errs.Reset()
	first := exec.Command("sh", "../../deploy/ci/release.sh", "blog", "v1", "", "--guard", "1")
	first.Env = append(os.Environ(), "EDGEVITALS_ADMIN="+admin, "EDGEVITALS_ADMIN_TOKEN=e2e-token")
	if out, err := first.CombinedOutput(); err != nil || !strings.Contains(string(out), "the site's first") {
		t.Errorf("deploy/ci/release.sh --guard on the first release = %v:\n%s\nwant exit 0 at once, saying why", err, out)
	}
	if code := run([]string{"release", "-site", "blog", "-id", "v2", "-note", "A/B test", "-admin", admin}, &out, &errs); code != 0 {
		t.Fatalf("edgevitals release = %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "release v2 of blog recorded") {
		t.Errorf("release output = %q", out.String())
	}
	if code := run([]string{"release", "-site", "blog", "-id", "v2", "-admin", admin}, &out, &errs); code != 1 || !strings.Contains(errs.String(), "already recorded") {
		t.Errorf("recording v2 twice = %d %q, want 1 and a clear line", code, errs.String())
	}
	bad.Store(true)
	// The deploy purges, softly (the default for all): the first visitors
	// get the stale copies while they refresh.
	req, _ := http.NewRequest(http.MethodPost, admin+"/api/purge", strings.NewReader(`{"site":"blog","all":true}`))
	req.Header.Set("Authorization", "Bearer e2e-token")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("purge: %v %v", resp, err)
	}
	get(200)
	a.releases.RecordTraffic()

	out.Reset()
	errs.Reset()
	code := run([]string{"report", "-site", "blog", "-release", "v2", "-fail-on", "regressed", "-admin", admin}, &out, &errs)
	if code != 1 {
		t.Errorf("report -fail-on regressed = %d, want 1\n%s\n%s", code, out.String(), errs.String())
	}
	if !strings.Contains(out.String(), "hit_ratio") || !strings.Contains(out.String(), "set_cookie") {
		t.Errorf("report does not explain the drop:\n%s", out.String())
	}

	// The curl-only hook for CI runners without the binary does the same.
	cmd := exec.Command("sh", "../../deploy/ci/release.sh", "blog", "v2", "again", "--guard", "1")
	cmd.Env = append(os.Environ(), "EDGEVITALS_ADMIN="+admin, "EDGEVITALS_ADMIN_TOKEN=e2e-token")
	hookOut, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 || !strings.Contains(string(hookOut), "regressed") {
		t.Errorf("deploy/ci/release.sh --guard = %v:\n%s\nwant exit 1 naming the regression", err, hookOut)
	}

	out.Reset()
	if code := run([]string{"report", "-json", "-release", "v2", "-admin", admin}, &out, &errs); code != 0 {
		t.Fatalf("report -json = %d: %s", code, errs.String())
	}
	var rep report.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report -json: %v\n%s", err, out.String())
	}
	if rep.Verdict != report.Regressed || rep.Previous.ID != "v1" || len(rep.NewUncacheable) == 0 || rep.NewUncacheable[0] != "set_cookie" {
		t.Errorf("report = verdict %q, previous %q, new reasons %q; want regressed against v1 with set_cookie",
			rep.Verdict, rep.Previous.ID, rep.NewUncacheable)
	}

	// The built-in alert says so once, and the metric for the Prometheus rule is set.
	a.releases.CheckRegressions()
	a.releases.CheckRegressions()
	select {
	case p := <-hooks:
		if labels, _ := p["commonLabels"].(map[string]any); labels["alertname"] != "EdgevitalsReleaseRegressed" || labels["release"] != "v2" {
			t.Errorf("webhook payload labels = %v", labels)
		}
	default:
		t.Error("no webhook for the regressed release")
	}
	if len(hooks) != 0 {
		t.Errorf("%d more webhooks for the same regression", len(hooks))
	}
	// Grafana's release annotations read edgevitals_release_info.
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, id := range []string{"v1", "v2"} {
		if !bytes.Contains(body, []byte(`edgevitals_release_info{site="blog",release="`+id+`"}`)) {
			t.Errorf("no edgevitals_release_info for %s", id)
		}
	}
	if !bytes.Contains(body, []byte(`edgevitals_release_regressed{site="blog",release="v2"} 1`)) {
		t.Error(`edgevitals_release_regressed{site="blog",release="v2"} is not 1`)
	}
	// The API refuses unauthenticated writes.
	r, err := http.Post(admin+"/api/releases", "application/json", strings.NewReader(`{"site":"blog","id":"v3"}`))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /api/releases without token = %d, want 401", r.StatusCode)
	}
}

func waitRelease(t *testing.T, a *app, id string) {
	t.Helper()
	a.registry.Sync()
	if _, ok, err := a.vstore.Release("blog", id); err == nil && ok {
		return
	}
	t.Fatalf("release %s was not recorded from the origin header", id)
}
