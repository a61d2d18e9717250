// Package config is the TOML schema of edgevitals, with its defaults, validation and loading.
//
// A loaded Config is treated as immutable: a reload builds and validates a new one and swaps
// it in whole. Runtime packages never see this package's types; cmd maps them onto each
// package's Options.
package config

import (
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// Config is the whole configuration file.
type Config struct {
	DataDir     string       `toml:"data_dir"` // embedded store; default "/var/lib/edgevitals"
	Server      Server       `toml:"server"`
	Cache       Cache        `toml:"cache"`
	Sites       []Site       `toml:"site"`
	Purge       Purge        `toml:"purge"`
	Vitals      Vitals       `toml:"vitals"`
	RUM         RUM          `toml:"rum"`
	Conversions []Conversion `toml:"conversion"`
	Alerts      Alerts       `toml:"alerts"`
	Cluster     Cluster      `toml:"cluster"`
	Report      Report       `toml:"report"`
	Log         Log          `toml:"log"`
	Retention   Duration     `toml:"retention"` // how long the store keeps samples; default 90 days
}

// Server configures the proxy and admin listeners.
type Server struct {
	Listen      string `toml:"listen"`       // default ":8080"
	AdminListen string `toml:"admin_listen"` // default "127.0.0.1:9145"
	AdminToken  Secret `toml:"admin_token"`  // or EDGEVITALS_ADMIN_TOKEN when the file has none
	// AdminHosts are host names the admin listener answers to besides its own address,
	// localhost and loopback addresses (and any IP address when it listens on all
	// interfaces), e.g. the name Prometheus scrapes it by. Other Host values get 421.
	AdminHosts      []string `toml:"admin_hosts"`
	DebugHeaders    bool     `toml:"debug_headers"`    // keep Surrogate-Key and Cache-Tag on client responses
	ReadTimeout     Duration `toml:"read_timeout"`     // 10s
	WriteTimeout    Duration `toml:"write_timeout"`    // 30s
	IdleTimeout     Duration `toml:"idle_timeout"`     // 60s
	ShutdownTimeout Duration `toml:"shutdown_timeout"` // 15s
	MaxHeaderBytes  Size     `toml:"max_header_bytes"` // 64KiB: CMS cookies are big
	MaxBodyBytes    Size     `toml:"max_body_bytes"`   // request bodies; 32MiB
	MaxConns        int      `toml:"max_conns"`        // 10000
	// TLS at the edge (tls.go): a listener for HTTPS, with certificate files and/or ACME.
	TLSListen    string        `toml:"tls_listen"`  // "" = no TLS listener; e.g. ":443"
	Certificates []Certificate `toml:"certificate"` // [[server.certificate]], chosen by SNI
	ACME         *ACME         `toml:"acme"`        // [server.acme]; nil = off
	// TrustedProxies are the CIDRs or addresses of the proxies in front (a TLS terminator, a
	// load balancer) whose X-Forwarded-For and X-Forwarded-Proto are believed; default none.
	TrustedProxies []string `toml:"trusted_proxies"`
	ProxyProtocol  bool     `toml:"proxy_protocol"` // every proxy connection opens with a PROXY v1/v2 header
	// Bodies passing through are buffered, in memory up to these budgets and then in
	// temporary files under data_dir (unlinked at once), so that neither a slow sender nor
	// a slow reader holds an origin connection or unbounded memory.
	BodyBufferBytes     Size `toml:"body_buffer_bytes"`     // memory of request bodies, all together; 64MiB
	ResponseBufferBytes Size `toml:"response_buffer_bytes"` // memory of uncached responses waiting for slow clients; 64MiB
	TempFileBytes       Size `toml:"temp_file_bytes"`       // disk of temporary files; 1GiB; 0 = none
}

// TrustedNets returns TrustedProxies parsed; entries that do not parse (Validate reports
// them) are left out, so a bad entry never widens trust.
func (s Server) TrustedNets() []netip.Prefix { return prefixes(s.TrustedProxies) }

// Cache configures the shared cache.
type Cache struct {
	MaxBytes       Size `toml:"max_bytes"`        // 512MiB
	MaxObjectBytes Size `toml:"max_object_bytes"` // 8MiB; larger responses pass uncached
	// StripQuery names the query parameters removed from cache keys and origin requests
	// (a trailing * matches a prefix). A list in the file replaces the default list
	// ["utm_*", "gclid", "fbclid", "msclkid"]; it is not added to it.
	StripQuery         []string `toml:"strip_query"`
	CoalesceMaxWaiters int      `toml:"coalesce_max_waiters"` // 10000
	CoalesceTimeout    Duration `toml:"coalesce_timeout"`     // 30s
	HitForMiss         Duration `toml:"hit_for_miss"`         // 2m: remember uncacheable keys
}

// Site is one CMS site: the hosts it answers for and the origins that serve it.
type Site struct {
	Name    string   `toml:"name"`    // metric label: ^[a-z0-9][a-z0-9_-]*$
	Hosts   []string `toml:"hosts"`   // lowercase host[:port]; "*" = any other host
	Origins []string `toml:"origins"` // http:// or https:// base URLs
	Preset  string   `toml:"preset"`  // "wordpress" | "drupal" | "none"; default "none"
	// HTTPSRedirect sends plain-HTTP requests to https:// (tls.go). HSTS is the
	// Strict-Transport-Security value sent on HTTPS responses, e.g.
	// "max-age=31536000; includeSubDomains"; "" = none.
	HTTPSRedirect bool   `toml:"https_redirect"`
	HSTS          string `toml:"hsts"`
	// DefaultTTL is the freshness of responses that carry none. In a loaded Config it is
	// never nil; in one built in code nil means the preset's (see TTL).
	DefaultTTL *Duration `toml:"default_ttl"`
	// StaleWhileRevalidate and StaleIfError apply when the origin says nothing. Like
	// DefaultTTL they are never nil in a loaded Config; nil means the preset's (see SWR, SIE).
	StaleWhileRevalidate *Duration `toml:"stale_while_revalidate"`
	StaleIfError         *Duration `toml:"stale_if_error"`
	ReleaseHeader        string    `toml:"release_header"`         // optional: a new value is a new release
	OriginTimeout        Duration  `toml:"origin_timeout"`         // 30s: the whole response
	OriginConnectTimeout Duration  `toml:"origin_connect_timeout"` // 3s
	OriginMaxConns       int       `toml:"origin_max_conns"`       // 512 per origin
	BypassCookies        []string  `toml:"bypass_cookies"`         // added to the preset's; trailing * globs
	BypassPaths          []string  `toml:"bypass_paths"`           // added to the preset's; prefix or glob
	HealthPath           string    `toml:"health_path"`            // "" = no active health checks
	HealthInterval       Duration  `toml:"health_interval"`        // 5s
	// HeuristicMax turns on heuristic freshness (RFC 9111 §4.2.2) for responses without
	// explicit freshness: 10% of the time since Last-Modified, at most this. "0s" = off.
	HeuristicMax Duration `toml:"heuristic_max"`
	// StripCDNCacheControl withholds CDN-Cache-Control from clients; by default it is
	// forwarded for the caches in front (RFC 9213 §3).
	StripCDNCacheControl bool `toml:"strip_cdn_cache_control"`
	// InvalidateOnUnsafeMethods drops the stored copies of a URL when a POST, PUT, DELETE
	// or PATCH to it succeeds (2xx or 3xx; RFC 9111 §4.4). Default true; false stops any
	// visitor from emptying a cached page by posting to it.
	InvalidateOnUnsafeMethods bool `toml:"invalidate_on_unsafe_methods"`
	// Compress compresses compressible responses the origin sent uncompressed, once as they
	// are stored, as brotli and gzip. Like DefaultTTL it is never nil in a loaded Config; nil
	// means the preset's (see Compresses).
	Compress *bool `toml:"compress"`
}

// Presets are the accepted values of Site.Preset.
var Presets = []string{"wordpress", "drupal", "none"}

// TTL returns the site's default TTL: DefaultTTL when set, else 5m for the wordpress and
// drupal presets and 0 (do not cache without freshness) otherwise.
func (s *Site) TTL() time.Duration {
	if s.DefaultTTL != nil {
		return s.DefaultTTL.D()
	}
	return presetTTL(s.Preset).D()
}

// SWR returns the stale-while-revalidate window for responses that give none:
// StaleWhileRevalidate when set, else 30s for the CMS presets and 0 for "none" (RFC 9111
// §4.2.4: no stale serving the origin did not allow).
func (s *Site) SWR() time.Duration {
	if s.StaleWhileRevalidate != nil {
		return s.StaleWhileRevalidate.D()
	}
	return presetSWR(s.Preset).D()
}

// SIE returns the stale-if-error window the same way: 6h for the CMS presets, 0 for "none".
func (s *Site) SIE() time.Duration {
	if s.StaleIfError != nil {
		return s.StaleIfError.D()
	}
	return presetSIE(s.Preset).D()
}

// Compresses reports whether the site compresses at the edge: Compress when set, else true
// for the CMS presets and false for "none", which changes nothing the origin did not ask for.
func (s *Site) Compresses() bool {
	if s.Compress != nil {
		return *s.Compress
	}
	return s.Preset == "wordpress" || s.Preset == "drupal"
}

func presetSWR(preset string) Duration {
	if preset == "wordpress" || preset == "drupal" {
		return Duration(30 * time.Second)
	}
	return 0
}

func presetSIE(preset string) Duration {
	if preset == "wordpress" || preset == "drupal" {
		return Duration(6 * time.Hour)
	}
	return 0
}

func presetTTL(preset string) Duration {
	switch preset {
	case "wordpress", "drupal":
		return Duration(5 * time.Minute)
	}
	return 0
}

// Purge says who may send PURGE requests to the proxy listener.
type Purge struct {
	Allow []string `toml:"allow"` // CIDRs or single addresses; default loopback only
}

// AllowNets returns Allow parsed; entries that do not parse (Validate reports them) are
// left out, so a bad entry never widens access.
func (p Purge) AllowNets() []netip.Prefix { return prefixes(p.Allow) }

// prefixes parses a list of CIDRs or addresses, leaving out those that do not parse.
func prefixes(list []string) []netip.Prefix {
	nets := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if n, err := parsePrefix(s); err == nil {
			nets = append(nets, n)
		}
	}
	return nets
}

func parsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}

// Vitals configures the lab sampler.
type Vitals struct {
	Chromium    string   `toml:"chromium"`    // path to the browser; "" = look it up
	Pages       []Page   `toml:"page"`        // pages to sample
	Concurrency int      `toml:"concurrency"` // browsers at once; 1
	Timeout     Duration `toml:"timeout"`     // per page load; 45s
}

// Page is one page the lab sampler loads on a schedule.
type Page struct {
	Site     string   `toml:"site"`     // a configured site name
	URL      string   `toml:"url"`      // absolute http(s) URL, as a visitor types it
	Profiles []string `toml:"profiles"` // "mobile", "desktop"; default both
	Interval Duration `toml:"interval"` // 10m, at least 1m
	Cold     bool     `toml:"cold"`     // purge the URL at the edge first, so the sample measures a miss
	Selector string   `toml:"selector"` // what the synthetic click (INP) targets; empty picks a button or in-page link
}

// Profiles are the accepted values of Page.Profiles.
var Profiles = []string{"mobile", "desktop"}

// RUM configures field data from real visitors.
type RUM struct {
	Enabled    bool    `toml:"enabled"`     // inject the beacon into HTML pages
	SampleRate float64 `toml:"sample_rate"` // share of page views that report; 0.1
	CSPNonce   bool    `toml:"csp_nonce"`   // reuse the page's script nonce for the beacon
}

