package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func page(body string, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for _, line := range hdr {
			k, v, _ := strings.Cut(line, ":")
			w.Header().Add(k, strings.TrimSpace(v))
		}
		fmt.Fprint(w, body)
	}
}

func TestHitAfterMiss(t *testing.T) {
	h := newHarness(t, page("hello", "Cache-Control: max-age=120", "Content-Type: text/html"))
	r1 := h.get("/a/")
	if r1.Status != 200 || r1.Body != "hello" {
		t.Fatalf("first = %d %q", r1.Status, r1.Body)
	}
	wantCacheStatus(t, r1, "fwd=uri-miss", "fwd-status=200", "stored")
	h.clock.Advance(10 * time.Second)
	r2 := h.get("/a/")
	if r2.Body != "hello" {
		t.Fatalf("second body = %q", r2.Body)
	}
	wantCacheStatus(t, r2, "; hit", "ttl=110")
	if got := r2.Header.Get("Age"); got != "10" {
		t.Errorf("Age = %q, want 10", got)
	}
	if got := r2.Header.Get("Content-Type"); got != "text/html" {
		t.Errorf("Content-Type = %q, want text/html", got)
	}
	if n := h.originCount(); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
	// HEAD is served from the same stored object.
	r3 := h.do(http.MethodHead, "/a/")
	if r3.Status != 200 || r3.Body != "" {
		t.Errorf("HEAD = %d %q", r3.Status, r3.Body)
	}
	if n := h.originCount(); n != 1 {
		t.Errorf("origin saw %d requests after HEAD, want 1", n)
	}
}

func TestWordPressDefaultTTL(t *testing.T) {
	// WordPress sends no Cache-Control on anonymous pages: the preset's default TTL applies.
	h := newHarness(t, page("post"))
	h.get("/post/")
	h.clock.Advance(4 * time.Minute)
	wantCacheStatus(t, h.get("/post/"), "; hit")
	if n := h.originCount(); n != 1 {
		t.Errorf("origin saw %d, want 1", n)
	}
}

func TestSessionCookieBypasses(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		if c, err := r.Cookie("wordpress_logged_in_abc"); err == nil {
			fmt.Fprint(w, "Hello, "+c.Value)
			return
		}
		fmt.Fprint(w, "Hello, visitor")
	})
	h.get("/") // store the public page
	r := h.get("/", "Cookie: wordpress_logged_in_abc=admin; wp-settings-1=x")
	if r.Body != "Hello, admin" {
		t.Fatalf("logged-in body = %q, want the personal page", r.Body)
	}
	wantCacheStatus(t, r, "fwd=bypass", "detail=cookie")
	if got := h.lastSeen().Header.Get("Cookie"); !strings.Contains(got, "wordpress_logged_in_abc=admin") {
		t.Errorf("origin got Cookie %q, want the session cookie untouched", got)
	}
	if r := h.get("/"); r.Body != "Hello, visitor" {
		t.Errorf("anonymous body = %q after a logged-in visit", r.Body)
	}
	for _, c := range []string{"wp-postpass_123=x", "comment_author_abc=bob", "woocommerce_items_in_cart=1", "PHPSESSID=1", "wordpress_0123abcd=x"} {
		if r := h.get("/", "Cookie: "+c); !strings.Contains(r.Header.Get("Cache-Status"), "fwd=bypass") {
			t.Errorf("Cookie %q: Cache-Status = %q, want bypass", c, r.Header.Get("Cache-Status"))
		}
	}
}

func TestHarmlessCookiesAreStrippedNotBypassed(t *testing.T) {
	h := newHarness(t, page("x", "Cache-Control: max-age=60"))
	h.get("/p/", "Cookie: _ga=GA1.2.3; wordpress_test_cookie=WP; wp-settings-time-1=1")
	if got := h.lastSeen().Header.Get("Cookie"); got != "" {
		t.Errorf("origin got Cookie %q on a cacheable request, want none", got)
	}
	wantCacheStatus(t, h.get("/p/", "Cookie: _ga=other"), "; hit")
}

