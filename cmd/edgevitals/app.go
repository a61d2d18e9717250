package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/cache"
	"github.com/edgevitals/edgevitals/config"
	"github.com/edgevitals/edgevitals/proxy"
	"github.com/edgevitals/edgevitals/vitals"
)

// app is one running edgevitals: the proxy and admin listeners and what
// they share. cmd only wires; the behaviour lives in the packages.
type app struct {
	cfg      *config.Config
	log      *slog.Logger
	set      *metrics.Set
	store    *cache.Store
	proxy    *proxy.Server
	admin    *proxy.Admin
	adminSrv *fasthttp.Server
	proxyLn  net.Listener
	tlsLn    net.Listener // nil without server.tls_listen
	certs    *proxy.Certs // nil without server.tls_listen
	adminLn  net.Listener
	vstore   *vitals.Store
	// recovered is set when the store file was damaged, moved aside and
	// replaced by a fresh one; /readyz says so.
	recovered *vitals.Recovery
	sampler   *vitals.Sampler // nil when no page is configured or Chromium is missing
	releases  *proxy.Releases
	rum       *vitals.Collector // nil unless rum.enabled
	alerter   *proxy.Alerter    // nil without alerts.webhook
	access    *accessFile       // nil without log.access
}

// proxyOptions maps a validated config onto the proxy's typed options.
func proxyOptions(cfg *config.Config) []proxy.Site {
	var sites []proxy.Site
	for _, s := range cfg.Sites {
		sites = append(sites, proxy.Site{
			Name:          s.Name,
			Hosts:         s.Hosts,
			Origins:       s.Origins,
			Preset:        s.Preset,
			BypassCookies: s.BypassCookies,
			BypassPaths:   s.BypassPaths,
			ReleaseHeader: s.ReleaseHeader,
			KeepOnUnsafe:  !s.InvalidateOnUnsafeMethods,
			Compress:      s.Compresses(),
			Defaults: cache.Defaults{
				DefaultTTL:           s.TTL(),
				StaleWhileRevalidate: s.SWR(),
				StaleIfError:         s.SIE(),
				MaxObjectBytes:       int64(cfg.Cache.MaxObjectBytes),
				HeuristicMax:         s.HeuristicMax.D(),
			},
			StripCDNCacheControl: s.StripCDNCacheControl,
			TLS:                  proxy.SiteTLS{HTTPSRedirect: s.HTTPSRedirect, HSTS: s.HSTS},
			Origin: proxy.OriginOptions{
				Timeout:        s.OriginTimeout.D(),
				ConnectTimeout: s.OriginConnectTimeout.D(),
				MaxConns:       s.OriginMaxConns,
				MaxBodyBytes:   int64(cfg.Cache.MaxObjectBytes),
				HealthPath:     s.HealthPath,
				HealthInterval: s.HealthInterval.D(),
			},
		})
	}
	return sites
}

