package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// fault is how the fault-injecting origin answers a request. The first
// segment of the path chooses it ("/hang/x" hangs), so one origin can serve
// a mix of faults at once; other paths get the origin's current mode.
type fault int32

const (
	faultNone     fault = iota // 200, a cacheable page "page <path>"
	fault503                   // 503, as a CMS in maintenance mode
	fault500                   // 500, an application error on one URL
	faultGarbage               // bytes that are not HTTP, then close
	faultHang                  // read the request, never answer
	faultReset                 // headers and a part of the body, then a TCP reset
	faultResetBig              // like faultReset, but too big to store: the proxy streams it
)

var faultPaths = map[string]fault{
	"503": fault503, "500": fault500, "garbage": faultGarbage,
	"hang": faultHang, "reset": faultReset, "resetbig": faultResetBig,
}

// faultOrigin is an origin on a raw loopback TCP listener that the test
// controls byte by byte, and that counts what it sees.
type faultOrigin struct {
	ln  net.Listener
	url string

	mode       atomic.Int32 // fault for paths without a fault segment
	healthCode atomic.Int32 // status of GET /health
	requests   atomic.Int64 // page requests seen
	checks     atomic.Int64 // health checks seen
	checkHost  atomic.Pointer[string]
	open       atomic.Int64 // connections open now

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newFaultOrigin(t *testing.T) *faultOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &faultOrigin{ln: ln, url: "http://" + ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	o.healthCode.Store(200)
	o.wg.Go(o.accept)
	t.Cleanup(o.close)
	return o
}

// refusedOrigin is the URL of a loopback port nobody listens on.
func refusedOrigin(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

func (o *faultOrigin) accept() {
	for {
		c, err := o.ln.Accept()
		if err != nil {
			return
		}
		o.mu.Lock()
		o.conns[c] = struct{}{}
		o.mu.Unlock()
		o.open.Add(1)
		o.wg.Go(func() {
			defer func() {
				o.mu.Lock()
				delete(o.conns, c)
				o.mu.Unlock()
				o.open.Add(-1)
			}()
			o.serve(c)
		})
	}
}

// close stops the listener, cuts every connection and waits for the handlers.
func (o *faultOrigin) close() {
	_ = o.ln.Close() // only "already closed" can come back
	o.mu.Lock()
	for c := range o.conns {
		_ = c.Close() // the handler sees the error and ends
	}
	o.mu.Unlock()
	o.wg.Wait()
}

func (o *faultOrigin) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		if req.URL.Path == "/health" {
			o.checks.Add(1)
			host := req.Host
			o.checkHost.Store(&host)
			if _, err := fmt.Fprintf(c, "HTTP/1.1 %d Health\r\nContent-Length: 0\r\n\r\n", o.healthCode.Load()); err != nil {
				return
			}
			continue
		}
		o.requests.Add(1)
		f := fault(o.mode.Load())
		seg, _, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/"), "/")
		if pf, ok := faultPaths[seg]; ok {
			f = pf
		}
		if !o.answer(c, br, f, req.URL.Path) {
			return
		}
	}
}

// answer writes the fault; it reports whether the connection stays open.
func (o *faultOrigin) answer(c net.Conn, br *bufio.Reader, f fault, path string) bool {
	switch f {
	case faultNone:
		body := "page " + path
		_, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		return err == nil
	case fault503, fault500:
		code := map[fault]int{fault503: 503, fault500: 500}[f]
		_, err := fmt.Fprintf(c, "HTTP/1.1 %d Failing\r\nRetry-After: 30\r\nContent-Length: 4\r\n\r\nfail", code)
		return err == nil
	case faultGarbage:
		_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 not http at all\r\n\r\n")) // the close below is what counts
		return false
	case faultHang:
		// Never answer; end when the proxy gives up and closes.
		_, _ = io.Copy(io.Discard, br) // returns at the proxy's close or ours
		return false
	case faultReset, faultResetBig:
		size := 1000
		if f == faultResetBig {
			size = 4 << 20
		}
		_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: %d\r\n\r\n%s", size, strings.Repeat("x", 100))
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with RST, not FIN
		}
		return false
	}
	return false
}

