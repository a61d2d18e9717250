// Package proxy is edgevitals' data plane: the fasthttp server (plain and
// TLS, with certificate files or ACME), routing by Host to a site, the CMS
// bypass rules, the RFC 9111 cache pipeline with coalescing, stale serving
// and edge compression, the origin pools and their health, the purge
// methods, the access log, and the injection of the field-data script.
//
// It hands facts out and reads nothing back: releases seen in origin
// headers go to Options.OnRelease, purges to Options.Fanout, per-site
// counters to whoever calls Snapshot. It imports cache and nothing else of
// edgevitals; the admin listener, the release registry, reports and the
// dashboard are built on top of it.
package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/cache"
)

// Site is one website edgevitals stands in front of.
type Site struct {
	Name          string
	Hosts         []string // exact host names (an optional :port must match too); "*" catches every other host
	Origins       []string // http:// or https:// base URLs
	Preset        string   // "wordpress", "drupal" or "none"
	BypassCookies []string // added to the preset's
	BypassPaths   []string // added to the preset's
	Defaults      cache.Defaults
	Origin        OriginOptions
	ReleaseHeader string // origin response field whose value names the release, "" for none

	TLS SiteTLS // HTTPS redirect and HSTS (tls.go)

	// StripCDNCacheControl withholds CDN-Cache-Control from clients. By default it is
	// forwarded, as RFC 9213 §3 expects, for the CDN or cache in front of edgevitals.
	StripCDNCacheControl bool
	// KeepOnUnsafe keeps stored copies when an unsafe method (POST, PUT,
	// DELETE, PATCH...) to their URL succeeds; false (the default) drops
	// them as RFC 9111 §4.4 says.
	KeepOnUnsafe bool
	// Compress compresses compressible responses the origin sent
	// uncompressed, once as they are stored, as brotli and gzip, and sends
	// each client the best coding it accepts (compress.go). The origin is
	// then asked for identity on the fetches that may be stored. False
	// leaves encoding to the origin (asked for gzip or nothing).
	Compress bool
}

// Options configure a Server. The store, keyer and flight are shared with the
// admin API (purges) and owned by the caller.
type Options struct {
	Sites        []Site
	Store        *cache.Store
	Keyer        *cache.Keyer
	Flight       *cache.Flight
	Metrics      *metrics.Set
	Logger       *slog.Logger
	Clock        func() time.Time // for freshness; nil = time.Now
	DebugHeaders bool             // send Surrogate-Key and Cache-Tag to clients
	PurgeAllow   []netip.Prefix   // who may send PURGE and BAN; nil = loopback only
	RUM          Collector        // field data: inject the beacon script into stored HTML; nil = off
	RUMNonce     bool             // give the script tag the nonce of the page's Content-Security-Policy
	AccessLog    *AccessLog       // one JSON line per request, written at the handler's end; nil = off

	// Fanout passes a purge the proxy applied (a PURGE or BAN from a CMS)
	// on to the other nodes of a fleet and returns the peers that did not
	// take it. It is called on the purging request's goroutine, after the
	// local purge, and its answer is in the response (failed_peers). nil
	// means a single node: no fan-out.
	Fanout func(ctx context.Context, req PurgeRequest) (failed []string)

	// OnRelease is called when an origin response of a site carries, in
	// the site's ReleaseHeader, a value other than the site's current
	// release. It is called on the request's goroutine, so it must return
	// at once (a durable write belongs on a goroutine of its own). The
	// proxy keeps calling it on later such responses until accept is
	// called, from any goroutine: accept makes id the site's current
	// release (the one Server-Timing names to the field script), so a
	// release whose write failed is offered again. nil means releases are
	// not detected from origin headers.
	OnRelease func(site, id string, accept func())

	// OriginBuckets are the upper bounds, in seconds and ascending, of the
	// origin latency counts Snapshot reports (one count per bound, then
	// one above the last). nil counts origin requests in one bucket.
	OriginBuckets []float64

	// TrustedProxies are the proxies in front (TLS terminators, load
	// balancers) whose X-Forwarded-For and X-Forwarded-Proto are believed
	// (clientaddr.go); nil = none, every peer is the client.
	TrustedProxies []netip.Prefix
	// ProxyProtocol requires a PROXY protocol header (v1 or v2) at the start
	// of every connection Serve accepts; its source address is then the peer.
	ProxyProtocol      bool
	ProxyHeaderTimeout time.Duration // how long a connection may take to send it; 0 = 5s
	// Certs are the certificates ServeTLS serves, and the ACME HTTP-01
	// challenges answered on every listener (tls.go); nil = no TLS.
	Certs *Certs

	ReadTimeout    time.Duration // a client's whole request
	WriteTimeout   time.Duration // a client's whole response
	IdleTimeout    time.Duration // keep-alive between requests
	MaxHeaderBytes int           // request line and headers; larger gets 431
	MaxBodyBytes   int           // request body; larger gets 413
	MaxConns       int

	// Bodies on their way through are held in memory up to these budgets,
	// and past them in temporary files (see spool.go), so that neither a
	// client slow to send nor one slow to read holds an origin connection
	// or unbounded memory.
	BodyBufferBytes     int64         // memory of request bodies, all requests together; 0 = 64 MiB
	BodyBufferWait      time.Duration // how long a request body waits for that memory before a 503; 0 = 1s
	ResponseBufferBytes int64         // memory of uncached responses waiting for their clients; 0 = 64 MiB
	TempFileBytes       int64         // disk of temporary files, requests and responses together; 0 = 1 GiB, < 0 = none
	TempDir             string        // where temporary files are made (and at once unlinked); "" = os.TempDir()
}

