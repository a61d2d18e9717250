package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// originPool sends a site's requests to its configured origins: one
// HostClient per origin, each behind its own circuit breaker. The address is
// fixed by config, never taken from the request, so a client-chosen Host
// cannot turn the proxy into an open relay.
type originPool struct {
	origins []*origin
	timeout time.Duration
	scheme  string // of the first origin; origins of one site share a scheme
	clock   func() time.Time
	next    atomic.Uint32 // where the search for the least loaded origin starts

	healthPath     string
	healthInterval time.Duration
	healthTimeout  time.Duration
	onCheck        func(*origin) // tests: called after each health check

	registered atomic.Bool // origin metrics are on the Set

	interim sync.Map // *fasthttp.Request -> interimFunc, see doInterim
}

// origin is one configured origin server of a site.
type origin struct {
	url  string // as configured: the `origin` metric label and the key in OriginHealth
	host string // Host of the URL, for health checks of a catch-all site
	hc   *fasthttp.HostClient
	br   breaker

	health      atomic.Int32 // healthUnchecked, healthUp or healthDown
	mu          sync.Mutex   // guards the fields below, written by the checker
	healthFails int
	healthWhy   string
	lastCheck   time.Time

	opens atomic.Pointer[metrics.Counter] // edgevitals_origin_circuit_opens_total, once registered
}

// OriginOptions are the limits of one site's origin connections, its
// circuit breakers and its active health checks.
type OriginOptions struct {
	Timeout         time.Duration // whole exchange, headers and body; 0 = 30s
	ConnectTimeout  time.Duration // 0 = 3s
	MaxConns        int           // per origin
	MaxBodyBytes    int64         // largest response body read into memory; larger ones stream
	IdleConnTimeout time.Duration // an unused keep-alive connection is closed after it; 0 = 30s

	// The circuit breaker of each origin opens after BreakerFailures
	// consecutive failures (no answer, or 502, 503, 504): the origin then
	// gets no request for BreakerCooldown, after which one probe request
	// goes through and its success closes the circuit. Each failed probe
	// doubles the cool-down, up to BreakerMaxCooldown. While every origin of
	// a site is open, requests fail at once ("origin down") and the cache
	// serves what it may under stale-if-error.
	BreakerFailures    int           // 0 = 5; negative turns the breaker off
	BreakerCooldown    time.Duration // 0 = 5s
	BreakerMaxCooldown time.Duration // 0 = 60s

	// HealthPath, when set, is fetched from each origin every HealthInterval
	// by Server.RunHealthChecks, with the site's first host as Host. An
	// origin that fails two checks in a row gets no traffic until a check
	// passes (a status below 400).
	HealthPath     string
	HealthInterval time.Duration // 0 = 5s
	HealthTimeout  time.Duration // 0 = the smaller of Timeout and HealthInterval

	Clock func() time.Time // drives cool-downs; nil = time.Now
}

// Defaults of OriginOptions.
const (
	defaultOriginTimeout      = 30 * time.Second
	defaultConnectTimeout     = 3 * time.Second
	defaultIdleConnTimeout    = 30 * time.Second
	defaultBreakerFailures    = 5
	defaultBreakerCooldown    = 5 * time.Second
	defaultBreakerMaxCooldown = 60 * time.Second
	defaultHealthInterval     = 5 * time.Second
)