// newFaultHarness puts the proxy harness in front of the given origin URLs,
// with short origin timeouts and the harness clock driving cool-downs.
func newFaultHarness(t *testing.T, origins []string, edit func(*OriginOptions)) *harness {
	t.Helper()
	return newHarness(t, page("unused"), func(o *Options) {
		s := &o.Sites[0]
		s.Origins = origins
		s.Origin.Timeout = 300 * time.Millisecond
		s.Origin.ConnectTimeout = 300 * time.Millisecond
		s.Origin.Clock = o.Clock
		if edit != nil {
			edit(&s.Origin)
		}
	})
}

// tryGet is a GET through the proxy that may fail on the client side (a body
// cut short): the faults under test can legitimately do that. hdr are
// "Name: value" lines.
func (h *harness) tryGet(path string, hdr ...string) (response, error) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+h.addr+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = "www.example.com"
	for _, line := range hdr {
		k, v, _ := strings.Cut(line, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}, err
}

func (h *harness) pool() *originPool {
	h.t.Helper()
	return h.proxy.sitesNow()[0].pool
}

func (h *harness) originStates() []OriginState {
	h.t.Helper()
	return h.proxy.OriginHealth()["blog"]
}

// metricsText is the Prometheus exposition of the harness' metrics Set.
func (h *harness) metricsText() string {
	var b bytes.Buffer
	h.set.WritePrometheus(&b)
	return b.String()
}

// internals are what a client must never read in an error body.
var internals = []string{"127.0.0.1", "dial", "tcp", "fasthttp", "error when", "EOF", "connection reset"}

func wantShortReason(t *testing.T, r response, status int, reason string) {
	t.Helper()
	if r.Status != status || strings.TrimSpace(r.Body) != reason {
		t.Errorf("answer = %d %q, want %d %q", r.Status, r.Body, status, reason)
	}
	for _, s := range internals {
		if strings.Contains(r.Body, s) {
			t.Errorf("body %q shows internals (%q)", r.Body, s)
		}
	}
}

func TestOriginFaultStatuses(t *testing.T) {
	fo := newFaultOrigin(t)
	tests := []struct {
		name, path string
		origin     string // "" = the fault origin
		status     int
		reason     string // "" = the origin's own answer is relayed
		detail     string // in Cache-Status
	}{
		{name: "refused", path: "/a/", origin: refusedOrigin(t), status: 502, reason: "origin refused connection", detail: "detail=origin-error"},
		{name: "hang", path: "/hang/a", status: 504, reason: "origin timeout", detail: "detail=origin-timeout"},
		{name: "garbage", path: "/garbage/a", status: 502, reason: "origin error", detail: "detail=origin-error"},
		{name: "reset mid-body", path: "/reset/a", status: 502, detail: "detail=origin-error"},
		{name: "503 relayed", path: "/503/a", status: 503, detail: "fwd-status=503"},
		{name: "500 relayed", path: "/500/a", status: 500, detail: "fwd-status=500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := fo.url
			if tc.origin != "" {
				url = tc.origin
			}
			h := newFaultHarness(t, []string{url}, nil)
			start := time.Now()
			r := h.get(tc.path)
			if tc.reason != "" {
				wantShortReason(t, r, tc.status, tc.reason)
			} else if r.Status != tc.status {
				t.Errorf("GET %s = %d %q, want %d", tc.path, r.Status, r.Body, tc.status)
			}
			for _, s := range internals {
				if strings.Contains(r.Body, s) {
					t.Errorf("body %q shows internals (%q)", r.Body, s)
				}
			}
			wantCacheStatus(t, r, tc.detail)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("answer took %v, want it bounded by the origin timeout", d)
			}
		})
	}
}