// Defaults of the body buffers.
const (
	defaultBodyBufferBytes     = 64 << 20
	defaultBodyBufferWait      = time.Second
	defaultResponseBufferBytes = 64 << 20
	defaultTempFileBytes       = 1 << 30
)

// Server is the caching reverse proxy.
type Server struct {
	opt     Options
	clock   func() time.Time
	log     *slog.Logger
	rt      atomic.Pointer[routes] // swapped whole by Reload
	srv     *fasthttp.Server
	store   *cache.Store
	keyer   *cache.Keyer
	flight  *cache.Flight
	panics  *metrics.Counter
	metrics *serverMetrics

	bodies    *spoolBudgets // request bodies
	responses *spoolBudgets // uncached responses relayed to clients
	buffers   bufferMetrics

	bg         sync.WaitGroup // background refreshes, waited for at shutdown
	refreshing sync.Map       // keys with a background refresh starting or running

	warnedForwarded atomic.Bool // the untrusted-terminator warning was logged (clientaddr.go)

	httpsPort atomic.Int32 // of the TLS listener, for redirects (tls.go); 0 = none

	beaconMax int       // RUM.MaxBeaconBytes(), 0 without RUM
	beacons   sync.Pool // buffers of beaconMax+1 bytes, to tell a beacon that is too large
}

// routes are the sites and the hosts they answer for. A reload builds new
// routes and swaps them in whole; requests in flight keep the site they had.
type routes struct {
	hosts map[string]*site
	any   *site // the "*" site, or nil
	sites []*site
}

// sitesNow returns the current sites.
func (s *Server) sitesNow() []*site { return s.rt.Load().sites }

// siteNamed returns the current site called name, or nil.
func (s *Server) siteNamed(name string) *site {
	for _, st := range s.sitesNow() {
		if st.Name == name {
			return st
		}
	}
	return nil
}

