package demo

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// site is a demo origin on a real loopback listener, with the deliberate delays recorded
// instead of slept.
type site struct {
	o      *Origin
	url    string
	mu     sync.Mutex
	delays []time.Duration
}

func start(t *testing.T) *site {
	t.Helper()
	s := &site{o: New(Options{})}
	s.o.wait = func(_ context.Context, d time.Duration) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.delays = append(s.delays, d)
		return nil
	}
	srv := httptest.NewServer(s.o)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *site) waited() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.delays...)
}

// do sends one request without following redirects and returns the response and its body.
func (s *site) do(t *testing.T, method, path string, hdr http.Header, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.url+path, body)
	if err != nil {
		t.Fatalf("new request %s %s: %v", method, path, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s %s: %v", method, path, err)
	}
	return resp, string(b)
}

func cookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

const absent = "<absent>"

func TestPages(t *testing.T) {
	s := start(t)
	a3, a4 := articles[2], articles[3] // article 3 also sends Cache-Tag, 4 does not
	tests := []struct {
		method, path string
		status       int
		headers      map[string]string // absent: the header must not be sent
		body         string
	}{
		{"GET", "/", 200, map[string]string{"Cache-Control": absent, "Surrogate-Key": "home",
			"Content-Type": "text/html; charset=UTF-8"}, "<nav>"},
		{"HEAD", "/", 200, map[string]string{"Surrogate-Key": "home"}, ""},
		{"GET", a3.URL(), 200, map[string]string{"Cache-Control": absent, "Surrogate-Key": "post-3 term-" + a3.Cat.Slug,
			"Cache-Tag": "post-3,term-" + a3.Cat.Slug, "Set-Cookie": absent}, `src="/wp-content/uploads/3.png"`},
		{"GET", a4.URL(), 200, map[string]string{"Surrogate-Key": "post-4 term-" + a4.Cat.Slug, "Cache-Tag": absent}, html.EscapeString(a4.Title)},
		{"GET", strings.TrimSuffix(a3.URL(), "/") + "?utm_source=x", 301, map[string]string{"Location": a3.URL() + "?utm_source=x"}, ""},
		{"GET", "/articles/no-such-post/", 404, map[string]string{"Cache-Control": ccNoCache}, "Page not found"},
		{"GET", "/category/beans/", 200, map[string]string{"Surrogate-Key": "term-beans", "Cache-Control": absent}, "Category: Beans"},
		{"GET", "/category/tea/", 404, nil, "Page not found"},
		{"GET", "/feed/", 200, map[string]string{"Content-Type": "application/rss+xml; charset=UTF-8", "Surrogate-Key": "feed"}, `<rss version="2.0">`},
		{"GET", "/wp-content/uploads/3.png", 200, map[string]string{"Content-Type": "image/png", "Cache-Control": ccImmutable}, "\x89PNG"},
		{"GET", "/wp-content/uploads/3-400x210.png", 200, map[string]string{"Cache-Control": ccImmutable}, "\x89PNG"},
		{"GET", "/wp-content/uploads/1-150x150.png", 200, map[string]string{"Content-Type": "image/png"}, "\x89PNG"},
		{"GET", "/wp-content/uploads/51.png", 404, nil, ""},
		{"GET", "/wp-content/uploads/03.png", 404, nil, ""},
		{"GET", "/wp-content/uploads/3-999x999.png", 404, nil, ""},
		{"GET", "/cart/", 200, map[string]string{"Cache-Control": ccNoStore, "Set-Cookie": "woocommerce_items_in_cart=1; Path=/"}, "House Blend"},
		{"GET", "/checkout/", 200, map[string]string{"Cache-Control": ccNoStore}, `action="/checkout/"`},
		{"GET", "/?s=espresso", 200, map[string]string{"Cache-Control": ccNoCache, "Surrogate-Key": absent}, "Espresso at Home"},
		{"GET", "/?s=%3Cscript%3E", 200, nil, "&lt;script&gt;"},
		{"GET", "/wp-json/wp/v2/posts?per_page=5&page=2", 200, map[string]string{"Content-Type": "application/json; charset=UTF-8",
			"X-WP-Total": "50", "X-WP-TotalPages": "10", "Vary": "Origin"}, `"id":45,`},
		{"GET", "/wp-json/wp/v2/posts?per_page=0", 400, nil, "rest_invalid_param"},
		{"GET", "/slow/", 200, map[string]string{"Cache-Control": absent, "Surrogate-Key": "slow"}, "slow page"},
		{"GET", "/wp-login.php", 200, map[string]string{"Cache-Control": ccPrivate}, `name="log"`},
		{"GET", "/wp-admin/", 302, map[string]string{"Cache-Control": ccPrivate, "Location": "/wp-login.php?redirect_to=%2Fwp-admin%2F&reauth=1"}, ""},
		{"GET", "/__demo/", 200, map[string]string{"Cache-Control": ccNoStore}, "Ship a bad release"},
		{"GET", "/__demo", 301, map[string]string{"Location": "/__demo/"}, ""},
		{"POST", "/", 405, map[string]string{"Allow": "GET, HEAD"}, ""},
		{"GET", "/no/such/page", 404, map[string]string{"Cache-Control": ccNoCache}, "Page not found"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := s.do(t, tt.method, tt.path, nil, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("X-Release"); got != "v1" {
				t.Errorf("X-Release = %q, want %q", got, "v1")
			}
			if got := resp.Header.Get("Server-Timing"); !strings.HasPrefix(got, "app;dur=") {
				t.Errorf("Server-Timing = %q, want app;dur=...", got)
			}
			for k, want := range tt.headers {
				got, sent := resp.Header.Get(k), len(resp.Header.Values(k)) > 0
				if want == absent && sent || want != absent && got != want {
					t.Errorf("%s = %q (sent %v), want %q", k, got, sent, want)
				}
			}
			if !strings.Contains(body, tt.body) {
				t.Errorf("body does not contain %q:\n%.300s", tt.body, body)
			}
		})
	}
	if got, want := s.waited(), []time.Duration{slowPage}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("delays = %v, want %v (the slow page only, nothing on a good release)", got, want)
	}
}