// A body cut short after the proxy has started streaming it cannot become a
// 502 any more: the client must see a broken response, never a short one
// that looks complete.
func TestOriginResetWhileStreaming(t *testing.T) {
	fo := newFaultOrigin(t)
	h := newFaultHarness(t, []string{fo.url}, nil)
	r, err := h.tryGet("/resetbig/a")
	if err == nil {
		t.Fatalf("GET = %d with %d bytes and no error, want a broken body", r.Status, len(r.Body))
	}
}

func TestStaleServedThroughOriginFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault fault
	}{
		{name: "503 storm", fault: fault503},
		{name: "garbage", fault: faultGarbage},
		{name: "hang", fault: faultHang},
		{name: "reset mid-body", fault: faultReset},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fo := newFaultOrigin(t)
			h := newFaultHarness(t, []string{fo.url}, nil)
			if r := h.get("/news/"); r.Status != 200 || r.Body != "page /news/" {
				t.Fatalf("warm = %d %q", r.Status, r.Body)
			}
			fo.mode.Store(int32(tc.fault))
			h.clock.Advance(2 * time.Minute) // stale, well inside stale-if-error (6h)
			r := h.get("/news/")
			if r.Status != 200 || r.Body != "page /news/" {
				t.Fatalf("with the origin failing = %d %q, want the stale copy", r.Status, r.Body)
			}
			wantCacheStatus(t, r, "fwd=stale", "detail=stale-if-error")
			// Past stale-if-error nothing may stand in.
			h.clock.Advance(7 * time.Hour)
			if r := h.get("/news/"); r.Status < 500 {
				t.Errorf("past stale-if-error = %d %q, want a 5xx", r.Status, r.Body)
			}
		})
	}
}

func TestBreakerOpensThenProbesBack(t *testing.T) {
	fo := newFaultOrigin(t)
	h := newFaultHarness(t, []string{fo.url}, func(o *OriginOptions) {
		o.BreakerFailures = 3
		o.BreakerCooldown = 3 * time.Minute
		o.BreakerMaxCooldown = 5 * time.Minute
	})
	h.proxy.registerOriginMetrics()
	upSeries := fmt.Sprintf(`edgevitals_origin_up{site="blog",origin=%q}`, fo.url)
	if !strings.Contains(h.metricsText(), upSeries+" 1") {
		t.Errorf("metrics lack %s 1:\n%s", upSeries, h.metricsText())
	}
	h.get("/cached/")                  // stored while the origin is well
	fo.mode.Store(int32(faultGarbage)) // no valid answer: a failure; a 503 would be an answer
	for i := range 3 {
		if r := h.get(fmt.Sprintf("/p%d/", i)); r.Status != 502 {
			t.Fatalf("request %d = %d, want 502", i, r.Status)
		}
	}
	seen := fo.requests.Load()
	st := h.originStates()[0]
	if st.Circuit != "open" || st.Up || st.Reason != "origin error" {
		t.Fatalf("after 3 failures state = %+v, want open, down, with the reason", st)
	}
	if want := h.clock.Now().Add(3 * time.Minute); !st.RetryAt.Equal(want) {
		t.Errorf("RetryAt = %v, want %v", st.RetryAt, want)
	}
	// Open: fail fast, origin untouched, cached pages served stale.
	wantShortReason(t, h.get("/p9/"), 503, "origin down")
	h.clock.Advance(2 * time.Minute)
	if r := h.get("/cached/"); r.Status != 200 {
		t.Errorf("cached page while open = %d, want the stale copy", r.Status)
	}
	if n := fo.requests.Load(); n != seen {
		t.Errorf("origin saw %d requests while the circuit was open, want 0", n-seen)
	}
	if !strings.Contains(h.metricsText(), upSeries+" 0") {
		t.Errorf("metrics lack %s 0", upSeries)
	}
	opens := fmt.Sprintf(`edgevitals_origin_circuit_opens_total{site="blog",origin=%q} 1`, fo.url)
	if !strings.Contains(h.metricsText(), opens) {
		t.Errorf("metrics lack %s", opens)
	}
	// The cool-down ends: one probe, still failing, doubles the cool-down
	// up to its cap.
	h.clock.Advance(time.Minute)
	if r := h.get("/p10/"); r.Status != 502 {
		t.Fatalf("failed probe = %d, want 502", r.Status)
	}
	if n := fo.requests.Load() - seen; n != 1 {
		t.Fatalf("origin saw %d probes, want 1", n)
	}
	st = h.originStates()[0]
	if want := h.clock.Now().Add(5 * time.Minute); st.Circuit != "open" || !st.RetryAt.Equal(want) {
		t.Fatalf("after a failed probe = %+v, want open until %v", st, want)
	}
	wantShortReason(t, h.get("/p11/"), 503, "origin down")
	// The origin recovers; the next probe closes the circuit.
	fo.mode.Store(int32(faultNone))
	h.clock.Advance(5 * time.Minute)
	if r := h.get("/p12/"); r.Status != 200 {
		t.Fatalf("probe after recovery = %d %q, want 200", r.Status, r.Body)
	}
	if st := h.originStates()[0]; st.Circuit != "closed" || !st.Up || st.Reason != "" {
		t.Fatalf("after a good probe = %+v, want closed and up, with no reason", st)
	}
	for i := range 5 {
		if r := h.get(fmt.Sprintf("/q%d/", i)); r.Status != 200 {
			t.Errorf("after close, request %d = %d", i, r.Status)
		}
	}
}