// Conversion is a goal reached when a visitor loads a path on a site.
type Conversion struct {
	Site string `toml:"site"` // a configured site name
	Name string `toml:"name"` // metric label: ^[a-z0-9][a-z0-9_-]*$
	Path string `toml:"path"` // starts with "/"; a trailing * matches a prefix
}

// Alerts configures the built-in hit ratio alert.
type Alerts struct {
	Webhook              string   `toml:"webhook"`                 // Alertmanager- or Slack-compatible; "" = off
	HitRatioBelow        float64  `toml:"hit_ratio_below"`         // 0.8
	For                  Duration `toml:"for"`                     // 10m
	MinRequestsPerSecond float64  `toml:"min_requests_per_second"` // 1: quieter sites do not alert
}

// Cluster lists the other nodes, for purge fan-out.
type Cluster struct {
	Peers []string `toml:"peers"` // admin base URLs
}

// Report configures release reports.
type Report struct {
	PrometheusURL string `toml:"prometheus_url"` // "" = the local store
	MinSamples    int    `toml:"min_samples"`    // per release before a verdict; 5
}

// Log configures the process log and the access log.
type Log struct {
	Format string `toml:"format"` // "text" (default) or "json": the process log on stderr
	// Access is "" (no access log), "stdout", or a file path: one JSON line per request
	// on the proxy listener, the file reopened on SIGUSR1 for logrotate.
	Access string `toml:"access"`
}

