package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// notChromium is an executable that FindChromium accepts, for tests that
// never start the browser.
const notChromium = "/bin/true"

func TestNewSamplerRejects(t *testing.T) {
	ok := Page{Site: "blog", URL: "http://127.0.0.1:1/"}
	purge := func(context.Context, string) error { return nil }
	tests := []struct {
		name string
		o    SamplerOptions
		want string
	}{
		{"relative url", SamplerOptions{Chromium: notChromium, Pages: []Page{{Site: "blog", URL: "/x"}}}, "vitals.page[0].url: must be an absolute http(s) URL"},
		{"no site", SamplerOptions{Chromium: notChromium, Pages: []Page{{URL: "http://a/"}}}, "vitals.page[0].site: must be set"},
		{"bad profile", SamplerOptions{Chromium: notChromium, Pages: []Page{{Site: "b", URL: "http://a/", Profiles: []string{"tablet"}}}}, `unknown profile "tablet"`},
		{"negative interval", SamplerOptions{Chromium: notChromium, Pages: []Page{{Site: "b", URL: "http://a/", Interval: -time.Second}}}, "interval: must be >= 0"},
		{"cold without purge", SamplerOptions{Chromium: notChromium, Pages: []Page{{Site: "b", URL: "http://a/", Cold: true}}}, "cold: needs the edge's purge"},
		{"duplicate page", SamplerOptions{Chromium: notChromium, Purge: purge, Pages: []Page{ok, ok}}, "already sampled"},
		{"negative concurrency", SamplerOptions{Chromium: notChromium, Concurrency: -1}, "concurrency: must be >= 0"},
		{"no chromium", SamplerOptions{Chromium: "/nonexistent/chromium", Pages: []Page{ok}}, "vitals.chromium"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSampler(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewSampler() = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestFindChromiumMissing(t *testing.T) {
	_, err := FindChromium("/nonexistent/chromium")
	if !errors.Is(err, ErrNoChromium) {
		t.Fatalf("FindChromium = %v, want ErrNoChromium", err)
	}
	msg := err.Error()
	for _, want := range []string{"vitals.chromium", "apt-get install -y chromium"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q is more than one line", msg)
	}
}

func TestSamplerStatusOff(t *testing.T) {
	var s *Sampler
	if ok, detail := s.Status(); ok || detail != "lab sampler off" {
		t.Errorf("nil Sampler Status() = %v, %q; want false, lab sampler off", ok, detail)
	}
}

func TestLabMetricsLeaveOutUnmeasured(t *testing.T) {
	set := metrics.NewSet()
	s, err := NewSampler(SamplerOptions{Chromium: notChromium, Metrics: set, Pages: []Page{
		{Site: `bl"og`, URL: "http://www.example.com/shop/?x=1", Profiles: []string{"mobile"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var before bytes.Buffer
	set.WritePrometheus(&before)
	if strings.Contains(before.String(), "edgevitals_lab_") {
		t.Errorf("lab gauges before any sample:\n%s", before.String())
	}
	s.jobs[0].last = &store.Sample{LCP: dur(1500 * time.Millisecond), CLS: flt(0.05)}
	var out bytes.Buffer
	set.WritePrometheus(&out)
	for _, want := range []string{
		`edgevitals_lab_lcp_seconds{site="bl\"og",page="/shop/",profile="mobile"} 1.5`,
		`edgevitals_lab_cls{site="bl\"og",page="/shop/",profile="mobile"} 0.05`,
		`edgevitals_sampler_duration_seconds_bucket{site="bl\"og",le="5"} 0`,
		`edgevitals_sampler_failures_total{site="bl\"og"} 0`,
		`edgevitals_sampler_last_success_timestamp_seconds 0`,
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("exposition lacks %q:\n%s", want, out.String())
		}
	}
	for _, absent := range []string{"edgevitals_lab_inp_seconds", "edgevitals_lab_fcp_seconds", "vmrange"} {
		if strings.Contains(out.String(), absent) {
			t.Errorf("exposition has %q, want it left out:\n%s", absent, out.String())
		}
	}
}

// edgeServer stands in for the edge: it answers hit until a PURGE, then one miss.
func edgeServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var purged atomic.Bool
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "PURGE":
			purged.Store(true)
			return
		case r.URL.Path != "/":
			http.NotFound(w, r)
			return
		}
		gets.Add(1)
		status := "edgevitals; hit; ttl=100"
		if purged.Swap(false) {
			status = "edgevitals; fwd=uri-miss; stored"
		}
		w.Header().Set("Cache-Status", status)
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, headHTML+`<h1>home</h1><button>menu</button></body></html>`)
	}))
	t.Cleanup(srv.Close)
	return srv, &gets
}

func purgeVia(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, "PURGE", url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

type sampled struct {
	s   store.Sample
	err error
}

func waitSample(t *testing.T, ch <-chan sampled) sampled {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(60 * time.Second):
		t.Fatal("no sample within 60 s")
	}
	return sampled{}
}

func TestSamplerRunColdPageStoresMissAndBursts(t *testing.T) {
	chromium := chromiumForTest(t)
	srv, _ := edgeServer(t)
	st := openTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	set := metrics.NewSet()
	s, err := NewSampler(SamplerOptions{
		Chromium: chromium, Metrics: set, Store: st, Purge: purgeVia,
		Pages: []Page{{Site: "blog", URL: srv.URL + "/", Profiles: []string{"desktop"}, Interval: time.Hour, Cold: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.firstSpread = 0
	got := make(chan sampled, 4)
	s.onSample = func(_ *job, smp store.Sample, err error) { got <- sampled{smp, err} }

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	first := waitSample(t, got)
	if first.err != nil {
		t.Fatal(first.err)
	}
	if want := "edgevitals; fwd=uri-miss; stored"; first.s.CacheStatus != want {
		t.Errorf("cold sample CacheStatus = %q, want %q", first.s.CacheStatus, want)
	}
	if ok, detail := s.Status(); !ok {
		t.Errorf("Status() = false, %q after a good sample", detail)
	}

	s.Burst("blog")
	second := waitSample(t, got)
	if second.err != nil {
		t.Fatal(second.err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() = %v after cancel, want nil", err)
	}
	if ok, _ := s.Status(); ok {
		t.Error("Status() ok after Run returned")
	}
	if pid := s.browser.PID(); pid != 0 {
		t.Errorf("Chromium %d still running after Run returned", pid)
	}

	stored, err := st.Samples("blog", "/", "desktop", time.Time{}, time.Now().Add(time.Hour))
	if err != nil || len(stored) != 2 {
		t.Fatalf("store holds %d samples, %v; want 2", len(stored), err)
	}
	var out bytes.Buffer
	set.WritePrometheus(&out)
	for _, want := range []string{
		`edgevitals_lab_lcp_seconds{site="blog",page="/",profile="desktop"} `,
		`edgevitals_lab_inp_seconds{site="blog",page="/",profile="desktop"} `,
		`edgevitals_sampler_duration_seconds_count{site="blog"} 2`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("exposition lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "edgevitals_sampler_last_success_timestamp_seconds 0\n") {
		t.Error("last success timestamp is 0 after two good samples")
	}
}

func TestSamplerCountsFailures(t *testing.T) {
	chromium := chromiumForTest(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // its port now refuses connections
	set := metrics.NewSet()
	s, err := NewSampler(SamplerOptions{
		Chromium: chromium, Metrics: set,
		Pages: []Page{{Site: "blog", URL: dead.URL + "/", Profiles: []string{"desktop"}, Interval: time.Millisecond}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.firstSpread = 0
	got := make(chan sampled, failingAfter)
	s.onSample = func(_ *job, smp store.Sample, err error) {
		select {
		case got <- sampled{smp, err}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for range failingAfter {
		if r := waitSample(t, got); r.err == nil {
			t.Fatalf("sample of a refused URL succeeded: %+v", r.s)
		}
	}
	ok, detail := s.Status()
	cancel()
	<-done
	if ok || !strings.Contains(detail, "failing") {
		t.Errorf("Status() = %v, %q after %d failures, want not ok and failing", ok, detail, failingAfter)
	}
	var out bytes.Buffer
	set.WritePrometheus(&out)
	if strings.Contains(out.String(), `edgevitals_sampler_failures_total{site="blog"} 0`) {
		t.Errorf("failures not counted:\n%s", out.String())
	}
}
