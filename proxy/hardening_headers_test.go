package proxy

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/edgevitals/edgevitals/cache"
)

// lastValue is what PHP reads of a repeated request field: the last line.
func lastValue(r *http.Request, name string) string {
	vs := r.Header.Values(name)
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// TestRepeatedAcceptEncodingKeyedAsOriginSees: a client that sends
// "Accept-Encoding: gzip" and a second "Accept-Encoding: br" line must not
// store a brotli body under the gzip variant. The origin gets exactly the
// one line the key was built from.
func TestRepeatedAcceptEncodingKeyedAsOriginSees(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Vary", "Accept-Encoding")
		enc := "identity"
		for _, v := range r.Header.Values("Accept-Encoding") {
			if strings.Contains(v, "br") {
				enc = "br"
				break
			}
			if strings.Contains(v, "gzip") {
				enc = "gzip"
			}
		}
		if enc != "identity" {
			w.Header().Set("Content-Encoding", enc)
		}
		fmt.Fprint(w, "body in "+enc)
	})
	h.get("/post/", "Accept-Encoding: gzip", "Accept-Encoding: br")
	if got := h.lastSeen().Header.Values("Accept-Encoding"); !slices.Equal(got, []string{"gzip"}) {
		t.Errorf("origin got Accept-Encoding %q, want exactly [gzip]", got)
	}
	r := h.get("/post/", "Accept-Encoding: gzip")
	if r.Body != "body in gzip" || r.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("gzip-only client got %q (Content-Encoding %q), want the gzip body", r.Body, r.Header.Get("Content-Encoding"))
	}
}

// TestRepeatedForwardedProtoKeyedAsOriginSees: "X-Forwarded-Proto: https"
// then "X-Forwarded-Proto: http", through a trusted terminator, must reach
// the origin as the one line the key's scheme came from: a line left over
// let PHP read another scheme than the key's, and the HTTPS redirect it
// built was served to every HTTPS visitor (a redirect loop for the site).
func TestRepeatedForwardedProtoKeyedAsOriginSees(t *testing.T) {
	trustLoopback := func(o *Options) { o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} }
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		if lastValue(r, "X-Forwarded-Proto") != "https" {
			w.Header().Set("Location", "https://www.example.com"+r.URL.Path)
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		fmt.Fprint(w, "secure page")
	}, trustLoopback)
	h.get("/shop/", "X-Forwarded-Proto: https", "X-Forwarded-Proto: http")
	if got := h.lastSeen().Header.Values("X-Forwarded-Proto"); len(got) != 1 {
		t.Errorf("origin got X-Forwarded-Proto %q, want one line", got)
	}
	r := h.get("/shop/", "X-Forwarded-Proto: https")
	if r.Status != http.StatusOK || r.Body != "secure page" {
		t.Errorf("HTTPS visitor got %d %q, want 200 \"secure page\" (the poisoned redirect was served)", r.Status, r.Body)
	}
	if got := h.lastSeen().Header.Values("X-Forwarded-Proto"); !slices.Equal(got, []string{"https"}) {
		t.Errorf("origin got X-Forwarded-Proto %q, want exactly [https]", got)
	}
}

// TestRepeatedVaryFieldKeyedAsOriginSees: the same class for any field a
// response varies on. The key holds every line, in order, and the origin
// gets exactly those lines in that order, even when the proxy removes other
// fields around them: fasthttp's Del moved the last line into the hole of a
// removed Connection, so PHP (which reads the last line) built its page
// from another line than the key's last one.
func TestRepeatedVaryFieldKeyedAsOriginSees(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Vary", "Accept-Language")
		fmt.Fprint(w, "lang "+lastValue(r, "Accept-Language"))
	})
	raw := "GET /about/ HTTP/1.1\r\nHost: www.example.com\r\nConnection: keep-alive\r\nAccept-Language: en\r\n" +
		"Accept: */*\r\nAccept-Language: fr\r\n\r\n"
	if status, body := rawDo(t, h.addr, raw); status != http.StatusOK || body != "lang fr" {
		t.Errorf("two lines got %d %q, want \"lang fr\"", status, body)
	}
	if got := h.lastSeen().Header.Values("Accept-Language"); !slices.Equal(got, []string{"en", "fr"}) {
		t.Errorf("origin got Accept-Language %q, want [en fr] in that order", got)
	}
	if r := h.get("/about/", "Accept-Language: en"); r.Body != "lang en" {
		t.Errorf("English visitor got %q, want \"lang en\"", r.Body)
	}
	if r := h.get("/about/", "Accept-Language: fr", "Accept-Language: en"); r.Body != "lang en" {
		t.Errorf("lines in the other order got %q, want their own variant \"lang en\"", r.Body)
	}
	// The two-line request in its own order hits its own variant.
	if status, body := rawDo(t, h.addr, raw); status != http.StatusOK || body != "lang fr" {
		t.Errorf("two lines again got %d %q, want \"lang fr\"", status, body)
	}
	if n := h.originCount(); n != 3 {
		t.Errorf("origin saw %d requests, want 3 (one per variant)", n)
	}
}

