package proxy

import (
	"net"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
)

// PROXY protocol (v1 text and v2 binary, as hitch, haproxy, stunnel and
// cloud load balancers send it) on the proxy listener, by
// github.com/pires/go-proxyproto: it wraps the net.Listener that fasthttp
// serves, so fasthttp never sees the header and ctx.RemoteAddr() is the
// address the header names.

// defaultProxyHeaderTimeout bounds how long a new connection may take to
// send its PROXY header when Options.ProxyHeaderTimeout is 0. Terminators
// send it at once, with the connection.
const defaultProxyHeaderTimeout = 5 * time.Second

// proxyListener accepts connections that open with a PROXY header and gives
// them out as *proxyConn. A connection without one, or whose header does
// not arrive within timeout, fails its first read and fasthttp closes it
// without an answer: the header is required (go-proxyproto's REQUIRE
// policy), never guessed, since a client could otherwise pick its own
// address by sending one when the terminator did not.
type proxyListener struct {
	proxyproto.Listener
}

func newProxyListener(ln net.Listener, timeout time.Duration) *proxyListener {
	if timeout <= 0 {
		timeout = defaultProxyHeaderTimeout
	}
	return &proxyListener{proxyproto.Listener{
		Listener: ln,
		ConnPolicy: func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			return proxyproto.REQUIRE, nil
		},
		ReadHeaderTimeout: timeout,
	}}
}

// Accept waits for the next connection. It does not read the header: that
// happens on the connection's first read, on fasthttp's worker goroutine,
// so one slow peer cannot hold up the accept loop.
func (l *proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	pc, ok := c.(*proxyproto.Conn)
	if !ok { // go-proxyproto returns the bare connection only for its SKIP policy
		return c, nil
	}
	return &proxyConn{Conn: pc}, nil
}

// proxyConn is a connection that began with a PROXY header.
type proxyConn struct {
	*proxyproto.Conn
	once sync.Once
	tls  bool
}

// clientTLS reports whether the PROXY header says the client connected over
// TLS: a v2 header with a PP2_TYPE_SSL TLV whose PP2_CLIENT_SSL bit is set,
// as hitch (write-proxy-v2 = on) and haproxy (send-proxy-v2-ssl) send. v1
// headers carry no TLS information. It is worked out once per connection, so
// requests after the first do not allocate.
func (c *proxyConn) clientTLS() bool {
	c.once.Do(func() {
		h := c.ProxyHeader()
		if h == nil {
			return
		}
		tlvs, err := h.TLVs()
		if err != nil {
			// Damaged TLVs say nothing trustworthy about TLS: plain http.
			return
		}
		ssl, ok := tlvparse.FindSSL(tlvs)
		c.tls = ok && ssl.ClientSSL()
	})
	return c.tls
}
