package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Certificate is a certificate chain and its private key in PEM files, as certbot writes
// them (fullchain.pem, privkey.pem). It is served for the DNS names the certificate lists.
type Certificate struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// ACME gets certificates from an ACME CA for every site host that is a DNS name (ACMEHosts).
type ACME struct {
	Email     string `toml:"email"`     // account contact; optional
	Directory string `toml:"directory"` // default DefaultACMEDirectory
	CacheDir  string `toml:"cache_dir"` // account key and certificates; default <data_dir>/acme
	// CARoots is a PEM file of the roots trusted for the directory's HTTPS, for a private
	// or test CA (Pebble); "" = the system's roots.
	CARoots string `toml:"ca_roots"`
}

// DefaultACMEDirectory is Let's Encrypt's production directory.
const DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"

// fill sets the defaults a loaded config states outright. a may be nil (ACME off).
func (a *ACME) fill(dataDir string) {
	if a == nil {
		return
	}
	if a.Directory == "" {
		a.Directory = DefaultACMEDirectory
	}
	if a.CacheDir == "" {
		a.CacheDir = filepath.Join(dataDir, "acme")
	}
}

// maxPEMBytes bounds a certificate, key or roots file: a chain is a few KiB.
const maxPEMBytes = 1 << 20

// PairError says which file of a certificate pair is wrong: Field is "cert_file" or
// "key_file".
type PairError struct {
	Field string
	Err   error
}

func (e *PairError) Error() string { return e.Err.Error() }
func (e *PairError) Unwrap() error { return e.Err }

// KeyPair reads a certificate chain and its private key and checks that they belong
// together and that the certificate names at least one DNS name. The returned
// certificate's Leaf is set. serve loads certificates with it and check validates them
// with it, so both apply one rule. Errors are *PairError.
func KeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := readPEMFile(certFile)
	if err != nil {
		return tls.Certificate{}, &PairError{"cert_file", err}
	}
	keyPEM, err := readPEMFile(keyFile)
	if err != nil {
		return tls.Certificate{}, &PairError{"key_file", err}
	}
	if b, _ := pem.Decode(certPEM); b == nil || b.Type != "CERTIFICATE" {
		return tls.Certificate{}, &PairError{"cert_file", fmt.Errorf("%s: no PEM certificate", certFile)}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, &PairError{"key_file", fmt.Errorf("%s with %s: %w", keyFile, certFile, err)}
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, &PairError{"cert_file", fmt.Errorf("%s: %w", certFile, err)}
		}
	}
	if len(cert.Leaf.DNSNames) == 0 {
		return tls.Certificate{}, &PairError{"cert_file", fmt.Errorf("%s: the certificate names no DNS name (subjectAltName), so no request could select it", certFile)}
	}
	return cert, nil
}

// readPEMFile reads a regular file of at most maxPEMBytes.
func readPEMFile(name string) ([]byte, error) {
	if name == "" {
		return nil, errors.New("must be set")
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close() // read only: a failed close loses nothing
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPEMBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPEMBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes; is this a PEM file?", name, maxPEMBytes)
	}
	return data, nil
}

// CARootPool reads the PEM roots of server.acme.ca_roots.
func CARootPool(name string) (*x509.CertPool, error) {
	data, err := readPEMFile(name)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate", name)
	}
	return pool, nil
}

// ACMEHosts lists the host names ACME gets certificates for: every site host that is a DNS
// name with at least one dot, without its port, in file order and without repeats. "*",
// IP addresses and single-label names ("localhost") are left out: no public CA issues
// for them.
func (c *Config) ACMEHosts() []string {
	var hosts []string
	seen := map[string]bool{}
	for _, s := range c.Sites {
		for _, h := range s.Hosts {
			if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
				h = h[:i]
			}
			h = strings.ToLower(strings.TrimSuffix(h, "."))
			if h == "*" || !strings.Contains(h, ".") || !validHostname(h) || seen[h] {
				continue
			}
			if _, err := netip.ParseAddr(h); err == nil {
				continue
			}
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	return hosts
}

func (s *Server) validateTLS(v *checker) {
	if s.TLSListen == "" {
		if len(s.Certificates) > 0 {
			v.fail("server.certificate", "needs server.tls_listen (e.g. \":443\") to be served")
		}
		if s.ACME != nil {
			v.fail("server.acme", "needs server.tls_listen (e.g. \":443\") to be served")
		}
	} else {
		v.listen("server.tls_listen", s.TLSListen)
		if sameListener(s.Listen, s.TLSListen) {
			v.fail("server.tls_listen", "must not share a port with server.listen (%q), got %q", s.Listen, s.TLSListen)
		}
		if sameListener(s.AdminListen, s.TLSListen) {
			v.fail("server.tls_listen", "must not share a port with server.admin_listen (%q), got %q", s.AdminListen, s.TLSListen)
		}
		if len(s.Certificates) == 0 && s.ACME == nil {
			v.fail("server.tls_listen", "needs a [[server.certificate]] or [server.acme] to serve")
		}
	}
	for i, c := range s.Certificates {
		if _, err := KeyPair(c.CertFile, c.KeyFile); err != nil {
			field := "cert_file"
			var pe *PairError
			if errors.As(err, &pe) {
				field = pe.Field
			}
			v.fail(fmt.Sprintf("server.certificate[%d].%s", i, field), "%s", err)
		}
	}
	if a := s.ACME; a != nil {
		if u, ok := v.url("server.acme.directory", a.Directory); ok && u.Scheme != "https" {
			v.fail("server.acme.directory", "must be an https:// URL, got %q", a.Directory)
		}
		if a.CacheDir == "" {
			v.fail("server.acme.cache_dir", "must be set")
		}
		if a.Email != "" {
			if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email {
				v.fail("server.acme.email", `must be an e-mail address like "ops@example.com", got %q`, a.Email)
			}
		}
		if a.CARoots != "" {
			if _, err := CARootPool(a.CARoots); err != nil {
				v.fail("server.acme.ca_roots", "%s", err)
			}
		}
	}
}

// validateTLS checks the TLS listener, its certificates and ACME, which
// needs a host to get a certificate for.
func (c *Config) validateTLS(v *checker) {
	c.Server.validateTLS(v)
	if c.Server.ACME != nil && len(c.Sites) > 0 && len(c.ACMEHosts()) == 0 {
		v.fail("server.acme", `no site host is a DNS name to get a certificate for ("*", IP addresses and names without a dot are left out)`)
	}
}

// validHSTS accepts a Strict-Transport-Security value (RFC 6797 §6.1): max-age once, with a
// number of seconds (optionally quoted), and includeSubDomains and preload at most once
// each; directive names in any case.
func validHSTS(s string) bool {
	seen := map[string]bool{}
	for d := range strings.SplitSeq(s, ";") {
		if d = strings.TrimSpace(d); d == "" {
			continue // empty directives are allowed: "max-age=60;"
		}
		name, val, hasVal := strings.Cut(d, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if seen[name] {
			return false
		}
		seen[name] = true
		switch name {
		case "max-age":
			val = strings.TrimSpace(val)
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
			if _, err := strconv.ParseUint(val, 10, 63); err != nil || !hasVal || strings.HasPrefix(val, "+") {
				return false
			}
		case "includesubdomains", "preload":
			if hasVal {
				return false
			}
		default:
			return false
		}
	}
	return seen["max-age"]
}
