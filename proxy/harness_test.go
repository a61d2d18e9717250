package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/edgevitals/edgevitals/cache"
)

// fakeClock is the injected clock: tests move time instead of waiting.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	// Start at the real time, truncated to the second like a Date field,
	// so the origin's Date gives no apparent age.
	c.ns.Store(time.Now().Truncate(time.Second).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// originRequest is what the test origin saw of one request.
type seenRequest struct {
	Method, URI, Host string
	Header            http.Header
}

// harness is a real origin and a real proxy, both on loopback.
type harness struct {
	t      *testing.T
	origin *httptest.Server
	proxy  *Server
	addr   string // proxy address
	clock  *fakeClock
	store  *cache.Store
	flight *cache.Flight
	set    *metrics.Set
	client *http.Client

	mu   sync.Mutex
	seen []seenRequest
}

// newHarness starts origin behind a proxy with one site answering for
// "www.example.com" and "*". edit may change the site and options.
func newHarness(t *testing.T, origin http.HandlerFunc, edit ...func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, clock: newFakeClock(), set: metrics.NewSet()}
	h.origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.seen = append(h.seen, seenRequest{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header.Clone()})
		h.mu.Unlock()
		// The origin's clock is the test's clock, as on a real deployment
		// where both keep good time.
		w.Header().Set("Date", h.clock.Now().Format(http.TimeFormat))
		origin(w, r)
	}))
	t.Cleanup(h.origin.Close)
	var err error
	h.store, err = cache.New(cache.Options{MaxBytes: 64 << 20, Clock: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.store.Close)
	keyer, err := cache.NewKeyer([]string{"utm_*", "gclid", "fbclid", "msclkid"})
	if err != nil {
		t.Fatal(err)
	}
	h.flight = cache.NewFlight(cache.FlightOptions{MaxWaiters: 10000, WaitTimeout: 10 * time.Second, HitForMiss: time.Minute, Clock: h.clock.Now})
	o := Options{
		Sites: []Site{{
			Name:    "blog",
			Hosts:   []string{"www.example.com", "*"},
			Origins: []string{h.origin.URL},
			Preset:  "wordpress",
			Defaults: cache.Defaults{
				DefaultTTL:           5 * time.Minute,
				StaleWhileRevalidate: 30 * time.Second,
				StaleIfError:         6 * time.Hour,
				MaxObjectBytes:       1 << 20,
			},
			Origin: OriginOptions{Timeout: 5 * time.Second, ConnectTimeout: time.Second, MaxConns: 1024},
		}},
		Store: h.store, Keyer: keyer, Flight: h.flight, Metrics: h.set,
		Clock:          h.clock.Now,
		ReadTimeout:    5 * time.Second,
		WriteTimeout:   5 * time.Second,
		IdleTimeout:    5 * time.Second,
		MaxHeaderBytes: 16 << 10,
		MaxBodyBytes:   1 << 20,
	}
	for _, e := range edit {
		e(&o)
	}
	h.proxy, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- h.proxy.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.proxy.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
	})
	h.client = &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	t.Cleanup(h.client.CloseIdleConnections)
	return h
}

// response is a client's view of one exchange.
type response struct {
	Status int
	Header http.Header
	Body   string
}

// do sends a request through the proxy; hdr are "Name: value" lines. The
// Host is www.example.com unless a Host line says otherwise.
func (h *harness) do(method, path string, hdr ...string) response {
	h.t.Helper()
	req, err := http.NewRequest(method, "http://"+h.addr+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = "www.example.com"
	for _, line := range hdr {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Add(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

func (h *harness) get(path string, hdr ...string) response {
	h.t.Helper()
	return h.do(http.MethodGet, path, hdr...)
}

// originCount is how many requests the origin has seen.
func (h *harness) originCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen)
}

func (h *harness) lastSeen() seenRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.seen) == 0 {
		h.t.Fatal("origin saw no request")
	}
	return h.seen[len(h.seen)-1]
}

// waitFor polls cond until it holds, failing the test after 10 s. It is for
// state that has no event to wait on (connections opened by other goroutines).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// wantStatus asserts the Cache-Status member edgevitals added contains each part.
func wantCacheStatus(t *testing.T, r response, parts ...string) {
	t.Helper()
	cs := r.Header.Values("Cache-Status")
	var ours string
	for _, v := range cs {
		if strings.HasPrefix(v, cacheName) {
			ours = v
		}
	}
	if ours == "" {
		t.Fatalf("no edgevitals Cache-Status in %q", cs)
	}
	for _, p := range parts {
		if !strings.Contains(ours, p) {
			t.Errorf("Cache-Status = %q, want it to contain %q", ours, p)
		}
	}
}

// serveLoopback accepts connections on a loopback port for a raw origin and
// hands each to serve on its own goroutine; at cleanup it stops listening,
// closes every connection (serve sees the error and ends) and waits for
// the handlers. It returns the origin's base URL.
func serveLoopback(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var conns sync.Map
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, struct{}{})
			wg.Go(func() {
				defer conns.Delete(c)
				serve(c)
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close() // only "already closed" can come back
		conns.Range(func(c, _ any) bool {
			_ = c.(net.Conn).Close() // its handler sees the error and ends
			return true
		})
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}
