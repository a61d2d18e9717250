package proxy

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestShutdownDrainsInFlight: a request in flight when shutdown begins is
// answered in full; shutdown returns once it is.
func TestShutdownDrainsInFlight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		w.Write([]byte("finished"))
	})
	got := make(chan response, 1)
	go func() { got <- h.get("/slow/") }()
	<-arrived
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- h.proxy.Shutdown(ctx)
	}()
	select {
	case err := <-done:
		t.Fatalf("shutdown returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond): // shutdown must still be waiting
	}
	close(release)
	if r := <-got; r.Status != 200 || r.Body != "finished" {
		t.Errorf("in-flight request = %d %q, want it answered in full", r.Status, r.Body)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// TestReload swaps sites while serving: a new host answers, a removed one
// gets 421, a kept site keeps its cached pages and its metrics.
func TestReload(t *testing.T) {
	h := newHarness(t, page("x", "Cache-Control: max-age=60"))
	h.get("/kept/")
	wantCacheStatus(t, h.get("/kept/"), "; hit")
	sites := []Site{h.proxy.sitesNow()[0].Site}
	sites[0].Hosts = []string{"www.example.com"} // drop the catch-all
	other := sites[0]
	other.Name, other.Hosts = "shop", []string{"shop.example.com"}
	sites = append(sites, other)
	if err := h.proxy.Reload(sites); err != nil {
		t.Fatal(err)
	}
	wantCacheStatus(t, h.get("/kept/"), "; hit")
	if r := h.get("/", "Host: shop.example.com"); r.Status != 200 {
		t.Errorf("new site = %d", r.Status)
	}
	if r := h.get("/", "Host: elsewhere.example"); r.Status != http.StatusMisdirectedRequest {
		t.Errorf("host of the removed catch-all = %d, want 421", r.Status)
	}
	// A bad set of sites is refused and the running one stays.
	bad := append(sites, other) // "shop" twice
	if err := h.proxy.Reload(bad); err == nil {
		t.Error("Reload accepted a site name used twice")
	}
	if r := h.get("/", "Host: shop.example.com"); r.Status != 200 {
		t.Errorf("after a refused reload = %d", r.Status)
	}
	var buf bytes.Buffer
	h.set.WritePrometheus(&buf)
	if !strings.Contains(buf.String(), `edgevitals_requests_total{site="shop",cache="miss"} 1`) {
		t.Error("the new site has no metrics")
	}
}