func TestConditionalRequests(t *testing.T) {
	s := start(t)
	for _, path := range []string{"/", articles[0].URL(), "/category/gear/", "/feed/", "/wp-content/uploads/3.png"} {
		t.Run(path, func(t *testing.T) {
			resp, _ := s.do(t, "GET", path, nil, nil)
			etag, mod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
			if etag == "" || mod == "" {
				t.Fatalf("ETag = %q, Last-Modified = %q, want both", etag, mod)
			}
			for _, h := range []http.Header{{"If-None-Match": {etag}}, {"If-None-Match": {`"other", ` + etag}}, {"If-Modified-Since": {mod}}} {
				if resp, body := s.do(t, "GET", path, h, nil); resp.StatusCode != 304 || body != "" {
					t.Errorf("with %v: status %d, body %d bytes, want 304 and none", h, resp.StatusCode, len(body))
				}
			}
			if resp, _ := s.do(t, "GET", path, http.Header{"If-None-Match": {`"stale"`}}, nil); resp.StatusCode != 200 {
				t.Errorf("with a stale ETag: status %d, want 200", resp.StatusCode)
			}
		})
	}
}

// A new release changes every page, so validators from the previous one must not match.
func TestReleaseInvalidatesValidators(t *testing.T) {
	s := start(t)
	before, _ := s.do(t, "GET", "/", nil, nil)
	s.o.SetRelease("v2", false)
	after, _ := s.do(t, "GET", "/", nil, nil)
	if after.Header.Get("ETag") == before.Header.Get("ETag") {
		t.Errorf("ETag stayed %q across releases", after.Header.Get("ETag"))
	}
	old, _ := http.ParseTime(before.Header.Get("Last-Modified"))
	cur, _ := http.ParseTime(after.Header.Get("Last-Modified"))
	if !cur.After(old) {
		t.Errorf("Last-Modified = %v, want after %v", cur, old)
	}
	if resp, _ := s.do(t, "GET", "/", http.Header{"If-Modified-Since": {before.Header.Get("Last-Modified")}}, nil); resp.StatusCode != 200 {
		t.Errorf("If-Modified-Since of the old release: status %d, want 200", resp.StatusCode)
	}
}

