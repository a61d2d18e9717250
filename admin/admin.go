// Package admin is edgevitals' admin listener: the router with its bearer
// token and Host check, /metrics (each package's HELP text, written once
// per family), /healthz and /readyz, the purge API and its fan-out to the
// other nodes of a fleet, the release and report API, and the alerts (the
// built-in hit-ratio alert and the regression notice). Other parts (the
// dashboard) register their pages with Handle.
package admin

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/proxy"
)

// AdminOptions configure the admin listener.
type AdminOptions struct {
	Token    string // bearer token for mutating endpoints; "" refuses them
	Loopback bool   // the admin listener is on loopback: read-only endpoints need no token
	Metrics  *metrics.Set
	Logger   *slog.Logger
	Version  string
	// Help is the HELP text of metric families by name, one map from each
	// package that defines families (proxy.MetricHelp and the like); a
	// family in none keeps the library's empty HELP line.
	Help []map[string]string
	// Fanout passes a purge from the API on to the other nodes of a fleet
	// (Peers.Fanout) and returns the peers that did not take it; it is
	// called on the API request's goroutine. nil means a single node.
	Fanout func(ctx context.Context, req proxy.PurgeRequest) (failed []string)

	// Listen is the admin listener's address (server.admin_listen). With
	// Hosts it decides which Host header values the listener answers, so a
	// visitor's browser led there by DNS rebinding gets nothing: the
	// listen address's host; localhost and loopback addresses when it is on
	// loopback or a wildcard; any IP address when it is a wildcard (the
	// addresses Prometheus scrapes by are not known behind NAT, and an
	// address cannot be rebound); and the names in Hosts. "" is a wildcard.
	Listen string
	// Hosts are more names the admin listener answers to (server.admin_hosts),
	// e.g. the service name Prometheus scrapes it by. A request that carries
	// the bearer token is answered whatever its Host (peers fan purges out
	// by name; a rebinding page cannot know the token).
	Hosts []string
}

// Admin serves the admin listener: /metrics, /healthz, /readyz, the purge
// API, and the endpoints other parts register (releases, reports, the
// dashboard).
type Admin struct {
	opt    AdminOptions
	hosts  hostCheck
	proxy  *proxy.Server
	ready  atomic.Bool
	mu     sync.RWMutex
	routes map[string]adminRoute // "METHOD /path"
	checks []func() (ok bool, detail string)
}

type adminRoute struct {
	h    fasthttp.RequestHandler
	auth bool // needs the bearer token even on loopback
}

// NewAdmin builds the admin API for a proxy server. It starts not ready;
// call SetReady once the proxy listens.
func NewAdmin(p *proxy.Server, o AdminOptions) *Admin {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	a := &Admin{opt: o, hosts: newHostCheck(o.Listen, o.Hosts), proxy: p, routes: map[string]adminRoute{}}
	a.Handle("POST", "/api/purge", a.apiPurge, true)
	return a
}

// Handle registers an endpoint. auth endpoints need the bearer token always;
// the others need it only when the admin listener is not on loopback.
func (a *Admin) Handle(method, path string, h fasthttp.RequestHandler, auth bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.routes[method+" "+path] = adminRoute{h: h, auth: auth}
}

// AddCheck adds a readiness check reported by /readyz (e.g. the sampler).
// A failing check is reported but does not make the proxy unready: the
// proxy serves traffic whatever the sampler does.
func (a *Admin) AddCheck(f func() (ok bool, detail string)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks = append(a.checks, f)
}

// SetReady flips /readyz; shutdown sets it false first so load balancers
// stop sending traffic before the proxy drains.
func (a *Admin) SetReady(v bool) { a.ready.Store(v) }

