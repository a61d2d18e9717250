package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// originPool sends a site's requests to its configured origins: one
// HostClient per origin behind an LBClient. The address is fixed by config,
// never taken from the request, so a client-chosen Host cannot turn the
// proxy into an open relay.
type originPool struct {
	lb      *fasthttp.LBClient
	timeout time.Duration
	scheme  string // of the first origin; origins of one site share a scheme
}

// OriginOptions are the limits of one site's origin connections.
type OriginOptions struct {
	Timeout        time.Duration // whole exchange, headers and body
	ConnectTimeout time.Duration
	MaxConns       int   // per origin
	MaxBodyBytes   int64 // largest response body read into memory; larger ones stream
}

func newOriginPool(origins []string, o OriginOptions) (*originPool, error) {
	if len(origins) == 0 {
		return nil, errors.New("no origin")
	}
	p := &originPool{timeout: o.Timeout, lb: &fasthttp.LBClient{Timeout: o.Timeout}}
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
			Addr:                      addr,
			Name:                      "edgevitals",
			NoDefaultUserAgentHeader:  true,
			IsTLS:                     u.Scheme == "https",
			MaxConns:                  o.MaxConns,
			MaxIdleConnDuration:       30 * time.Second,
			ReadTimeout:               o.Timeout,
			WriteTimeout:              o.Timeout,
			MaxResponseBodySize:       0, // bodies stream; the proxy bounds what it reads into memory
			StreamResponseBody:        true,
			ReadBufferSize:            64 << 10, // CMS responses with many Set-Cookie and Link fields
			WriteBufferSize:           16 << 10,
			DisablePathNormalizing:    true, // the proxy already normalised; send exactly what is keyed
			MaxIdemponentCallAttempts: 1,    // no silent retries: a retried POST could charge twice
			Dial: func(addr string) (net.Conn, error) {
				return fasthttp.DialTimeout(addr, connect)
			},
		}
		p.lb.Clients = append(p.lb.Clients, hc)
	}
	return p, nil
}

// do sends req and fills resp, whose body is left as a stream to be read or
// closed by the caller. The deadline covers the exchange up to the headers;
// the body is bounded by the clients' read timeout.
func (p *originPool) do(req *fasthttp.Request, resp *fasthttp.Response) error {
	return p.lb.DoDeadline(req, resp, time.Now().Add(p.timeout))
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