// buildRoutes makes routes for sites. Sites of old with the same name keep
// their metrics, their last release and, when their origins are unchanged,
// their origin pool (connections and circuit state).
func (s *Server) buildRoutes(sites []Site, old *routes) (*routes, error) {
	rt := &routes{hosts: map[string]*site{}}
	prev := map[string]*site{}
	if old != nil {
		for _, st := range old.sites {
			prev[st.Name] = st
		}
	}
	var errs []error
	names := map[string]bool{}
	for _, cfg := range sites {
		if names[cfg.Name] {
			errs = append(errs, fmt.Errorf("site %q: name used twice", cfg.Name))
			continue
		}
		names[cfg.Name] = true
		st := &site{Site: cfg}
		var err error
		if st.rules, err = newRules(cfg.Preset, cfg.BypassCookies, cfg.BypassPaths); err != nil {
			errs = append(errs, fmt.Errorf("site %q: %w", cfg.Name, err))
			continue
		}
		if p := prev[cfg.Name]; p != nil && slices.Equal(p.Origins, cfg.Origins) && sameOriginOptions(p.Origin, cfg.Origin) {
			st.pool = p.pool
		} else if st.pool, err = newOriginPool(cfg.Origins, cfg.Origin); err != nil {
			errs = append(errs, fmt.Errorf("site %q: %w", cfg.Name, err))
			continue
		}
		for _, h := range cfg.Hosts {
			h = strings.ToLower(h)
			if h == "*" {
				if rt.any != nil {
					errs = append(errs, fmt.Errorf("site %q: host \"*\" is already taken by site %q", cfg.Name, rt.any.Name))
				}
				rt.any = st
				continue
			}
			if other, dup := rt.hosts[h]; dup {
				errs = append(errs, fmt.Errorf("site %q: host %q is already taken by site %q", cfg.Name, h, other.Name))
			}
			rt.hosts[h] = st
		}
		if p := prev[cfg.Name]; p != nil {
			st.metrics = p.metrics
			st.release.Store(p.release.Load())
		} else {
			st.metrics = newSiteMetrics(s.opt.Metrics, cfg.Name, s.opt.Clock, s.opt.OriginBuckets)
		}
		rt.sites = append(rt.sites, st)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rt, nil
}

// sameOriginOptions compares origin settings; the injected clock is not a setting.
func sameOriginOptions(a, b OriginOptions) bool {
	a.Clock, b.Clock = nil, nil
	return reflect.DeepEqual(a, b)
}

// Reload swaps in a new set of sites (hosts, origins, presets, TTLs, bypass
// rules) without dropping a connection. On error the running sites stay.
// Listeners, cache size and the other server settings need a restart.
func (s *Server) Reload(sites []Site) error {
	old := s.rt.Load()
	rt, err := s.buildRoutes(sites, old)
	if err != nil {
		return err
	}
	s.rt.Store(rt)
	s.registerOriginMetrics()
	// Pools no longer used: let their idle connections go.
	kept := map[*originPool]bool{}
	for _, st := range rt.sites {
		kept[st.pool] = true
	}
	for _, st := range old.sites {
		if !kept[st.pool] {
			st.pool.closeIdle()
		}
	}
	return nil
}

// site is a Site ready to serve.
type site struct {
	Site
	rules   *rules
	pool    *originPool
	metrics *siteMetrics
	release atomic.Pointer[string] // last value of ReleaseHeader recorded (or known) as a release
	timing  atomic.Pointer[serverTimings]
}

// New builds a Server; it checks what config validation cannot (origin URLs
// that parse but cannot be dialled are found at request time).
func New(o Options) (*Server, error) {
	if o.Store == nil || o.Keyer == nil || o.Flight == nil {
		return nil, errors.New("proxy: store, keyer and flight are required")
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.PurgeAllow == nil {
		o.PurgeAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = fasthttp.DefaultMaxRequestBodySize
	}
	if o.BodyBufferBytes <= 0 {
		o.BodyBufferBytes = defaultBodyBufferBytes
	}
	if o.BodyBufferWait <= 0 {
		o.BodyBufferWait = defaultBodyBufferWait
	}
	if o.ResponseBufferBytes <= 0 {
		o.ResponseBufferBytes = defaultResponseBufferBytes
	}
	if o.TempFileBytes == 0 {
		o.TempFileBytes = defaultTempFileBytes
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	o.OriginBuckets = slices.Clone(o.OriginBuckets) // the caller's slice may change
	var disk *budget
	if o.TempFileBytes > 0 {
		disk = newBudget(o.TempFileBytes)
	}
	s := &Server{
		opt: o, clock: o.Clock, log: o.Logger,
		store: o.Store, keyer: o.Keyer, flight: o.Flight,
		panics: o.Metrics.NewCounter("edgevitals_panics_total"),
	}
	if o.RUM != nil {
		s.beaconMax = o.RUM.MaxBeaconBytes()
	}
	s.beacons.New = func() any { b := make([]byte, s.beaconMax+1); return &b }
	s.bodies = &spoolBudgets{dir: o.TempDir, mem: newBudget(o.BodyBufferBytes), disk: disk}
	s.responses = &spoolBudgets{dir: o.TempDir, mem: newBudget(o.ResponseBufferBytes), disk: disk}
	s.registerBufferMetrics(o.Metrics)
	rt, err := s.buildRoutes(o.Sites, nil)
	if err != nil {
		return nil, err
	}
	s.rt.Store(rt)
	s.registerMetrics(o.Metrics)
	s.registerOriginMetrics()
	s.srv = &fasthttp.Server{
		Handler:               s.Handler,
		Name:                  "edgevitals",
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		IdleTimeout:           o.IdleTimeout,
		ReadBufferSize:        o.MaxHeaderBytes,
		MaxRequestBodySize:    o.MaxBodyBytes,
		Concurrency:           o.MaxConns,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		// The proxy sets Date itself (date.go) so that hits carry the stored
		// response's Date; fasthttp's own stamp would replace it. Responses
		// built with ctx.Error are reset and get fasthttp's current Date.
		NoDefaultDate:   true,
		CloseOnShutdown: true,
		ErrorHandler:    s.errorHandler,
		Logger:          fasthttpLogger{o.Logger},
		// Request bodies are streamed: fasthttp reads at most 8 KiB of one
		// before the handler runs, and, streaming, no longer refuses one
		// over MaxRequestBodySize (that only bounds its pre-read):
		// headerReceived refuses by Content-Length, unread, and takeBody
		// counts what a chunked body sends as it reads it into a spool.
		StreamRequestBody: true,
		HeaderReceived:    s.headerReceived,
		ExpectHandler:     s.expect,
		// fasthttp would otherwise read a multipart form (a media upload)
		// itself before the handler runs, up to 16 MiB of it in memory.
		// The proxy forwards forms as bytes; it never parses them.
		DisablePreParseMultipartForm: true,
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown. With ProxyProtocol,
// connections that do not open with a PROXY header are closed unanswered.
func (s *Server) Serve(ln net.Listener) error {
	if s.opt.ProxyProtocol {
		ln = newProxyListener(ln, s.opt.ProxyHeaderTimeout)
	}
	return s.srv.Serve(interimListener{ln})
}

// Shutdown stops accepting, waits for in-flight requests (bounded by ctx),
// then for background refreshes.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.ShutdownWithContext(ctx)
	done := make(chan struct{})
	go func() { s.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

// Handler is the outermost request handler: it recovers from panics (fasthttp
// does not), routes by Host and picks the pipeline.
func (s *Server) Handler(ctx *fasthttp.RequestCtx) {
	if s.opt.AccessLog != nil {
		// Deferred first, so it runs last: after a panic's 500 is set.
		defer s.logAccess(ctx, time.Now())
	}
	defer func() {
		if p := recover(); p != nil {
			s.panics.Inc()
			s.log.Error("panic while serving a request", "panic", p, "stack", string(debug.Stack()))
			ctx.Response.Reset()
			ctx.Error("internal error", fasthttp.StatusInternalServerError)
		}
	}()
	start := time.Now()
	if raw := ctx.Request.Header.RawHeaders(); hasRawField(raw, "transfer-encoding") && hasRawField(raw, "content-length") {
		// Content-Length beside Transfer-Encoding: the framing that
		// request smuggling exploits (RFC 9112 §6.3). Refuse, never forward.
		ctx.SetConnectionClose()
		ctx.Error("bad request: Content-Length with Transfer-Encoding", fasthttp.StatusBadRequest)
		return
	}
	if s.refuseBody(ctx) {
		return
	}
	st := s.route(ctx.Host())
	if st == nil {
		ctx.Error("misdirected request: unknown host", fasthttp.StatusMisdirectedRequest)
		return
	}
	if s.answeredAtEdge(ctx, st) { // ACME challenges, redirects to HTTPS (tls.go)
		return
	}
	defer s.setHSTS(ctx, st)
	switch string(ctx.Method()) {
	case "PURGE", "BAN":
		s.purge(ctx, st)
		return
	}
	path := ctx.URI().Path()
	if bytes.HasPrefix(path, reservedPrefix) {
		s.serveReserved(ctx, st, path)
		return
	}
	if d := st.rules.check(&ctx.Request, path); d != bypassNone {
		if !s.takeBody(ctx) {
			return
		}
		s.bypass(ctx, st, d, start)
		return
	}
	s.cached(ctx, st, path, start)
}

// reservedPrefix is the same-origin path edgevitals keeps for itself
// (beacons, the field measurement script); it never reaches the origin.
var reservedPrefix = []byte("/__edgevitals/")

// route finds the site for a Host header: exact match (with the port, then
// without it), then the catch-all. It does not allocate.
func (s *Server) route(host []byte) *site {
	var buf [256]byte
	if len(host) > len(buf) {
		return nil
	}
	h := buf[:len(host)]
	for i, c := range host {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h[i] = c
	}
	rt := s.rt.Load()
	if st, ok := rt.hosts[string(h)]; ok {
		return st
	}
	if i := bytes.LastIndexByte(h, ':'); i > 0 && bytes.IndexByte(h[i:], ']') < 0 {
		if st, ok := rt.hosts[string(h[:i])]; ok {
			return st
		}
	}
	if len(host) == 0 {
		return nil
	}
	return rt.any
}

// errorHandler answers requests fasthttp could not parse; none reaches an origin.
func (s *Server) errorHandler(ctx *fasthttp.RequestCtx, err error) {
	var tooBig *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &tooBig):
		ctx.Error("request header fields too large", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.Error("request body too large", fasthttp.StatusRequestEntityTooLarge)
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			ctx.Error("request timeout", fasthttp.StatusRequestTimeout)
			return
		}
		ctx.Error("bad request", fasthttp.StatusBadRequest)
	}
}

// fasthttpLogger sends fasthttp's own messages to slog at debug level: they
// are per-connection noise (client resets) on a busy edge.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug(fmt.Sprintf(format, args...), "component", "fasthttp")
}

// hasRawField reports whether raw header lines contain a field named name
// (lowercase), case-insensitively.
func hasRawField(raw []byte, name string) bool {
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if k, _, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(bytes.TrimSpace(k), []byte(name)) {
			return true
		}
	}
	return false
}

// noteRelease watches the site's release header on origin responses; a value
// other than the site's current release is handed to OnRelease, which
// accepts it once it is recorded. The common case (same value) does not
// allocate.
func (s *Server) noteRelease(st *site, h *fasthttp.ResponseHeader) {
	if st.ReleaseHeader == "" || s.opt.OnRelease == nil {
		return
	}
	v := h.Peek(st.ReleaseHeader)
	if len(v) == 0 {
		return
	}
	if cur := st.release.Load(); cur != nil && *cur == string(v) {
		return
	}
	id := string(v)
	s.opt.OnRelease(st.Name, id, func() { st.release.Store(&id) })
}