// While half-open exactly one request reaches the origin; the others fail
// fast instead of piling onto an origin that may still be sick.
func TestBreakerProbesWithOneRequest(t *testing.T) {
	fo := newFaultOrigin(t)
	h := newFaultHarness(t, []string{fo.url}, func(o *OriginOptions) { o.BreakerFailures = 1 })
	fo.mode.Store(int32(faultHang))
	if r := h.get("/a/"); r.Status != 504 {
		t.Fatalf("hanging origin = %d, want 504", r.Status)
	}
	seen := fo.requests.Load()
	h.clock.Advance(5 * time.Second) // the default cool-down
	p := h.pool()
	probe := make(chan int, 1)
	go func() {
		r, err := h.tryGet("/probe/")
		if err != nil {
			t.Errorf("probe: %v", err)
		}
		probe <- r.Status
	}()
	waitFor(t, "the probe to reach the origin", func() bool { return fo.requests.Load() == seen+1 })
	for i := range 8 {
		wantShortReason(t, h.get(fmt.Sprintf("/b%d/", i)), 503, "origin down")
	}
	if st := p.states()[0]; st.Circuit != "half-open" {
		t.Errorf("during the probe = %+v, want half-open", st)
	}
	if got := <-probe; got != 504 {
		t.Errorf("probe = %d, want 504", got)
	}
	if n := fo.requests.Load() - seen; n != 1 {
		t.Errorf("origin saw %d requests while half-open, want 1", n)
	}
	if st := p.states()[0]; st.Circuit != "open" {
		t.Errorf("after a failed probe = %+v, want open", st)
	}
}

