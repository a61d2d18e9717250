package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/config"
	"github.com/edgevitals/edgevitals/deploy/promtest"
	"github.com/edgevitals/edgevitals/vitals/report"
)

// TestFleetReportTwoNodes: two edgevitals nodes serve one site, a real
// Prometheus scrapes both, and the report that one node builds with
// report.prometheus_url counts the traffic of both: node A's hit ratio
// stays at 90% while node B's falls from 50% to 10%, so the fleet's goes
// from about 70% to about 50%, which neither node shows alone.
func TestFleetReportTwoNodes(t *testing.T) {
	var unique atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		fmt.Fprintf(w, "<html><head></head><body>%s</body></html>", r.URL.Path)
	}))
	defer origin.Close()
	// The admin addresses are chosen first: Prometheus scrapes them, and
	// node A's config names Prometheus.
	adminA, adminB := freeLoopbackAddr(t), freeLoopbackAddr(t)
	prom := promtest.Start(t, []string{adminA, adminB}, nil)
	nodeA := startTestAppWith(t, origin.URL, func(c *config.Config) {
		c.Server.AdminListen = adminA
		c.Report.PrometheusURL = prom.URL
	})
	nodeB := startTestAppWith(t, origin.URL, func(c *config.Config) { c.Server.AdminListen = adminB })

	get := func(a *app, path string) { cacheStatusOf(t, "http://"+a.proxyLn.Addr().String()+path) }
	// traffic sends hits (a stored page) and misses (pages never asked for).
	traffic := func(a *app, hits, misses int) {
		for range hits {
			get(a, "/hot/")
		}
		for range misses {
			get(a, fmt.Sprintf("/new/%d/", unique.Add(1)))
		}
	}
	get(nodeA, "/hot/") // stored before any window opens
	get(nodeB, "/hot/")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const series = `edgevitals_requests_total{site="blog",cache="hit"}`
	// scraped waits until Prometheus holds a sample of both nodes taken
	// after at: the counters as they were then are in its store.
	scraped := func(at time.Time) {
		t.Helper()
		want := float64(at.UnixMilli()) / 1000
		if err := prom.WaitFor(ctx, "min(timestamp("+series+")) and count("+series+") == 2", func(s []promtest.Sample) bool {
			return len(s) == 1 && s[0].Value > want
		}); err != nil {
			t.Fatalf("both nodes scraped after %s: %v", at.Format(time.RFC3339Nano), err)
		}
	}
	release := func(id string) {
		t.Helper()
		var out, errs bytes.Buffer
		if code := run([]string{"release", "-site", "blog", "-id", id, "-admin", "http://" + adminA, "-token", "e2e-token"}, &out, &errs); code != 0 {
			t.Fatalf("edgevitals release %s = %d: %s", id, code, errs.String())
		}
	}

	release("v1")
	scraped(time.Now()) // the counters at v1's start
	traffic(nodeA, 90, 10)
	traffic(nodeB, 50, 50)
	scraped(time.Now())
	release("v2")
	scraped(time.Now())
	traffic(nodeA, 90, 10)
	traffic(nodeB, 10, 90)
	scraped(time.Now())

	rep := apiReport(t, "http://"+adminA, "blog", "v2", "e2e-token")
	var l *report.Line
	for i := range rep.Lines {
		if rep.Lines[i].Metric == "hit_ratio" {
			l = &rep.Lines[i]
		}
	}
	if l == nil || l.Source != report.SourcePrometheus {
		t.Fatalf("report lines = %+v, want a hit ratio from prometheus", rep.Lines)
	}
	// increase() extrapolates each node's counters to the window's edges
	// by its own scrape times, which weighs the nodes a little unevenly;
	// either node alone (90% -> 90%, 50% -> 10%) is far outside these bounds.
	if !(l.Before > 0.6 && l.Before < 0.8) || !(l.After > 0.3 && l.After < 0.7) || l.NBefore < 150 || l.NAfter < 150 {
		t.Errorf("hit ratio = %.3f -> %.3f of %d/%d requests, want about 70%% -> 50%% of both nodes' 200 each", l.Before, l.After, l.NBefore, l.NAfter)
	}
	if l.Verdict != report.Regressed {
		t.Errorf("hit ratio verdict = %q (%s), want regressed", l.Verdict, l.Why)
	}
}

// freeLoopbackAddr is a loopback address nothing listens on now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
