package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

const testToken = "s3cret-token"

// startAdmin serves the harness proxy's admin API on loopback and returns its base URL.
func (h *harness) startAdmin(t *testing.T) string {
	t.Helper()
	a := NewAdmin(h.proxy, AdminOptions{Token: testToken, Loopback: true, Metrics: h.set})
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

func apiPurge(t *testing.T, admin, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, admin+"/api/purge", strings.NewReader(body))
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
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
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

func warm(t *testing.T, h *harness, paths ...string) {
	t.Helper()
	for _, p := range paths {
		h.get(p)
		wantCacheStatus(t, h.get(p), "; hit")
	}
}

func TestPurgeBySurrogateKey(t *testing.T) {
	var gen atomic.Int64
	h := newHarness(t, wordpressLike(&gen))
	warm(t, h, "/", "/hello-world/", "/other/")
	gen.Add(1)
	r := h.do("PURGE", "/", "Surrogate-Key: post-43")
	if r.Status != 200 || !strings.Contains(r.Body, `"purged":2`) {
		t.Fatalf("PURGE = %d %s, want 2 purged", r.Status, r.Body)
	}
	wantCacheStatus(t, h.get("/"), "fwd=uri-miss")
	wantCacheStatus(t, h.get("/hello-world/"), "fwd=uri-miss")
	wantCacheStatus(t, h.get("/other/"), "; hit")
}

func TestBanByCacheTags(t *testing.T) {
	var gen atomic.Int64
	h := newHarness(t, wordpressLike(&gen))
	warm(t, h, "/", "/hello-world/", "/other/")
	r := h.do("BAN", "/", "Cache-Tags: term-8 nothing")
	if r.Status != 200 || !strings.Contains(r.Body, `"purged":1`) {
		t.Fatalf("BAN = %d %s", r.Status, r.Body)
	}
	wantCacheStatus(t, h.get("/other/"), "fwd=uri-miss")
	wantCacheStatus(t, h.get("/"), "; hit")
}

func TestPurgeURLEveryVariant(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Vary", "Accept-Language")
		fmt.Fprint(w, r.Header.Get("Accept-Language"))
	})
	for _, l := range []string{"en", "fr"} {
		h.get("/p/?a=1", "Accept-Language: "+l)
	}
	h.get("/q/")
	r := h.do("PURGE", "/p/?a=1&utm_source=x")
	if !strings.Contains(r.Body, `"purged":2`) {
		t.Fatalf("PURGE url = %s, want both variants", r.Body)
	}
	wantCacheStatus(t, h.get("/p/?a=1", "Accept-Language: en"), "fwd=uri-miss")
	wantCacheStatus(t, h.get("/q/"), "; hit")
}

func TestPurgeRegex(t *testing.T) {
	var gen atomic.Int64
	h := newHarness(t, wordpressLike(&gen))
	warm(t, h, "/", "/hello-world/", "/other/")
	r := h.do("PURGE", "/hello-.*", "X-Purge-Method: regex")
	if !strings.Contains(r.Body, `"purged":1`) {
		t.Fatalf("regex PURGE = %s", r.Body)
	}
	wantCacheStatus(t, h.get("/hello-world/"), "fwd=uri-miss")
	wantCacheStatus(t, h.get("/other/"), "; hit")
	r = h.do("PURGE", "/.*", "X-Purge-Method: regex")
	if !strings.Contains(r.Body, `"purged":3`) {
		t.Fatalf("purge-all = %s", r.Body)
	}
	wantCacheStatus(t, h.get("/other/"), "fwd=uri-miss")
}

func TestSoftPurgeServesStaleOnceAndRefreshesOnce(t *testing.T) {
	var gen atomic.Int64
	refreshed := make(chan struct{}, 10)
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Surrogate-Key", "all")
		fmt.Fprintf(w, "gen %d", gen.Load())
		refreshed <- struct{}{}
	})
	admin := h.startAdmin(t)
	h.get("/a/")
	<-refreshed
	gen.Add(1)
	code, body := apiPurge(t, admin, testToken, `{"site":"blog","all":true}`)
	if code != 200 || !strings.Contains(body, `"purged":1`) {
		t.Fatalf("soft purge-all = %d %s", code, body)
	}
	r := h.get("/a/")
	if r.Body != "gen 0" {
		t.Fatalf("after soft purge body = %q, want the stale copy at once", r.Body)
	}
	wantCacheStatus(t, r, "fwd=stale")
	<-refreshed
	waitFor(t, "refreshed copy", func() bool { return h.get("/a/").Body == "gen 1" })
	if n := h.originCount(); n != 2 {
		t.Errorf("origin saw %d, want 2 (exactly one refresh)", n)
	}
}