// newApp builds everything and opens both listeners, so that a port in use
// is reported before anything runs.
func newApp(cfg *config.Config, log *slog.Logger) (*app, error) {
	// TYPE lines let Prometheus and Grafana know counters from gauges.
	metrics.ExposeMetadata(true)
	// The cache is most of the heap. Without a limit the Go GC lets the
	// heap grow to twice what is live, so a full cache would take twice
	// cache.max_bytes; a soft limit keeps RSS near the budget (GOMEMLIMIT,
	// when set, wins).
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(cfg.Cache.MaxBytes)*9/8 + 48<<20)
	}
	a := &app{cfg: cfg, log: log, set: metrics.NewSet()}
	a.set.NewGauge(fmt.Sprintf(`edgevitals_build_info{version=%q}`, version), func() float64 { return 1 })
	var err error
	a.store, err = cache.New(cache.Options{MaxBytes: int64(cfg.Cache.MaxBytes)})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	keyer, err := cache.NewKeyer(cfg.Cache.StripQuery)
	if err != nil {
		a.store.Close()
		return nil, fmt.Errorf("cache.strip_query: %w", err)
	}
	flight := cache.NewFlight(cache.FlightOptions{
		MaxWaiters:  cfg.Cache.CoalesceMaxWaiters,
		WaitTimeout: cfg.Cache.CoalesceTimeout.D(),
		HitForMiss:  cfg.Cache.HitForMiss.D(),
	})
	if err := a.openStore(); err != nil {
		a.store.Close()
		return nil, err
	}
	po := proxy.Options{
		Sites:          proxyOptions(cfg),
		Store:          a.store,
		Keyer:          keyer,
		Flight:         flight,
		Metrics:        a.set,
		Logger:         log,
		DebugHeaders:   cfg.Server.DebugHeaders,
		PurgeAllow:     cfg.Purge.AllowNets(),
		TrustedProxies: cfg.Server.TrustedNets(),
		ProxyProtocol:  cfg.Server.ProxyProtocol,
		Peers:          proxy.NewPeers(proxy.PeersOptions{URLs: cfg.Cluster.Peers, Token: cfg.Server.AdminToken.Reveal()}),
		ReadTimeout:    cfg.Server.ReadTimeout.D(),
		WriteTimeout:   cfg.Server.WriteTimeout.D(),
		IdleTimeout:    cfg.Server.IdleTimeout.D(),
		MaxHeaderBytes: int(cfg.Server.MaxHeaderBytes),
		MaxBodyBytes:   int(cfg.Server.MaxBodyBytes),
		MaxConns:       cfg.Server.MaxConns,
	}
	po.BodyBufferBytes = int64(cfg.Server.BodyBufferBytes)
	po.ResponseBufferBytes = int64(cfg.Server.ResponseBufferBytes)
	po.TempFileBytes = int64(cfg.Server.TempFileBytes)
	if po.TempFileBytes == 0 {
		po.TempFileBytes = -1 // temp_file_bytes = 0: no temporary files
	}
	po.TempDir = cfg.DataDir // created by openStore; the files are unlinked at once
	if cfg.RUM.Enabled {
		if a.rum, err = a.newCollector(); err != nil {
			a.closeStores()
			return nil, err
		}
		po.RUM, po.RUMNonce = a.rum, cfg.RUM.CSPNonce
	}
	if po.Certs, err = newCerts(cfg, log); err != nil {
		a.closeStores()
		return nil, err
	}
	a.certs = po.Certs
	if err := a.openAccessLog(&po); err != nil {
		a.closeStores()
		return nil, err
	}
	if a.proxy, err = proxy.New(po); err != nil {
		a.closeStores()
		return nil, err
	}
	if err := a.startSampler(); err != nil {
		a.closeStores()
		return nil, err
	}
	a.admin = proxy.NewAdmin(a.proxy, proxy.AdminOptions{
		Token:    cfg.Server.AdminToken.Reveal(),
		Loopback: cfg.AdminOnLoopback(),
		Listen:   cfg.Server.AdminListen,
		Hosts:    cfg.Server.AdminHosts,
		Metrics:  a.set,
		Logger:   log,
		Version:  version,
	})
	a.admin.AddCheck(a.proxy.OriginCheck)
	a.admin.AddCheck(a.sampler.Status)
	if rec := a.recovered; rec != nil {
		a.admin.AddCheck(func() (bool, string) { return false, rec.String() })
	}
	ro := proxy.ReleaseOptions{
		Store:   a.vstore,
		Metrics: a.set,
		Logger:  log,
		Report: vitals.ReportOptions{
			MinSamples: cfg.Report.MinSamples,
			Alpha:      0.05,
			Thresholds: vitals.DefaultThresholds(),
		},
	}
	if u := cfg.Report.PrometheusURL; u != "" {
		// Fleet: edge traffic and field data for reports come from every node.
		ro.Report.Prometheus = vitals.NewPromSource(u, nil)
	}
	if a.sampler != nil {
		ro.Sampler = a.sampler
	}
	a.alerter = a.proxy.NewAlerter(proxy.AlertOptions{
		Webhook: cfg.Alerts.Webhook,
		Below:   cfg.Alerts.HitRatioBelow,
		For:     cfg.Alerts.For.D(),
		MinRPS:  cfg.Alerts.MinRequestsPerSecond,
		Logger:  log,
	})
	if al := a.alerter; al != nil {
		ro.Notify = func(site string, rep vitals.Report) {
			var metrics, why []string
			for _, l := range rep.Lines {
				if l.Verdict == vitals.Regressed {
					metrics = append(metrics, l.Metric)
					why = append(why, l.Why)
				}
			}
			al.Send(context.Background(),
				map[string]string{"alertname": "EdgevitalsReleaseRegressed", "site": site, "release": rep.Release.ID, "severity": "warning"},
				"firing",
				fmt.Sprintf("Release %s of %s regressed: %s", rep.Release.ID, site, strings.Join(metrics, ", ")),
				strings.Join(why, "\n"))
		}
	}
	if a.releases, err = proxy.NewReleases(a.proxy, ro); err != nil {
		a.closeStores()
		return nil, err
	}
	a.releases.Register(a.admin)
	a.releases.RegisterDashboard(a.admin)
	a.adminSrv = &fasthttp.Server{
		Handler:               a.admin.Handler,
		Name:                  "edgevitals-admin",
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           60 * time.Second,
		MaxRequestBodySize:    1 << 20,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
	}
	if a.proxyLn, err = net.Listen("tcp", cfg.Server.Listen); err != nil {
		a.closeStores()
		return nil, fmt.Errorf("server.listen: %w", err)
	}
	if a.tlsLn, err = listenTLS(cfg); err != nil {
		a.proxyLn.Close()
		a.closeStores()
		return nil, err
	}
	if a.adminLn, err = net.Listen("tcp", cfg.Server.AdminListen); err != nil {
		a.proxyLn.Close()
		if a.tlsLn != nil {
			a.tlsLn.Close()
		}
		a.closeStores()
		return nil, fmt.Errorf("server.admin_listen: %w", err)
	}
	return a, nil
}

