package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/cache"
)

// Behaviours of RFC 9111, RFC 9110 and RFC 9213 seen end to end: a real origin, the proxy, a
// client. Each case sends what the http-tests cache-tests suite sends for it.

// rfcSite makes the harness site a preset "none" one: no default TTL, no stale windows the
// origin did not give, so what the client sees is the RFC's policy alone.
func rfcSite(edit func(s *Site)) func(*Options) {
	return func(o *Options) {
		o.Sites[0].Preset = "none"
		o.Sites[0].Defaults = cache.Defaults{MaxObjectBytes: 1 << 20}
		if edit != nil {
			edit(&o.Sites[0])
		}
	}
}

// fieldsByPath is an origin that answers each path with its own header lines ("Name: value";
// a name given twice is sent as two lines) and the path as the body.
func fieldsByPath(status int, fields map[string][]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for _, line := range fields[r.URL.Path] {
			k, v, _ := strings.Cut(line, ":")
			w.Header()[k] = append(w.Header()[k], strings.TrimSpace(v))
		}
		w.WriteHeader(status)
		fmt.Fprint(w, r.URL.Path)
	}
}

// twice asks for path, moves the clock by pause, asks again, and reports whether the second
// answer came from the cache.
func (h *harness) twice(path string, pause time.Duration, hdr ...string) (first, second response, cached bool) {
	h.t.Helper()
	before := h.originCount()
	first = h.get(path, hdr...)
	h.clock.Advance(pause)
	second = h.get(path)
	return first, second, h.originCount() == before+1
}

// TestAgeFieldThroughProxy: RFC 9111 §5.1, "a cache encountering a message with a list-based
// Age field value SHOULD use the first member of the field value, discarding subsequent ones.
// If the field value (after discarding additional members, as per above) is invalid ..., a
// cache SHOULD ignore the field."
func TestAgeFieldThroughProxy(t *testing.T) {
	cases := []struct {
		name   string
		age    []string // Age lines
		cached bool
	}{
		{"non-numeric", []string{"abc"}, true},
		{"negative", []string{"-7200"}, true},
		{"float", []string{"7200.0"}, true},
		{"parameter", []string{"7200;foo=bar"}, true},
		{"one line 0, old", []string{"0, 7200"}, true},
		{"two lines 0 then old", []string{"0", "7200"}, true},
		{"one line 0, 0", []string{"0, 0"}, true},
		{"two lines 0", []string{"0", "0"}, true},
		{"two lines not old", []string{"3600", "3600"}, true},
		{"one line old, 0", []string{"7200, 0"}, false},
		{"two lines old then 0", []string{"7200", "0"}, false},
		{"old", []string{"7200"}, false},
		{"2^31", []string{"2147483648"}, false},
		{"over 2^31", []string{"2147483649"}, false},
	}
	fields := map[string][]string{}
	for i, c := range cases {
		p := fmt.Sprintf("/age/%d", i)
		fields[p] = []string{"Cache-Control: max-age=3600"}
		if c.name == "two lines not old" {
			fields[p][0] = "Cache-Control: max-age=10000"
		}
		for _, a := range c.age {
			fields[p] = append(fields[p], "Age: "+a)
		}
	}
	h := newHarness(t, fieldsByPath(200, fields), rfcSite(nil))
	for i, c := range cases {
		if _, second, cached := h.twice(fmt.Sprintf("/age/%d", i), time.Second); cached != c.cached {
			t.Errorf("Age %q: reused = %v, want %v (Cache-Status %q)", c.age, cached, c.cached, second.Header.Get("Cache-Status"))
		}
	}
}