// Choosing an origin and recording the outcome is on every origin request:
// it must not allocate.
func TestPickAllocs(t *testing.T) {
	p, err := newOriginPool([]string{"http://127.0.0.1:1", "http://127.0.0.1:2"}, OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	allocs := testing.AllocsPerRun(1000, func() {
		o, probe := p.pick()
		o.br.record(now, probe, verdictOK, "")
	})
	if allocs != 0 {
		t.Errorf("pick and record = %v allocs, want 0", allocs)
	}
}

// Other 5xx are an application's answer about one URL: they do not take the
// origin out.
func TestBreakerIgnores500(t *testing.T) {
	fo := newFaultOrigin(t)
	h := newFaultHarness(t, []string{fo.url}, func(o *OriginOptions) { o.BreakerFailures = 2 })
	for i := range 5 {
		if r := h.get(fmt.Sprintf("/500/%d", i)); r.Status != 500 {
			t.Fatalf("request %d = %d, want 500 relayed", i, r.Status)
		}
	}
	if n := fo.requests.Load(); n != 5 {
		t.Errorf("origin saw %d requests, want 5", n)
	}
	if st := h.originStates()[0]; st.Circuit != "closed" {
		t.Errorf("state = %+v, want closed", st)
	}
}

func TestBreakerSendsTrafficToHealthyOrigin(t *testing.T) {
	good := newFaultOrigin(t)
	bad := refusedOrigin(t)
	h := newFaultHarness(t, []string{bad, good.url}, func(o *OriginOptions) { o.BreakerFailures = 2 })
	failed := 0
	for i := range 20 {
		r := h.get(fmt.Sprintf("/r%d/", i))
		switch r.Status {
		case 200:
		case 502:
			failed++
		default:
			t.Fatalf("request %d = %d %q", i, r.Status, r.Body)
		}
	}
	if failed != 2 {
		t.Errorf("%d requests failed, want exactly the 2 that open the dead origin's circuit", failed)
	}
	if n := good.requests.Load(); n != 18 {
		t.Errorf("healthy origin saw %d requests, want 18", n)
	}
	st := h.originStates()
	if st[0].Origin != bad || st[0].Circuit != "open" || st[0].Reason != "origin refused connection" {
		t.Errorf("dead origin = %+v, want open, refused", st[0])
	}
	if !st[1].Up {
		t.Errorf("healthy origin = %+v, want up", st[1])
	}
	if ok, detail := h.proxy.OriginCheck(); !ok {
		t.Errorf("OriginCheck = false %q, want true while one origin serves", detail)
	}
}

func TestHealthChecksMarkOriginsDownAndUp(t *testing.T) {
	a, b := newFaultOrigin(t), newFaultOrigin(t)
	h := newFaultHarness(t, []string{a.url, b.url}, func(o *OriginOptions) { o.HealthPath = "/health" })
	p := h.pool()
	check := func() {
		t.Helper()
		for _, o := range p.origins {
			p.check(o, "www.example.com")
		}
	}
	check()
	if got := *a.checkHost.Load(); got != "www.example.com" {
		t.Errorf("health check Host = %q, want the site's first host", got)
	}
	a.healthCode.Store(500)
	check()
	if st := h.originStates()[0]; st.Health != "up" {
		t.Errorf("after one failed check = %+v, want still up", st)
	}
	check()
	st := h.originStates()[0]
	if st.Health != "down" || st.Up || st.Reason != "health check answered 500" {
		t.Fatalf("after two failed checks = %+v, want down with the reason", st)
	}
	before := a.requests.Load()
	for i := range 6 {
		if r := h.get(fmt.Sprintf("/h%d/", i)); r.Status != 200 {
			t.Fatalf("request %d = %d", i, r.Status)
		}
	}
	if n := a.requests.Load() - before; n != 0 {
		t.Errorf("origin marked down got %d requests, want 0", n)
	}
	a.healthCode.Store(200)
	check()
	if st := h.originStates()[0]; st.Health != "up" || !st.Up {
		t.Errorf("after a good check = %+v, want up", st)
	}
	// Every origin down: fail fast, and /readyz's check says so.
	a.healthCode.Store(503)
	b.healthCode.Store(503)
	check()
	check()
	wantShortReason(t, h.get("/h9/"), 503, "origin down")
	if ok, detail := h.proxy.OriginCheck(); ok || !strings.Contains(detail, "blog") {
		t.Errorf("OriginCheck = %v %q, want false naming the site", ok, detail)
	}
}

// A passing health check ends an open circuit's cool-down: the origin is
// probed back at the next request, not after up to a minute.
func TestHealthCheckShortensCooldown(t *testing.T) {
	fo := newFaultOrigin(t)
	h := newFaultHarness(t, []string{fo.url}, func(o *OriginOptions) {
		o.HealthPath = "/health"
		o.BreakerFailures = 1
		o.BreakerCooldown = time.Minute
	})
	fo.mode.Store(int32(faultGarbage))
	h.get("/a/")
	wantShortReason(t, h.get("/b/"), 503, "origin down")
	fo.mode.Store(int32(faultNone))
	p := h.pool()
	p.check(p.origins[0], "www.example.com")
	if r := h.get("/c/"); r.Status != 200 {
		t.Fatalf("after a passing check = %d %q, want the probe to go through", r.Status, r.Body)
	}
	if st := h.originStates()[0]; st.Circuit != "closed" {
		t.Errorf("state = %+v, want closed", st)
	}
}

func TestRunHealthChecksStops(t *testing.T) {
	fo := newFaultOrigin(t)
	h := newFaultHarness(t, []string{fo.url}, func(o *OriginOptions) {
		o.HealthPath = "/health"
		o.HealthInterval = 5 * time.Millisecond
	})
	checked := make(chan string, 16)
	h.pool().onCheck = func(o *origin) {
		select {
		case checked <- o.url:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.proxy.RunHealthChecks(ctx); close(done) }()
	for range 3 { // the first at once, then on the interval
		if got := <-checked; got != fo.url {
			t.Errorf("checked %q, want %q", got, fo.url)
		}
	}
	cancel()
	<-done // RunHealthChecks returns once ctx ends
	if st := h.originStates()[0]; st.Health != "up" || st.Checked.IsZero() {
		t.Errorf("state = %+v, want up and checked", st)
	}
}

// After a storm of mixed faults from many clients, every goroutine and
// every origin connection the proxy opened is gone.
func TestFaultStormLeaksNothing(t *testing.T) {
	edit := func(o *OriginOptions) {
		o.BreakerFailures = 20
		// The client's idle-connection reaper wakes at this period: short,
		// so that it notices quickly that it has nothing left to reap.
		o.IdleConnTimeout = 50 * time.Millisecond
	}
	// Warm up what starts once per process (fasthttp's date ticker and the
	// like), so that only what the storm starts is counted.
	t.Run("warm", func(t *testing.T) {
		fo := newFaultOrigin(t)
		newFaultHarness(t, []string{fo.url}, edit).get("/warm/")
	})
	before, _ := goroutines()
	t.Run("storm", func(t *testing.T) {
		fo := newFaultOrigin(t)
		h := newFaultHarness(t, []string{fo.url}, edit)
		paths := []string{"/ok/", "/503/", "/500/", "/garbage/", "/hang/", "/reset/", "/resetbig/"}
		var wg sync.WaitGroup
		var bad atomic.Int64
		for w := range 12 {
			wg.Go(func() {
				for i := range 14 {
					p := fmt.Sprintf("%s%d-%d", paths[(w+i)%len(paths)], w, i)
					r, err := h.tryGet(p)
					if err != nil {
						if !strings.HasPrefix(p, "/resetbig/") && !errors.Is(err, io.ErrUnexpectedEOF) {
							bad.Add(1)
							t.Errorf("GET %s: %v", p, err)
						}
						continue
					}
					switch r.Status {
					case 200, 500, 502, 503, 504:
					default:
						bad.Add(1)
						t.Errorf("GET %s = %d %q", p, r.Status, r.Body)
					}
				}
			})
		}
		wg.Wait()
		if bad.Load() > 0 {
			return
		}
		// Connections back in the pool are closed here; one held by a
		// response never released would stay open at the origin.
		h.client.CloseIdleConnections()
		waitFor(t, "origin connections to close", func() bool {
			h.proxy.CloseIdleOriginConns()
			return fo.open.Load() == 0
		})
	})
	// The subtest's cleanups shut the proxy and the origin down.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, dump := goroutines()
		if n <= before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before the storm, %d after\n%s", before, n, dump)
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond)
	}
}

