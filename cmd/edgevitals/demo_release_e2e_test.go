package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/cmd/edgevitals/internal/demo"
	"github.com/edgevitals/edgevitals/config"
	"github.com/edgevitals/edgevitals/proxy"
	"github.com/edgevitals/edgevitals/vitals/lab"
	"github.com/edgevitals/edgevitals/vitals/report"
)

// TestDemoReleasesWithChromium is issue 6's end-to-end check on the demo
// shop: a harmless release is reported `same`; a bad one (a blocking A/B
// script and a Set-Cookie on articles) is reported as a lab CWV and hit
// ratio regression, with set_cookie named. Lab samples are taken with real
// Chromium through the proxy and stored as the sampler stores them.
func TestDemoReleasesWithChromium(t *testing.T) {
	chromium := needChromium(t)
	shop := demo.New(demo.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	origin := httptest.NewServer(shop)
	defer origin.Close()
	a := startTestAppWith(t, origin.URL, func(c *config.Config) {
		c.Sites[0].ReleaseHeader = "X-Release"
		c.Report.MinSamples = 5
	})
	proxyURL := "http://" + a.proxyLn.Addr().String()
	admin := "http://" + a.adminLn.Addr().String()
	b, err := lab.NewBrowser(chromium, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.LabVisits()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	const article = "/articles/falling-for-coffee-in-lisbon/"
	paths := []string{"/", article, "/category/brewing/", "/articles/falling-for-colombian-washed-coffees/"}
	traffic := func() {
		for i := range 160 {
			resp, err := http.Get(proxyURL + paths[i%len(paths)])
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	samples := func() {
		for range 5 {
			s, err := b.Measure(ctx, proxyURL+article, lab.Desktop, "")
			if err != nil {
				t.Fatalf("measure: %v", err)
			}
			if err := a.vstore.AddSample("blog", article, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	// window runs one release's traffic and samples, and closes its minute of traffic.
	window := func() {
		traffic()
		samples()
		a.releases.RecordTraffic()
	}
	ship := func(id string, bad bool) {
		shop.SetRelease(id, bad)
		if _, err := a.proxy.Purge(proxy.PurgeRequest{Site: "blog", All: true}); err != nil {
			t.Fatal(err)
		}
		// The next origin response names the release.
		resp, err := http.Get(proxyURL + "/?s=" + id)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		a.registry.Sync()
	}
	reportOf := func(id string) report.Report {
		t.Helper()
		rep := apiReport(t, admin, "blog", id, "")
		var out strings.Builder
		rep.WriteTable(&out)
		t.Logf("report of %s:\n%s", id, out.String())
		return rep
	}

	a.releases.RecordTraffic() // baseline
	ship("v1", false)
	window()
	ship("v2", false) // harmless
	window()
	ship("v3", true) // the bad one
	window()

	harmless := reportOf("v2")
	if harmless.Verdict != report.Same {
		t.Errorf("harmless release verdict = %q, want %q", harmless.Verdict, report.Same)
	}
	for _, l := range harmless.Lines {
		if l.Verdict == report.Regressed {
			t.Errorf("harmless release: %s %s %s regressed: %s", l.Metric, l.Page, l.Profile, l.Why)
		}
	}
	bad := reportOf("v3")
	if bad.Verdict != report.Regressed {
		t.Fatalf("bad release verdict = %q, want regressed", bad.Verdict)
	}
	regressed := map[string]bool{}
	for _, l := range bad.Lines {
		if l.Verdict == report.Regressed {
			regressed[l.Metric] = true
		}
	}
	if !regressed["hit_ratio"] {
		t.Error("hit ratio did not regress with Set-Cookie on every article")
	}
	if !regressed["lab_tbt_seconds"] && !regressed["lab_inp_seconds"] {
		t.Errorf("neither TBT nor INP regressed with a 300 ms blocking script; regressed: %v", regressed)
	}
	if fmt.Sprint(bad.NewUncacheable) != "[set_cookie]" {
		t.Errorf("new uncacheable reasons = %v, want [set_cookie]", bad.NewUncacheable)
	}
}

// apiReport reads the report of a site's release from the admin API, with
// the bearer token when there is one.
func apiReport(t *testing.T, admin, site, release, token string) report.Report {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, admin+"/api/report?site="+site+"&release="+release, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep report.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("report of %s %s: %d %v", site, release, resp.StatusCode, err)
	}
	return rep
}