// TestExpiresThroughProxy: RFC 9111 §5.3, "A cache recipient MUST interpret invalid date
// formats, especially the value "0", as representing a time in the past"; RFC 9110 §5.6.7
// says which are valid, and a cache matches them case-insensitively (RFC 9111 §4.2).
func TestExpiresThroughProxy(t *testing.T) {
	cases := []struct {
		expires []string // Expires lines
		cached  bool
	}{
		{[]string{"Thu, 18 Aug 2050 02:01:18 GMT"}, true},
		{[]string{"Tue, 19 Jan 2038 14:14:08 GMT"}, true},
		{[]string{"Thursday, 18-Aug-50 02:01:18 GMT"}, true},
		{[]string{"Thu Aug  8 02:01:18 2050"}, true},
		{[]string{"THU, 18 Aug 2050 02:01:18 GMT"}, true},
		{[]string{"Thu, 18 AUG 2050 02:01:18 GMT"}, true},
		{[]string{"Thu, 18 Aug 2050 02:01:18 gMT"}, true},
		{[]string{"Thu, 18 Aug 2050 02:01:18 UTC"}, false},
		{[]string{"Thu, 18 Aug 2050 02:01:18 AEST"}, false},
		{[]string{"Thu, 18 Aug 50 02:01:18 GMT"}, false},
		{[]string{"Thu 18 Aug 2050 02:01:18 GMT"}, false},
		{[]string{"Thu, 18  Aug  2050 02:01:18 GMT"}, false},
		{[]string{"Thu, 18-Aug-2050 02:01:18 GMT"}, false},
		{[]string{"Thu, 18 Aug 2050 02.01.18 GMT"}, false},
		{[]string{"Thu, 18 Aug 2050 2:01:18 GMT"}, false},
		{[]string{"Thu, 18 Aug 2050 02:01:18 GMT", "Thu, 18 Aug 2050 02:01:19 GMT"}, false},
		{[]string{"0"}, false},
	}
	fields := map[string][]string{}
	for i, c := range cases {
		p := fmt.Sprintf("/expires/%d", i)
		for _, e := range c.expires {
			fields[p] = append(fields[p], "Expires: "+e)
		}
	}
	h := newHarness(t, fieldsByPath(200, fields), rfcSite(nil))
	for i, c := range cases {
		if _, second, cached := h.twice(fmt.Sprintf("/expires/%d", i), time.Second); cached != c.cached {
			t.Errorf("Expires %q: reused = %v, want %v (Cache-Status %q)", c.expires, cached, c.cached, second.Header.Get("Cache-Status"))
		}
	}
}

// TestCDNCacheControlThroughProxy: RFC 9213 §2.1, a targeted field that does not parse as a
// Structured Field Dictionary "MUST be ignored by the cache (i.e., it behaves as if the field
// were not present, likely falling back to other cache control mechanisms present)"; and §3,
// "CDN caches that use CDN-Cache-Control will typically forward this header so that
// downstream CDN caches can use it as well".
func TestCDNCacheControlThroughProxy(t *testing.T) {
	cases := []struct {
		fields []string
		pause  time.Duration
		cached bool
	}{
		{[]string{"CDN-Cache-Control: max-age=3600"}, time.Second, true},
		{[]string{"CDN-Cache-Control: max-age=99999999999"}, time.Second, true},
		{[]string{"CDN-Cache-Control: foobar, max-age=3600"}, time.Second, true},
		{[]string{"Cache-Control: no-store", "CDN-Cache-Control: max-age=10000"}, time.Second, true},
		{[]string{"Cache-Control: max-age=1", "CDN-Cache-Control: max-age=3600"}, 2 * time.Second, true},
		{[]string{"Cache-Control: max-age=3600", "CDN-Cache-Control: max-age=1"}, 2 * time.Second, false},
		{[]string{"Cache-Control: max-age=10000", "CDN-Cache-Control: no-store"}, time.Second, false},
		{[]string{"Cache-Control: max-age=10000", "CDN-Cache-Control: private"}, time.Second, false},
		// Invalid fields: Cache-Control decides.
		{[]string{"Cache-Control: no-store", "CDN-Cache-Control: max-age=10000, &&&&&"}, time.Second, false},
		{[]string{"Cache-Control: no-store", `CDN-Cache-Control: max-age="10000"`}, time.Second, false},
		{[]string{"Cache-Control: no-store", "CDN-Cache-Control: max-age=1.5"}, time.Second, false},
		{[]string{"Cache-Control: max-age=1", "CDN-Cache-Control: max-age =100"}, 2 * time.Second, false},
		{[]string{"Cache-Control: max-age=1", "CDN-Cache-Control: max-age= 100"}, 2 * time.Second, false},
		{[]string{"Cache-Control: max-age=100", "CDN-Cache-Control: max-age=-1"}, 2 * time.Second, true},
	}
	fields := map[string][]string{}
	for i, c := range cases {
		fields[fmt.Sprintf("/cdn/%d", i)] = c.fields
	}
	h := newHarness(t, fieldsByPath(200, fields), rfcSite(nil))
	for i, c := range cases {
		if _, second, cached := h.twice(fmt.Sprintf("/cdn/%d", i), c.pause); cached != c.cached {
			t.Errorf("%q: reused = %v, want %v (Cache-Status %q)", c.fields, cached, c.cached, second.Header.Get("Cache-Status"))
		}
	}

	// Forwarded unchanged, from the origin and from the cache; Surrogate-Control is not.
	fwd := []string{"Cache-Control: max-age=10000", "CDN-Cache-Control: foo", "Surrogate-Control: max-age=60"}
	for _, strip := range []bool{false, true} {
		h := newHarness(t, fieldsByPath(200, map[string][]string{"/fwd": fwd}), rfcSite(func(s *Site) { s.StripCDNCacheControl = strip }))
		first, second, cached := h.twice("/fwd", time.Second)
		if !cached {
			t.Fatalf("strip %v: second answer not from the cache", strip)
		}
		for i, r := range []response{first, second} {
			want := "foo"
			if strip {
				want = ""
			}
			if got := strings.Join(r.Header.Values("CDN-Cache-Control"), ", "); got != want {
				t.Errorf("strip_cdn_cache_control = %v, response %d: CDN-Cache-Control = %q, want %q", strip, i, got, want)
			}
			if got := r.Header.Get("Surrogate-Control"); got != "" {
				t.Errorf("response %d: Surrogate-Control = %q reached the client", i, got)
			}
		}
	}
}

