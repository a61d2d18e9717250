package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edgevitals/edgevitals/cmd/edgevitals/internal/demo"
	"github.com/edgevitals/edgevitals/config"
	"github.com/edgevitals/edgevitals/proxy"
)

func init() {
	commands["demo"] = command{run: runDemo, usage: "demo [-listen ADDR] [-admin ADDR]  a built-in CMS-like site behind the proxy"}
}

// demoSetup is a running demo origin and the config that puts the proxy in
// front of it.
type demoSetup struct {
	origin  *demo.Origin
	proxy   atomic.Pointer[proxy.Server] // for the purge after a release
	srv     *http.Server
	cfg     *config.Config
	dataDir string
}

// newDemo starts the demo origin on a free loopback port and builds the
// config a new user would otherwise write: one WordPress-preset site that
// answers every host, releases read from the origin's X-Release header.
func newDemo(listen, admin string, log *slog.Logger) (*demoSetup, error) {
	d := &demoSetup{}
	// The origin logs each release itself; the hook only purges.
	d.origin = demo.New(demo.Options{Logger: log, OnRelease: func(string, bool) {
		// A deploy pipeline purges after shipping; the demo does the same,
		// softly, so visitors keep getting pages while the cache refills.
		if p := d.proxy.Load(); p != nil {
			if _, err := p.Purge(proxy.PurgeRequest{Site: "demo", All: true}); err != nil {
				log.Error("purge after release", "err", err)
			}
		}
	}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo origin: %w", err)
	}
	d.srv = &http.Server{Handler: d.origin, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("demo origin stopped", "err", err)
		}
	}()
	if d.dataDir, err = os.MkdirTemp("", "edgevitals-demo-"); err != nil {
		d.close()
		return nil, fmt.Errorf("demo data dir: %w", err)
	}
	token := make([]byte, 16)
	if _, err := rand.Read(token); err != nil {
		d.close()
		return nil, fmt.Errorf("demo token: %w", err)
	}
	cfg := config.Default()
	cfg.DataDir = d.dataDir
	cfg.Server.Listen = listen
	cfg.Server.AdminListen = admin
	cfg.Server.AdminToken = config.Secret(hex.EncodeToString(token))
	cfg.Cache.MaxBytes = 128 << 20
	site := config.DefaultSite()
	site.Name = "demo"
	site.Hosts = []string{"*"}
	site.Origins = []string{"http://" + ln.Addr().String()}
	site.Preset = "wordpress"
	site.ReleaseHeader = "X-Release"
	cfg.Sites = []config.Site{site}
	// Field data from the demo's visitors (you, in a browser): every tab
	// reports, and an order counts as a conversion.
	cfg.RUM.Enabled = true
	cfg.RUM.SampleRate = 1
	cfg.Conversions = []config.Conversion{{Site: "demo", Name: "order", Path: "/checkout/order-received/*"}}
	// The lab sampler measures the home page and an article through the
	// proxy, as a visitor would; without Chromium it stays off.
	for _, path := range []string{"/", "/articles/falling-for-coffee-in-lisbon/"} {
		p := config.DefaultPage()
		p.Site = "demo"
		p.URL = "http://" + listen + path
		p.Interval = config.Duration(5 * time.Minute)
		cfg.Vitals.Pages = append(cfg.Vitals.Pages, p)
	}
	if err := cfg.Validate(); err != nil {
		d.close()
		return nil, fmt.Errorf("demo config: %w", err)
	}
	d.cfg = cfg
	return d, nil
}

func (d *demoSetup) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.srv.Shutdown(ctx); err != nil {
		d.srv.Close()
	}
	if d.dataDir != "" {
		os.RemoveAll(d.dataDir)
	}
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "proxy listen `address`")
	admin := fs.String("admin", "127.0.0.1:9145", "admin listen `address`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	d, err := newDemo(*listen, *admin, log)
	if err != nil {
		fmt.Fprintf(stderr, "edgevitals demo: %v\n", err)
		return 1
	}
	defer d.close()
	a, err := newApp(d.cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "edgevitals demo: %v (use -listen and -admin to pick other ports)\n", err)
		return 1
	}
	d.proxy.Store(a.proxy)
	site := "http://" + a.proxyLn.Addr().String()
	adm := "http://" + a.adminLn.Addr().String()
	fmt.Fprintf(stdout, `edgevitals demo: a small WordPress-like shop behind the caching proxy.

  site (through the proxy)   %[1]s/
  release switch             %[1]s/__demo/
  metrics                    %[2]s/metrics
  readiness                  %[2]s/readyz
  admin token                %[3]s

Try:
  curl -sI %[1]s/ | grep -i cache-status      (a miss the first time, hits after; the lab sampler may have been first)
  curl -s -X PURGE -H 'Surrogate-Key: home' %[1]s/
  curl -s %[2]s/metrics | grep edgevitals_requests_total

Ctrl-C stops it.
`, site, adm, d.cfg.Server.AdminToken.Reveal())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.run(ctx); err != nil {
		fmt.Fprintf(stderr, "edgevitals demo: %v\n", err)
		return 1
	}
	return 0
}