// run serves until ctx ends, then shuts down in order: readiness off, drain
// the proxy, stop the admin listener, close the store.
func (a *app) run(ctx context.Context) error {
	errc := make(chan error, 3)
	go func() { errc <- a.proxy.Serve(a.proxyLn) }()
	if a.tlsLn != nil {
		go func() { errc <- a.proxy.ServeTLS(a.tlsLn) }()
		a.log.Info("edgevitals serving TLS", "addr", a.tlsLn.Addr().String(), "acme", a.cfg.Server.ACME != nil, "certificates", len(a.cfg.Server.Certificates))
	}
	go func() { errc <- a.adminSrv.Serve(a.adminLn) }()
	bg, stopBg := context.WithCancel(context.Background())
	defer stopBg()
	var workers sync.WaitGroup // stopped by stopBg, waited for before the stores close
	if a.sampler != nil {
		workers.Go(func() {
			if err := a.sampler.Run(bg); err != nil {
				a.log.Error("lab sampler stopped", "err", err)
			}
		})
	}
	workers.Go(func() { a.prune(bg) })
	workers.Go(func() { a.proxy.RunHealthChecks(bg) }) //nolint:errcheck // returns nil when bg ends
	workers.Go(func() { a.releases.Run(bg) })          //nolint:errcheck // Run returns nil when bg ends
	if a.rum != nil {
		workers.Go(func() {
			if err := a.rum.Run(bg); err != nil {
				a.log.Error("field data collector stopped", "err", err)
			}
		})
	}
	if al := a.alerter; al != nil {
		workers.Go(func() { al.Run(bg) }) //nolint:errcheck // Run returns nil when bg ends
	}
	a.admin.SetReady(true)
	a.log.Info("edgevitals serving", "proxy", a.proxyLn.Addr().String(), "admin", a.adminLn.Addr().String(), "sites", len(a.cfg.Sites))
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("listener stopped: %w", err)
	}
	a.admin.SetReady(false)
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.Server.ShutdownTimeout.D())
	defer cancel()
	if e := a.proxy.Shutdown(sctx); e != nil && !errors.Is(e, context.Canceled) {
		a.log.Warn("proxy shutdown", "err", e)
	}
	a.proxy.CloseIdleOriginConns()
	if e := a.adminSrv.ShutdownWithContext(sctx); e != nil {
		a.log.Warn("admin shutdown", "err", e)
	}
	stopBg() // the sampler closes Chromium
	workers.Wait()
	a.closeStores()
	a.log.Info("edgevitals stopped")
	return err
}