// TestStoredFieldsThroughProxy: RFC 9111 §3.1, the connection-specific fields and those the
// Connection lines name are not stored (nor forwarded), and "Header fields that are specific to
// the proxy ... MUST NOT be stored": Proxy-Authenticate, Proxy-Authentication-Info,
// Proxy-Authorization.
func TestStoredFieldsThroughProxy(t *testing.T) {
	fields := []string{
		"Cache-Control: max-age=3600",
		"Connection: a, b", "Connection: X-Third",
		"a: 1", "b: 2", "X-Third: 3", "c: 4",
		"Keep-Alive: timeout=5", "Proxy-Connection: keep-alive", "Te: trailers", "Upgrade: h2c",
		"Proxy-Authenticate: Basic realm=\"p\"", "Proxy-Authentication-Info: nextnonce=\"x\"", "Proxy-Authorization: Basic eDp5",
	}
	h := newHarness(t, fieldsByPath(200, map[string][]string{"/h": fields}), rfcSite(nil))
	first, second, cached := h.twice("/h", time.Second)
	if !cached {
		t.Fatalf("second answer not from the cache: %q", second.Header.Get("Cache-Status"))
	}
	for i, r := range []response{first, second} {
		for _, k := range []string{"A", "B", "X-Third", "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Upgrade", "Proxy-Authenticate", "Proxy-Authentication-Info", "Proxy-Authorization"} {
			if v := r.Header.Values(k); len(v) > 0 {
				t.Errorf("response %d: %s = %q reached the client", i, k, v)
			}
		}
		if r.Header.Get("C") != "4" {
			t.Errorf("response %d: c = %q, want 4", i, r.Header.Get("C"))
		}
	}
}

// TestFresh5xxReused: RFC 9111 §3, any final status may be stored when the response carries
// explicit freshness; only heuristic freshness needs a heuristically cacheable status.
func TestFresh5xxReused(t *testing.T) {
	for _, tc := range []struct {
		status int
		fields []string
		cached bool
	}{
		{500, []string{"Cache-Control: max-age=3600"}, true},
		{503, []string{"Cache-Control: s-maxage=3600"}, true},
		{504, []string{"Expires: Thu, 18 Aug 2050 02:01:18 GMT"}, true},
		{599, []string{"CDN-Cache-Control: max-age=3600"}, true},
		{502, []string{"Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT"}, false},
		{503, nil, false},
	} {
		h := newHarness(t, fieldsByPath(tc.status, map[string][]string{"/e": tc.fields}), rfcSite(nil))
		first, second, cached := h.twice("/e", time.Second)
		if cached != tc.cached || first.Status != tc.status || second.Status != tc.status {
			t.Errorf("%d %q: reused = %v (statuses %d, %d), want %v", tc.status, tc.fields, cached, first.Status, second.Status, tc.cached)
		}
	}
}