// Default returns a Config with every default and no sites.
func Default() *Config {
	return &Config{
		DataDir: "/var/lib/edgevitals",
		Server: Server{
			Listen:          ":8080",
			AdminListen:     "127.0.0.1:9145",
			ReadTimeout:     Duration(10 * time.Second),
			WriteTimeout:    Duration(30 * time.Second),
			IdleTimeout:     Duration(60 * time.Second),
			ShutdownTimeout: Duration(15 * time.Second),
			MaxHeaderBytes:  64 << 10,
			MaxBodyBytes:    32 << 20,
			MaxConns:        10000,

			BodyBufferBytes:     64 << 20,
			ResponseBufferBytes: 64 << 20,
			TempFileBytes:       1 << 30,
		},
		Cache: Cache{
			MaxBytes:           512 << 20,
			MaxObjectBytes:     8 << 20,
			StripQuery:         []string{"utm_*", "gclid", "fbclid", "msclkid"},
			CoalesceMaxWaiters: 10000,
			CoalesceTimeout:    Duration(30 * time.Second),
			HitForMiss:         Duration(2 * time.Minute),
		},
		Purge:  Purge{Allow: []string{"127.0.0.1/32", "::1/128"}},
		Vitals: Vitals{Concurrency: 1, Timeout: Duration(45 * time.Second)},
		RUM:    RUM{SampleRate: 0.1},
		Alerts: Alerts{
			HitRatioBelow:        0.8,
			For:                  Duration(10 * time.Minute),
			MinRequestsPerSecond: 1,
		},
		Report:    Report{MinSamples: 5},
		Log:       Log{Format: "text"},
		Retention: Duration(90 * 24 * time.Hour),
	}
}

// DefaultSite returns a Site with every default and no name, hosts or origins. Its
// DefaultTTL and stale windows are nil (the preset's); set Preset and call TTL, SWR and SIE.
func DefaultSite() Site {
	return Site{
		Preset:               "none",
		OriginTimeout:        Duration(30 * time.Second),
		OriginConnectTimeout: Duration(3 * time.Second),
		OriginMaxConns:       512,
		HealthInterval:       Duration(5 * time.Second),

		InvalidateOnUnsafeMethods: true,
	}
}

// DefaultPage returns a Page with every default and no site or URL.
func DefaultPage() Page {
	return Page{Profiles: []string{"mobile", "desktop"}, Interval: Duration(10 * time.Minute)}
}

// AdminOnLoopback reports whether the admin listener binds only loopback addresses. When it
// does not, serve must refuse to start without an admin token. An empty host (":9145")
// binds every interface, so it is not loopback; "localhost" is.
func (c *Config) AdminOnLoopback() bool {
	host, _, err := net.SplitHostPort(c.Server.AdminListen)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// LogValue summarises the config for logs; the admin token is never printed.
func (c *Config) LogValue() slog.Value {
	sites := make([]string, len(c.Sites))
	for i, s := range c.Sites {
		sites[i] = s.Name
	}
	return slog.GroupValue(
		slog.String("data_dir", c.DataDir),
		slog.String("listen", c.Server.Listen),
		slog.String("admin_listen", c.Server.AdminListen),
		slog.String("tls_listen", c.Server.TLSListen),
		slog.Any("admin_token", c.Server.AdminToken),
		slog.String("cache_max_bytes", c.Cache.MaxBytes.String()),
		slog.Any("sites", sites),
		slog.Int("pages", len(c.Vitals.Pages)),
		slog.Bool("rum", c.RUM.Enabled),
		slog.Int("conversions", len(c.Conversions)),
		slog.Int("peers", len(c.Cluster.Peers)),
		slog.Bool("prometheus_reports", c.Report.PrometheusURL != ""),
	)
}