func TestPurgeNotAllowed(t *testing.T) {
	var gen atomic.Int64
	h := newHarness(t, wordpressLike(&gen), func(o *Options) {
		o.PurgeAllow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	warm(t, h, "/")
	if r := h.do("PURGE", "/"); r.Status != http.StatusForbidden {
		t.Errorf("PURGE from a stranger = %d, want 403", r.Status)
	}
	wantCacheStatus(t, h.get("/"), "; hit")
	admin := h.startAdmin(t)
	if code, _ := apiPurge(t, admin, "", `{"site":"blog","all":true}`); code != http.StatusUnauthorized {
		t.Errorf("admin purge without token = %d, want 401", code)
	}
	if code, _ := apiPurge(t, admin, "wrong", `{"site":"blog","all":true}`); code != http.StatusUnauthorized {
		t.Errorf("admin purge with a wrong token = %d, want 401", code)
	}
	wantCacheStatus(t, h.get("/"), "; hit")
}

func TestAdminPurgeAPI(t *testing.T) {
	var gen atomic.Int64
	h := newHarness(t, wordpressLike(&gen))
	admin := h.startAdmin(t)
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
		h.store.PurgeAll("", false)
	}
}

func TestFleetPurgeFansOut(t *testing.T) {
	var gen atomic.Int64
	nodes := make([]*harness, 3)
	admins := make([]string, 3)
	for i := range nodes {
		nodes[i] = newHarness(t, wordpressLike(&gen))
		admins[i] = nodes[i].startAdmin(t)
	}
	// A peer that is down: nothing listens on its port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	// Node 0 knows its peers, as its config's cluster.peers would say.
	nodes[0].proxy.opt.Peers = NewPeers(PeersOptions{URLs: []string{admins[1], admins[2], dead}, Token: testToken, Attempts: 2})
	for _, n := range nodes {
		warm(t, n, "/hello-world/", "/other/")
	}
	code, body := apiPurge(t, admins[0], testToken, `{"site":"blog","keys":["post-43"]}`)
	if code != 200 || !strings.Contains(body, `"failed_peers":["`+dead+`"]`) {
		t.Fatalf("fleet purge = %d %s, want the dead peer reported", code, body)
	}
	for _, n := range nodes {
		wantCacheStatus(t, n.get("/hello-world/"), "fwd=uri-miss")
		wantCacheStatus(t, n.get("/other/"), "; hit")
	}
	// A PURGE on the proxy listener fans out too.
	r := nodes[0].do("PURGE", "/other/")
	if !strings.Contains(r.Body, `"purged":1`) {
		t.Fatalf("PURGE on node 0 = %s", r.Body)
	}
	for _, n := range nodes[1:] {
		wantCacheStatus(t, n.get("/other/"), "fwd=uri-miss")
	}
}

func TestSoftPurgedCopyDroppedWhenOriginTurnsUncacheable(t *testing.T) {
	var bad atomic.Bool
	refreshed := make(chan struct{}, 10)
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		if bad.Load() {
			w.Header().Set("Set-Cookie", "ab=1")
		}
		fmt.Fprint(w, "page")
		refreshed <- struct{}{}
	})
	h.get("/a/")
	<-refreshed
	bad.Store(true)
	h.store.PurgeAll("blog", true)
	wantCacheStatus(t, h.get("/a/"), "fwd=stale") // the stale copy, once
	<-refreshed                                   // its refresh answered with Set-Cookie
	h.proxy.bg.Wait()
	r := h.get("/a/")
	wantCacheStatus(t, r, "detail=hit-for-miss")
	if len(r.Header.Values("Set-Cookie")) != 1 {
		t.Errorf("Set-Cookie = %q, want the origin's own", r.Header.Values("Set-Cookie"))
	}
}

// TestFleetPurgeNoLoopsAndRetries: nodes that list each other as peers (the
// usual fleet config) apply a purge once each and do not send it back; a
// peer that fails an attempt gets the purge again after a backoff, with the
// fleet's token, and is not reported failed when a later attempt lands.
func TestFleetPurgeNoLoopsAndRetries(t *testing.T) {
	var gen atomic.Int64
	nodes := make([]*harness, 2)
	counted := make([]string, 2)
	received := make([]atomic.Int32, 2)
	for i := range nodes {
		nodes[i] = newHarness(t, wordpressLike(&gen))
		admin := nodes[i].startAdmin(t)
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
	nodes[0].proxy.opt.Peers = NewPeers(PeersOptions{URLs: []string{counted[1], flaky.URL}, Token: testToken, Attempts: 3, Backoff: time.Millisecond})
	nodes[1].proxy.opt.Peers = NewPeers(PeersOptions{URLs: []string{counted[0]}, Token: testToken, Attempts: 3, Backoff: time.Millisecond})
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
		wantCacheStatus(t, n.get("/hello-world/"), "fwd=uri-miss")
		wantCacheStatus(t, n.get("/other/"), "; hit")
	}
}