// openStore opens the embedded store under data_dir. A damaged file is
// moved aside and a fresh store started, with one log line naming both
// files; the proxy serves either way.
func (a *app) openStore() error {
	if err := os.MkdirAll(a.cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	var err error
	a.vstore, a.recovered, err = vitals.OpenStoreRecovering(filepath.Join(a.cfg.DataDir, "edgevitals.db"), time.Now())
	if err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	switch rec := a.recovered; {
	case rec != nil && rec.TempDir != "":
		a.log.Error("store file damaged and could not be moved aside; vitals start on a temporary store, lost on restart",
			"file", rec.Path, "problem", rec.Problem, "move_error", rec.MoveError, "temporary_dir", rec.TempDir)
	case rec != nil:
		a.log.Error("store file damaged, moved aside; vitals start on a fresh store",
			"file", rec.Path, "moved_to", rec.MovedTo, "problem", rec.Problem)
	}
	return nil
}

// newCollector builds the field-data collector: real visitors' Core Web
// Vitals and conversions, from the beacon the proxy injects.
func (a *app) newCollector() (*vitals.Collector, error) {
	sites := siteNames(a.cfg)
	var goals []vitals.Goal
	for _, c := range a.cfg.Conversions {
		goals = append(goals, vitals.Goal{Site: c.Site, Name: c.Name, Path: c.Path})
	}
	store := a.vstore
	c, err := vitals.NewCollector(vitals.CollectorOptions{
		Sites:      sites,
		Goals:      goals,
		SampleRate: a.cfg.RUM.SampleRate,
		Metrics:    a.set,
		Store:      store,
		Logger:     a.log,
		// Beacons arrive once run serves, after newApp built a.releases.
		KnownRelease: func(site, id string) bool { return a.releases.KnownRelease(site, id) },
	})
	if err != nil {
		return nil, fmt.Errorf("rum: %w", err)
	}
	return c, nil
}

// startSampler starts the lab sampler when pages are configured. A missing
// Chromium is not fatal: the proxy serves, one line says how to install it,
// /readyz says the sampler is off.
func (a *app) startSampler() error {
	cfg := a.cfg
	var err error
	if len(cfg.Vitals.Pages) == 0 {
		return nil
	}
	pages := make([]vitals.Page, 0, len(cfg.Vitals.Pages))
	for _, p := range cfg.Vitals.Pages {
		pages = append(pages, vitals.Page{
			Site: p.Site, URL: p.URL, Profiles: p.Profiles, Interval: p.Interval.D(),
			Cold: p.Cold, Selector: p.Selector,
		})
	}
	px := a.proxy
	a.sampler, err = vitals.NewSampler(vitals.SamplerOptions{
		Chromium:    cfg.Vitals.Chromium,
		Pages:       pages,
		Concurrency: cfg.Vitals.Concurrency,
		Timeout:     cfg.Vitals.Timeout.D(),
		Metrics:     a.set,
		Store:       a.vstore,
		Logger:      a.log,
		Purge: func(_ context.Context, url string) error {
			soft := false
			_, err := px.Purge(proxy.PurgeRequest{URLs: []string{url}, Soft: &soft})
			return err
		},
	})
	if errors.Is(err, vitals.ErrNoChromium) {
		a.log.Error("lab sampler off: " + err.Error())
		a.sampler = nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("vitals: %w", err)
	}
	return nil
}

// prune drops samples older than retention, hourly.
func (a *app) prune(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if _, err := a.vstore.Prune(time.Now().Add(-a.cfg.Retention.D())); err != nil {
			a.log.Error("prune the store", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *app) closeStores() {
	a.store.Close()
	if a.access != nil {
		if err := a.access.Close(); err != nil {
			a.log.Error("close the access log", "err", err)
		}
	}
	if a.vstore != nil {
		if err := a.vstore.Close(); err != nil {
			a.log.Error("close the store", "err", err)
		}
	}
}

// siteNames lists cfg's site names in the file's order: the sites the
// field-data collector is started with.
func siteNames(cfg *config.Config) []string {
	var names []string
	for _, s := range cfg.Sites {
		names = append(names, s.Name)
	}
	return names
}

// reload reads the config file again (SIGHUP). A file with problems leaves
// the running config in place, with one log line saying so. Sites (hosts,
// origins, presets, TTLs, bypass rules) are swapped in; other settings are
// named in a log line as needing a restart.
func (a *app) reload(path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		var ce *config.Errors
		n := 1
		if errors.As(err, &ce) {
			n = len(ce.Problems)
		}
		a.log.Error("config reload refused, the running config stays",
			"file", path, "problems", n, "first", strings.SplitN(err.Error(), "\n", 2)[0])
		return err
	}
	if err := a.proxy.Reload(proxyOptions(cfg)); err != nil {
		a.log.Error("config reload refused, the running config stays", "file", path, "err", err)
		return err
	}
	if err := a.reloadCerts(cfg); err != nil {
		a.log.Error("certificates not reloaded, the running ones stay", "file", path, "err", err)
		return err
	}
	var restart []string
	old := a.cfg
	srvNow, srvWas := cfg.Server, old.Server
	srvNow.Certificates, srvWas.Certificates = nil, nil // reloadCerts swapped them in
	if !reflect.DeepEqual(srvNow, srvWas) {
		restart = append(restart, "server")
	}
	if !reflect.DeepEqual(cfg.Cache, old.Cache) {
		restart = append(restart, "cache")
	}
	if !reflect.DeepEqual(cfg.Vitals, old.Vitals) || !reflect.DeepEqual(cfg.RUM, old.RUM) || !reflect.DeepEqual(cfg.Conversions, old.Conversions) {
		restart = append(restart, "vitals/rum/conversion")
	}
	if !reflect.DeepEqual(cfg.Purge, old.Purge) || !reflect.DeepEqual(cfg.Cluster, old.Cluster) || cfg.Alerts != old.Alerts || cfg.Report != old.Report || cfg.DataDir != old.DataDir || cfg.Retention != old.Retention {
		restart = append(restart, "purge/cluster/alerts/report/data_dir/retention")
	}
	now, was := siteNames(cfg), siteNames(old)
	slices.Sort(now)
	slices.Sort(was)
	if old.RUM.Enabled && !slices.Equal(now, was) {
		// The collector knows the sites it started with: beacons of a
		// site added now would be rejected as unknown until a restart.
		restart = append(restart, "site names (field data)")
	}
	if len(restart) > 0 {
		a.log.Warn("config reloaded: sites applied; these changed sections need a restart", "sections", strings.Join(restart, ", "))
	} else {
		a.log.Info("config reloaded", "file", path, "sites", len(cfg.Sites))
	}
	return nil
}