func newOriginPool(origins []string, o OriginOptions) (*originPool, error) {
	if len(origins) == 0 {
		return nil, errors.New("no origin")
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultOriginTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = defaultConnectTimeout
	}
	if o.IdleConnTimeout <= 0 {
		o.IdleConnTimeout = defaultIdleConnTimeout
	}
	if o.BreakerFailures == 0 {
		o.BreakerFailures = defaultBreakerFailures
	}
	if o.BreakerCooldown <= 0 {
		o.BreakerCooldown = defaultBreakerCooldown
	}
	if o.BreakerMaxCooldown <= 0 {
		o.BreakerMaxCooldown = defaultBreakerMaxCooldown
	}
	if o.BreakerMaxCooldown < o.BreakerCooldown {
		o.BreakerMaxCooldown = o.BreakerCooldown
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = defaultHealthInterval
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = min(o.Timeout, o.HealthInterval)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	p := &originPool{
		timeout: o.Timeout, clock: o.Clock,
		healthPath: o.HealthPath, healthInterval: o.HealthInterval, healthTimeout: o.HealthTimeout,
	}
	for _, raw := range origins {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("origin %q: want an http:// or https:// URL", raw)
		}
		addr := u.Host
		if u.Port() == "" {
			if u.Scheme == "https" {
				addr += ":443"
			} else {
				addr += ":80"
			}
		}
		if p.scheme == "" {
			p.scheme = u.Scheme
		}
		connect := o.ConnectTimeout
		hc := &fasthttp.HostClient{
			Addr:                     addr,
			Name:                     "edgevitals",
			NoDefaultUserAgentHeader: true,
			IsTLS:                    u.Scheme == "https",
			MaxConns:                 o.MaxConns,
			// A burst beyond MaxConns waits this long for a connection to
			// come free instead of failing at once with "origin busy": a
			// few clients holding connections for a moment (a large body
			// being buffered) must not turn into 503s for everybody else.
			MaxConnWaitTimeout:     connect,
			MaxIdleConnDuration:    o.IdleConnTimeout,
			ReadTimeout:            o.Timeout,
			WriteTimeout:           o.Timeout,
			MaxResponseBodySize:    0, // bodies stream; the proxy bounds what it reads into memory
			StreamResponseBody:     true,
			ReadBufferSize:         64 << 10, // CMS responses with many Set-Cookie and Link fields
			WriteBufferSize:        16 << 10,
			DisablePathNormalizing: true, // the proxy already normalised; send exactly what is keyed
			// One more attempt, for a GET or HEAD only, when the origin
			// closed the connection before answering: a keep-alive
			// connection it timed out (Apache's default is 5 s, ours 30 s)
			// just as the proxy reused it. Nothing else is retried: a
			// retried POST could charge twice, a timeout would wait twice.
			MaxIdemponentCallAttempts: 2,
			RetryIfErr:                retryClosedConn,
			Dial: func(addr string) (net.Conn, error) {
				return fasthttp.DialTimeout(addr, connect)
			},
			Transport: &interimTransport{sinks: &p.interim},
		}
		og := &origin{url: raw, host: u.Host, hc: hc, br: breaker{
			threshold: o.BreakerFailures, base: o.BreakerCooldown, max: o.BreakerMaxCooldown,
		}}
		if o.HealthPath == "" {
			og.health.Store(healthUnchecked)
		} else {
			og.health.Store(healthUp) // until a check says otherwise
		}
		p.origins = append(p.origins, og)
	}
	return p, nil
}

// do sends req to an origin that may take it and fills resp, whose body is
// left as a stream to be read or closed by the caller. The deadline covers
// the exchange up to the headers; the body is bounded by the clients' read
// timeout. It returns errCircuitOpen at once, without touching the network,
// when no origin of the site may take a request.
func (p *originPool) do(req *fasthttp.Request, resp *fasthttp.Response) error {
	o, probe := p.pick()
	if o == nil {
		return errCircuitOpen
	}
	err := o.hc.DoDeadline(req, resp, time.Now().Add(p.timeout))
	v, why := judge(err, resp)
	if v == verdictFailed && requestShaped(req, err) {
		// What the origin is stuck on may be this client's body (an upload
		// being parsed, a body it still waits for): one visitor's requests
		// must not open the circuit for the whole site.
		v = verdictUnknown
	}
	if o.br.record(p.clock(), probe, v, why) {
		if c := o.opens.Load(); c != nil {
			c.Inc()
		}
	}
	return err
}

// pick chooses the origin for the next request: an origin whose cool-down
// is over gets the one probe request; otherwise the least loaded origin
// with a closed circuit that the health checks have not marked down. It
// returns nil when there is none.
func (p *originPool) pick() (o *origin, probe bool) {
	now := p.clock()
	n := uint32(len(p.origins))
	start := uint32(0)
	if n > 1 {
		start = p.next.Add(1) % n
	}
	var best *origin
	load := 0
	for i := range n {
		c := p.origins[(start+i)%n]
		if c.health.Load() == healthDown {
			continue
		}
		switch c.br.admit(now) {
		case admitProbe:
			return c, true
		case admitYes:
			if l := c.hc.PendingRequests(); best == nil || l < load {
				best, load = c, l
			}
		}
	}
	return best, false
}

// closeIdle closes the origin connections that wait for reuse; those in use
// are left to finish.
func (p *originPool) closeIdle() {
	for _, o := range p.origins {
		o.hc.CloseIdleConnections()
	}
}

// verdict is what one origin exchange says of the origin's health.
type verdict uint8

const (
	verdictOK      verdict = iota // the origin answered
	verdictFailed                 // no answer: refused, reset, timeout, not HTTP
	verdictUnknown                // the exchange says nothing of the origin (our own connection limit)
)

// judge classifies an origin exchange for the breaker, with a short reason
// for a failure (a constant: the request path does not allocate for it).
func judge(err error, _ *fasthttp.Response) (verdict, string) {
	if err != nil {
		if errors.Is(err, fasthttp.ErrNoFreeConns) {
			return verdictUnknown, ""
		}
		_, why := originError(err)
		return verdictFailed, why
	}
	// An origin that answers is up, whatever the status: a CMS may send 503
	// for one page in maintenance or 502 for one broken route, and opening
	// the circuit would take the whole site down. Its 5xx reach clients (or
	// stale copies stand in); health checks judge statuses when configured.
	return verdictOK, ""
}

