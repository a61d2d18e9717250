package admin

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/proxy"
	"github.com/edgevitals/edgevitals/proxy/proxytest"
	"github.com/edgevitals/edgevitals/vitals/release"
)

const testToken = "s3cret-token"

// startAdmin serves the admin API of h's proxy on loopback, fanning purges
// out to the peers in peers when it is not nil, and returns its base URL.
func startAdmin(t *testing.T, h *proxytest.Harness, peers *atomic.Pointer[Peers]) string {
	t.Helper()
	o := AdminOptions{Token: testToken, Loopback: true, Metrics: h.Set, Help: []map[string]string{proxy.MetricHelp(), release.MetricHelp()}}
	if peers != nil {
		o.Fanout = func(ctx context.Context, req proxy.PurgeRequest) []string { return peers.Load().Fanout(ctx, req) }
	}
	a := NewAdmin(h.Proxy, o)
	a.SetReady(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: a.Handler}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown below
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// withFanout makes a proxy fan its PURGE and BAN requests out to the peers
// in peers, read when a purge arrives: a fleet's nodes are built before
// they know each other's addresses.
func withFanout(peers *atomic.Pointer[Peers]) func(*proxy.Options) {
	return func(o *proxy.Options) {
		o.Fanout = func(ctx context.Context, req proxy.PurgeRequest) []string { return peers.Load().Fanout(ctx, req) }
	}
}

func apiPurge(t *testing.T, admin, token, body string) (int, string) {
	t.Helper()
	code, b := send(t, http.MethodPost, admin+"/api/purge", "", token, body)
	return code, strings.TrimSpace(b)
}

// send makes a request with body to url, with the Host host unless it is
// "" and the bearer token unless it is "", and returns the status and body.
func send(t *testing.T, method, url, host, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// wordpressLike serves articles tagged as WordPress cache plugins tag them.
func wordpressLike(gen *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		switch {
		case r.URL.Path == "/":
			w.Header().Set("Surrogate-Key", "home post-43 post-44")
		case strings.HasPrefix(r.URL.Path, "/hello-world/"):
			w.Header().Set("Surrogate-Key", "post-43 term-7")
		case strings.HasPrefix(r.URL.Path, "/other/"):
			w.Header().Set("Cache-Tag", "post-44,term-8")
		}
		fmt.Fprintf(w, "%s gen %d", r.URL.Path, gen.Load())
	}
}

func warm(t *testing.T, h *proxytest.Harness, paths ...string) {
	t.Helper()
	for _, p := range paths {
		h.Get(p)
		proxytest.WantCacheStatus(t, h.Get(p), "; hit")
	}
}

func TestAdminPurgeNeedsToken(t *testing.T) {
	var gen atomic.Int64
	h := proxytest.New(t, wordpressLike(&gen))
	warm(t, h, "/")
	admin := startAdmin(t, h, nil)
	if code, _ := apiPurge(t, admin, "", `{"site":"blog","all":true}`); code != http.StatusUnauthorized {
		t.Errorf("admin purge without token = %d, want 401", code)
	}
	if code, _ := apiPurge(t, admin, "wrong", `{"site":"blog","all":true}`); code != http.StatusUnauthorized {
		t.Errorf("admin purge with a wrong token = %d, want 401", code)
	}
	proxytest.WantCacheStatus(t, h.Get("/"), "; hit")
}

func TestAdminPurgeAPI(t *testing.T) {
	var gen atomic.Int64
	h := proxytest.New(t, wordpressLike(&gen))
	admin := startAdmin(t, h, nil)
	cases := []struct {
		body, want string
		code       int
	}{
		{`{"site":"blog","keys":["post-43"]}`, `"purged":2`, 200},
		{`{"urls":["http://www.example.com/other/"]}`, `"purged":1`, 200},
		{`{"site":"blog","prefix":"/hello"}`, `"purged":1`, 200},
		{`{"site":"blog","all":true,"soft":false}`, `"purged":3`, 200},
		{`{"site":"nope","all":true}`, `unknown site`, 400},
		{`{"site":"blog"}`, `exactly one`, 400},
		{`{"site":"blog","keys":["a"],"all":true}`, `exactly one`, 400},
		{`{"site":"blog","bogus":1}`, `unknown field`, 400},
		{`{"site":"blog","regex":"(("}`, `bad regex`, 400},
		{`not json`, `bad purge request`, 400},
	}
	for _, c := range cases {
		warm(t, h, "/", "/hello-world/", "/other/")
		code, body := apiPurge(t, admin, testToken, c.body)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("POST /api/purge %s = %d %s, want %d with %q", c.body, code, body, c.code, c.want)
		}
		h.Store.PurgeAll("", false)
	}
}

