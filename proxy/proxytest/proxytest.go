// Package proxytest runs a real proxy in front of a real origin, both on
// loopback, for the tests of the packages built on the proxy (the admin
// listener, the release registry). Time is an injected clock the test
// moves. The proxy package's own tests have a harness of their own with
// access to its internals.
package proxytest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/edgevitals/edgevitals/cache"
	"github.com/edgevitals/edgevitals/proxy"
)

// Clock is an injected clock: tests move time instead of waiting.
type Clock struct{ ns atomic.Int64 }

// NewClock starts at the real time truncated to the second, like a Date
// field, so the origin's Date gives no apparent age.
func NewClock() *Clock {
	c := &Clock{}
	c.ns.Store(time.Now().Truncate(time.Second).UnixNano())
	return c
}

// Now is the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Advance moves the clock on.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// Harness is a real origin and a real proxy, both on loopback, with one
// site "blog" answering for www.example.com and "*".
type Harness struct {
	T      testing.TB
	Origin *httptest.Server
	Proxy  *proxy.Server
	Addr   string // the proxy's address
	Clock  *Clock
	Store  *cache.Store
	Set    *metrics.Set
	client *http.Client

	mu   sync.Mutex
	seen int
}

// New starts origin behind a proxy; edit may change the options.
func New(t testing.TB, origin http.HandlerFunc, edit ...func(*proxy.Options)) *Harness {
	t.Helper()
	h := &Harness{T: t, Clock: NewClock(), Set: metrics.NewSet()}
	h.Origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.seen++
		h.mu.Unlock()
		w.Header().Set("Date", h.Clock.Now().Format(http.TimeFormat))
		origin(w, r)
	}))
	t.Cleanup(h.Origin.Close)
	var err error
	if h.Store, err = cache.New(cache.Options{MaxBytes: 64 << 20, Clock: h.Clock.Now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Store.Close)
	keyer, err := cache.NewKeyer([]string{"utm_*", "gclid", "fbclid", "msclkid"})
	if err != nil {
		t.Fatal(err)
	}
	o := proxy.Options{
		Sites: []proxy.Site{{
			Name: "blog", Hosts: []string{"www.example.com", "*"}, Origins: []string{h.Origin.URL}, Preset: "wordpress",
			Defaults: cache.Defaults{DefaultTTL: 5 * time.Minute, StaleWhileRevalidate: 30 * time.Second, StaleIfError: 6 * time.Hour, MaxObjectBytes: 1 << 20},
			Origin:   proxy.OriginOptions{Timeout: 5 * time.Second, ConnectTimeout: time.Second, MaxConns: 1024},
		}},
		Store: h.Store, Keyer: keyer, Metrics: h.Set, Clock: h.Clock.Now,
		Flight:      cache.NewFlight(cache.FlightOptions{MaxWaiters: 10000, WaitTimeout: 10 * time.Second, HitForMiss: time.Minute, Clock: h.Clock.Now}),
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second,
		MaxHeaderBytes: 16 << 10, MaxBodyBytes: 1 << 20,
	}
	for _, e := range edit {
		e(&o)
	}
	if h.Proxy, err = proxy.New(o); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.Addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- h.Proxy.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Proxy.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
	})
	h.client = &http.Client{
		Transport:     &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(h.client.CloseIdleConnections)
	return h
}

// Response is a client's view of one exchange.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// Do sends a request through the proxy; hdr are "Name: value" lines. The
// Host is www.example.com unless a Host line says otherwise.
func (h *Harness) Do(method, path string, hdr ...string) Response {
	h.T.Helper()
	req, err := http.NewRequest(method, "http://"+h.Addr+path, nil)
	if err != nil {
		h.T.Fatal(err)
	}
	req.Host = "www.example.com"
	for _, line := range hdr {
		k, v, _ := strings.Cut(line, ":")
		if v = strings.TrimSpace(v); strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Add(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.T.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// Get is Do with GET.
func (h *Harness) Get(path string, hdr ...string) Response {
	h.T.Helper()
	return h.Do(http.MethodGet, path, hdr...)
}

// OriginCount is how many requests the origin has seen.
func (h *Harness) OriginCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen
}

// WantCacheStatus fails unless the Cache-Status member of edgevitals in r
// contains each part.
func WantCacheStatus(t testing.TB, r Response, parts ...string) {
	t.Helper()
	var ours string
	for _, v := range r.Header.Values("Cache-Status") {
		if strings.HasPrefix(v, "edgevitals") {
			ours = v
		}
	}
	if ours == "" {
		t.Fatalf("no edgevitals Cache-Status in %q", r.Header.Values("Cache-Status"))
	}
	for _, p := range parts {
		if !strings.Contains(ours, p) {
			t.Errorf("Cache-Status = %q, want it to contain %q", ours, p)
		}
	}
}

// Page is an origin handler answering body with the header lines hdr
// ("Name: value").
func Page(body string, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for _, line := range hdr {
			k, v, _ := strings.Cut(line, ":")
			w.Header().Add(k, strings.TrimSpace(v))
		}
		fmt.Fprint(w, body)
	}
}

// MetricsText is the Prometheus text of the harness's metrics set.
func (h *Harness) MetricsText() string {
	var b bytes.Buffer
	h.Set.WritePrometheus(&b)
	return b.String()
}