// TestAuthorizationReuse: RFC 9111 §3.5, "A shared cache MUST NOT use a cached response to a
// request with an Authorization header field ... to satisfy any subsequent request unless the
// response contains a Cache-Control field with a response directive ... that allows it to be
// stored by a shared cache": public, s-maxage or must-revalidate. The CMS presets still bypass
// every request with Authorization (a logged-in REST or admin call).
func TestAuthorizationReuse(t *testing.T) {
	for _, tc := range []struct {
		cc     string
		cached bool
	}{
		{"max-age=3600, public", true},
		{"s-maxage=3600", true},
		{"max-age=3600, must-revalidate", true},
		{"max-age=3600", false},
		{"max-age=3600, private", false},
	} {
		h := newHarness(t, page("x", "Cache-Control: "+tc.cc), rfcSite(nil))
		first, _, cached := h.twice("/auth", time.Second, "Authorization: FOO")
		if cached != tc.cached {
			t.Errorf("%q: reused = %v, want %v", tc.cc, cached, tc.cached)
		}
		h.mu.Lock()
		got := h.seen[0].Header.Get("Authorization")
		h.mu.Unlock()
		if got != "FOO" {
			t.Errorf("%q: origin got Authorization %q, want FOO", tc.cc, got)
		}
		wantCacheStatus(t, first, "fwd=uri-miss")
	}
	for _, preset := range []string{"wordpress", "drupal"} {
		h := newHarness(t, page("x", "Cache-Control: public, max-age=3600"), func(o *Options) { o.Sites[0].Preset = preset })
		r := h.get("/wp-json/wp/v2/posts", "Authorization: Basic eDp5")
		wantCacheStatus(t, r, "fwd=bypass", "detail=authorization")
		if _, _, cached := h.twice("/wp-json/wp/v2/users/me", time.Second, "Authorization: Basic eDp5"); cached {
			t.Errorf("preset %s: a response to a request with Authorization was reused", preset)
		}
	}
}

// TestHeuristicFreshnessThroughProxy: with site.heuristic_max set, a response without explicit
// freshness is fresh for 10% of its age since Last-Modified (RFC 9111 §4.2.2), capped; only
// for heuristically cacheable statuses (RFC 9110 §15.1) or public responses. Off by default.
func TestHeuristicFreshnessThroughProxy(t *testing.T) {
	dayAgo := func(h *harness) string { return h.clock.Now().Add(-24 * time.Hour).Format(http.TimeFormat) }
	var h *harness
	origin := func(status int, extra ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Last-Modified", dayAgo(h))
			for _, line := range extra {
				k, v, _ := strings.Cut(line, ":")
				w.Header().Set(k, strings.TrimSpace(v))
			}
			w.WriteHeader(status)
			fmt.Fprint(w, "x")
		}
	}
	on := rfcSite(func(s *Site) { s.Defaults.HeuristicMax = time.Hour })
	for _, tc := range []struct {
		status int
		extra  []string
		edit   func(*Options)
		pause  time.Duration
		cached bool
	}{
		{200, nil, on, 30 * time.Minute, true},
		{404, nil, on, 30 * time.Minute, true},
		{599, []string{"Cache-Control: public"}, on, 30 * time.Minute, true},
		{200, nil, on, 61 * time.Minute, false}, // 10% of a day is 2.4 h, capped at 1 h
		{200, nil, rfcSite(nil), time.Second, false},
		{403, nil, on, time.Second, false},
		{503, nil, on, time.Second, false},
		{200, []string{"Cache-Control: max-age=5"}, on, time.Minute, false}, // explicit wins
	} {
		h = newHarness(t, origin(tc.status, tc.extra...), tc.edit)
		_, second, cached := h.twice("/lm", tc.pause)
		if cached != tc.cached {
			t.Errorf("%d %q after %v: reused = %v, want %v (Cache-Status %q)", tc.status, tc.extra, tc.pause, cached, tc.cached, second.Header.Get("Cache-Status"))
		}
		if cached && second.Header.Get("Age") == "" {
			t.Errorf("%d: a heuristically fresh hit without Age", tc.status)
		}
	}
}

// TestIfModifiedSinceDates: a client's If-Modified-Since is read by the same HTTP-date parser
// as the origin's dates: any of the three forms counts (RFC 9110 §5.6.7), and a value that is
// not an HTTP-date is ignored (§13.1.3), so the full response is sent.
func TestIfModifiedSinceDates(t *testing.T) {
	h := newHarness(t, page("x", "Cache-Control: max-age=3600", "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT"), rfcSite(nil))
	h.get("/ims")
	for _, tc := range []struct {
		ims  string
		want int
	}{
		{"Sun, 06 Nov 1994 08:49:37 GMT", 304},
		{"Sunday, 06-Nov-94 08:49:37 GMT", 304},
		{"Sun Nov  6 08:49:37 1994", 304},
		{"SUN, 06 NOV 1994 08:49:37 gmt", 304},
		{"Sun, 06 Nov 1994 08:49:36 GMT", 200},
		{"Sun, 06 Nov 1994 8:49:37 GMT", 200},   // a one-digit hour is no HTTP-date
		{"Sun, 06  Nov 1994 08:49:37 GMT", 200}, // nor are doubled spaces
		{"yesterday", 200},
	} {
		if r := h.get("/ims", "If-Modified-Since: "+tc.ims); r.Status != tc.want {
			t.Errorf("If-Modified-Since %q: status %d, want %d", tc.ims, r.Status, tc.want)
		}
	}
}