func TestFleetPurgeFansOut(t *testing.T) {
	var gen atomic.Int64
	nodes := make([]*proxytest.Harness, 3)
	admins := make([]string, 3)
	var peers0 atomic.Pointer[Peers] // node 0's, known once the others listen
	for i := range nodes {
		if i == 0 {
			nodes[i] = proxytest.New(t, wordpressLike(&gen), withFanout(&peers0))
			admins[i] = startAdmin(t, nodes[i], &peers0)
			continue
		}
		nodes[i] = proxytest.New(t, wordpressLike(&gen))
		admins[i] = startAdmin(t, nodes[i], nil)
	}
	// A peer that is down: nothing listens on its port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	// Node 0 knows its peers, as its config's cluster.peers would say.
	peers0.Store(NewPeers(PeersOptions{URLs: []string{admins[1], admins[2], dead}, Token: testToken, Attempts: 2}))
	for _, n := range nodes {
		warm(t, n, "/hello-world/", "/other/")
	}
	code, body := apiPurge(t, admins[0], testToken, `{"site":"blog","keys":["post-43"]}`)
	if code != 200 || !strings.Contains(body, `"failed_peers":["`+dead+`"]`) {
		t.Fatalf("fleet purge = %d %s, want the dead peer reported", code, body)
	}
	for _, n := range nodes {
		proxytest.WantCacheStatus(t, n.Get("/hello-world/"), "fwd=uri-miss")
		proxytest.WantCacheStatus(t, n.Get("/other/"), "; hit")
	}
	// A PURGE on the proxy listener fans out too.
	r := nodes[0].Do("PURGE", "/other/")
	if !strings.Contains(r.Body, `"purged":1`) {
		t.Fatalf("PURGE on node 0 = %s", r.Body)
	}
	for _, n := range nodes[1:] {
		proxytest.WantCacheStatus(t, n.Get("/other/"), "fwd=uri-miss")
	}
}

// TestFleetPurgeNoLoopsAndRetries: nodes that list each other as peers (the
// usual fleet config) apply a purge once each and do not send it back; a
// peer that fails an attempt gets the purge again after a backoff, with the
// fleet's token, and is not reported failed when a later attempt lands.
func TestFleetPurgeNoLoopsAndRetries(t *testing.T) {
	var gen atomic.Int64
	nodes := make([]*proxytest.Harness, 2)
	counted := make([]string, 2)
	received := make([]atomic.Int32, 2)
	peers := make([]atomic.Pointer[Peers], 2)
	for i := range nodes {
		nodes[i] = proxytest.New(t, wordpressLike(&gen), withFanout(&peers[i]))
		admin := startAdmin(t, nodes[i], &peers[i])
		// A counting relay in front of each admin API.
		relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/purge" {
				received[i].Add(1)
			}
			req, _ := http.NewRequestWithContext(r.Context(), r.Method, admin+r.URL.RequestURI(), r.Body)
			req.Header = r.Header.Clone()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
		}))
		t.Cleanup(relay.Close)
		counted[i] = relay.URL
	}
	// A peer that refuses its first attempt, then takes the purge.
	var flakyTries atomic.Int32
	var flakyAuth atomic.Value
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		flakyAuth.Store(r.Header.Get("Authorization"))
		if flakyTries.Add(1) == 1 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"purged":0}`)
	}))
	t.Cleanup(flaky.Close)
	peers[0].Store(NewPeers(PeersOptions{URLs: []string{counted[1], flaky.URL}, Token: testToken, Attempts: 3, Backoff: time.Millisecond}))
	peers[1].Store(NewPeers(PeersOptions{URLs: []string{counted[0]}, Token: testToken, Attempts: 3, Backoff: time.Millisecond}))
	for _, n := range nodes {
		warm(t, n, "/hello-world/", "/other/")
	}

	code, body := apiPurge(t, counted[0], testToken, `{"site":"blog","keys":["post-43"]}`)
	if code != 200 || !strings.Contains(body, `"failed_peers":[]`) {
		t.Fatalf("fleet purge = %d %s, want every peer reached", code, body)
	}
	if a, b := received[0].Load(), received[1].Load(); a != 1 || b != 1 {
		t.Errorf("/api/purge requests: node 0 got %d (want 1, the user's), node 1 got %d (want 1, forwarded once)", a, b)
	}
	if n := flakyTries.Load(); n != 2 {
		t.Errorf("the flaky peer was tried %d times, want 2 (one refusal, one retry)", n)
	}
	if got := flakyAuth.Load(); got != "Bearer "+testToken {
		t.Errorf("forwarded purge carried Authorization %q", got)
	}
	for _, n := range nodes {
		proxytest.WantCacheStatus(t, n.Get("/hello-world/"), "fwd=uri-miss")
		proxytest.WantCacheStatus(t, n.Get("/other/"), "; hit")
	}
}
