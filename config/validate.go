package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgevitals/edgevitals/internal/label"
)

// Validate checks a Config built in code the way Load checks a file. The error, when not
// nil, is an *Errors holding every problem found.
func (c *Config) Validate() error { return errorsOf(c.validate(nil)) }

// checker gathers problems, skipping keys the decoder has already reported.
type checker struct {
	problems []Problem
	skip     map[string]bool
}

func (v *checker) fail(key, format string, args ...any) {
	if !v.skip[key] {
		v.problems = append(v.problems, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
}

func (v *checker) positive(key string, d Duration) {
	if d <= 0 {
		v.fail(key, "must be > 0, got %s", d)
	}
}

func (v *checker) nonNegative(key string, d Duration) {
	if d < 0 {
		v.fail(key, "must be >= 0, got %s", d)
	}
}

func (v *checker) size(key string, s Size) {
	if s <= 0 {
		v.fail(key, "must be > 0, got %s", s)
	}
}

func (v *checker) count(key string, n int) {
	if n <= 0 {
		v.fail(key, "must be > 0, got %d", n)
	}
}

func (v *checker) ratio(key string, f float64) {
	if !(f >= 0 && f <= 1) { // also catches NaN
		v.fail(key, "must be between 0 and 1, got %v", f)
	}
}

// url checks an absolute http:// or https:// URL with a host.
func (v *checker) url(key, s string) (*url.URL, bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		v.fail(key, "must be an http:// or https:// URL, got %q", s)
		return nil, false
	}
	return u, true
}

func (v *checker) listen(key, s string) {
	host, port, err := net.SplitHostPort(s)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err == nil && host != "" && !validHostname(host) {
		if _, perr := netip.ParseAddr(host); perr != nil {
			err = perr
		}
	}
	if err != nil {
		v.fail(key, `must be host:port like ":8080" or "127.0.0.1:9145", got %q`, s)
	}
}

// prefixes checks a list of CIDRs or single addresses.
func (v *checker) prefixes(key string, list []string) {
	for i, a := range list {
		if _, err := parsePrefix(a); err != nil {
			v.fail(fmt.Sprintf("%s[%d]", key, i), `must be a CIDR like "10.0.0.0/8" or an IP address, got %q`, a)
		}
	}
}

func (c *Config) validate(skip map[string]bool) []Problem {
	v := &checker{skip: skip}
	if c.DataDir == "" {
		v.fail("data_dir", "must be set")
	}
	if c.Retention <= 0 {
		v.fail("retention", "must be > 0, got %s", c.Retention)
	}
	c.Server.validate(v)
	c.validateTLS(v)
	c.Cache.validate(v)
	c.validateSites(v)
	v.prefixes("purge.allow", c.Purge.Allow)
	c.validateVitals(v)
	v.ratio("rum.sample_rate", c.RUM.SampleRate)
	c.validateConversions(v)
	if c.Alerts.Webhook != "" {
		v.url("alerts.webhook", c.Alerts.Webhook)
	}
	v.ratio("alerts.hit_ratio_below", c.Alerts.HitRatioBelow)
	v.nonNegative("alerts.for", c.Alerts.For)
	if !(c.Alerts.MinRequestsPerSecond >= 0) {
		v.fail("alerts.min_requests_per_second", "must be >= 0, got %v", c.Alerts.MinRequestsPerSecond)
	}
	for i, p := range c.Cluster.Peers {
		v.url(fmt.Sprintf("cluster.peers[%d]", i), p)
	}
	if c.Report.PrometheusURL != "" {
		v.url("report.prometheus_url", c.Report.PrometheusURL)
	}
	v.count("report.min_samples", c.Report.MinSamples)
	if c.Log.Format != "text" && c.Log.Format != "json" {
		v.fail("log.format", `must be "text" or "json", got %q`, c.Log.Format)
	}
	return v.problems
}

func (s *Server) validate(v *checker) {
	v.listen("server.listen", s.Listen)
	v.listen("server.admin_listen", s.AdminListen)
	if sameListener(s.Listen, s.AdminListen) {
		v.fail("server.admin_listen", "must not share a port with server.listen (%q), got %q", s.Listen, s.AdminListen)
	}
	for i, h := range s.AdminHosts {
		inner, bracketed := strings.CutPrefix(h, "[")
		if bracketed {
			inner, bracketed = strings.CutSuffix(inner, "]")
		}
		if a, err := netip.ParseAddr(inner); !(bracketed && err == nil && a.Is6()) && !validHostname(h) {
			v.fail(fmt.Sprintf("server.admin_hosts[%d]", i), `must be a host name or address without a port, like "edgevitals" or "10.0.0.5", got %q`, h)
		}
	}
	v.positive("server.read_timeout", s.ReadTimeout)
	v.positive("server.write_timeout", s.WriteTimeout)
	v.positive("server.idle_timeout", s.IdleTimeout)
	v.positive("server.shutdown_timeout", s.ShutdownTimeout)
	v.size("server.max_header_bytes", s.MaxHeaderBytes)
	v.size("server.max_body_bytes", s.MaxBodyBytes)
	v.count("server.max_conns", s.MaxConns)
	v.prefixes("server.trusted_proxies", s.TrustedProxies)
	v.size("server.body_buffer_bytes", s.BodyBufferBytes)
	v.size("server.response_buffer_bytes", s.ResponseBufferBytes)
	if s.TempFileBytes < 0 {
		v.fail("server.temp_file_bytes", "must be >= 0, got %s", s.TempFileBytes)
	}
}

// sameListener reports whether two listen addresses would take the same port: the same
// host, or either on all interfaces. Port 0 picks a free port, so it never clashes.
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	return ha == hb || ha == "" || hb == ""
}

