package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// TLS at the edge. ServeTLS serves the same handler as Serve over TLS,
// HTTP/1.1 only (fasthttp has no HTTP/2). Certs picks the certificate of a
// handshake by its server name (SNI): certificate files first, by the DNS
// names each certificate lists (a wildcard "*.example.com" covers one
// label), then ACME (golang.org/x/crypto/acme/autocert) for the site hosts
// it was given, then the first certificate file as the default. ACME's
// TLS-ALPN-01 challenges are answered in the handshake; its HTTP-01
// challenges, under acmeChallengePrefix, are answered on every listener
// before caching and routing to an origin (answeredAtEdge).
//
// Per site, HTTPSRedirect sends plain-HTTP visitors to https://, and HSTS
// adds Strict-Transport-Security to HTTPS responses. "HTTPS" is the
// visitor's scheme as clientaddr.go tells it: a TLS connection, or a trusted
// terminator that says so.

// SiteTLS is what a site does about HTTPS.
type SiteTLS struct {
	// HTTPSRedirect answers plain-HTTP requests with a redirect to the same
	// URL over https: 301 for GET and HEAD, 308 for other methods (which
	// keeps the method and body). PURGE and BAN, ACME challenges, and
	// requests a trusted terminator says came over HTTPS are not redirected.
	HTTPSRedirect bool
	// HSTS is the Strict-Transport-Security value sent on every HTTPS
	// response of the site (hits included), replacing the origin's; "" =
	// none. It is never sent over plain HTTP (RFC 6797 §7.2), the
	// origin's neither.
	HSTS string
}

// acmeChallengePrefix is where ACME CAs fetch HTTP-01 challenge answers (RFC 8555 §8.3).
var acmeChallengePrefix = []byte("/.well-known/acme-challenge/")

// ACMEOptions configure certificates from an ACME CA.
type ACMEOptions struct {
	Directory string         // the CA's directory URL
	Email     string         // account contact; "" = none
	CacheDir  string         // account key and certificates, kept across restarts
	Roots     *x509.CertPool // roots trusted for the directory's HTTPS; nil = the system's
	// Hosts are the only names certificates are requested for (and
	// HTTP-01 challenges answered for); other names never reach the CA.
	// Certificates are renewed at two thirds of their lifetime (autocert's
	// default: 30 days before expiry for Let's Encrypt's 90).
	Hosts []string
}

// CertsOptions configure Certs.
type CertsOptions struct {
	// Certificates are served for the DNS names of their leaf (Leaf must
	// be set, as config.KeyPair does); the first one is also the default,
	// for handshakes without a server name or with one nothing else covers.
	Certificates []tls.Certificate
	ACME         *ACMEOptions // nil = no ACME
	Logger       *slog.Logger // nil = slog.Default()
}

// Certs holds the certificates the TLS listener serves. It is safe for
// concurrent use; SetCertificates and SetACMEHosts swap in new ones.
type Certs struct {
	files     atomic.Pointer[certFiles]
	acmeHosts atomic.Pointer[map[string]bool]
	acme      *autocert.Manager       // nil without ACME
	challenge fasthttp.RequestHandler // HTTP-01 answers; nil without ACME
	log       *slog.Logger
	warned    atomic.Int64 // unix seconds of the last ACME failure logged
}

// certFiles are the certificate files by name.
type certFiles struct {
	byName map[string]*tls.Certificate // lowercase DNS names, wildcards as "*.example.com"
	def    *tls.Certificate            // nil when there is no file
}

// NewCerts builds the certificate store.
func NewCerts(o CertsOptions) (*Certs, error) {
	c := &Certs{log: o.Logger}
	if c.log == nil {
		c.log = slog.Default()
	}
	if err := c.SetCertificates(o.Certificates); err != nil {
		return nil, err
	}
	if a := o.ACME; a != nil {
		if a.Directory == "" || a.CacheDir == "" {
			return nil, errors.New("acme: directory and cache dir are required")
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: a.Roots, MinVersion: tls.VersionTLS12}
		c.acme = &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			Cache:      autocert.DirCache(a.CacheDir),
			HostPolicy: c.hostPolicy,
			Email:      a.Email,
			Client: &acme.Client{
				DirectoryURL: a.Directory,
				HTTPClient:   &http.Client{Transport: tr, Timeout: time.Minute},
			},
		}
		c.SetACMEHosts(a.Hosts)
		// Asking for the HTTP handler is also what lets autocert fall back
		// to HTTP-01 when TLS-ALPN-01 does not get through (a TLS
		// terminator in front that does not pass acme-tls/1 on).
		c.challenge = fasthttpadaptor.NewFastHTTPHandler(c.acme.HTTPHandler(nil))
	}
	return c, nil
}