func TestSetCookieNeverShared(t *testing.T) {
	var n atomic.Int64
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		id := n.Add(1)
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Add("Set-Cookie", "session="+strconv.FormatInt(id, 10))
		w.Header().Add("Set-Cookie", "other=1")
		fmt.Fprintf(w, "page for %d", id)
	})
	r1 := h.get("/cart-like/")
	if got := r1.Header.Values("Set-Cookie"); len(got) != 2 || got[0] != "session=1" {
		t.Fatalf("first client Set-Cookie = %q, want both fields unmerged", got)
	}
	r2 := h.get("/cart-like/")
	if got := r2.Header.Values("Set-Cookie"); len(got) != 2 || got[0] != "session=2" {
		t.Errorf("second client Set-Cookie = %q, want its own session=2", got)
	}
	if r2.Body != "page for 2" {
		t.Errorf("second client body = %q, want its own page", r2.Body)
	}
	if h.originCount() != 2 {
		t.Errorf("origin saw %d requests, want 2", h.originCount())
	}
}

func TestPrivateAndNoStoreNotStored(t *testing.T) {
	for _, cc := range []string{"private, max-age=60", "no-store", "no-cache, must-revalidate, max-age=0, private"} {
		t.Run(cc, func(t *testing.T) {
			h := newHarness(t, page("mine", "Cache-Control: "+cc))
			h.get("/x/")
			h.get("/x/")
			if h.originCount() != 2 {
				t.Errorf("origin saw %d, want 2", h.originCount())
			}
		})
	}
}

func TestCoalescing(t *testing.T) {
	release := make(chan struct{})
	first := make(chan struct{}, 1)
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case first <- struct{}{}:
		default:
		}
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "slow page")
	})
	const clients = 200
	var wg sync.WaitGroup
	bodies := make([]string, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bodies[i] = h.get("/slow/").Body
		}()
	}
	<-first
	waitFor(t, "clients to connect", func() bool { return h.proxy.srv.GetOpenConnectionsCount() >= clients })
	close(release)
	wg.Wait()
	for i, b := range bodies {
		if b != "slow page" {
			t.Fatalf("client %d got %q", i, b)
		}
	}
	if n := h.originCount(); n != 1 {
		t.Errorf("origin saw %d requests for %d concurrent clients, want 1", n, clients)
	}
	if h.flight.Coalesced() == 0 {
		t.Error("no request was coalesced")
	}
}

func TestUncacheableReleasesWaiters(t *testing.T) {
	release := make(chan struct{})
	var count atomic.Int64
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		if count.Add(1) == 1 {
			<-release
		}
		w.Header().Set("Set-Cookie", "s=1")
		fmt.Fprint(w, "personal")
	})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); h.get("/u/") }()
	}
	waitFor(t, "clients to connect", func() bool { return h.proxy.srv.GetOpenConnectionsCount() >= 20 })
	close(release)
	wg.Wait()
	// Every waiter went to the origin on its own; the key is now hit-for-miss.
	if n := h.originCount(); n != 20 {
		t.Errorf("origin saw %d, want 20", n)
	}
	wantCacheStatus(t, h.get("/u/"), "detail=hit-for-miss")
}

func TestStaleIfErrorWhenOriginDown(t *testing.T) {
	h := newHarness(t, page("saved", "Cache-Control: max-age=60"))
	h.get("/news/")
	h.origin.Close()
	h.clock.Advance(2 * time.Minute)
	r := h.get("/news/")
	if r.Status != 200 || r.Body != "saved" {
		t.Fatalf("with origin down = %d %q, want the stale copy", r.Status, r.Body)
	}
	wantCacheStatus(t, r, "fwd=stale", "detail=stale-if-error")
	// Beyond stale-if-error (6h) there is nothing to serve.
	h.clock.Advance(7 * time.Hour)
	if r := h.get("/news/"); r.Status != http.StatusBadGateway {
		t.Errorf("past stale-if-error = %d, want 502", r.Status)
	}
	// Never seen: a clear 502.
	if r := h.get("/other/"); r.Status != http.StatusBadGateway || strings.Contains(r.Body, "127.0.0.1") {
		t.Errorf("uncached with origin down = %d %q, want 502 without internals", r.Status, r.Body)
	}
}

func TestMustRevalidateForbidsStale(t *testing.T) {
	h := newHarness(t, page("strict", "Cache-Control: max-age=60, must-revalidate"))
	h.get("/s/")
	h.origin.Close()
	h.clock.Advance(2 * time.Minute)
	if r := h.get("/s/"); r.Status != http.StatusBadGateway {
		t.Errorf("must-revalidate with origin down = %d %q, want 502", r.Status, r.Body)
	}
}

