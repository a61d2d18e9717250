package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writePair writes a self-signed certificate for names and its key under
// dir as name.crt and name.key and returns both paths.
func writePair(t *testing.T, dir, name string, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestTLSProblems: every TLS mistake is one problem, on its line, naming
// the key and the file.
func TestTLSProblems(t *testing.T) {
	dir := t.TempDir()
	aCrt, aKey := writePair(t, dir, "a", "www.example.com")
	bCrt, bKey := writePair(t, dir, "b", "shop.example")
	noNames, noNamesKey := writePair(t, dir, "nonames")
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	_ = bKey // b's key belongs to b, and is paired with a's certificate below

	f := func(name, src string, want ...string) {
		t.Helper()
		_, err := Parse("test.toml", []byte(minimal+src))
		var got []string
		if err != nil {
			for _, p := range err.(*Errors).Problems {
				got = append(got, p.String())
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: problems\n%s\nwant %d:\n%s", name, strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
		}
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("%s: problem %d = %q, want it to start with %q", name, i, got[i], want[i])
			}
		}
	}
	pair := func(crt, key string) string {
		return fmt.Sprintf("[[server.certificate]]\ncert_file = %q\nkey_file = %q\n", crt, key)
	}
	f("two good pairs", "[server]\ntls_listen = \":8443\"\n"+pair(aCrt, aKey)+pair(bCrt, bKey))
	f("a key that is not the certificate's", "[server]\ntls_listen = \":8443\"\n"+pair(aCrt, aKey)+pair(aCrt, bKey),
		"test.toml:13: server.certificate[1].key_file: "+bKey+" with "+aCrt+": tls: private key does not match public key")
	f("not PEM", "[server]\ntls_listen = \":8443\"\n"+pair(junk, aKey),
		"test.toml:9: server.certificate[0].cert_file: "+junk+": no PEM certificate")
	f("missing key file", "[server]\ntls_listen = \":8443\"\n"+pair(aCrt, missing),
		"test.toml:10: server.certificate[0].key_file: open "+missing+": no such file or directory")
	f("a directory", "[server]\ntls_listen = \":8443\"\n"+pair(dir, aKey),
		"test.toml:9: server.certificate[0].cert_file: "+dir+": not a regular file")
	f("no DNS names", "[server]\ntls_listen = \":8443\"\n"+pair(noNames, noNamesKey),
		"test.toml:9: server.certificate[0].cert_file: "+noNames+": the certificate names no DNS name")
	f("certificates without tls_listen", pair(aCrt, aKey),
		"test.toml:6: server.certificate: needs server.tls_listen")
	f("tls_listen with nothing to serve", "[server]\ntls_listen = \":8443\"\n",
		"test.toml:7: server.tls_listen: needs a [[server.certificate]] or [server.acme]")
	f("tls_listen on the proxy's port", "[server]\nlisten = \":8443\"\ntls_listen = \"127.0.0.1:8443\"\n"+pair(aCrt, aKey),
		"test.toml:8: server.tls_listen: must not share a port with server.listen")
	f("bad tls_listen", "[server]\ntls_listen = \"443\"\n"+pair(aCrt, aKey),
		`test.toml:7: server.tls_listen: must be host:port`)
	f("acme over http, bad email, bad roots", "[server]\ntls_listen = \":8443\"\n[server.acme]\ndirectory = \"http://ca.example/dir\"\nemail = \"ops at example\"\nca_roots = "+fmt.Sprintf("%q", junk)+"\n",
		"test.toml:9: server.acme.directory: must be an https:// URL",
		"test.toml:10: server.acme.email: must be an e-mail address",
		"test.toml:11: server.acme.ca_roots: "+junk+": no PEM certificate")
	f("acme without tls_listen", "[server.acme]\nemail = \"ops@example.com\"\n",
		"test.toml:6: server.acme: needs server.tls_listen")
	_, err := Parse("test.toml", []byte("[server]\ntls_listen = \":8443\"\n[server.acme]\n[[site]]\nname = \"any\"\nhosts = [\"*\", \"localhost\", \"127.0.0.1:8080\"]\norigins = [\"http://127.0.0.1:8081\"]\n"))
	if want := "test.toml:3: server.acme: no site host is a DNS name"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("acme with no host to certify: %v, want %q", err, want)
	}
}

// TestACMEDefaults: a loaded config states the directory and cache dir.
func TestACMEDefaults(t *testing.T) {
	c, err := Parse("test.toml", []byte("data_dir = \"/srv/ev\"\n"+minimal+"[server]\ntls_listen = \":8443\"\n[server.acme]\nemail = \"ops@example.com\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Server.ACME; a.Directory != DefaultACMEDirectory || a.CacheDir != "/srv/ev/acme" {
		t.Errorf("acme = %+v, want the Let's Encrypt directory and /srv/ev/acme", a)
	}
	c, err = Parse("test.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.ACME != nil {
		t.Errorf("acme = %+v without [server.acme], want nil (off)", c.Server.ACME)
	}
}

// TestACMEHosts: DNS names with a dot, without ports and repeats.
func TestACMEHosts(t *testing.T) {
	c := Default()
	c.Sites = []Site{
		{Hosts: []string{"www.example.com", "example.com:8080", "*", "localhost"}},
		{Hosts: []string{"127.0.0.1", "[::1]:8080", "example.com", "shop.example"}},
	}
	if got, want := c.ACMEHosts(), []string{"www.example.com", "example.com", "shop.example"}; !slices.Equal(got, want) {
		t.Errorf("ACMEHosts() = %q, want %q", got, want)
	}
}

// TestHSTSValues: what site.hsts accepts.
func TestHSTSValues(t *testing.T) {
	f := func(v string, want bool) {
		t.Helper()
		if got := validHSTS(v); got != want {
			t.Errorf("validHSTS(%q) = %v, want %v", v, got, want)
		}
	}
	f("max-age=31536000", true)
	f("max-age=31536000; includeSubDomains", true)
	f("max-age=63072000; includeSubDomains; preload", true)
	f(`MAX-AGE="300";`, true)
	f("max-age=0", true)
	f("", false)
	f("includeSubDomains", false)
	f("max-age=1y", false)
	f("max-age=-1", false)
	f("max-age=+1", false)
	f("max-age", false)
	f("max-age=1; max-age=2", false)
	f("max-age=1; preload=yes", false)
	f("max-age=1; report-uri=x", false)
	f("max-age=1\r\nSet-Cookie: a=b", false)

	_, err := Parse("test.toml", []byte(minimal+"hsts = \"1 year\"\n"))
	if err == nil || !strings.Contains(err.Error(), "test.toml:6: site[0].hsts: must be a Strict-Transport-Security value") {
		t.Errorf("bad hsts: %v", err)
	}
}