// TestFieldsTheProxySetsHaveOneLine: every field the proxy sets reaches the
// origin as exactly the proxy's line, whatever copies the client sent, on
// cacheable and on bypassing requests.
func TestFieldsTheProxySetsHaveOneLine(t *testing.T) {
	h := newHarness(t, page("x", "Cache-Control: max-age=600"))
	own := cache.SurrogateName + `="Surrogate/1.0"`
	f := func(method, path string) {
		t.Helper()
		h.do(method, path,
			"Surrogate-Capability: other=\"Surrogate/1.0 ESI/1.0\"", "Surrogate-Capability: edgevitals=\"Surrogate/1.0 ESI/1.0\"",
			"X-Forwarded-For: 10.9.9.9", "X-Forwarded-For: 10.8.8.8",
			"X-Forwarded-Host: evil.example", "X-Forwarded-Host: evil2.example")
		seen := h.lastSeen().Header
		if method == http.MethodGet {
			if got := seen.Values("Surrogate-Capability"); !slices.Equal(got, []string{own}) {
				t.Errorf("%s: origin got Surrogate-Capability %q, want exactly [%s]", method, got, own)
			}
		}
		if got := seen.Values("X-Forwarded-For"); !slices.Equal(got, []string{"127.0.0.1"}) {
			t.Errorf("%s: origin got X-Forwarded-For %q, want exactly [127.0.0.1]", method, got)
		}
		if got := seen.Values("X-Forwarded-Host"); !slices.Equal(got, []string{"www.example.com"}) {
			t.Errorf("%s: origin got X-Forwarded-Host %q, want exactly [www.example.com]", method, got)
		}
	}
	f(http.MethodGet, "/a/")
	f(http.MethodPost, "/b/")
}

// TestEmptyBypassFieldHidesNoSecondLine: a bypass field whose first line is
// empty must not let a second line reach the origin on a cacheable request
// (the bypass rules read the first line): a personal page would be stored.
func TestEmptyBypassFieldHidesNoSecondLine(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, "auth=%q nonce=%q", r.Header.Values("Authorization"), r.Header.Values("X-Wp-Nonce"))
	})
	h.get("/p/", "Authorization:", "Authorization: Basic YWRtaW46YWRtaW4=", "X-WP-Nonce:", "X-WP-Nonce: abc")
	seen := h.lastSeen().Header
	if got := seen.Values("Authorization"); len(got) > 0 {
		t.Errorf("origin got Authorization %q on a cacheable request, want none", got)
	}
	if got := seen.Values("X-Wp-Nonce"); len(got) > 0 {
		t.Errorf("origin got X-WP-Nonce %q on a cacheable request, want none", got)
	}
}

// TestRepeatedQueryOrderReachesOrigin: the origin gets repeated parameters
// in the order the client sent, which is also the order the key holds.
func TestRepeatedQueryOrderReachesOrigin(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprint(w, "page "+r.URL.Query()["page"][len(r.URL.Query()["page"])-1])
	})
	f := func(query, wantURI, wantBody string) {
		t.Helper()
		r := h.get("/list/?" + query)
		if got := h.lastSeen().URI; got != wantURI {
			t.Errorf("?%s: origin got %q, want %q", query, got, wantURI)
		}
		if r.Body != wantBody {
			t.Errorf("?%s: body %q, want %q", query, r.Body, wantBody)
		}
	}
	f("page=5&page=1", "/list/?page=5&page=1", "page 1")
	f("page=1&page=5", "/list/?page=1&page=5", "page 5")
	f("utm_source=x&page=2&a=1&page=3", "/list/?a=1&page=2&page=3", "page 3")
}

