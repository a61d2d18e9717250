package proxy

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// AdminOptions configure the admin listener.
type AdminOptions struct {
	Token    string // bearer token for mutating endpoints; "" refuses them
	Loopback bool   // the admin listener is on loopback: read-only endpoints need no token
	Metrics  *metrics.Set
	Logger   *slog.Logger
	Version  string
}

// Admin serves the admin listener: /metrics, /healthz, /readyz, the purge
// API, and the endpoints other parts register (releases, reports, the
// dashboard).
type Admin struct {
	opt    AdminOptions
	proxy  *Server
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
func NewAdmin(p *Server, o AdminOptions) *Admin {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	a := &Admin{opt: o, proxy: p, routes: map[string]adminRoute{}}
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
	path := string(ctx.Path())
	switch path {
	case "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		a.opt.Metrics.WritePrometheus(ctx)
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
		if a.pathKnown(path) {
			ctx.Response.Header.Set("Allow", a.allowed(path))
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

func (a *Admin) pathKnown(path string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for k := range a.routes {
		if strings.HasSuffix(k, " "+path) {
			return true
		}
	}
	return false
}

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

// PurgeRequest is the body of POST /api/purge.
type PurgeRequest struct {
	Site   string   `json:"site"`
	URLs   []string `json:"urls"`
	Keys   []string `json:"keys"`
	Prefix string   `json:"prefix"`
	All    bool     `json:"all"`
	Soft   *bool    `json:"soft"` // default: soft for all, hard otherwise
}

// PurgeResponse is its answer.
type PurgeResponse struct {
	Purged      int      `json:"purged"`
	FailedPeers []string `json:"failed_peers"`
}

func (a *Admin) apiPurge(ctx *fasthttp.RequestCtx) {
	var req PurgeRequest
	dec := json.NewDecoder(bytes.NewReader(ctx.PostBody()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		jsonError(ctx, fasthttp.StatusBadRequest, "bad purge request: "+err.Error())
		return
	}
	n, err := a.proxy.Purge(req)
	if err != nil {
		jsonError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, PurgeResponse{Purged: n, FailedPeers: []string{}})
}

// Purge applies a purge request to the local cache and returns the number
// of objects purged.
func (s *Server) Purge(req PurgeRequest) (int, error) {
	modes := 0
	if len(req.URLs) > 0 {
		modes++
	}
	if len(req.Keys) > 0 {
		modes++
	}
	if req.Prefix != "" {
		modes++
	}
	if req.All {
		modes++
	}
	if modes != 1 {
		return 0, fmt.Errorf("give exactly one of urls, keys, prefix or all")
	}
	soft := req.All
	if req.Soft != nil {
		soft = *req.Soft
	}
	var st *site
	if req.Site != "" {
		for _, x := range s.sites {
			if x.Name == req.Site {
				st = x
			}
		}
		if st == nil {
			return 0, fmt.Errorf("unknown site %q", req.Site)
		}
	} else if len(req.URLs) == 0 && !req.All {
		return 0, fmt.Errorf("site is required for keys and prefix")
	}
	switch {
	case req.All:
		name := ""
		if st != nil {
			name = st.Name
		}
		n := s.store.PurgeAll(name, soft)
		s.countPurge("all", soft, n)
		return n, nil
	case len(req.Keys) > 0:
		n := s.store.PurgeKeys(st.Name, req.Keys, soft)
		s.countPurge("key", soft, n)
		return n, nil
	case req.Prefix != "":
		if !strings.HasPrefix(req.Prefix, "/") {
			return 0, fmt.Errorf("prefix must start with /, got %q", req.Prefix)
		}
		prefix := req.Prefix
		n := s.store.PurgeMatch(st.Name, func(key string) bool { return strings.HasPrefix(keyPath(key), prefix) }, soft)
		s.countPurge("prefix", soft, n)
		return n, nil
	}
	total := 0
	for _, raw := range req.URLs {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return total, fmt.Errorf("url %q: want an absolute URL", raw)
		}
		target := s.route([]byte(u.Host))
		if target == nil || (st != nil && target != st) {
			return total, fmt.Errorf("url %q: host is not served by site %q", raw, req.Site)
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		// Key the path as the proxy does: fasthttp's normalised, decoded path.
		uri := fasthttp.AcquireURI()
		uri.SetPath(path)
		n := s.purgeURL(target, []byte(u.Host), uri.Path(), []byte(u.RawQuery), soft)
		fasthttp.ReleaseURI(uri)
		s.countPurge("url", soft, n)
		total += n
	}
	return total, nil
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
