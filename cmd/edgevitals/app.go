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

	"github.com/edgevitals/edgevitals/admin"
	"github.com/edgevitals/edgevitals/cache"
	"github.com/edgevitals/edgevitals/config"
	"github.com/edgevitals/edgevitals/dashboard"
	"github.com/edgevitals/edgevitals/proxy"
	"github.com/edgevitals/edgevitals/vitals/field"
	"github.com/edgevitals/edgevitals/vitals/lab"
	"github.com/edgevitals/edgevitals/vitals/release"
	"github.com/edgevitals/edgevitals/vitals/report"
	"github.com/edgevitals/edgevitals/vitals/store"
)

// app is one running edgevitals: the proxy and admin listeners and what
// they share. cmd only wires; the behaviour lives in the packages.
type app struct {
	cfg      *config.Config
	log      *slog.Logger
	set      *metrics.Set
	store    *cache.Store
	proxy    *proxy.Server
	admin    *admin.Admin
	adminSrv *fasthttp.Server
	proxyLn  net.Listener
	tlsLn    net.Listener // nil without server.tls_listen
	certs    *proxy.Certs // nil without server.tls_listen
	adminLn  net.Listener
	vstore   *store.Store
	// recovered is set when the store file was damaged, moved aside and
	// replaced by a fresh one; /readyz says so.
	recovered *store.Recovery
	sampler   *lab.Sampler // nil when no page is configured or Chromium is missing
	registry  *release.Registry
	releases  *admin.Releases  // traffic record, regression check, release API
	peers     *admin.Peers     // nil without cluster.peers
	rum       *field.Collector // nil unless rum.enabled
	alerter   *admin.Alerter   // nil without alerts.webhook
	access    *accessFile      // nil without log.access
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
// is reported before anything runs. The build is in phases: the cache, the
// store, the proxy (the data plane), the sampler, the control plane (the
// admin listener, releases, alerts, the dashboard), the listeners.
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
	if a.store, err = cache.New(cache.Options{MaxBytes: int64(cfg.Cache.MaxBytes)}); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if err := a.openStore(); err != nil {
		a.store.Close()
		return nil, err
	}
	for _, build := range []func() error{a.buildProxy, a.startSampler, a.buildControl, a.listen} {
		if err := build(); err != nil {
			a.closeStores()
			return nil, err
		}
	}
	return a, nil
}

// buildHelp is the HELP text of the families cmd defines itself.
var buildHelp = map[string]string{
	"edgevitals_build_info":               "Always 1; the labels name the running build.",
	"edgevitals_access_log_dropped_total": "Access log lines that could not be written (log.access); the requests were served.",
}

// metricHelp is the HELP text of every family, from the packages that
// define them, for the admin listener's /metrics.
func metricHelp() []map[string]string {
	return []map[string]string{proxy.MetricHelp(), lab.MetricHelp(), field.MetricHelp(), release.MetricHelp(), buildHelp}
}

// buildProxy builds the data plane, with the field-data collector it
// injects and the hooks the control plane takes its facts from.
func (a *app) buildProxy() error {
	cfg := a.cfg
	keyer, err := cache.NewKeyer(cfg.Cache.StripQuery)
	if err != nil {
		return fmt.Errorf("cache.strip_query: %w", err)
	}
	flight := cache.NewFlight(cache.FlightOptions{
		MaxWaiters:  cfg.Cache.CoalesceMaxWaiters,
		WaitTimeout: cfg.Cache.CoalesceTimeout.D(),
		HitForMiss:  cfg.Cache.HitForMiss.D(),
	})
	a.peers = admin.NewPeers(admin.PeersOptions{URLs: cfg.Cluster.Peers, Token: cfg.Server.AdminToken.Reveal()})
	po := proxy.Options{
		Sites:          proxyOptions(cfg),
		Store:          a.store,
		Keyer:          keyer,
		Flight:         flight,
		Metrics:        a.set,
		Logger:         a.log,
		DebugHeaders:   cfg.Server.DebugHeaders,
		PurgeAllow:     cfg.Purge.AllowNets(),
		TrustedProxies: cfg.Server.TrustedNets(),
		ProxyProtocol:  cfg.Server.ProxyProtocol,
		Fanout:         a.peers.Fanout,
		// Origin responses arrive once run serves, after buildControl
		// built the registry.
		OnRelease:      func(site, id string, accept func()) { a.registry.Offer(site, id, accept) },
		OriginBuckets:  store.OriginBounds(),
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
			return err
		}
		po.RUM, po.RUMNonce = a.rum, cfg.RUM.CSPNonce
	}
	if po.Certs, err = newCerts(cfg, a.log); err != nil {
		return err
	}
	a.certs = po.Certs
	if err := a.openAccessLog(&po); err != nil {
		return err
	}
	a.proxy, err = proxy.New(po)
	return err
}