func TestStaleWhileRevalidate(t *testing.T) {
	var version atomic.Int64
	version.Store(1)
	refreshed := make(chan struct{}, 10)
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60, stale-while-revalidate=120")
		fmt.Fprintf(w, "v%d", version.Load())
		refreshed <- struct{}{}
	})
	h.get("/swr/")
	<-refreshed
	version.Store(2)
	h.clock.Advance(90 * time.Second)
	r := h.get("/swr/")
	if r.Body != "v1" {
		t.Fatalf("inside SWR body = %q, want the stale v1 at once", r.Body)
	}
	wantCacheStatus(t, r, "fwd=stale", "detail=stale-while-revalidate")
	<-refreshed // the background refresh reached the origin
	waitFor(t, "refresh stored", func() bool { return h.get("/swr/").Body == "v2" })
	if n := h.originCount(); n != 2 {
		t.Errorf("origin saw %d, want 2 (one refresh)", n)
	}
}

func TestRevalidation304UpdatesHeaders(t *testing.T) {
	var gen atomic.Int64
	gen.Store(1)
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("X-Gen", strconv.FormatInt(gen.Load(), 10))
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprint(w, "body v1")
	})
	h.get("/e/")
	gen.Store(2)
	// Past max-age (10 s) and the site's default stale-while-revalidate (30 s).
	h.clock.Advance(60 * time.Second)
	r := h.get("/e/")
	if r.Status != 200 || r.Body != "body v1" {
		t.Fatalf("revalidated = %d %q", r.Status, r.Body)
	}
	if got := r.Header.Get("X-Gen"); got != "2" {
		t.Errorf("X-Gen = %q, want 2 (updated by the 304)", got)
	}
	wantCacheStatus(t, r, "fwd=stale", "fwd-status=304")
	if got := h.lastSeen().Header.Get("If-None-Match"); got != `"v1"` {
		t.Errorf("origin got If-None-Match %q", got)
	}
	// Fresh again for max-age: a hit.
	wantCacheStatus(t, h.get("/e/"), "; hit")
	// A client's own validator gets a 304 from the cache.
	if r := h.get("/e/", `If-None-Match: "v1"`); r.Status != http.StatusNotModified {
		t.Errorf("client conditional = %d, want 304", r.Status)
	}
}

func TestVaryVariantsKeptApart(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Add("Vary", "Accept-Language")
		w.Header().Add("Vary", "X-Theme")
		fmt.Fprintf(w, "lang=%s theme=%s", r.Header.Get("Accept-Language"), r.Header.Get("X-Theme"))
	})
	for range 2 {
		if r := h.get("/v/", "Accept-Language: en"); r.Body != "lang=en theme=" {
			t.Fatalf("en = %q", r.Body)
		}
		if r := h.get("/v/", "Accept-Language: fr"); r.Body != "lang=fr theme=" {
			t.Fatalf("fr = %q", r.Body)
		}
		if r := h.get("/v/", "Accept-Language: fr", "X-Theme: dark"); r.Body != "lang=fr theme=dark" {
			t.Fatalf("fr dark = %q", r.Body)
		}
	}
	if n := h.originCount(); n != 3 {
		t.Errorf("origin saw %d, want 3 (one per variant)", n)
	}
}

func TestVaryStarNeverServedFromCache(t *testing.T) {
	h := newHarness(t, page("x", "Cache-Control: max-age=60", "Vary: *"))
	h.get("/star/")
	h.get("/star/")
	if n := h.originCount(); n != 2 {
		t.Errorf("origin saw %d, want 2", n)
	}
}

func TestTrackingParamsAndCookiesDoNotReachOrigin(t *testing.T) {
	h := newHarness(t, page("x", "Cache-Control: max-age=60"))
	h.get("/p/?utm_source=news&b=2&gclid=xyz&a=1&fbclid=f", "Cookie: _ga=GA1; _fbp=fb")
	seen := h.lastSeen()
	if seen.URI != "/p/?a=1&b=2" {
		t.Errorf("origin URI = %q, want /p/?a=1&b=2", seen.URI)
	}
	if c := seen.Header.Get("Cookie"); c != "" {
		t.Errorf("origin Cookie = %q, want none", c)
	}
	wantCacheStatus(t, h.get("/p/?a=1&b=2"), "; hit")
	wantCacheStatus(t, h.get("/p/?b=2&a=1&utm_medium=x"), "; hit")
	if n := h.originCount(); n != 1 {
		t.Errorf("origin saw %d, want 1", n)
	}
}