// Handler is the admin listener's request handler.
func (a *Admin) Handler(ctx *fasthttp.RequestCtx) {
	if !a.hosts.allows(ctx.Host()) && !a.authorized(ctx) {
		jsonError(ctx, fasthttp.StatusMisdirectedRequest, "host not served by the admin listener (server.admin_hosts)")
		return
	}
	path := string(ctx.Path())
	switch path {
	case "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		writeExposition(ctx, a.opt.Metrics, a.opt.Help)
		metrics.WriteProcessMetrics(ctx)
		return
	case "/healthz":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
		return
	case "/readyz":
		a.readyz(ctx)
		return
	}
	a.mu.RLock()
	r, ok := a.routes[string(ctx.Method())+" "+path]
	a.mu.RUnlock()
	if !ok {
		if allow := a.allowed(path); allow != "" {
			ctx.Response.Header.Set("Allow", allow)
			jsonError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed")
			return
		}
		jsonError(ctx, fasthttp.StatusNotFound, "not found")
		return
	}
	if (r.auth || !a.opt.Loopback) && !a.authorized(ctx) {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="edgevitals"`)
		jsonError(ctx, fasthttp.StatusUnauthorized, "missing or wrong bearer token (server.admin_token)")
		return
	}
	r.h(ctx)
}

// allowed lists the methods registered for path, "" when it has none.
func (a *Admin) allowed(path string) string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var m []string
	for k := range a.routes {
		if method, p, _ := strings.Cut(k, " "); p == path {
			m = append(m, method)
		}
	}
	return strings.Join(m, ", ")
}

// authorized compares the bearer token in constant time.
func (a *Admin) authorized(ctx *fasthttp.RequestCtx) bool {
	if a.opt.Token == "" {
		return false
	}
	got, ok := bytes.CutPrefix(ctx.Request.Header.Peek("Authorization"), []byte("Bearer "))
	return ok && subtle.ConstantTimeCompare(bytes.TrimSpace(got), []byte(a.opt.Token)) == 1
}

func (a *Admin) readyz(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; charset=utf-8")
	var b strings.Builder
	if a.ready.Load() {
		b.WriteString("proxy: ready\n")
	} else {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		b.WriteString("proxy: not ready\n")
	}
	a.mu.RLock()
	checks := a.checks
	a.mu.RUnlock()
	for _, c := range checks {
		ok, detail := c()
		state := "ok"
		if !ok {
			state = "off"
		}
		fmt.Fprintf(&b, "%s: %s\n", state, detail)
	}
	ctx.SetBodyString(b.String())
}

func (a *Admin) apiPurge(ctx *fasthttp.RequestCtx) {
	var req proxy.PurgeRequest
	if err := decodeBody(ctx, &req); err != nil {
		jsonError(ctx, fasthttp.StatusBadRequest, "bad purge request: "+err.Error())
		return
	}
	n, err := a.proxy.Purge(req)
	if err != nil {
		jsonError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	failed := []string{}
	if len(ctx.Request.Header.Peek(forwardedHeader)) == 0 && a.opt.Fanout != nil {
		// Received from a user, not from a peer: forward it once to every peer.
		failed = a.opt.Fanout(context.Background(), req)
	}
	writeJSON(ctx, fasthttp.StatusOK, proxy.PurgeResponse{Purged: n, FailedPeers: failed})
}

// decodeBody decodes a JSON request body into v; unknown fields are errors.
func decodeBody(ctx *fasthttp.RequestCtx, v any) error {
	dec := json.NewDecoder(bytes.NewReader(ctx.PostBody()))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		jsonError(ctx, fasthttp.StatusInternalServerError, "encode response")
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

func jsonError(ctx *fasthttp.RequestCtx, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg}) // a map of strings always marshals
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// hostCheck is which Host header values the admin listener answers (see
// AdminOptions.Listen).
type hostCheck struct {
	names    map[string]bool // lowercase names, without a trailing dot
	addr     netip.Addr      // the listen address, when it is one
	loopback bool            // localhost and loopback addresses
	anyAddr  bool            // any IP address (a wildcard listener)
}

func newHostCheck(listen string, extra []string) hostCheck {
	c := hostCheck{names: map[string]bool{}}
	for _, n := range extra {
		c.names[normalHost(n)] = true
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	host = normalHost(host)
	a, err := netip.ParseAddr(host)
	switch {
	case host == "" || err == nil && a.IsUnspecified():
		c.loopback, c.anyAddr = true, true
	case err == nil:
		c.addr, c.loopback = a.Unmap(), a.IsLoopback()
	default:
		c.names[host] = true
		c.loopback = host == "localhost"
	}
	return c
}

// allows reports whether a Host header value (with an optional port) names
// this listener. No Host at all (an HTTP/1.0 probe) is allowed: every
// browser sends one, so it is not what a rebinding page can send.
func (c hostCheck) allows(hostPort []byte) bool {
	if len(hostPort) == 0 {
		return true
	}
	h := string(hostPort)
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = normalHost(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
	if h == "" {
		return false // ":9145" or "[]"
	}
	if a, err := netip.ParseAddr(h); err == nil {
		a = a.Unmap()
		return c.anyAddr || a == c.addr || c.loopback && a.IsLoopback()
	}
	return c.names[h] || c.loopback && h == "localhost"
}

// normalHost lowercases a host name and drops a trailing dot.
func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}