// SetCertificates swaps in new certificate files (on SIGHUP, after certbot
// renewed them). On error the current ones stay.
func (c *Certs) SetCertificates(list []tls.Certificate) error {
	f := &certFiles{byName: map[string]*tls.Certificate{}}
	for i := range list {
		cert := &list[i]
		if cert.Leaf == nil || len(cert.Leaf.DNSNames) == 0 {
			return fmt.Errorf("certificate %d: no leaf with DNS names", i)
		}
		for _, n := range cert.Leaf.DNSNames {
			n = strings.ToLower(n)
			if _, dup := f.byName[n]; !dup { // the first certificate for a name wins
				f.byName[n] = cert
			}
		}
		if f.def == nil {
			f.def = cert
		}
	}
	c.files.Store(f)
	return nil
}

// SetACMEHosts swaps in the names ACME may get certificates for (the sites
// changed on reload).
func (c *Certs) SetACMEHosts(hosts []string) {
	m := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		m[strings.ToLower(h)] = true
	}
	c.acmeHosts.Store(&m)
}

// hostPolicy is autocert's HostPolicy: only the configured hosts.
func (c *Certs) hostPolicy(_ context.Context, host string) error {
	if h, _, err := net.SplitHostPort(host); err == nil { // HTTP-01 asks with the Host field
		host = h
	}
	if p := c.acmeHosts.Load(); p != nil && (*p)[strings.ToLower(host)] {
		return nil
	}
	return fmt.Errorf("acme: host %q is not a configured site host", host)
}

// TLSConfig is the server configuration of the TLS listener.
func (c *Certs) TLSConfig() *tls.Config {
	protos := []string{"http/1.1"}
	if c.acme != nil {
		protos = append(protos, acme.ALPNProto)
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     protos,
		GetCertificate: c.GetCertificate,
	}
}

// GetCertificate picks the certificate for a handshake: a file covering
// the server name, else ACME for its hosts (and for TLS-ALPN-01
// challenges), else the default file. It is tls.Config.GetCertificate.
func (c *Certs) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if c.acme != nil && slices.Contains(hello.SupportedProtos, acme.ALPNProto) {
		return c.acme.GetCertificate(hello) // a CA validating TLS-ALPN-01
	}
	f := c.files.Load()
	if cert := f.lookup(name); cert != nil {
		return cert, nil
	}
	if c.acme != nil && name != "" && c.hostPolicy(hello.Context(), name) == nil {
		cert, err := c.acme.GetCertificate(hello)
		if err != nil {
			c.warnACME(name, err)
		}
		return cert, err
	}
	if f.def != nil {
		return f.def, nil
	}
	return nil, fmt.Errorf("tls: no certificate for server name %q", name)
}

// lookup finds the file certificate for name: exact, then the wildcard one
// label up.
func (f *certFiles) lookup(name string) *tls.Certificate {
	if name == "" {
		return nil
	}
	if cert, ok := f.byName[name]; ok {
		return cert
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if cert, ok := f.byName["*"+name[i:]]; ok {
			return cert
		}
	}
	return nil
}

// warnACME logs a failure to get a certificate, at most once a minute:
// every visitor's handshake retries while the CA is unreachable.
func (c *Certs) warnACME(host string, err error) {
	now := time.Now().Unix()
	last := c.warned.Load()
	if now-last < 60 || !c.warned.CompareAndSwap(last, now) {
		return
	}
	c.log.Warn("acme: no certificate for a site host; its TLS handshakes fail until one is issued", "host", host, "err", err)
}