func TestSchemeAndHostInKey(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(w, "%s://%s", r.Header.Get("X-Forwarded-Proto"), r.Host)
	}, behindTerminator) // the test client is the terminator: its X-Forwarded-Proto counts
	if r := h.get("/"); r.Body != "http://www.example.com" {
		t.Fatalf("http = %q", r.Body)
	}
	if r := h.get("/", "X-Forwarded-Proto: https"); r.Body != "https://www.example.com" {
		t.Errorf("https = %q, want its own copy", r.Body)
	}
	if r := h.get("/", "Host: other.example.com"); r.Body != "http://other.example.com" {
		t.Errorf("other host = %q, want its own copy", r.Body)
	}
}

func TestForwardingHeadersSetByProxy(t *testing.T) {
	h := newHarness(t, page("x", "Cache-Control: max-age=60"))
	h.get("/f/", "X-Forwarded-For: 6.6.6.6", "X-Forwarded-Host: evil.example", "X-Original-URL: /admin",
		"Connection: X-Secret", "X-Secret: 1", "X-HTTP-Method-Override: DELETE")
	seen := h.lastSeen().Header
	if got := seen.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the proxy's view of the client", got)
	}
	if got := seen.Get("X-Forwarded-Host"); got != "www.example.com" {
		t.Errorf("X-Forwarded-Host = %q", got)
	}
	for _, k := range []string{"X-Original-Url", "X-Secret", "X-Http-Method-Override"} {
		if v := seen.Get(k); v != "" {
			t.Errorf("origin got %s: %q, want it stripped", k, v)
		}
	}
	if got := seen.Get("Via"); !strings.Contains(got, "edgevitals") {
		t.Errorf("Via = %q", got)
	}
}

func TestUnknownHost(t *testing.T) {
	h := newHarness(t, page("x"), func(o *Options) { o.Sites[0].Hosts = []string{"www.example.com"} })
	if r := h.get("/", "Host: nobody.example"); r.Status != http.StatusMisdirectedRequest {
		t.Errorf("unknown host = %d, want 421", r.Status)
	}
	if h.originCount() != 0 {
		t.Error("an unknown host reached the origin")
	}
}

func TestUnsafeMethodInvalidates(t *testing.T) {
	var gen atomic.Int64
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			gen.Add(1)
			w.Header().Set("Location", "/list/")
			w.WriteHeader(http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, "gen %d", gen.Load())
	})
	h.get("/item/")
	h.get("/list/")
	if r := h.do(http.MethodPost, "/item/"); r.Status != http.StatusSeeOther {
		t.Fatalf("POST = %d", r.Status)
	}
	if r := h.get("/item/"); r.Body != "gen 1" {
		t.Errorf("target after POST = %q, want gen 1", r.Body)
	}
	if r := h.get("/list/"); r.Body != "gen 1" {
		t.Errorf("Location after POST = %q, want gen 1", r.Body)
	}
}

func TestWordPressBypassPaths(t *testing.T) {
	h := newHarness(t, page("x", "Cache-Control: max-age=60"))
	for _, p := range []string{"/wp-admin/", "/wp-admin/admin-ajax.php", "/wp-login.php", "/?preview=true&p=4", "/cart/", "/checkout/order-received/7/", "/?replytocom=3"} {
		r := h.get(p)
		wantCacheStatus(t, r, "fwd=bypass")
	}
	wantCacheStatus(t, h.get("/wp-json/wp/v2/posts", "X-WP-Nonce: abc"), "fwd=bypass", "detail=header")
	wantCacheStatus(t, h.get("/wp-json/wp/v2/posts", "Authorization: Basic eDp5"), "fwd=bypass", "detail=authorization")
	wantCacheStatus(t, h.get("/cartoon/"), "fwd=uri-miss")
}