// TestPoisonFieldsNeverReachOrigin: every poison field, in its own spelling
// and written with underscores (nginx and PHP file X_Forwarded_Host under
// HTTP_X_FORWARDED_HOST), is removed from cacheable requests; the fields the
// proxy sets are removed in their underscore spelling too. Proxy (httpoxy)
// and Expect are removed from every request.
func TestPoisonFieldsNeverReachOrigin(t *testing.T) {
	h := newHarness(t, page("x", "Cache-Control: max-age=600"))
	// The audit's names, literally, beside the product's list.
	names := append([]string{"CF-Visitor", "X-Forwarded-Protocol", "X-Original-URI", "Proxy", "X-Forwarded-Host"}, poisonHeaders...)
	var cases []string
	for _, n := range append(names, forwardingHeaders...) {
		if u := strings.ReplaceAll(n, "-", "_"); u != n && !slices.Contains(cases, u) {
			cases = append(cases, u)
		}
		if !slices.Contains(forwardingHeaders, n) && !slices.Contains(cases, n) {
			cases = append(cases, n)
		}
	}
	fold := func(k string) string { return strings.ToLower(strings.ReplaceAll(k, "_", "-")) }
	for i, name := range cases {
		t.Run(name, func(t *testing.T) {
			h.get(fmt.Sprintf("/poison/%d/", i), name+": evil")
			for k, vs := range h.lastSeen().Header {
				if fold(k) == fold(name) && slices.Contains(vs, "evil") {
					t.Errorf("origin got %s: %q", k, vs)
				}
			}
		})
	}
	for _, name := range neverForwarded {
		t.Run(name+"/bypass", func(t *testing.T) {
			line := name + ": http://evil.example:3128"
			if name == "Expect" {
				line = "Expect: x-evil"
			}
			h.do(http.MethodPost, "/form/", line)
			if got := h.lastSeen().Header.Values(name); len(got) > 0 {
				t.Errorf("origin got %s %q on a POST, want none", name, got)
			}
		})
	}
}

// TestPoisonNamesFit: isPoison looks names up in a fixed buffer.
func TestPoisonNamesFit(t *testing.T) {
	for _, n := range append(append(poisonHeaders, forwardingHeaders...), absentFields...) {
		if len(n) > maxFieldName || len(n) < 5 {
			t.Errorf("%q: %d bytes, isPoison reads 5 to %d", n, len(n), maxFieldName)
		}
	}
	for _, n := range poisonHeaders {
		if !isPoison([]byte(n)) || !isPoison([]byte(strings.ReplaceAll(n, "-", "_"))) {
			t.Errorf("isPoison(%q) = false, or for its underscore spelling", n)
		}
	}
	for _, n := range forwardingHeaders {
		if isPoison([]byte(n)) && !slices.Contains(poisonHeaders, n) || !isPoison([]byte(strings.ReplaceAll(n, "-", "_"))) {
			t.Errorf("isPoison(%q) = true, or false for its underscore spelling", n)
		}
	}
	if len(absentFields) > maxAbsentFields {
		t.Errorf("%d absent fields, normalizeCacheable judges %d", len(absentFields), maxAbsentFields)
	}
	for _, n := range absentFields {
		if !isField(absentSet, []byte(n)) || isPoison([]byte(n)) {
			t.Errorf("%q: not an absent field, or poison", n)
		}
	}
}

// TestPoisonRemovalKeepsLineOrder: removing a poison field must not reorder
// the lines of another repeated field. fasthttp's Del moves the last field
// into the hole, and X-Forwarded-For is read right to left: the real client
// behind a trusted terminator was then taken from the wrong line.
func TestPoisonRemovalKeepsLineOrder(t *testing.T) {
	h := newHarness(t, page("x", "Cache-Control: max-age=600"), func(o *Options) {
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	// Sent in name order: Forwarded (poison) comes before both lines.
	h.get("/order/", "Forwarded: for=192.0.2.66", "X-Forwarded-For: 198.51.100.1", "X-Forwarded-For: 203.0.113.9")
	if got := h.lastSeen().Header.Values("X-Forwarded-For"); !slices.Equal(got, []string{"203.0.113.9, 127.0.0.1"}) {
		t.Errorf("origin got X-Forwarded-For %q, want [\"203.0.113.9, 127.0.0.1\"] (the last line names the client)", got)
	}
	if got := h.lastSeen().Header.Values("Forwarded"); len(got) > 0 {
		t.Errorf("origin got Forwarded %q", got)
	}
}
