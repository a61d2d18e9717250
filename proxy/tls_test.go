package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	n    int64
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "edgevitals test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool, n: 1}
}

// issue makes a server certificate for names, with its Leaf set.
func (ca *testCA) issue(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.n++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.n),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// withCerts serves list on a TLS listener too (startTLS).
func withCerts(t *testing.T, list ...tls.Certificate) func(*Options) {
	return func(o *Options) {
		c, err := NewCerts(CertsOptions{Certificates: list})
		if err != nil {
			t.Fatal(err)
		}
		o.Certs = c
	}
}

// startTLS starts the harness proxy's TLS listener and returns its address.
func (h *harness) startTLS() string {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	// The harness's Shutdown closes the listener, and ServeTLS returns.
	go h.proxy.ServeTLS(ln) //nolint:errcheck // returns nil at Shutdown
	return ln.Addr().String()
}

// tlsClient is an HTTPS client for the proxy at addr that trusts roots,
// whatever host the URL names.
func tlsClient(t *testing.T, addr string, roots *x509.CertPool) *http.Client {
	t.Helper()
	c := &http.Client{
		Transport: &http.Transport{
			DisableCompression: true,
			TLSClientConfig:    &tls.Config{RootCAs: roots},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// doFromNoRedirect is h.doFrom, showing redirects instead of following them.
func (h *harness) doFromNoRedirect(local, method, path string, hdr ...string) response {
	h.t.Helper()
	saved := h.client
	h.client = &http.Client{
		Transport: &http.Transport{
			DisableCompression: true,
			DialContext:        (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer func() { h.client.CloseIdleConnections(); h.client = saved }()
	return h.do(method, path, hdr...)
}

// getVia sends GET url with client and returns the response, body read.
func getVia(t *testing.T, c *http.Client, method, url string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range hdr {
		k, v, _ := strings.Cut(line, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// served is the leaf certificate the TLS listener at addr presents for
// serverName ("" sends no SNI).
func served(t *testing.T, addr, serverName string) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: serverName, InsecureSkipVerify: true}) //nolint:gosec // the test looks at which certificate comes, not whether it verifies
	if err != nil {
		t.Fatalf("handshake for %q: %v", serverName, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// TestTLSCertificateBySNI: each handshake gets the certificate whose names
// cover its server name; a wildcard covers exactly one label; no SNI or an
// unknown name gets the first certificate.
func TestTLSCertificateBySNI(t *testing.T) {
	ca := newTestCA(t)
	blog := ca.issue(t, "www.example.com", "example.com")
	shop := ca.issue(t, "*.shop.example")
	f := func(order []tls.Certificate, cases map[string]*tls.Certificate) {
		t.Helper()
		h := newHarness(t, page("x"), withCerts(t, order...))
		addr := h.startTLS()
		for sni, want := range cases {
			if got := served(t, addr, sni); got.SerialNumber.Cmp(want.Leaf.SerialNumber) != 0 {
				t.Errorf("SNI %q: got the certificate for %q, want the one for %q", sni, got.DNSNames, want.Leaf.DNSNames)
			}
		}
	}
	f([]tls.Certificate{blog, shop}, map[string]*tls.Certificate{
		"www.example.com":       &blog,
		"EXAMPLE.com":           &blog,
		"a.shop.example":        &shop,
		"b.a.shop.example":      &blog, // two labels: not covered, the default
		"shop.example":          &blog, // the wildcard does not cover its own parent
		"unknown.test":          &blog,
		"":                      &blog,
		"www.example.com.":      &blog,
		"www.shop.example":      &shop,
		"www.example.com.evil.": &blog,
	})
	// The default is the first certificate, whichever it is.
	f([]tls.Certificate{shop, blog}, map[string]*tls.Certificate{
		"www.example.com": &blog,
		"unknown.test":    &shop,
		"":                &shop,
	})
}

// TestTLSSchemeInCacheKey: a page fetched over TLS is fetched and stored as
// https (X-Forwarded-Proto from the connection), then a hit over TLS; the
// same path over plain HTTP is another key, fetched as http.
func TestTLSSchemeInCacheKey(t *testing.T) {
	ca := newTestCA(t)
	h := newHarness(t, page("hello", "Cache-Control: max-age=120", "Content-Type: text/html"), withCerts(t, ca.issue(t, "www.example.com")))
	c := tlsClient(t, h.startTLS(), ca.pool)
	const url = "https://www.example.com/a/"

	r := getVia(t, c, http.MethodGet, url, "X-Forwarded-Proto: http")
	wantCacheStatus(t, r, "fwd=uri-miss", "stored")
	if got := h.lastSeen().Header.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("over TLS the origin got X-Forwarded-Proto %q, want https (the visitor's claim is not believed)", got)
	}
	wantCacheStatus(t, getVia(t, c, http.MethodGet, url), "hit")

	r = h.get("/a/")
	wantCacheStatus(t, r, "fwd=uri-miss", "stored")
	if got := h.lastSeen().Header.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("over plain HTTP the origin got X-Forwarded-Proto %q, want http", got)
	}
	wantCacheStatus(t, h.get("/a/"), "hit")
	wantCacheStatus(t, getVia(t, c, http.MethodGet, url), "hit")
	if n := h.originCount(); n != 2 {
		t.Errorf("origin saw %d requests, want 2 (one per scheme)", n)
	}
}

// TestHTTPSRedirect: a site with HTTPSRedirect sends plain-HTTP visitors to
// the same URL over HTTPS (301, or 308 when the method must be kept), and
// never the origin; HTTPS visitors, those a trusted terminator vouches for,
// and purges are served.
func TestHTTPSRedirect(t *testing.T) {
	ca := newTestCA(t)
	redirect := func(o *Options) { o.Sites[0].TLS.HTTPSRedirect = true }
	h := newHarness(t, page("hello", "Cache-Control: max-age=120"), withCerts(t, ca.issue(t, "www.example.com")), redirect, behindTerminator)
	tlsAddr := h.startTLS()
	_, port, _ := net.SplitHostPort(tlsAddr)
	f := func(from, method, path string, wantStatus int, wantLocation string, hdr ...string) {
		t.Helper()
		r := h.doFromNoRedirect(from, method, path, hdr...)
		if r.Status != wantStatus || r.Header.Get("Location") != wantLocation {
			t.Errorf("%s %s from %s: %d Location %q, want %d %q", method, path, from, r.Status, r.Header.Get("Location"), wantStatus, wantLocation)
		}
	}
	base := "https://www.example.com:" + port
	f("127.0.0.2", http.MethodGet, "/a/?b=1&utm_source=x", http.StatusMovedPermanently, base+"/a/?b=1&utm_source=x")
	f("127.0.0.2", http.MethodHead, "/a/", http.StatusMovedPermanently, base+"/a/")
	f("127.0.0.2", http.MethodPost, "/wp-comments-post.php", http.StatusPermanentRedirect, base+"/wp-comments-post.php")
	f("127.0.0.2", http.MethodGet, "/a/", http.StatusMovedPermanently, "https://shop.example:"+port+"/a/", "Host: shop.example:8080")
	// A stranger's X-Forwarded-Proto is not believed.
	f("127.0.0.2", http.MethodGet, "/a/", http.StatusMovedPermanently, base+"/a/", "X-Forwarded-Proto: https")
	if n := h.originCount(); n != 0 {
		t.Fatalf("redirected requests reached the origin %d times", n)
	}
	// The terminator says the visitor used HTTPS: served.
	f("127.0.0.1", http.MethodGet, "/a/", http.StatusOK, "", "X-Forwarded-Proto: https")
	// PURGE from the CMS is plain HTTP and must not be redirected: the
	// purge answer (403 from a non-purger) comes from the purge handler.
	f("127.0.0.2", "PURGE", "/a/", http.StatusForbidden, "")
	if r := getVia(t, tlsClient(t, tlsAddr, ca.pool), http.MethodGet, "https://www.example.com/a/"); r.Status != http.StatusOK {
		t.Errorf("over TLS: %d, want 200", r.Status)
	}
}

// TestHTTPSRedirectWithoutTLSListener: behind a TLS terminator on 443 the
// Location has no port; an IPv6 host keeps its brackets.
func TestHTTPSRedirectWithoutTLSListener(t *testing.T) {
	h := newHarness(t, page("hello"), func(o *Options) { o.Sites[0].TLS.HTTPSRedirect = true })
	f := func(host, want string) {
		t.Helper()
		if r := h.get("/p?q=1", "Host: "+host); r.Status != http.StatusMovedPermanently || r.Header.Get("Location") != want {
			t.Errorf("Host %q: %d Location %q, want 301 %q", host, r.Status, r.Header.Get("Location"), want)
		}
	}
	f("www.example.com", "https://www.example.com/p?q=1")
	f("www.example.com:8080", "https://www.example.com/p?q=1")
	f("[2001:db8::1]:8080", "https://[2001:db8::1]/p?q=1")
}

// TestHSTS: the site's Strict-Transport-Security is on every HTTPS response
// (miss, hit, bypass, an origin error; the origin's own value replaced),
// over TLS or vouched for by the terminator, and never over plain HTTP.
func TestHSTS(t *testing.T) {
	ca := newTestCA(t)
	const hsts = "max-age=31536000; includeSubDomains"
	origin := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=5")
		if r.URL.Path == "/missing/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "max-age=120")
		io.WriteString(w, "hello") //nolint:errcheck // the test client reads it
	}
	h := newHarness(t, origin, withCerts(t, ca.issue(t, "www.example.com")), behindTerminator,
		func(o *Options) { o.Sites[0].TLS.HSTS = hsts })
	c := tlsClient(t, h.startTLS(), ca.pool)
	f := func(what string, r response, want string) {
		t.Helper()
		if got := r.Header.Values("Strict-Transport-Security"); strings.Join(got, ",") != want {
			t.Errorf("%s: Strict-Transport-Security %q, want %q", what, got, want)
		}
	}
	f("TLS miss", getVia(t, c, http.MethodGet, "https://www.example.com/a/"), hsts)
	f("TLS hit", getVia(t, c, http.MethodGet, "https://www.example.com/a/"), hsts)
	f("TLS bypass", getVia(t, c, http.MethodGet, "https://www.example.com/wp-admin/"), hsts)
	f("TLS 404", getVia(t, c, http.MethodGet, "https://www.example.com/missing/"), hsts)
	f("terminator https", h.doFrom("127.0.0.1", http.MethodGet, "/a/", "X-Forwarded-Proto: https"), hsts)
	f("plain hit", h.doFrom("127.0.0.2", http.MethodGet, "/a/"), "")
	f("plain miss", h.doFrom("127.0.0.2", http.MethodGet, "/b/"), "")
	f("stranger says https", h.doFrom("127.0.0.2", http.MethodGet, "/a/", "X-Forwarded-Proto: https"), "")
}

// TestACMEChallengeAtEdge: with ACME on, /.well-known/acme-challenge/ is
// answered by the edge from the tokens it holds, before the cache and the
// bypass and redirect rules, for its ACME hosts only; it never reaches the
// origin. Without ACME the origin answers it (certbot --webroot).
func TestACMEChallengeAtEdge(t *testing.T) {
	dir := t.TempDir()
	// autocert keeps a pending HTTP-01 answer in its cache as "<token>+http-01".
	if err := os.WriteFile(filepath.Join(dir, "tok123+http-01"), []byte("tok123.thumbprint"), 0o600); err != nil {
		t.Fatal(err)
	}
	acmeOn := func(o *Options) {
		c, err := NewCerts(CertsOptions{ACME: &ACMEOptions{
			Directory: "https://127.0.0.1:1/directory", // never asked: no handshake needs a certificate
			CacheDir:  dir,
			Hosts:     []string{"www.example.com"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		o.Certs = c
		o.Sites[0].TLS.HTTPSRedirect = true
	}
	h := newHarness(t, page("from the origin", "Cache-Control: max-age=120"), acmeOn)
	f := func(host, path string, wantStatus int, wantBody string) {
		t.Helper()
		for i := range 2 { // twice: a cached answer would show on the second
			r := h.get(path, "Host: "+host)
			if r.Status != wantStatus || (wantBody != "" && r.Body != wantBody) {
				t.Errorf("%s%s (%d): %d %q, want %d %q", host, path, i, r.Status, r.Body, wantStatus, wantBody)
			}
			if len(r.Header.Values("Cache-Status")) != 0 {
				t.Errorf("%s%s: Cache-Status %q: the challenge went through the cache", host, path, r.Header.Values("Cache-Status"))
			}
		}
	}
	f("www.example.com", "/.well-known/acme-challenge/tok123", http.StatusOK, "tok123.thumbprint")
	f("www.example.com:8080", "/.well-known/acme-challenge/tok123", http.StatusOK, "tok123.thumbprint")
	f("www.example.com", "/.well-known/acme-challenge/unknown", http.StatusNotFound, "")
	f("other.example", "/.well-known/acme-challenge/tok123", http.StatusForbidden, "") // "*" site, not an ACME host
	if n := h.originCount(); n != 0 {
		t.Errorf("challenge requests reached the origin %d times", n)
	}

	plain := newHarness(t, page("from the origin", "Cache-Control: max-age=120"))
	if r := plain.get("/.well-known/acme-challenge/tok123"); r.Body != "from the origin" || plain.originCount() != 1 {
		t.Errorf("without ACME: %d %q, origin saw %d, want the origin's answer", r.Status, r.Body, plain.originCount())
	}
}

// TestCertsSetCertificates: a bad set is refused and the served one stays;
// a good one is served from the next handshake.
func TestCertsSetCertificates(t *testing.T) {
	ca := newTestCA(t)
	first, second := ca.issue(t, "www.example.com"), ca.issue(t, "www.example.com")
	h := newHarness(t, page("x"), withCerts(t, first))
	addr := h.startTLS()
	bad := second
	bad.Leaf = nil
	if err := h.proxy.opt.Certs.SetCertificates([]tls.Certificate{bad}); err == nil {
		t.Error("a certificate without its leaf was accepted")
	}
	if got := served(t, addr, "www.example.com").SerialNumber; got.Cmp(first.Leaf.SerialNumber) != 0 {
		t.Errorf("after a refused set, serial %s, want %s", got, first.Leaf.SerialNumber)
	}
	if err := h.proxy.opt.Certs.SetCertificates([]tls.Certificate{second}); err != nil {
		t.Fatal(err)
	}
	if got := served(t, addr, "www.example.com").SerialNumber; got.Cmp(second.Leaf.SerialNumber) != 0 {
		t.Errorf("after a set, serial %s, want %s", got, second.Leaf.SerialNumber)
	}
}

// TestTLSOffersHTTP11Only: a browser offering h2 gets http/1.1 (fasthttp
// speaks no HTTP/2); acme-tls/1 is offered only with ACME on.
func TestTLSOffersHTTP11Only(t *testing.T) {
	ca := newTestCA(t)
	h := newHarness(t, page("x"), withCerts(t, ca.issue(t, "www.example.com")))
	conn, err := tls.Dial("tcp", h.startTLS(), &tls.Config{ServerName: "www.example.com", RootCAs: ca.pool, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Errorf("negotiated %q, want http/1.1", p)
	}
	if got := h.proxy.opt.Certs.TLSConfig().NextProtos; strings.Join(got, ",") != "http/1.1" {
		t.Errorf("NextProtos without ACME = %q", got)
	}
}

// TestCertsFilesWinOverACME: with files and ACME both on, a name a file
// covers is served from the file (the CA is never asked), other ACME hosts
// go to the CA (unreachable here: the handshake fails), and names that
// are neither get the default file. acme-tls/1 is offered beside http/1.1.
func TestCertsFilesWinOverACME(t *testing.T) {
	ca := newTestCA(t)
	file := ca.issue(t, "www.example.com")
	c, err := NewCerts(CertsOptions{
		Certificates: []tls.Certificate{file},
		ACME: &ACMEOptions{
			Directory: "https://127.0.0.1:1/directory", // refused at once
			CacheDir:  t.TempDir(),
			Hosts:     []string{"www.example.com", "shop.example"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.TLSConfig().NextProtos; strings.Join(got, ",") != "http/1.1,acme-tls/1" {
		t.Errorf("NextProtos with ACME = %q", got)
	}
	h := newHarness(t, page("x"), func(o *Options) { o.Certs = c })
	addr := h.startTLS()
	for _, sni := range []string{"www.example.com", "unknown.test", ""} {
		if got := served(t, addr, sni); got.SerialNumber.Cmp(file.Leaf.SerialNumber) != 0 {
			t.Errorf("SNI %q: serial %s, want the file's %s", sni, got.SerialNumber, file.Leaf.SerialNumber)
		}
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "shop.example", InsecureSkipVerify: true}) //nolint:gosec // any certificate would be wrong here
	if err == nil {
		conn.Close()
		t.Error("SNI shop.example: a handshake succeeded without a certificate from the CA")
	}
}

// TestServeTLSAfterPROXYHeader: with ProxyProtocol, a TCP load balancer's
// PROXY header comes before the TLS handshake; the origin is told of the
// client it names, and of https.
func TestServeTLSAfterPROXYHeader(t *testing.T) {
	ca := newTestCA(t)
	h := newHarness(t, page("hello"), withCerts(t, ca.issue(t, "www.example.com")), func(o *Options) { o.ProxyProtocol = true })
	raw, err := net.Dial("tcp", h.startTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(raw, "PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n"); err != nil {
		t.Fatal(err)
	}
	conn := tls.Client(raw, &tls.Config{ServerName: "www.example.com", RootCAs: ca.pool})
	if _, err := io.WriteString(conn, "GET /a/ HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	seen := h.lastSeen()
	if resp.StatusCode != http.StatusOK || seen.Header.Get("X-Forwarded-For") != "203.0.113.7" || seen.Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("%s; origin got X-Forwarded-For %q, X-Forwarded-Proto %q; want 200, 203.0.113.7, https",
			resp.Status, seen.Header.Get("X-Forwarded-For"), seen.Header.Get("X-Forwarded-Proto"))
	}
}
