package proxy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Health of an origin as the active checks see it.
const (
	healthUnchecked int32 = iota // the site has no health_path
	healthUp
	healthDown
)

// healthFall is how many checks in a row must fail before an origin is
// taken out of rotation: one lost packet does not empty a site's pool.
const healthFall = 2

var healthNames = [...]string{"unchecked", "up", "down"}

// OriginState is what edgevitals knows of one origin, for /readyz, the
// admin API and the logs. It holds no internals (addresses come from config).
type OriginState struct {
	Origin   string    `json:"origin"`            // as configured
	Up       bool      `json:"up"`                // gets requests: circuit closed and not marked down
	Circuit  string    `json:"circuit"`           // "closed", "open" or "half-open"
	Health   string    `json:"health"`            // "up", "down", or "unchecked" without health_path
	Failures int       `json:"failures"`          // consecutive failed requests while closed
	RetryAt  time.Time `json:"retry_at,omitzero"` // open: when a probe request may go
	Reason   string    `json:"reason,omitempty"`  // why it is failing, short: "origin refused connection"
	Checked  time.Time `json:"checked,omitzero"`  // time of the last health check
}

// OriginHealth returns the state of every origin, by site name, in the
// order of the configuration.
func (s *Server) OriginHealth() map[string][]OriginState {
	sites := s.sitesNow()
	out := make(map[string][]OriginState, len(sites))
	for _, st := range sites {
		out[st.Name] = st.pool.states()
	}
	return out
}

// OriginCheck suits Admin.AddCheck: it fails when some site has no origin
// that takes requests, and says which.
func (s *Server) OriginCheck() (ok bool, detail string) {
	var down []string
	for _, st := range s.sitesNow() {
		if !st.pool.anyUp() {
			down = append(down, st.Name)
		}
	}
	if len(down) > 0 {
		return false, "every origin down for site " + strings.Join(down, ", ")
	}
	return true, "origins up"
}

// RunHealthChecks fetches the HealthPath of every origin of the sites that
// set one, every HealthInterval, marking origins down and up, until ctx is
// done; it then waits for the checks in flight (each bounded by its
// timeout) and returns. Sites without HealthPath rely on their circuit
// breakers alone.
func (s *Server) RunHealthChecks(ctx context.Context) {
	s.registerOriginMetrics()
	var wg sync.WaitGroup
	for _, st := range s.sitesNow() {
		p := st.pool
		if p.healthPath == "" {
			continue
		}
		host := checkHost(st.Hosts)
		for _, o := range p.origins {
			wg.Go(func() { p.runHealth(ctx, o, host) })
		}
	}
	<-ctx.Done()
	wg.Wait()
}

// CloseIdleOriginConns closes origin connections waiting for reuse, for a
// tidy shutdown after the proxy has drained.
func (s *Server) CloseIdleOriginConns() {
	for _, st := range s.sitesNow() {
		st.pool.closeIdle()
	}
}

// checkHost is the Host that health checks send: the site's first named
// host, or "" (the origin's own host) for a catch-all site.
func checkHost(hosts []string) string {
	for _, h := range hosts {
		if h != "*" {
			return h
		}
	}
	return ""
}

// runHealth checks one origin at once and then every interval until ctx is done.
func (p *originPool) runHealth(ctx context.Context, o *origin, host string) {
	t := time.NewTicker(p.healthInterval)
	defer t.Stop()
	for {
		p.check(o, host)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check fetches the health path once and updates the origin's state. A
// passing check also ends an open circuit's cool-down, so the next request
// probes the origin back instead of waiting up to a minute.
func (p *originPool) check(o *origin, host string) {
	if host == "" {
		host = o.host
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	req.SetRequestURI(p.healthPath)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.Header.SetHost(host)
	req.Header.Set("User-Agent", "edgevitals-health-check")
	req.UseHostHeader = true
	err := o.hc.DoDeadline(req, resp, time.Now().Add(p.healthTimeout))
	fasthttp.ReleaseRequest(req)
	why := ""
	switch {
	case err != nil:
		_, why = originError(err)
		fasthttp.ReleaseResponse(resp)
	default:
		if code := resp.StatusCode(); code >= 400 {
			why = fmt.Sprintf("health check answered %d", code)
		}
		closeResponse(resp)
	}
	now := p.clock()
	o.mu.Lock()
	o.lastCheck = now
	if why == "" {
		o.healthFails, o.healthWhy = 0, ""
		o.health.Store(healthUp)
	} else {
		o.healthFails++
		o.healthWhy = why
		if o.healthFails >= healthFall {
			o.health.Store(healthDown)
		}
	}
	o.mu.Unlock()
	if why == "" {
		o.br.expire(now)
	}
	if p.onCheck != nil {
		p.onCheck(o)
	}
}

// state is a snapshot of one origin.
func (o *origin) state() OriginState {
	b := o.br.snapshot()
	h := o.health.Load()
	s := OriginState{
		Origin:   o.url,
		Up:       b.state == circuitClosed && h != healthDown,
		Circuit:  b.state.String(),
		Health:   healthNames[h],
		Failures: b.fails,
	}
	if b.state != circuitClosed || b.fails > 0 {
		s.Reason = b.why // an origin that recovered shows no old failure
	}
	if b.state == circuitOpen {
		s.RetryAt = b.until
	}
	o.mu.Lock()
	s.Checked = o.lastCheck
	if h == healthDown {
		s.Reason = o.healthWhy
	}
	o.mu.Unlock()
	return s
}

func (p *originPool) states() []OriginState {
	out := make([]OriginState, len(p.origins))
	for i, o := range p.origins {
		out[i] = o.state()
	}
	return out
}

func (p *originPool) anyUp() bool {
	for _, o := range p.origins {
		if o.state().Up {
			return true
		}
	}
	return false
}
