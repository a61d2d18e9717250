package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"go/build"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/config"
)

// TLS at the edge, end to end: certificate files reloaded on SIGHUP, and
// certificates from a real ACME CA, Let's Encrypt's Pebble, on loopback.
// test.sh installs pebble and pebble-challtestsrv (its DNS server, which
// makes the site's host name resolve to 127.0.0.1 for Pebble's validation).

// pemCA issues certificates for the tests and writes them as PEM files.
type pemCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	pool *x509.CertPool
	n    int64
}

func newPEMCA(t *testing.T) *pemCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edgevitals e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
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
	return &pemCA{cert: cert, key: key, pool: pool, n: 1,
		pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// write issues a server certificate for names (IP addresses go in as IP
// SANs) and writes it and its key to certFile and keyFile. It returns the
// serial number.
func (ca *pemCA) write(t *testing.T, certFile, keyFile string, names ...string) *big.Int {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.n++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.n), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tmpl.SerialNumber
}

// servedSerial is the serial of the certificate the TLS listener at addr
// presents for serverName, verified against roots.
func servedSerial(t *testing.T, addr, serverName string, roots *x509.CertPool) (*big.Int, error) {
	t.Helper()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: &tls.Config{ServerName: serverName, RootCAs: roots}}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // a first ACME handshake waits for issuance
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// TestServeTLSCertificateFiles: serve loads the certificate files of its
// config; SIGHUP reads them again (certbot renewed them); a damaged file
// is refused with its line, and the running certificate stays.
func TestServeTLSCertificateFiles(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, r.Header.Get("X-Forwarded-Proto"))
	}))
	defer origin.Close()
	dir := t.TempDir()
	ca := newPEMCA(t)
	crt, key := filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	first := ca.write(t, crt, key, "www.example.com")
	path := filepath.Join(dir, "edgevitals.toml")
	src := fmt.Sprintf(`data_dir = %q
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
tls_listen = "127.0.0.1:0"
[[server.certificate]]
cert_file = %q
key_file = %q
[[site]]
name = "blog"
hosts = ["www.example.com"]
origins = [%q]
hsts = "max-age=600"
`, dir, crt, key, origin.URL)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	a, err := newApp(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("app: %v", err)
		}
	})
	tlsAddr := a.tlsLn.Addr().String()
	want := func(what string, serial *big.Int) {
		t.Helper()
		got, err := servedSerial(t, tlsAddr, "www.example.com", ca.pool)
		if err != nil || got.Cmp(serial) != 0 {
			t.Fatalf("%s: served serial %v (%v), want %v", what, got, err, serial)
		}
	}
	want("at start", first)

	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, tlsAddr)
		},
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://www.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "https" || resp.Header.Get("Strict-Transport-Security") != "max-age=600" {
		t.Errorf("over TLS: origin saw X-Forwarded-Proto %q, Strict-Transport-Security %q", body, resp.Header.Get("Strict-Transport-Security"))
	}

	second := ca.write(t, crt, key, "www.example.com")
	if err := a.reload(path); err != nil {
		t.Fatal(err)
	}
	want("after SIGHUP", second)

	// certbot interrupted mid-write: a truncated certificate.
	if err := os.WriteFile(crt, []byte("-----BEGIN CERTIFICATE-----\nMIIB"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.reload(path); err == nil {
		t.Fatal("a reload with a damaged certificate was accepted")
	}
	if !strings.Contains(logs.String(), "config reload refused") || !strings.Contains(logs.String(), "edgevitals.toml:7: server.certificate[0].cert_file") {
		t.Errorf("want one log line naming the file's line, got:\n%s", logs.String())
	}
	want("after a refused reload", second)
	var stdout, stderr bytes.Buffer
	if code := runCheck([]string{"-config", path}, &stdout, &stderr); code != 1 || !strings.HasPrefix(stderr.String(), path+":7: server.certificate[0].cert_file: ") {
		t.Errorf("check = %d, %q; want 1 and the problem on line 7", code, stderr.String())
	}
}

// pebbleTools finds pebble and pebble-challtestsrv; outside CI their
// absence skips loudly, under CI=true it fails.
func pebbleTools(t *testing.T) (pebble, challtestsrv string) {
	t.Helper()
	find := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		p := filepath.Join(build.Default.GOPATH, "bin", name)
		if _, err := os.Stat(p); err != nil {
			return ""
		}
		return p
	}
	pebble, challtestsrv = find("pebble"), find("pebble-challtestsrv")
	if pebble == "" || challtestsrv == "" {
		msg := "!!! pebble and pebble-challtestsrv are needed for the ACME test: ./test.sh installs them (go install github.com/letsencrypt/pebble/v2/cmd/...)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return pebble, challtestsrv
}

// lockedWriter collects a child process's output for the failure message.
type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// startProcess runs a test server until the test ends; its output is
// logged when the test fails.
func startProcess(t *testing.T, name string, env []string, args ...string) {
	t.Helper()
	out := &lockedWriter{}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cmd.Process.Kill(); err != nil {
			t.Errorf("stop %s: %v", name, err)
		}
		cmd.Wait() //nolint:errcheck // killed: the error says so
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
}

// poll calls cond until it holds or the deadline passes. It is for an
// external server (Pebble, its DNS server) that has no event to wait on.
func poll(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(limit)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
	}
}