// goroutines counts the live goroutines but fasthttp's worker-pool cleaner,
// which checks for the server's shutdown only between sleeps of 10 s and so
// outlives every test server by that long; dump is the stacks counted.
func goroutines() (n int, dump string) {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var kept []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "fasthttp.(*workerPool).Start") {
			continue
		}
		kept = append(kept, g)
	}
	return len(kept), strings.Join(kept, "\n\n")
}

func TestBreakerStateMachine(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	type step struct {
		at    time.Duration // since t0
		admit admission     // what admit must say
		v     verdict       // outcome recorded when admitted
		want  circuit
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"failures under the threshold", []step{
			{0, admitYes, verdictFailed, circuitClosed},
			{0, admitYes, verdictFailed, circuitClosed},
			{0, admitYes, verdictOK, circuitClosed},
			{0, admitYes, verdictFailed, circuitClosed},
			{0, admitYes, verdictFailed, circuitClosed},
		}},
		{"opens, probes, closes", []step{
			{0, admitYes, verdictFailed, circuitClosed},
			{0, admitYes, verdictFailed, circuitClosed},
			{0, admitYes, verdictFailed, circuitOpen},
			{4 * time.Second, admitNo, 0, circuitOpen},
			{5 * time.Second, admitProbe, verdictOK, circuitClosed},
			{5 * time.Second, admitYes, verdictOK, circuitClosed},
		}},
		{"failed probes double the cool-down up to the cap", []step{
			{0, admitYes, verdictFailed, circuitClosed},
			{0, admitYes, verdictFailed, circuitClosed},
			{0, admitYes, verdictFailed, circuitOpen},
			{5 * time.Second, admitProbe, verdictFailed, circuitOpen},       // next at 15s
			{14 * time.Second, admitNo, 0, circuitOpen},                     //
			{15 * time.Second, admitProbe, verdictFailed, circuitOpen},      // 20s: next at 35s
			{34 * time.Second, admitNo, 0, circuitOpen},                     //
			{35 * time.Second, admitProbe, verdictFailed, circuitOpen},      // capped at 30s: 65s
			{64 * time.Second, admitNo, 0, circuitOpen},                     //
			{65 * time.Second, admitProbe, verdictOK, circuitClosed},        //
			{65 * time.Second, admitYes, verdictFailed, circuitClosed},      // the count starts again
			{65 * time.Second, admitYes, verdictFailed, circuitClosed},      //
			{65 * time.Second, admitYes, verdictFailed, circuitOpen},        // with the base cool-down
			{69 * time.Second, admitNo, 0, circuitOpen},                     //
			{70 * time.Second, admitProbe, verdictUnknown, circuitHalfOpen}, // no verdict: probe again
			{70 * time.Second, admitProbe, verdictOK, circuitClosed},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &breaker{threshold: 3, base: 5 * time.Second, max: 30 * time.Second}
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				got := b.admit(now)
				if got != s.admit {
					t.Fatalf("step %d: admit(%v) = %d, want %d", i, s.at, got, s.admit)
				}
				if got != admitNo {
					b.record(now, got == admitProbe, s.v, "why")
				}
				if st := b.snapshot().state; st != s.want {
					t.Fatalf("step %d: state = %v, want %v", i, st, s.want)
				}
			}
		})
	}
}

