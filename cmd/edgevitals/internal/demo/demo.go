// Package demo is the built-in origin of `edgevitals demo`: a small WordPress-like coffee blog
// and shop that answers with the URLs, headers and cookies a real WordPress + WooCommerce site
// sends, with a switch that ships a good or a bad release for the release report to judge.
package demo

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Header values as WordPress and WooCommerce send them.
const (
	ccImmutable = "public, max-age=31536000, immutable"
	ccNoStore   = "no-store, private"
	ccNoCache   = "no-cache, must-revalidate, max-age=0"
	ccPrivate   = "no-cache, must-revalidate, max-age=0, private"
)

// Delays of the pages that are slow on purpose.
const (
	slowPage = 500 * time.Millisecond
	lateHero = 800 * time.Millisecond
)

// cookieHash plays WordPress' COOKIEHASH (an md5 of the site URL) in session cookie names.
var cookieHash = fmt.Sprintf("%x", md5.Sum([]byte("http://edgevitals.demo")))

// imagesModified is the Last-Modified of every upload: images never change.
var imagesModified = time.Date(2025, 1, 6, 9, 30, 0, 0, time.UTC)

// Options configures an Origin.
type Options struct {
	Logger *slog.Logger // nil: no logging
	// OnRelease, if set, is called after every release switch (SetRelease or the HTTP
	// control), synchronously and outside any lock. Pages a cache already holds keep the
	// old release until they expire, so the demo wiring purges the site here, as a deploy
	// pipeline would.
	OnRelease func(id string, bad bool)
}

// Origin is the demo CMS. It is an http.Handler, safe for concurrent use.
type Origin struct {
	log    *slog.Logger
	hook   func(id string, bad bool)
	mux    *http.ServeMux
	served atomic.Int64
	orders atomic.Int64
	mu     sync.Mutex // serializes release switches
	rel    atomic.Pointer[release]
	// wait pauses a response for the slow page and the late hero; tests replace it to record
	// the delay instead of sleeping. It returns early with an error when ctx ends.
	wait func(ctx context.Context, d time.Duration) error
}

type release struct {
	id  string
	bad bool
	at  time.Time // Last-Modified of pages rendered under this release
	seq int
}

type releaseKey struct{}

// New returns an origin on release "v1" (good).
func New(o Options) *Origin {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Origin{log: log, hook: o.OnRelease, mux: http.NewServeMux(), wait: sleep}
	d.orders.Store(1000)
	d.rel.Store(&release{id: "v1", at: time.Now().UTC().Truncate(time.Second), seq: 1})
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /{$}":                                 d.home,
		"GET /articles/{slug}/{$}":                 d.article,
		"GET /category/{cat}/{$}":                  d.category,
		"GET /feed/{$}":                            d.feed,
		"GET /wp-content/uploads/{file}":           d.image,
		"GET /wp-json/wp/v2/posts":                 d.posts,
		"GET /slow/{$}":                            d.slow,
		"GET /cart/{$}":                            d.cart,
		"GET /checkout/{$}":                        d.checkout,
		"POST /checkout/{$}":                       d.placeOrder,
		"GET /checkout/order-received/{order}/{$}": d.orderReceived,
		"GET /wp-login.php":                        d.loginForm,
		"POST /wp-login.php":                       d.login,
		"GET /wp-admin/{$}":                        d.admin,
		"GET /__demo/{$}":                          d.panel,
		"GET /__demo/release":                      d.getRelease,
		"POST /__demo/release":                     d.postRelease,
		"GET /":                                    d.notFound,
	} {
		d.mux.HandleFunc(pattern, h)
	}
	return d
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ServeHTTP answers one request. Every response carries X-Release and a Server-Timing of
// the time the origin spent on it.
func (o *Origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/__demo") {
		o.served.Add(1)
	}
	rel := o.rel.Load()
	w.Header().Set("X-Release", rel.id)
	tw := &timedWriter{ResponseWriter: w, start: time.Now()}
	if to, ok := o.canonical(r); ok {
		http.Redirect(tw, r, to, http.StatusMovedPermanently)
		return
	}
	o.mux.ServeHTTP(tw, r.WithContext(context.WithValue(r.Context(), releaseKey{}, rel)))
}

// canonical is WordPress' canonical redirect: a page URL without its trailing slash moves
// permanently to the one with it (ServeMux alone would answer 307, which caches do not keep).
func (o *Origin) canonical(r *http.Request) (string, bool) {
	p := r.URL.Path
	if r.Method != http.MethodGet && r.Method != http.MethodHead || strings.HasSuffix(p, "/") ||
		strings.Contains(p[strings.LastIndexByte(p, '/')+1:], ".") {
		return "", false
	}
	u := *r.URL
	u.Path, u.RawPath = p+"/", ""
	if _, pattern := o.mux.Handler(&http.Request{Method: r.Method, URL: &u, Host: r.Host}); !strings.HasSuffix(pattern, "{$}") {
		return "", false
	}
	return u.RequestURI(), true
}