// TestServeACMEWithPebble gets certificates from a real ACME CA for a site
// host and serves it: once by TLS-ALPN-01 (Pebble can reach only the TLS
// listener), once by HTTP-01 (only the plain listener, where the edge
// answers the challenge before the cache). A page is a miss keyed https
// over TLS, then a hit over TLS; plain HTTP is its own key. With a
// 30-second certificate, autocert renews it and the next handshakes get the
// new serial.
func TestServeACMEWithPebble(t *testing.T) {
	pebble, challtestsrv := pebbleTools(t)
	dns := freeLoopbackAddr(t)
	dnsMgmt := freeLoopbackAddr(t)
	startProcess(t, challtestsrv, nil, "-dnsserver", dns, "-management", dnsMgmt,
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "")
	poll(t, "pebble-challtestsrv", 30*time.Second, func() bool {
		c, err := net.Dial("tcp", dnsMgmt)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	t.Run("tls-alpn-01 and renewal", func(t *testing.T) {
		acmeEdge(t, pebble, dns, "tls-alpn-01", 30*time.Second)
	})
	t.Run("http-01", func(t *testing.T) {
		acmeEdge(t, pebble, dns, "http-01", 24*time.Hour)
	})
}

// acmeEdge runs an edge with ACME against a fresh Pebble that validates
// challenges of one type only, and checks what it serves. A validity under
// a minute also checks renewal.
func acmeEdge(t *testing.T, pebble, dns, challenge string, validity time.Duration) {
	const host = "blog.test"
	dir := t.TempDir()
	// Pebble's own HTTPS, under a CA the edge is told to trust (ca_roots).
	ca := newPEMCA(t)
	pebbleCrt, pebbleKey := filepath.Join(dir, "pebble.crt"), filepath.Join(dir, "pebble.key")
	ca.write(t, pebbleCrt, pebbleKey, "127.0.0.1", "localhost")
	roots := filepath.Join(dir, "roots.pem")
	if err := os.WriteFile(roots, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	pebbleAddr, pebbleMgmt := freeLoopbackAddr(t), freeLoopbackAddr(t)

	var seenMu sync.Mutex
	var seen []string
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenMu.Lock()
		seen = append(seen, r.Header.Get("X-Forwarded-Proto")+" "+r.URL.Path)
		seenMu.Unlock()
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<p>hello</p>")
	}))
	defer origin.Close()
	var logs lockedBuffer
	a := startTestAppLog(t, origin.URL, func(c *config.Config) {
		c.Server.TLSListen = "127.0.0.1:0"
		c.Server.ACME = &config.ACME{
			Email:     "ops@blog.test",
			Directory: "https://" + pebbleAddr + "/dir",
			CacheDir:  filepath.Join(dir, "acme"),
			CARoots:   roots,
		}
		c.Sites[0].Hosts = []string{host}
		c.Sites[0].HSTS = "max-age=600"
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("edgevitals log:\n%s", logs.String())
		}
	})
	plainAddr, tlsAddr := a.proxyLn.Addr().String(), a.tlsLn.Addr().String()
	port := func(addr string) int {
		_, p, _ := net.SplitHostPort(addr)
		var n int
		fmt.Sscan(p, &n) //nolint:errcheck // a listener's own port
		return n
	}
	// Pebble validates on these ports; the other challenge's goes nowhere.
	closed := port(freeLoopbackAddr(t))
	httpPort, tlsPort := closed, port(tlsAddr)
	if challenge == "http-01" {
		httpPort, tlsPort = port(plainAddr), closed
	}
	pcfg, err := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":           pebbleAddr,
		"managementListenAddress": pebbleMgmt,
		"certificate":             pebbleCrt,
		"privateKey":              pebbleKey,
		"httpPort":                httpPort,
		"tlsPort":                 tlsPort,
		"keyAlgorithm":            "ecdsa",
		"profiles": map[string]any{"default": map[string]any{
			"description": "edgevitals test", "validityPeriod": int(validity.Seconds()),
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	pcfgPath := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(pcfgPath, pcfg, 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, pebble, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_VA_ALWAYS_VALID=0", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"},
		"-config", pcfgPath, "-dnsserver", dns)
	pebbleClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	defer pebbleClient.CloseIdleConnections()
	poll(t, "pebble", 30*time.Second, func() bool {
		resp, err := pebbleClient.Get("https://" + pebbleAddr + "/dir")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	resp, err := pebbleClient.Get("https://" + pebbleMgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	issuing := x509.NewCertPool()
	if !issuing.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble /roots/0: no PEM root in %q", rootPEM)
	}

	// The first handshake for the host waits for the certificate.
	serial, err := servedSerial(t, tlsAddr, host, issuing)
	if err != nil {
		t.Fatalf("TLS handshake for %s with a certificate from pebble by %s: %v", host, challenge, err)
	}

	tlsClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: issuing},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, tlsAddr)
		},
	}}
	defer tlsClient.CloseIdleConnections()
	get := func(c *http.Client, url string) (cacheStatus, hsts string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck // only the headers matter
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", url, resp.Status)
		}
		return resp.Header.Get("Cache-Status"), resp.Header.Get("Strict-Transport-Security")
	}
	if cs, hsts := get(tlsClient, "https://"+host+"/post/"); !strings.Contains(cs, "fwd=uri-miss") || hsts != "max-age=600" {
		t.Errorf("first over TLS: Cache-Status %q, HSTS %q; want a miss with HSTS", cs, hsts)
	}
	if cs, _ := get(tlsClient, "https://"+host+"/post/"); !strings.Contains(cs, "hit") {
		t.Errorf("second over TLS: Cache-Status %q, want a hit", cs)
	}
	if cs, hsts := get(http.DefaultClient, "http://"+plainAddr+"/post/"); !strings.Contains(cs, "fwd=uri-miss") || hsts != "" {
		t.Errorf("first over plain HTTP: Cache-Status %q, HSTS %q; want a miss of its own, without HSTS", cs, hsts)
	}
	seenMu.Lock()
	if got := strings.Join(seen, ", "); got != "https /post/, http /post/" {
		t.Errorf("origin saw %q, want one https and one http fetch", got)
	}
	seenMu.Unlock()

	if validity > time.Minute {
		return
	}
	// autocert renews at two thirds of the lifetime (about 20 s here).
	poll(t, "a renewed certificate", 90*time.Second, func() bool {
		s, err := servedSerial(t, tlsAddr, host, issuing)
		if err != nil {
			t.Fatalf("handshake while renewing: %v", err)
		}
		return s.Cmp(serial) != 0
	})
	if cs, _ := get(tlsClient, "https://"+host+"/post/"); !strings.Contains(cs, "hit") {
		t.Errorf("after renewal over TLS: Cache-Status %q, want a hit", cs)
	}
}