func TestLoginFlow(t *testing.T) {
	s := start(t)
	anon, anonBody := s.do(t, "GET", "/", nil, nil)
	if strings.Contains(anonBody, "Hello, demo") {
		t.Fatal("anonymous home page greets a user")
	}
	resp, _ := s.do(t, "POST", "/wp-login.php", nil, url.Values{"log": {"demo"}, "pwd": {"demo"}})
	session := cookie(resp, "wordpress_logged_in_"+cookieHash)
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/wp-admin/" || session == nil || session.Value != "demo" {
		t.Fatalf("login: status %d, Location %q, cookies %v; want 302 to /wp-admin/ with wordpress_logged_in_%s=demo",
			resp.StatusCode, resp.Header.Get("Location"), resp.Cookies(), cookieHash)
	}
	withSession := http.Header{"Cookie": {session.Name + "=" + session.Value}}

	resp, body := s.do(t, "GET", "/wp-admin/", withSession, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != ccPrivate || !strings.Contains(body, "Hello, demo") {
		t.Errorf("wp-admin with session: status %d, Cache-Control %q; want 200, %q, a greeting", resp.StatusCode, resp.Header.Get("Cache-Control"), ccPrivate)
	}
	// The personal page carries the same cache headers as the public one: only the request
	// cookie tells them apart, which is why the proxy must bypass on it.
	resp, body = s.do(t, "GET", "/", withSession, nil)
	if !strings.Contains(body, "Hello, demo") {
		t.Error("home page with session does not greet the user")
	}
	for _, h := range []string{"Cache-Control", "Surrogate-Key", "Set-Cookie"} {
		if got, want := resp.Header.Get(h), anon.Header.Get(h); got != want {
			t.Errorf("%s with session = %q, want %q as for anonymous", h, got, want)
		}
	}

	resp, _ = s.do(t, "POST", "/wp-login.php", nil, url.Values{"log": {"demo"}, "redirect_to": {"//evil.example/"}})
	if got := resp.Header.Get("Location"); got != "/wp-admin/" {
		t.Errorf("login to a foreign redirect_to: Location = %q, want /wp-admin/", got)
	}
	resp, _ = s.do(t, "GET", "/wp-login.php?action=logout", withSession, nil)
	if c := cookie(resp, session.Name); resp.StatusCode != 302 || c == nil || c.MaxAge >= 0 {
		t.Errorf("logout: status %d, session cookie %v; want 302 expiring it", resp.StatusCode, c)
	}
}