func (c *Cache) validate(v *checker) {
	v.size("cache.max_bytes", c.MaxBytes)
	v.size("cache.max_object_bytes", c.MaxObjectBytes)
	if c.MaxObjectBytes > c.MaxBytes && c.MaxBytes > 0 {
		v.fail("cache.max_object_bytes", "must be at most cache.max_bytes (%s), got %s", c.MaxBytes, c.MaxObjectBytes)
	}
	for i, q := range c.StripQuery {
		if q == "" || strings.Contains(strings.TrimSuffix(q, "*"), "*") {
			v.fail(fmt.Sprintf("cache.strip_query[%d]", i), "must be a query parameter name, optionally ending in *, got %q", q)
		}
	}
	v.count("cache.coalesce_max_waiters", c.CoalesceMaxWaiters)
	v.positive("cache.coalesce_timeout", c.CoalesceTimeout)
	v.nonNegative("cache.hit_for_miss", c.HitForMiss)
}

func (c *Config) validateSites(v *checker) {
	if len(c.Sites) == 0 {
		v.fail("site", "at least one [[site]] is required")
	}
	names := map[string]string{} // name -> key of its first use
	hosts := map[string]string{} // host -> key of its first use
	for i := range c.Sites {
		s := &c.Sites[i]
		key := fmt.Sprintf("site[%d]", i)
		switch {
		case s.Name == "":
			v.fail(key+".name", "must be set")
		case !label.Match(s.Name):
			v.fail(key+".name", "must be lowercase letters, digits, - and _ (it is a metric label), got %q", s.Name)
		case names[s.Name] != "":
			v.fail(key+".name", "duplicate site name %q, also in %s", s.Name, names[s.Name])
		default:
			names[s.Name] = key + ".name"
		}
		if len(s.Hosts) == 0 {
			v.fail(key+".hosts", "must list at least one host")
		}
		for j, h := range s.Hosts {
			hk := fmt.Sprintf("%s.hosts[%d]", key, j)
			switch {
			case h == "*" && hosts[h] != "":
				v.fail(hk, `"*" may appear only once across all sites, also in %s`, hosts[h])
			case h == "*":
				hosts[h] = hk
			case h != strings.ToLower(h):
				v.fail(hk, "must be lowercase, got %q", h)
			case !validHost(h):
				v.fail(hk, `must be a host name with an optional :port like "example.com" or "example.com:8080", got %q`, h)
			case hosts[h] != "":
				v.fail(hk, "duplicate host %q, also in %s", h, hosts[h])
			default:
				hosts[h] = hk
			}
		}
		s.validate(v, key)
	}
}