// requestShaped reports whether a failed exchange may be the request's doing
// rather than the origin's: the origin timed out after the connection was
// made while the request carried a client body. A refused or reset
// connection, a dial timeout, or a timeout on a request without a body
// (every cacheable request: originRequest drops its body) says the origin
// is in trouble.
func requestShaped(req *fasthttp.Request, err error) bool {
	// A body stream is never read here: Body() would drain it.
	if !req.IsBodyStream() && req.Header.ContentLength() == 0 && len(req.Body()) == 0 {
		return false
	}
	if errors.Is(err, fasthttp.ErrDialTimeout) {
		return false
	}
	status, _ := originError(err)
	return status == fasthttp.StatusGatewayTimeout
}

// circuit is the state of an origin's breaker.
type circuit uint8

const (
	circuitClosed   circuit = iota // requests flow
	circuitOpen                    // no request until the cool-down ends
	circuitHalfOpen                // one probe request is deciding
)

var circuitNames = [...]string{"closed", "open", "half-open"}

func (c circuit) String() string { return circuitNames[c] }

// admission is a breaker's answer to "may a request go to this origin now?".
type admission uint8

const (
	admitNo    admission = iota
	admitYes             // the circuit is closed
	admitProbe           // the caller sends the one probe and must record its outcome
)

// breaker is one origin's circuit breaker. Time comes from the caller, so a
// test drives cool-downs with a fake clock.
type breaker struct {
	threshold int           // consecutive failures that open the circuit; < 0 never opens
	base, max time.Duration // first cool-down, and the cap of its doubling

	mu       sync.Mutex
	state    circuit
	fails    int           // consecutive failures while closed
	cooldown time.Duration // of the current (or last) opening
	until    time.Time     // open: when the probe may go
	probing  bool          // half-open: the probe is in flight
	why      string        // the last failure, short
}

// admit says whether a request may go now. A breaker whose cool-down is
// over hands out exactly one probe; others wait for its outcome.
func (b *breaker) admit(now time.Time) admission {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case circuitClosed:
		return admitYes
	case circuitOpen:
		if now.Before(b.until) {
			return admitNo
		}
		b.state = circuitHalfOpen
	}
	if b.probing {
		return admitNo
	}
	b.probing = true
	return admitProbe
}

// record takes the outcome of a request admitted at probe or not. It
// reports whether the circuit opened because of it.
func (b *breaker) record(now time.Time, probe bool, v verdict, why string) (opened bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if v == verdictFailed {
		b.why = why
	}
	if probe {
		b.probing = false
		switch v {
		case verdictOK:
			b.state, b.fails, b.cooldown = circuitClosed, 0, 0
		case verdictFailed:
			b.cooldown = min(2*b.cooldown, b.max)
			b.state, b.until = circuitOpen, now.Add(b.cooldown)
		}
		return false
	}
	if b.state != circuitClosed {
		// A request that started before the circuit opened: the probe,
		// not a late answer, decides.
		return false
	}
	switch v {
	case verdictOK:
		b.fails = 0
	case verdictFailed:
		b.fails++
		if b.threshold > 0 && b.fails >= b.threshold {
			b.cooldown = b.base
			b.state, b.until = circuitOpen, now.Add(b.cooldown)
			return true
		}
	}
	return false
}

// expire ends an open circuit's cool-down now, so the next request probes:
// a passing health check says the origin is back.
func (b *breaker) expire(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == circuitOpen && now.Before(b.until) {
		b.until = now
	}
}

// breakerState is a consistent snapshot of a breaker.
type breakerState struct {
	state circuit
	fails int
	until time.Time
	why   string
}

func (b *breaker) snapshot() breakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return breakerState{state: b.state, fails: b.fails, until: b.until, why: b.why}
}

// retryClosedConn is the origin HostClients' RetryIfErr: a GET or HEAD
// without a body whose connection the origin closed (or reset) before the
// first byte of its answer is sent once more, on another connection.
func retryClosedConn(req *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	if attempts > 1 || req.IsBodyStream() || len(req.Body()) > 0 || !(req.Header.IsGet() || req.Header.IsHead()) {
		return false, false
	}
	return false, errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrConnectionClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// originError maps a failed origin exchange to the status and the short
// reason a client sees. Clients never see internals (addresses, messages).
func originError(err error) (status int, reason string) {
	var ne net.Error
	switch {
	case err == nil:
		return fasthttp.StatusOK, ""
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return fasthttp.StatusServiceUnavailable, "origin busy"
	case errors.Is(err, errCircuitOpen):
		return fasthttp.StatusServiceUnavailable, "origin down"
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fasthttp.StatusGatewayTimeout, "origin timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return fasthttp.StatusBadGateway, "origin refused connection"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, fasthttp.ErrConnectionClosed):
		return fasthttp.StatusBadGateway, "origin closed connection"
	case errors.Is(err, errBodyTooLarge):
		return fasthttp.StatusBadGateway, "origin response too large"
	}
	return fasthttp.StatusBadGateway, "origin error"
}

var (
	errCircuitOpen  = errors.New("origin circuit open")
	errBodyTooLarge = errors.New("origin response too large")
)