// Only one probe goes while half-open; the others wait for its outcome.
func TestBreakerOneProbe(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	b := &breaker{threshold: 1, base: time.Second, max: time.Second}
	b.record(t0, false, verdictFailed, "x")
	now := t0.Add(time.Second)
	if got := b.admit(now); got != admitProbe {
		t.Fatalf("first admit = %d, want probe", got)
	}
	for i := range 3 {
		if got := b.admit(now); got != admitNo {
			t.Errorf("admit %d during the probe = %d, want no", i, got)
		}
	}
	// A late answer of a request sent before the opening does not decide.
	b.record(now, false, verdictOK, "")
	if st := b.snapshot().state; st != circuitHalfOpen {
		t.Errorf("state after a late answer = %v, want half-open", st)
	}
}

func TestJudge(t *testing.T) {
	f := func(err error, code int, want verdict, why string) {
		t.Helper()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(resp)
		resp.SetStatusCode(code)
		v, w := judge(err, resp)
		if v != want || w != why {
			t.Errorf("judge(%v, %d) = %d %q, want %d %q", err, code, v, w, want, why)
		}
	}
	f(nil, 200, verdictOK, "")
	f(nil, 404, verdictOK, "")
	f(nil, 500, verdictOK, "")
	// An answer, even a 5xx, means the origin is up: one page in
	// maintenance must not open the circuit for the whole site.
	f(nil, 502, verdictOK, "")
	f(nil, 503, verdictOK, "")
	f(nil, 504, verdictOK, "")
	f(fasthttp.ErrTimeout, 0, verdictFailed, "origin timeout")
	f(fmt.Errorf("dial: %w", syscall.ECONNREFUSED), 0, verdictFailed, "origin refused connection")
	f(fasthttp.ErrConnectionClosed, 0, verdictFailed, "origin closed connection")
	f(errors.New("cannot parse response"), 0, verdictFailed, "origin error")
	f(fasthttp.ErrNoFreeConns, 0, verdictUnknown, "")
}

