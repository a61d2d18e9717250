package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func startOrigin(t *testing.T, size int) *origin {
	t.Helper()
	o, err := newOrigin(size, time.Hour)
	if err != nil {
		t.Fatalf("newOrigin: %v", err)
	}
	t.Cleanup(func() {
		if err := o.close(); err != nil {
			t.Errorf("origin close: %v", err)
		}
	})
	return o
}

// recorder is a loopback server in front of the origin's handler that remembers the
// request URIs, so tests can check what a load generator sent.
type recorder struct {
	addr  string
	mu    sync.Mutex
	uris  []string
	paths map[string]bool
}

func startRecorder(t *testing.T, o *origin) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{addr: ln.Addr().String(), paths: map[string]bool{}}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		r.mu.Lock()
		r.uris = append(r.uris, string(ctx.RequestURI()))
		r.paths[string(ctx.Path())] = true
		r.mu.Unlock()
		o.handle(ctx)
	}}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("recorder shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("recorder serve: %v", err)
		}
	})
	return r
}

func (r *recorder) counts() (total, queries, unique, paths int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, u := range r.uris {
		if _, q, ok := cut(u, '?'); ok {
			queries++
			seen[q] = true
		}
	}
	return len(r.uris), queries, len(seen), len(r.paths)
}

func cut(s string, c byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func TestPageBody(t *testing.T) {
	for _, size := range []int{1000, 30000, 100} {
		if got := len(pageBody(size)); got != size {
			t.Errorf("len(pageBody(%d)) = %d, want %d", size, got, size)
		}
	}
}

func TestOriginAnswersCacheablePages(t *testing.T) {
	o := startOrigin(t, 1000)
	o.setDelay(20 * time.Millisecond)
	start := time.Now()
	resp, err := http.Get("http://" + o.addr() + "/storm/x")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("answer took %s, want at least the 20ms delay", took)
	}
	if resp.StatusCode != 200 || len(body) != 1000 {
		t.Errorf("GET = %d with %d bytes, want 200 with 1000", resp.StatusCode, len(body))
	}
	if got := resp.Header.Get("Cache-Control"); got != "public, max-age=3600" {
		t.Errorf("Cache-Control = %q, want %q", got, "public, max-age=3600")
	}
	if got := o.count("/storm/x"); got != 1 {
		t.Errorf("count(/storm/x) = %d, want 1", got)
	}
	if got := o.count("/storm/y"); got != 0 {
		t.Errorf("count(/storm/y) = %d, want 0", got)
	}
}

// TestStormWithoutCache sends a storm straight at the origin: with nothing to coalesce,
// every request must reach it, each answered once.
func TestStormWithoutCache(t *testing.T) {
	o := startOrigin(t, 2000)
	o.setDelay(10 * time.Millisecond)
	s := &server{name: "origin", port: o.port(), isHit: func(h http.Header) bool { return h.Get("X-Cache") == "HIT" }}
	const n = 50
	res, err := storm(context.Background(), s, "/storm/direct", n)
	if err != nil {
		t.Fatalf("storm: %v", err)
	}
	if res.ok != n || res.bad != 0 || res.shared != 0 {
		t.Errorf("storm = %d ok, %d bad (%s), %d shared; want %d, 0, 0", res.ok, res.bad, res.firstErr, res.shared, n)
	}
	if got := o.count("/storm/direct"); got != n {
		t.Errorf("origin requests = %d, want %d", got, n)
	}
	for _, w := range res.waits {
		if w < 10*time.Millisecond {
			t.Fatalf("a wait of %s is shorter than the origin's 10ms delay", w)
		}
	}
}

func TestFetchAll(t *testing.T) {
	o := startOrigin(t, 100)
	s := &server{name: "origin", port: o.port()}
	if err := fetchAll(context.Background(), http.DefaultClient, s, 37, 4); err != nil {
		t.Fatalf("fetchAll: %v", err)
	}
	if got := o.total.Load(); got != 37 {
		t.Errorf("origin requests = %d, want 37", got)
	}
	dead := &server{name: "nothing", port: closedPort(t)}
	if err := fetchAll(context.Background(), http.DefaultClient, dead, 10, 4); err == nil {
		t.Error("fetchAll against a closed port = nil error, want one")
	}
}

func closedPort(t *testing.T) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestQuantile(t *testing.T) {
	d := func(ms ...int) []time.Duration {
		var out []time.Duration
		for _, m := range ms {
			out = append(out, time.Duration(m)*time.Millisecond)
		}
		return out
	}
	tests := []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{d(5), 0.99, 5 * time.Millisecond},
		{d(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{d(1, 2, 3, 4), 1, 4 * time.Millisecond},
		{d(1, 2, 3, 4), 0, 1 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.in, tt.q), func(t *testing.T) {
			if got := quantile(tt.in, tt.q); got != tt.want {
				t.Errorf("quantile(%v, %v) = %s, want %s", tt.in, tt.q, got, tt.want)
			}
		})
	}
}