func (s *Site) validate(v *checker, key string) {
	if len(s.Origins) == 0 {
		v.fail(key+".origins", "must list at least one origin")
	}
	for j, o := range s.Origins {
		ok := fmt.Sprintf("%s.origins[%d]", key, j)
		u, valid := v.url(ok, o)
		switch {
		case !valid:
		case u.Path != "" && u.Path != "/":
			v.fail(ok, "must not have a path (requests keep their own), got %q", o)
		case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
			v.fail(ok, "must not have a query or fragment, got %q", o)
		}
	}
	if !slices.Contains(Presets, s.Preset) {
		v.fail(key+".preset", "must be one of %s, got %q", strings.Join(Presets, ", "), s.Preset)
	}
	if s.DefaultTTL != nil {
		v.nonNegative(key+".default_ttl", *s.DefaultTTL)
	}
	if s.StaleWhileRevalidate != nil {
		v.nonNegative(key+".stale_while_revalidate", *s.StaleWhileRevalidate)
	}
	if s.StaleIfError != nil {
		v.nonNegative(key+".stale_if_error", *s.StaleIfError)
	}
	v.nonNegative(key+".heuristic_max", s.HeuristicMax)
	if s.ReleaseHeader != "" && !isToken(s.ReleaseHeader) {
		v.fail(key+".release_header", `must be a header name like "X-Release", got %q`, s.ReleaseHeader)
	}
	v.positive(key+".origin_timeout", s.OriginTimeout)
	v.positive(key+".origin_connect_timeout", s.OriginConnectTimeout)
	v.count(key+".origin_max_conns", s.OriginMaxConns)
	for j, ck := range s.BypassCookies {
		if name := strings.TrimSuffix(ck, "*"); !isToken(name) || strings.Contains(name, "*") {
			v.fail(fmt.Sprintf("%s.bypass_cookies[%d]", key, j), "must be a cookie name, optionally ending in *, got %q", ck)
		}
	}
	for j, p := range s.BypassPaths {
		if !strings.HasPrefix(p, "/") {
			v.fail(fmt.Sprintf("%s.bypass_paths[%d]", key, j), `must be a path starting with "/", got %q`, p)
		}
	}
	if s.HSTS != "" && !validHSTS(s.HSTS) {
		v.fail(key+".hsts", `must be a Strict-Transport-Security value like "max-age=31536000; includeSubDomains", got %q`, s.HSTS)
	}
	if s.HealthPath != "" {
		if !strings.HasPrefix(s.HealthPath, "/") {
			v.fail(key+".health_path", `must be a path starting with "/", got %q`, s.HealthPath)
		}
		v.positive(key+".health_interval", s.HealthInterval)
	} else {
		v.nonNegative(key+".health_interval", s.HealthInterval)
	}
}

// checkSite checks that name, under key, is the name of a configured site.
func (c *Config) checkSite(v *checker, key, name string) {
	if !slices.ContainsFunc(c.Sites, func(s Site) bool { return s.Name == name }) {
		v.fail(key, "must name a configured site (%s), got %q", c.siteNames(), name)
	}
}

// siteNames lists the configured site names for a message.
func (c *Config) siteNames() string {
	var names []string
	for _, s := range c.Sites {
		if s.Name != "" {
			names = append(names, s.Name)
		}
	}
	if len(names) == 0 {
		return "none configured"
	}
	return strings.Join(names, ", ")
}

func (c *Config) validateVitals(v *checker) {
	if c.Vitals.Concurrency < 1 {
		v.fail("vitals.concurrency", "must be >= 1, got %d", c.Vitals.Concurrency)
	}
	v.positive("vitals.timeout", c.Vitals.Timeout)
	for i, p := range c.Vitals.Pages {
		key := fmt.Sprintf("vitals.page[%d]", i)
		c.checkSite(v, key+".site", p.Site)
		v.url(key+".url", p.URL)
		if len(p.Profiles) == 0 {
			v.fail(key+".profiles", "must list at least one of %s", strings.Join(Profiles, ", "))
		}
		for j, pr := range p.Profiles {
			if !slices.Contains(Profiles, pr) {
				v.fail(fmt.Sprintf("%s.profiles[%d]", key, j), "must be one of %s, got %q", strings.Join(Profiles, ", "), pr)
			}
		}
		if p.Interval < Duration(time.Minute) {
			v.fail(key+".interval", "must be at least 1m, got %s", p.Interval)
		}
	}
}

func (c *Config) validateConversions(v *checker) {
	seen := map[[2]string]string{}
	for i, cv := range c.Conversions {
		key := fmt.Sprintf("conversion[%d]", i)
		c.checkSite(v, key+".site", cv.Site)
		switch id := [2]string{cv.Site, cv.Name}; {
		case !label.Match(cv.Name):
			v.fail(key+".name", "must be lowercase letters, digits, - and _ (it is a metric label), got %q", cv.Name)
		case seen[id] != "":
			v.fail(key+".name", "duplicate conversion %q for site %q, also in %s", cv.Name, cv.Site, seen[id])
		default:
			seen[id] = key
		}
		if !strings.HasPrefix(cv.Path, "/") {
			v.fail(key+".path", `must be a path starting with "/", got %q`, cv.Path)
		}
	}
}

// validHost accepts a lowercase host name or IP address with an optional :port; IPv6
// addresses are written in brackets.
func validHost(h string) bool {
	host, port := h, ""
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		host, port = h[:i], h[i+1:]
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return false
		}
	}
	if inner, ok := strings.CutPrefix(host, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		a, err := netip.ParseAddr(inner)
		return ok && err == nil && a.Is6()
	}
	return validHostname(host)
}

// validHostname accepts DNS names (letters, digits, - and _ in dot-separated labels) and
// IPv4 addresses, which are made of the same characters.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// isToken reports whether s is an HTTP token (RFC 9110), as header and cookie names are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
