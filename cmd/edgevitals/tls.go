package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/edgevitals/edgevitals/config"
	"github.com/edgevitals/edgevitals/proxy"
)

// newCerts builds the TLS listener's certificates from server.certificate
// and server.acme; nil without server.tls_listen.
func newCerts(cfg *config.Config, log *slog.Logger) (*proxy.Certs, error) {
	if cfg.Server.TLSListen == "" {
		return nil, nil
	}
	files, err := loadCertificates(cfg)
	if err != nil {
		return nil, err
	}
	o := proxy.CertsOptions{Certificates: files, Logger: log}
	if a := cfg.Server.ACME; a != nil {
		var roots *x509.CertPool
		if a.CARoots != "" {
			if roots, err = config.CARootPool(a.CARoots); err != nil {
				return nil, fmt.Errorf("server.acme.ca_roots: %w", err)
			}
		}
		o.ACME = &proxy.ACMEOptions{
			Directory: a.Directory,
			Email:     a.Email,
			CacheDir:  a.CacheDir,
			Roots:     roots,
			Hosts:     cfg.ACMEHosts(),
		}
	}
	certs, err := proxy.NewCerts(o)
	if err != nil {
		return nil, fmt.Errorf("server.tls_listen: %w", err)
	}
	return certs, nil
}

// loadCertificates reads every server.certificate pair.
func loadCertificates(cfg *config.Config) ([]tls.Certificate, error) {
	var certs []tls.Certificate
	var errs []error
	for i, c := range cfg.Server.Certificates {
		cert, err := config.KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("server.certificate[%d]: %w", i, err))
			continue
		}
		certs = append(certs, cert)
	}
	return certs, errors.Join(errs...)
}

// listenTLS opens server.tls_listen; nil when it is not set.
func listenTLS(cfg *config.Config) (net.Listener, error) {
	if cfg.Server.TLSListen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Server.TLSListen)
	if err != nil {
		return nil, fmt.Errorf("server.tls_listen: %w", err)
	}
	return ln, nil
}

// reloadCerts reads the certificate files again (SIGHUP, after certbot
// renewed them) and gives ACME the hosts of the new sites. When a file does
// not load, the running certificates all stay. A TLS listener added or
// removed by the new config needs a restart (reload names it).
func (a *app) reloadCerts(cfg *config.Config) error {
	if a.certs == nil || cfg.Server.TLSListen == "" {
		return nil
	}
	files, err := loadCertificates(cfg)
	if err != nil {
		return err
	}
	if err := a.certs.SetCertificates(files); err != nil {
		return fmt.Errorf("server.certificate: %w", err)
	}
	a.certs.SetACMEHosts(cfg.ACMEHosts())
	return nil
}