// Requests returns how many site requests the origin has served (control panel excluded).
func (o *Origin) Requests() int64 { return o.served.Load() }

// SetRelease makes id the current release; bad switches its three regressions on: a blocking
// script in <head>, a hero image served 800 ms late, and a Set-Cookie on every article.
// Characters other than letters, digits, '.', '_' and '-' become '-', and id is cut to 64
// bytes, since it travels in the X-Release header.
func (o *Origin) SetRelease(id string, bad bool) {
	id = sanitizeID(id)
	o.mu.Lock()
	prev := o.rel.Load()
	at := time.Now().UTC().Truncate(time.Second)
	if !at.After(prev.at) {
		at = prev.at.Add(time.Second) // a newer release always has a newer Last-Modified
	}
	o.rel.Store(&release{id: id, bad: bad, at: at, seq: prev.seq + 1})
	o.mu.Unlock()
	o.log.Info("demo release shipped", "release", id, "bad", bad)
	if o.hook != nil {
		o.hook(id, bad)
	}
}

// Release returns the current release and whether it is a bad one.
func (o *Origin) Release() (id string, bad bool) {
	rel := o.rel.Load()
	return rel.id, rel.bad
}

func validID(id string) bool { return id != "" && sanitizeID(id) == id }

func sanitizeID(id string) string {
	if len(id) > 64 {
		id = id[:64]
	}
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "unnamed"
	}
	return string(b)
}

func releaseOf(r *http.Request) *release {
	if rel, ok := r.Context().Value(releaseKey{}).(*release); ok {
		return rel
	}
	return &release{id: "v1"}
}

// timedWriter adds Server-Timing when the status line is written, so the figure covers all
// the work the origin did before answering.
type timedWriter struct {
	http.ResponseWriter
	start time.Time
	wrote bool
}

func (t *timedWriter) WriteHeader(code int) {
	if !t.wrote {
		t.wrote = true
		ms := float64(time.Since(t.start).Microseconds()) / 1000
		t.Header().Set("Server-Timing", `app;dur=`+strconv.FormatFloat(ms, 'f', 1, 64)+`;desc="origin"`)
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *timedWriter) Write(b []byte) (int, error) {
	if !t.wrote {
		t.WriteHeader(http.StatusOK)
	}
	return t.ResponseWriter.Write(b)
}

func (t *timedWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// newPage fills what the layout needs; User is set when a WordPress session cookie is present.
func newPage(r *http.Request, title string) *page {
	rel := releaseOf(r)
	p := &page{Title: title, Release: rel.id, Bad: rel.bad, Cats: categories}
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, "wordpress_logged_in_") && c.Value != "" {
			p.User = "demo"
		}
	}
	return p
}

// render executes a page template; on failure it answers 500 and returns false.
func (o *Origin) render(w http.ResponseWriter, name string, p *page) ([]byte, bool) {
	var buf bytes.Buffer
	if err := templates[name].Execute(&buf, p); err != nil {
		o.fail(w, "render page "+name, err)
		return nil, false
	}
	return buf.Bytes(), true
}

// fail logs an error of the demo itself and answers 500 without its details.
func (o *Origin) fail(w http.ResponseWriter, what string, err error) {
	o.log.Error("demo origin: "+what, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// parseForm reads a small urlencoded form; on failure it answers 400 and returns false.
func parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// validated answers with ETag and Last-Modified, and 304 to a matching conditional request.
func validated(w http.ResponseWriter, r *http.Request, ctype string, body []byte, mod time.Time) {
	sum := sha256.Sum256(body)
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
	http.ServeContent(w, r, "", mod, bytes.NewReader(body))
}

func send(w http.ResponseWriter, r *http.Request, status int, ctype string, body []byte) {
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body) // the client went away: nothing left to tell it
	}
}

const htmlType = "text/html; charset=UTF-8"

// cacheablePage renders a public page the way WordPress does: no Cache-Control (the proxy's
// preset supplies the TTL), validators, and surrogate keys for purges.
func (o *Origin) cacheablePage(w http.ResponseWriter, r *http.Request, name string, p *page, keys string) {
	body, ok := o.render(w, name, p)
	if !ok {
		return
	}
	w.Header().Set("Surrogate-Key", keys)
	validated(w, r, htmlType, body, releaseOf(r).at)
}

func (o *Origin) privatePage(w http.ResponseWriter, r *http.Request, status int, cc, name string, p *page) {
	if body, ok := o.render(w, name, p); ok {
		w.Header().Set("Cache-Control", cc)
		send(w, r, status, htmlType, body)
	}
}