// TestWaiterServesItsOwnStaleCopy: a request that joins another's origin
// fetch holding a stored copy of its own gets that copy when the fetch fails
// (stale-if-error), even when the leader had none to fall back on (it came
// before the copy was stored, or the copy expired or was purged under it).
// The soak found waiters answered 502 in that case.
func TestWaiterServesItsOwnStaleCopy(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	var n atomic.Int32
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Cache-Control", "max-age=1, stale-if-error=600")
			io.WriteString(w, "v1")
			return
		}
		arrived <- struct{}{}
		<-release
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		c.Close() // no answer at all
	})
	if r := h.get("/a/"); r.Body != "v1" {
		t.Fatalf("first GET = %d %q", r.Status, r.Body)
	}
	key := h.proxy.keyer.AppendKey(nil, []byte("http"), []byte("www.example.com"), []byte("/a/"), nil)
	stored := h.store.Get(key, &fasthttp.RequestHeader{})
	if stored == nil {
		t.Fatal("the page was not stored")
	}
	h.store.Delete(key)

	leader := make(chan response, 1)
	go func() { r, _ := h.tryGet("/a/"); leader <- r }() // a miss: nothing stored
	<-arrived
	if !h.store.Set(stored) {
		t.Fatal("store refused the copy")
	}
	h.clock.Advance(40 * time.Second) // past stale-while-revalidate (30 s), within stale-if-error
	waiter := make(chan response, 1)
	go func() { r, _ := h.tryGet("/a/"); waiter <- r }()
	for h.proxy.flight.Waiting() == 0 {
		runtime.Gosched() // until the second request has joined the fetch
	}
	close(release)
	if r := <-leader; r.Status != http.StatusBadGateway {
		t.Errorf("leader = %d %q, want 502: it had no copy", r.Status, r.Body)
	}
	r := <-waiter
	if r.Status != 200 || r.Body != "v1" || !strings.Contains(r.Header.Get("Cache-Status"), "stale-if-error") {
		t.Errorf("waiter = %d %q %q, want its stale copy", r.Status, r.Body, r.Header.Get("Cache-Status"))
	}
}