// ServeTLS accepts TLS connections on ln until Shutdown, with the
// certificates of Options.Certs. With ProxyProtocol, the PROXY header comes
// before the TLS handshake (haproxy in TCP mode, send-proxy).
func (s *Server) ServeTLS(ln net.Listener) error {
	c := s.opt.Certs
	if c == nil {
		return errors.New("proxy: ServeTLS needs Options.Certs")
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		s.httpsPort.Store(int32(a.Port))
	}
	if s.opt.ProxyProtocol {
		ln = newProxyListener(ln, s.opt.ProxyHeaderTimeout)
	}
	return s.srv.Serve(tls.NewListener(ln, c.TLSConfig()))
}

// answeredAtEdge answers, before caching and routing to an origin, the
// requests that are the edge's own: ACME HTTP-01 challenges (when ACME is
// on; without it, the origin's own, e.g. certbot --webroot, answer) and the
// redirect of a plain-HTTP visitor to HTTPS. It reports whether it answered.
func (s *Server) answeredAtEdge(ctx *fasthttp.RequestCtx, st *site) bool {
	path := ctx.URI().Path()
	if bytes.HasPrefix(path, acmeChallengePrefix) {
		if c := s.opt.Certs; c != nil && c.challenge != nil {
			c.challenge(ctx) // answers only tokens autocert issued, for its hosts
			return true
		}
		return false
	}
	if !st.TLS.HTTPSRedirect || s.https(ctx, peerAddr(ctx)) {
		return false
	}
	switch string(ctx.Method()) {
	case "PURGE", "BAN": // purge plugins talk plain HTTP to the edge
		return false
	}
	s.redirectHTTPS(ctx)
	return true
}

// redirectHTTPS sends the visitor to the same URL over HTTPS, on the TLS
// listener's port (none when it is 443 or there is no TLS listener: a
// terminator in front serves 443).
func (s *Server) redirectHTTPS(ctx *fasthttp.RequestCtx) {
	host := ctx.Host()
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && bytes.IndexByte(host[i:], ']') < 0 {
		host = host[:i]
	}
	if !redirectableHost(host) {
		ctx.Error("bad request: host", fasthttp.StatusBadRequest)
		return
	}
	loc := make([]byte, 0, 16+len(host)+len(ctx.RequestURI()))
	loc = append(loc, "https://"...)
	loc = append(loc, host...)
	if p := s.httpsPort.Load(); p != 0 && p != 443 {
		loc = append(loc, ':')
		loc = strconv.AppendInt(loc, int64(p), 10)
	}
	uri := ctx.RequestURI()
	if len(uri) == 0 || uri[0] != '/' { // absolute-form or "*": only the path and query go
		uri = ctx.URI().RequestURI()
	}
	loc = append(loc, uri...)
	status := fasthttp.StatusMovedPermanently
	if !ctx.IsGet() && !ctx.IsHead() {
		status = fasthttp.StatusPermanentRedirect
	}
	ctx.Response.Header.Set("Location", string(loc))
	ctx.Response.Header.Set("Content-Type", "text/plain; charset=utf-8")
	ctx.SetStatusCode(status)
	ctx.SetBodyString("redirecting to HTTPS\n")
}

// redirectableHost reports whether host (without its port) may go into a
// Location: a DNS name, an IPv4 address or a bracketed IPv6 address.
func redirectableHost(host []byte) bool {
	if len(host) == 0 {
		return false
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// setHSTS adds the site's Strict-Transport-Security to an HTTPS response.
// It runs after the pipeline, deferred, and does not allocate: hits call it.
func (s *Server) setHSTS(ctx *fasthttp.RequestCtx, st *site) {
	if st.TLS.HSTS == "" {
		return
	}
	if !s.https(ctx, peerAddr(ctx)) {
		// The site's policy is the edge's to state: the origin's copy
		// (a WordPress plugin's) does not go out over plain HTTP either.
		ctx.Response.Header.Del(fasthttp.HeaderStrictTransportSecurity)
		return
	}
	ctx.Response.Header.Set(fasthttp.HeaderStrictTransportSecurity, st.TLS.HSTS)
}