func TestCheckoutFlow(t *testing.T) {
	s := start(t)
	for _, want := range []string{"/checkout/order-received/1001/", "/checkout/order-received/1002/"} {
		resp, _ := s.do(t, "POST", "/checkout/", nil, url.Values{"billing_name": {"Ada"}})
		if resp.StatusCode != 303 || resp.Header.Get("Location") != want {
			t.Fatalf("place order: status %d, Location %q; want 303 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
		resp, body := s.do(t, "GET", want, nil, nil)
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != ccNoStore || !strings.Contains(body, "Thank you") {
			t.Errorf("thank-you page: status %d, Cache-Control %q; want 200, %q", resp.StatusCode, resp.Header.Get("Cache-Control"), ccNoStore)
		}
	}
	for _, path := range []string{"/checkout/order-received/abc/", "/checkout/order-received/0/", "/checkout/order-received/01/"} {
		if resp, _ := s.do(t, "GET", path, nil, nil); resp.StatusCode != 404 {
			t.Errorf("GET %s: status %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestReleaseRegressions(t *testing.T) {
	a := articles[2]
	tests := []struct {
		name     string
		bad      bool
		heroURL  string
		heroCC   string
		delays   []time.Duration
		abCookie bool
	}{
		{"good", false, a.Hero(), ccImmutable, nil, false},
		{"bad", true, a.Hero() + "?ver=v2", "no-cache", []time.Duration{lateHero}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t)
			s.o.SetRelease("v2", tt.bad)
			if id, bad := s.o.Release(); id != "v2" || bad != tt.bad {
				t.Fatalf("Release() = %q, %v; want v2, %v", id, bad, tt.bad)
			}
			resp, body := s.do(t, "GET", a.URL(), nil, nil)
			if got := resp.Header.Get("X-Release"); got != "v2" {
				t.Errorf("X-Release = %q, want v2", got)
			}
			if got := strings.Contains(body, `<script id="ab-test-bootstrap">`); got != tt.bad {
				t.Errorf("blocking script present = %v, want %v", got, tt.bad)
			}
			if head, _, _ := strings.Cut(body, "</head>"); tt.bad && !strings.Contains(head, "ab-test-bootstrap") {
				t.Error("blocking script is not in <head>")
			}
			if !strings.Contains(body, `src="`+tt.heroURL+`"`) {
				t.Errorf("hero is not %q", tt.heroURL)
			}
			if got := cookie(resp, "demo_ab") != nil; got != tt.abCookie {
				t.Errorf("Set-Cookie demo_ab sent = %v, want %v", got, tt.abCookie)
			}
			resp, _ = s.do(t, "GET", tt.heroURL, nil, nil)
			if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != tt.heroCC {
				t.Errorf("hero: status %d, Cache-Control %q; want 200, %q", resp.StatusCode, resp.Header.Get("Cache-Control"), tt.heroCC)
			}
			s.do(t, "GET", a.Thumb(), nil, nil) // thumbnails are never late
			if got := s.waited(); len(got) != len(tt.delays) || len(got) == 1 && got[0] != tt.delays[0] {
				t.Errorf("delays = %v, want %v", got, tt.delays)
			}
		})
	}
}

func TestReleaseControl(t *testing.T) {
	s := start(t)
	var mu sync.Mutex
	var shipped []string
	s.o.hook = func(id string, bad bool) {
		mu.Lock()
		defer mu.Unlock()
		shipped = append(shipped, id+"/"+strconv.FormatBool(bad))
	}
	tests := []struct {
		name, query string
		form        url.Values
		accept      string
		status      int
		wantID      string
		wantBad     bool
	}{
		{"query", "?id=v2&bad=1", nil, "", 200, "v2", true},
		{"form from the panel", "", url.Values{"bad": {"0"}}, "text/html", 303, "v3", false},
		{"invalid id", "?id=a%20b", nil, "", 400, "v3", false},
		{"invalid bad", "?id=v9&bad=maybe", nil, "", 400, "v3", false},
		{"named release", "?id=2026.05.01-rc_1&bad=true", nil, "", 200, "2026.05.01-rc_1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := s.do(t, "POST", "/__demo/release"+tt.query, http.Header{"Accept": {tt.accept}}, tt.form)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			if id, bad := s.o.Release(); id != tt.wantID || bad != tt.wantBad {
				t.Errorf("Release() = %q, %v; want %q, %v", id, bad, tt.wantID, tt.wantBad)
			}
			if tt.status != 200 {
				return
			}
			var got struct {
				ID  string `json:"id"`
				Bad bool   `json:"bad"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil || got.ID != tt.wantID || got.Bad != tt.wantBad {
				t.Errorf("body = %s (%v), want id %q bad %v", body, err, tt.wantID, tt.wantBad)
			}
		})
	}
	if resp, _ := s.do(t, "GET", "/", nil, nil); resp.Header.Get("X-Release") != "2026.05.01-rc_1" {
		t.Errorf("X-Release = %q after the switch", resp.Header.Get("X-Release"))
	}
	mu.Lock()
	defer mu.Unlock()
	if got, want := strings.Join(shipped, " "), "v2/true v3/false 2026.05.01-rc_1/true"; got != want {
		t.Errorf("OnRelease calls = %q, want %q", got, want)
	}
	if got := s.o.Requests(); got != 1 {
		t.Errorf("Requests() = %d, want 1 (the control panel is not site traffic)", got)
	}
}

func TestSetReleaseSanitizes(t *testing.T) {
	var hooked string
	o := New(Options{OnRelease: func(id string, _ bool) { hooked = id }})
	f := func(in, want string) {
		t.Helper()
		o.SetRelease(in, false)
		if got, _ := o.Release(); got != want || hooked != want {
			t.Errorf("SetRelease(%q): Release() = %q, OnRelease got %q, want %q", in, got, hooked, want)
		}
	}
	f("v2", "v2")
	f("", "unnamed")
	f("v3\r\nSet-Cookie: x=1", "v3--Set-Cookie--x-1")
	f(strings.Repeat("a", 80), strings.Repeat("a", 64))
}

func TestImagesRenderOnce(t *testing.T) {
	s := start(t)
	var wg sync.WaitGroup
	bodies := make([]string, 8)
	for i := range bodies {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", s.url+"/wp-content/uploads/9.png", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return // left empty: reported below
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			bodies[i] = string(b)
		})
	}
	wg.Wait()
	for i, b := range bodies {
		if b == "" || b != bodies[0] {
			t.Errorf("request %d got %d bytes, want the same %d as request 0", i, len(b), len(bodies[0]))
		}
	}
	first, err1 := uploads.get(9, "")
	again, err2 := uploads.get(9, "")
	if err1 != nil || err2 != nil || string(first) != bodies[0] || &first[0] != &again[0] {
		t.Errorf("uploads.get(9) twice: %v, %v; want the kept copy that was served, not a new render", err1, err2)
	}
}

func FuzzParseImageName(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string) {
		n, size, ok := parseImageName(name)
		if !ok {
			return
		}
		canonical := articles[n-1].Hero()
		if size != "" {
			canonical = strings.TrimSuffix(canonical, ".png") + "-" + size + ".png"
		}
		if "/wp-content/uploads/"+name != canonical {
			t.Errorf("parseImageName(%q) = %d, %q: not the canonical name %q", name, n, size, canonical)
		}
	})
}

// FuzzServeHTTP: no URL or cookie from a visitor makes the origin fail or drop X-Release.
func FuzzServeHTTP(f *testing.F) {
	o := New(Options{})
	o.wait = func(context.Context, time.Duration) error { return nil }
	f.Fuzz(func(t *testing.T, method, target, cookies string) {
		req, err := http.NewRequest(method, "http://demo.test"+target, strings.NewReader("a=b"))
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Cookie", cookies)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		o.ServeHTTP(w, req)
		if w.Code >= 500 || w.Header().Get("X-Release") == "" {
			t.Errorf("%s %q: status %d, X-Release %q", method, target, w.Code, w.Header().Get("X-Release"))
		}
	})
}
