package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/cache"
	"github.com/edgevitals/edgevitals/config"
	"github.com/edgevitals/edgevitals/proxy"
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
	adminLn  net.Listener
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
			Defaults: cache.Defaults{
				DefaultTTL:           s.TTL(),
				StaleWhileRevalidate: s.SWR(),
				StaleIfError:         s.SIE(),
				MaxObjectBytes:       int64(cfg.Cache.MaxObjectBytes),
			},
			Origin: proxy.OriginOptions{
				Timeout:        s.OriginTimeout.D(),
				ConnectTimeout: s.OriginConnectTimeout.D(),
				MaxConns:       s.OriginMaxConns,
				MaxBodyBytes:   int64(cfg.Cache.MaxObjectBytes),
			},
		})
	}
	return sites
}

// newApp builds everything and opens both listeners, so that a port in use
// is reported before anything runs.
func newApp(cfg *config.Config, log *slog.Logger) (*app, error) {
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
	a.proxy, err = proxy.New(proxy.Options{
		Sites:          proxyOptions(cfg),
		Store:          a.store,
		Keyer:          keyer,
		Flight:         flight,
		Metrics:        a.set,
		Logger:         log,
		DebugHeaders:   cfg.Server.DebugHeaders,
		PurgeAllow:     cfg.Purge.AllowNets(),
		Peers:          proxy.NewPeers(proxy.PeersOptions{URLs: cfg.Cluster.Peers, Token: cfg.Server.AdminToken.Reveal()}),
		ReadTimeout:    cfg.Server.ReadTimeout.D(),
		WriteTimeout:   cfg.Server.WriteTimeout.D(),
		IdleTimeout:    cfg.Server.IdleTimeout.D(),
		MaxHeaderBytes: int(cfg.Server.MaxHeaderBytes),
		MaxBodyBytes:   int(cfg.Server.MaxBodyBytes),
		MaxConns:       cfg.Server.MaxConns,
	})
	if err != nil {
		a.store.Close()
		return nil, err
	}
	a.admin = proxy.NewAdmin(a.proxy, proxy.AdminOptions{
		Token:    cfg.Server.AdminToken.Reveal(),
		Loopback: cfg.AdminOnLoopback(),
		Metrics:  a.set,
		Logger:   log,
		Version:  version,
	})
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
		a.store.Close()
		return nil, fmt.Errorf("server.listen: %w", err)
	}
	if a.adminLn, err = net.Listen("tcp", cfg.Server.AdminListen); err != nil {
		a.proxyLn.Close()
		a.store.Close()
		return nil, fmt.Errorf("server.admin_listen: %w", err)
	}
	return a, nil
}

// run serves until ctx ends, then shuts down in order: readiness off, drain
// the proxy, stop the admin listener, close the store.
func (a *app) run(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- a.proxy.Serve(a.proxyLn) }()
	go func() { errc <- a.adminSrv.Serve(a.adminLn) }()
	bg, stopBg := context.WithCancel(context.Background())
	defer stopBg()
	if al := a.proxy.NewAlerter(proxy.AlertOptions{
		Webhook: a.cfg.Alerts.Webhook,
		Below:   a.cfg.Alerts.HitRatioBelow,
		For:     a.cfg.Alerts.For.D(),
		MinRPS:  a.cfg.Alerts.MinRequestsPerSecond,
		Logger:  a.log,
	}); al != nil {
		go al.Run(bg) //nolint:errcheck // Run returns nil when bg ends
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
	if e := a.adminSrv.ShutdownWithContext(sctx); e != nil {
		a.log.Warn("admin shutdown", "err", e)
	}
	a.store.Close()
	a.log.Info("edgevitals stopped")
	return err
}