func TestSurrogateHeadersStripped(t *testing.T) {
	h := newHarness(t, page("x", "Cache-Control: max-age=60", "Surrogate-Key: post-1 home", "CDN-Cache-Control: max-age=300", "Cache-Tag: t1", "Surrogate-Control: max-age=30"))
	for range 2 {
		r := h.get("/k/")
		for _, k := range []string{"Surrogate-Key", "Cache-Tag", "Surrogate-Control"} {
			if v := r.Header.Get(k); v != "" {
				t.Errorf("client got %s: %q", k, v)
			}
		}
		// RFC 9213 §3: forwarded for the caches in front (see TestCDNCacheControlThroughProxy).
		if v := r.Header.Get("CDN-Cache-Control"); v != "max-age=300" {
			t.Errorf("client got CDN-Cache-Control %q, want it unchanged", v)
		}
	}
	// CDN-Cache-Control (300 s) governs our freshness over Cache-Control (60 s).
	h.clock.Advance(120 * time.Second)
	wantCacheStatus(t, h.get("/k/"), "; hit")
}

func TestLargeBodyStreamsUnstored(t *testing.T) {
	big := strings.Repeat("x", 2<<20) // over MaxObjectBytes (1 MiB)
	h := newHarness(t, page(big, "Cache-Control: max-age=60"))
	for range 2 {
		if r := h.get("/big/"); len(r.Body) != len(big) {
			t.Fatalf("body length %d, want %d", len(r.Body), len(big))
		}
	}
	if n := h.originCount(); n != 2 {
		t.Errorf("origin saw %d, want 2 (too large to store)", n)
	}
}

// TestHitKeepsStoredDate: a hit carries the stored response's Date (with
// Age), not the time it is served (RFC 9111 §4, RFC 9110 §6.6.1).
func TestHitKeepsStoredDate(t *testing.T) {
	h := newHarness(t, page("x", "Cache-Control: max-age=300"))
	first := h.get("/d/")
	h.clock.Advance(10 * time.Second)
	second := h.get("/d/")
	wantCacheStatus(t, second, "; hit")
	if first.Header.Get("Date") == "" || second.Header.Get("Date") != first.Header.Get("Date") {
		t.Errorf("Date on the hit = %q, want the stored %q", second.Header.Get("Date"), first.Header.Get("Date"))
	}
	// Errors and other responses the proxy builds still carry a Date.
	if r := h.get("/__edgevitals/nothing"); r.Status != 404 || r.Header.Get("Date") == "" {
		t.Errorf("a proxy-built answer = %d with Date %q, want 404 with a Date", r.Status, r.Header.Get("Date"))
	}
}

func TestResponseHopByHopAndDate(t *testing.T) {
	h := newHarness(t, page("x", "Cache-Control: max-age=60", "Connection: X-Session-Hint, X-Other", "X-Session-Hint: 1", "X-Other: 2", "X-Kept: 3", "Keep-Alive: timeout=5"))
	for i, want := range []string{"fwd=uri-miss", "; hit"} {
		r := h.get("/hbh/")
		wantCacheStatus(t, r, want)
		for _, k := range []string{"X-Session-Hint", "X-Other", "Keep-Alive"} {
			if v := r.Header.Get(k); v != "" {
				t.Errorf("response %d: %s = %q reached the client", i, k, v)
			}
		}
		if r.Header.Get("X-Kept") != "3" {
			t.Errorf("response %d: X-Kept lost", i)
		}
		if r.Header.Get("Date") == "" {
			t.Errorf("response %d has no Date", i)
		}
	}
}

// TestCacheDeceptionAndVaryCookie: a victim's cookie that is not a session
// cookie of the preset never reaches the origin on a cacheable request, so a
// path-confusion URL (/account.php/style.css) stores the anonymous page, and
// a Vary: Cookie response cannot carry one visitor's page to another.
func TestCacheDeceptionAndVaryCookie(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Cookie")
		who := "anonymous"
		if c, err := r.Cookie("sessionid"); err == nil {
			who = "account of " + c.Value
		}
		fmt.Fprint(w, who)
	})
	victim := h.get("/account.php/style.css", "Cookie: sessionid=VICTIM")
	attacker := h.get("/account.php/style.css")
	for _, r := range []response{victim, attacker} {
		if strings.Contains(r.Body, "VICTIM") {
			t.Fatalf("the victim's page was stored and served: %q", r.Body)
		}
	}
	if got := h.lastSeen().Header.Get("Cookie"); got != "" {
		t.Errorf("origin got Cookie %q on a cacheable request", got)
	}
}
