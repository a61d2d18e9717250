package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/config"
	"github.com/edgevitals/edgevitals/deploy/promtest"
)

// startTestApp runs the real serve wiring (newApp) on loopback ports in
// front of origin, until the test ends.
func startTestApp(t *testing.T, origin string) *app {
	t.Helper()
	return startTestAppWith(t, origin, nil)
}

// startTestAppWith is startTestApp with a chance to edit the config.
func startTestAppWith(t *testing.T, origin string, edit func(*config.Config)) *app {
	t.Helper()
	return startTestAppLog(t, origin, edit, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// startTestAppLog is startTestAppWith logging to log.
func startTestAppLog(t *testing.T, origin string, edit func(*config.Config), log *slog.Logger) *app {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.AdminListen = "127.0.0.1:0"
	cfg.Server.AdminToken = "e2e-token"
	site := config.DefaultSite()
	site.Name = "blog"
	site.Hosts = []string{"*"}
	site.Origins = []string{origin}
	site.Preset = "wordpress"
	cfg.Sites = []config.Site{site}
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("app: %v", err)
		}
	})
	return a
}

// TestMetricsWithPrometheus is the end-to-end check of the metrics, the
// recording and alert rules and the Grafana dashboard: a real Prometheus
// scrapes edgevitals while the test drives hits, then a wave of Set-Cookie
// responses (a bad release), and the rules must see and explain it.
func TestMetricsWithPrometheus(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/bad/") {
			w.Header().Set("Set-Cookie", "ab_test=1; Path=/")
		}
		fmt.Fprintf(w, "<html><body>%s</body></html>", r.URL.Path)
	}))
	defer origin.Close()
	a := startTestApp(t, origin.URL)
	proxyURL := "http://" + a.proxyLn.Addr().String()
	adminAddr := a.adminLn.Addr().String()
	prom := promtest.Start(t, []string{adminAddr}, []string{"../../deploy/prometheus/edgevitals.rules.yml"})

	// The client counts outcomes from Cache-Status, the ground truth the
	// rules must reproduce.
	var hits, cacheable atomic.Int64
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) {
		resp, err := client.Get(proxyURL + path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		cs := resp.Header.Get("Cache-Status")
		if !strings.Contains(cs, "fwd=bypass") {
			cacheable.Add(1)
		}
		if strings.Contains(cs, "; hit") {
			hits.Add(1)
		}
	}
	// drive sends traffic (20 requests every 100 ms, well over the alert's
	// traffic floor) until stop is closed.
	drive := func(stop <-chan struct{}, path func(i int) string) *sync.WaitGroup {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				for j := range 20 {
					get(path(i*20 + j))
				}
			}
		}()
		return &wg
	}
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ratio := `site:edgevitals_cache_hit_ratio:rate5m{site="blog"}`
	// rate() counts only what happens after a series' first sample: let
	// Prometheus see every counter at 0 before any traffic.
	if err := prom.WaitFor(ctx, `edgevitals_requests_total{site="blog",cache="hit"}`, func(s []promtest.Sample) bool { return len(s) == 1 }); err != nil {
		t.Fatalf("first scrape: %v", err)
	}

	// Phase 1: a healthy site, 20 pages read over and over.
	stop := make(chan struct{})
	wg := drive(stop, func(i int) string { return fmt.Sprintf("/post/%d/", i%20) })
	if err := prom.WaitFor(ctx, ratio, func(s []promtest.Sample) bool { return len(s) == 1 && s[0].Value > 0.9 }); err != nil {
		t.Fatalf("healthy hit ratio: %v", err)
	}
	t.Logf("healthy ratio seen after %d requests, %s", cacheable.Load(), time.Since(begin))
	close(stop)
	wg.Wait()

	// Phase 2: the bad release: every page now sets a cookie.
	stop = make(chan struct{})
	wg = drive(stop, func(i int) string { return fmt.Sprintf("/bad/%d/", i%20) })
	err := prom.WaitFor(ctx, `ALERTS{alertname="EdgevitalsHitRatioLow",site="blog"}`, func(s []promtest.Sample) bool { return len(s) > 0 })
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("low hit ratio alert: %v", err)
	}
	t.Logf("alert seen after %d requests, %s", cacheable.Load(), time.Since(begin))
	alerts, err := prom.Alerts()
	if err != nil {
		t.Fatal(err)
	}
	var state string
	for _, al := range alerts {
		if al.Name == "EdgevitalsHitRatioLow" && al.Labels["site"] == "blog" {
			state = al.State
		}
	}
	if state != "pending" && state != "firing" {
		t.Errorf("EdgevitalsHitRatioLow state = %q, want pending or firing", state)
	}

	// The recording rule agrees with what the clients saw. Wait until
	// Prometheus has scraped the final counts.
	want := float64(hits.Load()) / float64(cacheable.Load())
	if err := prom.WaitFor(ctx, ratio, func(s []promtest.Sample) bool {
		return len(s) == 1 && math.Abs(s[0].Value-want) < 0.03
	}); err != nil {
		raw, _ := prom.Query(`edgevitals_requests_total{site="blog"}`)
		t.Errorf("recording rule vs the %d hits of %d cacheable requests (%.3f): %v; counters: %s", hits.Load(), cacheable.Load(), want, err, promtest.Format(raw))
	}
	// ... and the uncacheable reason explains the drop.
	reasons, err := prom.Query(`topk(1, site_reason:edgevitals_uncacheable:rate5m{site="blog"})`)
	if err != nil || len(reasons) != 1 || reasons[0].Labels["reason"] != "set_cookie" {
		t.Errorf("top uncacheable reason = %s (%v), want set_cookie", promtest.Format(reasons), err)
	}

	// The exposition passes promtool's own checks.
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	exposition, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cmd := exec.Command(promtest.Binary(t, "promtool"), "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() == 3:
		// Exit 3 is lint advice, not a parse error (exit 1). Our own
		// series must draw none, HELP text included; the library's
		// process_ and go_ series keep their historical names.
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if strings.HasPrefix(line, "edgevitals_") {
				t.Errorf("promtool check metrics: %s", line)
			}
		}
	default:
		t.Errorf("promtool check metrics refused the exposition: %v\n%s", err, out)
	}
	if !bytes.Contains(exposition, []byte("# TYPE edgevitals_requests_total counter")) {
		t.Error("exposition has no TYPE metadata")
	}

	// Every dashboard expression runs; those over the series this test
	// produced return data.
	exprs, err := promtest.DashboardExprs("../../deploy/grafana/edgevitals.json")
	if err != nil {
		t.Fatal(err)
	}
	driven := regexp.MustCompile(`edgevitals_(requests_total|uncacheable_total|origin_requests_total|origin_duration_seconds|cache_bytes|cache_objects|response_duration_seconds)|site:edgevitals_cache_hit_ratio`)
	others := regexp.MustCompile(`edgevitals_(lab|field|release|sampler|sessions|conversions|purge|coalesced|cache_evictions)|process_|ALERTS`)
	withData := 0
	for _, e := range exprs {
		got, err := prom.Query(e)
		if err != nil {
			t.Errorf("dashboard expression %q: %v", e, err)
			continue
		}
		// "offset 1w" looks at last week, which a test cannot have.
		if driven.MatchString(e) && !others.MatchString(e) && !strings.Contains(e, "offset") {
			if len(got) == 0 {
				t.Errorf("dashboard expression %q returned no data for the traffic driven", e)
			}
			withData++
		}
	}
	if withData < 5 {
		t.Errorf("only %d dashboard expressions cover the driven series; the check is too weak", withData)
	}
}