// buildControl builds the control plane on the proxy: the admin listener's
// handler, the release registry and its endpoints, the alerts and the
// dashboard.
func (a *app) buildControl() error {
	cfg := a.cfg
	a.admin = admin.NewAdmin(a.proxy, admin.AdminOptions{
		Token:    cfg.Server.AdminToken.Reveal(),
		Loopback: cfg.AdminOnLoopback(),
		Listen:   cfg.Server.AdminListen,
		Hosts:    cfg.Server.AdminHosts,
		Metrics:  a.set,
		Logger:   a.log,
		Version:  version,
		Help:     metricHelp(),
		Fanout:   a.peers.Fanout,
	})
	a.admin.AddCheck(a.proxy.OriginCheck)
	a.admin.AddCheck(a.sampler.Status)
	if rec := a.recovered; rec != nil {
		a.admin.AddCheck(func() (bool, string) { return false, rec.String() })
	}
	ro := release.Options{Store: a.vstore, Sites: a.proxy.Sites, Metrics: a.set, Logger: a.log}
	if a.sampler != nil {
		ro.Sampler = a.sampler
	}
	var err error
	if a.registry, err = release.New(ro); err != nil {
		return err
	}
	reports := report.ReportOptions{
		MinSamples: cfg.Report.MinSamples,
		Alpha:      0.05,
		Thresholds: report.DefaultThresholds(),
	}
	if u := cfg.Report.PrometheusURL; u != "" {
		// Fleet: edge traffic and field data for reports come from every node.
		reports.Edge = report.NewPromSource(u, nil)
	}
	a.alerter = admin.NewAlerter(a.proxy, admin.AlertOptions{
		Webhook: cfg.Alerts.Webhook,
		Below:   cfg.Alerts.HitRatioBelow,
		For:     cfg.Alerts.For.D(),
		MinRPS:  cfg.Alerts.MinRequestsPerSecond,
		Logger:  a.log,
	})
	rel := admin.ReleasesOptions{Registry: a.registry, Store: a.vstore, Report: reports, Logger: a.log}
	if al := a.alerter; al != nil {
		rel.Notify = al.NotifyRegressed
	}
	if a.releases, err = admin.NewReleases(a.proxy, rel); err != nil {
		return err
	}
	a.releases.Register(a.admin)
	dash := dashboard.New(dashboard.Options{Store: a.vstore, Sites: a.proxy.Sites, Report: reports, Logger: a.log})
	// Open on a loopback admin listener; elsewhere the admin asks for the token.
	a.admin.Handle("GET", "/", dash.Handler, false)
	return nil
}

// listen builds the admin server and opens both listeners.
func (a *app) listen() error {
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
	var err error
	if a.proxyLn, err = net.Listen("tcp", a.cfg.Server.Listen); err != nil {
		return fmt.Errorf("server.listen: %w", err)
	}
	if a.tlsLn, err = listenTLS(a.cfg); err != nil {
		a.proxyLn.Close()
		return err
	}
	if a.adminLn, err = net.Listen("tcp", a.cfg.Server.AdminListen); err != nil {
		a.proxyLn.Close()
		if a.tlsLn != nil {
			a.tlsLn.Close()
		}
		return fmt.Errorf("server.admin_listen: %w", err)
	}
	return nil
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
	workers.Go(func() { a.proxy.RunHealthChecks(bg) })
	workers.Go(func() { a.releases.Run(bg) })
	if a.rum != nil {
		workers.Go(func() {
			if err := a.rum.Run(bg); err != nil {
				a.log.Error("field data collector stopped", "err", err)
			}
		})
	}
	if al := a.alerter; al != nil {
		workers.Go(func() { al.Run(bg) })
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
	a.vstore, a.recovered, err = store.OpenStoreRecovering(filepath.Join(a.cfg.DataDir, "edgevitals.db"), time.Now())
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
func (a *app) newCollector() (*field.Collector, error) {
	sites := siteNames(a.cfg)
	var goals []field.Goal
	for _, c := range a.cfg.Conversions {
		goals = append(goals, field.Goal{Site: c.Site, Name: c.Name, Path: c.Path})
	}
	store := a.vstore
	c, err := field.NewCollector(field.CollectorOptions{
		Sites:      sites,
		Goals:      goals,
		SampleRate: a.cfg.RUM.SampleRate,
		Metrics:    a.set,
		Store:      store,
		Logger:     a.log,
		// Beacons arrive once run serves, after newApp built a.registry.
		KnownRelease: func(site, id string) bool { return a.registry.KnownRelease(site, id) },
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
	pages := make([]lab.Page, 0, len(cfg.Vitals.Pages))
	for _, p := range cfg.Vitals.Pages {
		pages = append(pages, lab.Page{
			Site: p.Site, URL: p.URL, Profiles: p.Profiles, Interval: p.Interval.D(),
			Cold: p.Cold, Selector: p.Selector,
		})
	}
	px := a.proxy
	a.sampler, err = lab.NewSampler(lab.SamplerOptions{
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
	if errors.Is(err, lab.ErrNoChromium) {
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
