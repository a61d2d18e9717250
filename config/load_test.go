package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// problems returns the problems of err, failing the test when err is not an *Errors.
func problems(t *testing.T, err error) []Problem {
	t.Helper()
	if err == nil {
		return nil
	}
	var e *Errors
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Errors", err, err)
	}
	return e.Problems
}

// mustParse parses src with a small valid site around it unless src has its own.
func parse(t *testing.T, src string) (*Config, []Problem) {
	t.Helper()
	c, err := Parse("test.toml", []byte(src))
	return c, problems(t, err)
}

const minimal = `
[[site]]
name = "blog"
hosts = ["example.com"]
origins = ["http://127.0.0.1:8081"]
`

func TestLoadExample(t *testing.T) {
	t.Setenv(TokenEnv, "from-env")
	c, err := Load("testdata/example.toml")
	if err != nil {
		t.Fatalf("Load(example.toml) error:\n%v", err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() of a loaded config = %v, want nil", err)
	}
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"data_dir", c.DataDir, "/var/lib/edgevitals"},
		{"server.admin_token", c.Server.AdminToken.Reveal(), "change-me"}, // the file wins over the environment
		{"server.read_timeout", c.Server.ReadTimeout.D(), 10 * time.Second},
		{"cache.max_bytes", c.Cache.MaxBytes, Size(512 << 20)},
		{"site count", len(c.Sites), 2},
		{"site[0].default_ttl", c.Sites[0].TTL(), 5 * time.Minute},
		{"site[0].stale_if_error", c.Sites[0].StaleIfError.D(), 6 * time.Hour},
		{"site[1].origins", c.Sites[1].Origins, []string{"http://10.0.0.11:8080", "http://10.0.0.12:8080"}},
		{"site[1].origin_max_conns", c.Sites[1].OriginMaxConns, 512},
		{"site[1].health_interval", c.Sites[1].HealthInterval.D(), 5 * time.Second},
		{"vitals.page[0].profiles", c.Vitals.Pages[0].Profiles, []string{"mobile", "desktop"}},
		{"vitals.timeout", c.Vitals.Timeout.D(), 45 * time.Second},
		{"conversion[0].path", c.Conversions[0].Path, "/checkout/order-received/*"},
		{"alerts.min_requests_per_second", c.Alerts.MinRequestsPerSecond, 1.0},
		{"retention", c.Retention.D(), 2160 * time.Hour},
		{"report.min_samples", c.Report.MinSamples, 5},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

// TestBadGolden holds the exact output of `edgevitals check` for a file with many problems:
// every problem at once, in file order, each with its line, key, value and rule.
// Run with -update to rewrite testdata/bad.golden after a deliberate change.
func TestBadGolden(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "bad.toml"))
	ps := problems(t, err)
	if len(ps) < 40 {
		t.Errorf("got %d problems, want every problem in bad.toml (40 or more)", len(ps))
	}
	got := err.Error() + "\n"
	golden := filepath.Join("testdata", "bad.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("problems differ from %s (run with -update if the change is deliberate)\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // Problem.String() of every problem, in order
	}{
		{
			name: "syntax error has its line",
			src:  "[server]\nlisten = \":8080\"\nadmin_listen = \n",
			want: []string{"test.toml:3: invalid TOML: expected value but found '\\n' instead"},
		},
		{
			name: "no site",
			src:  "",
			want: []string{"test.toml: site: at least one [[site]] is required"},
		},
		{
			name: "unknown keys at every level, with lines",
			src: minimal + "colour = 1\n[server]\nlisten = \":80\"\nlisen = \":81\"\n" +
				"[nosuch]\na = 1\n[nosuch.deeper]\nb = 2\n",
			want: []string{
				"test.toml:6: site[0].colour: unknown key",
				"test.toml:9: server.lisen: unknown key",
				"test.toml:10: nosuch: unknown key",
			},
		},
		{
			name: "wrong types",
			src: minimal + "[server]\nmax_conns = 1.5\ndebug_headers = \"yes\"\nlisten = 8080\n" +
				"[cache]\nstrip_query = \"utm_*\"\nmax_bytes = true\n",
			want: []string{
				"test.toml:7: server.max_conns: must be an integer, got 1.5",
				"test.toml:8: server.debug_headers: must be true or false, got \"yes\"",
				"test.toml:9: server.listen: must be a string, got 8080",
				"test.toml:11: cache.strip_query: must be an array, got \"utm_*\"",
				"test.toml:12: cache.max_bytes: must be a string, got true",
			},
		},
		{
			name: "table where a value belongs, value where a table belongs",
			src:  "server = 5\n[alerts.for]\nx = 1\n" + minimal,
			want: []string{
				"test.toml:1: server: must be a table, got 5",
				"test.toml:2: alerts.for: must be a string, got a table",
			},
		},
		{
			name: "a problem found in decoding is not reported again by validation",
			src:  "[[site]]\nname = 7\nhosts = [\"a.com\"]\norigins = [\"http://a\"]\n",
			want: []string{"test.toml:2: site[0].name: must be a string, got 7"},
		},
		{
			name: "dotted keys and inline tables have lines",
			src:  "server.listen = \"nope\"\nalerts = { for = \"-1m\",\n  webhook = \"x\" }\n" + minimal,
			want: []string{
				"test.toml:1: server.listen: must be host:port like \":8080\" or \"127.0.0.1:9145\", got \"nope\"",
				"test.toml:2: alerts.for: must be >= 0, got -1m0s",
				"test.toml:3: alerts.webhook: must be an http:// or https:// URL, got \"x\"",
			},
		},
		{
			name: "elements of a multi-line array have their own lines",
			src:  "[[site]]\nname = \"a\"\nhosts = [\"a.com\"]\norigins = [\n  \"http://ok\",\n  # comment\n  \"http://x/path\",\n]\n",
			want: []string{`test.toml:7: site[0].origins[1]: must not have a path (requests keep their own), got "http://x/path"`},
		},
		{
			name: "multi-line strings count lines",
			src:  "[vitals]\nchromium = \"\"\"\na\nb\n\"\"\"\nconcurrency = -1\n" + minimal,
			want: []string{"test.toml:6: vitals.concurrency: must be >= 1, got -1"},
		},
		{
			name: "arrays of tables count their elements",
			src: minimal + "[[vitals.page]]\nsite = \"blog\"\nurl = \"http://example.com/\"\n" +
				"[[vitals.page]]\nsite = \"blog\"\nurl = \"http://example.com/b\"\ninterval = \"1s\"\n",
			want: []string{"test.toml:12: vitals.page[1].interval: must be at least 1m, got 1s"},
		},
		{
			name: "admin listener must not take the proxy's port",
			src:  minimal + "[server]\nlisten = \":9000\"\nadmin_listen = \"127.0.0.1:9000\"\n",
			want: []string{`test.toml:8: server.admin_listen: must not share a port with server.listen (":9000"), got "127.0.0.1:9000"`},
		},
		{
			name: "admin_hosts are names or addresses without a port",
			src:  minimal + "[server]\nadmin_hosts = [\"edgevitals\", \"10.0.0.5\", \"[::1]\", \"edge.internal:9145\", \"http://x\", \"\"]\n",
			want: []string{
				`test.toml:7: server.admin_hosts[3]: must be a host name or address without a port, like "edgevitals" or "10.0.0.5", got "edge.internal:9145"`,
				`test.toml:7: server.admin_hosts[4]: must be a host name or address without a port, like "edgevitals" or "10.0.0.5", got "http://x"`,
				`test.toml:7: server.admin_hosts[5]: must be a host name or address without a port, like "edgevitals" or "10.0.0.5", got ""`,
			},
		},
		{
			name: "duplicate site and conversion names",
			src: minimal + minimal + "[[conversion]]\nsite = \"blog\"\nname = \"order\"\npath = \"/a\"\n" +
				"[[conversion]]\nsite = \"blog\"\nname = \"order\"\npath = \"/b\"\n",
			want: []string{
				"test.toml:8: site[1].name: duplicate site name \"blog\", also in site[0].name",
				"test.toml:9: site[1].hosts[0]: duplicate host \"example.com\", also in site[0].hosts[0]",
				"test.toml:17: conversion[1].name: duplicate conversion \"order\" for site \"blog\", also in conversion[0]",
			},
		},
		{
			name: "health checks need an interval",
			src:  minimal + "health_path = \"/health\"\nhealth_interval = \"0\"\n",
			want: []string{"test.toml:7: site[0].health_interval: must be > 0, got 0s"},
		},
		{
			name: "heuristic_max is a duration >= 0",
			src:  minimal + "heuristic_max = \"-1h\"\nstrip_cdn_cache_control = \"yes\"\n",
			want: []string{
				"test.toml:6: site[0].heuristic_max: must be >= 0, got -1h0m0s",
				"test.toml:7: site[0].strip_cdn_cache_control: must be true or false, got \"yes\"",
			},
		},
		{
			name: "compress is true or false",
			src:  minimal + "compress = \"yes\"\n",
			want: []string{`test.toml:6: site[0].compress: must be true or false, got "yes"`},
		},
		{
			name: "trusted proxies are CIDRs or addresses, each on its line",
			src: minimal + "[server]\ntrusted_proxies = [\"127.0.0.1/32\", \"10.0.0.0/33\"]\nproxy_protocol = \"yes\"\n" +
				"[purge]\nallow = [\n  \"::1\",\n  \"hitch.local\",\n]\n",
			want: []string{
				`test.toml:7: server.trusted_proxies[1]: must be a CIDR like "10.0.0.0/8" or an IP address, got "10.0.0.0/33"`,
				`test.toml:8: server.proxy_protocol: must be true or false, got "yes"`,
				`test.toml:12: purge.allow[1]: must be a CIDR like "10.0.0.0/8" or an IP address, got "hitch.local"`,
			},
		},
		{
			name: "trusted proxies written one per line",
			src:  minimal + "[server]\ntrusted_proxies = [\n  \"::1/128\",\n  \"localhost\",\n]\n",
			want: []string{`test.toml:9: server.trusted_proxies[1]: must be a CIDR like "10.0.0.0/8" or an IP address, got "localhost"`},
		},
		{
			name: "body buffers need room",
			src:  minimal + "[server]\nbody_buffer_bytes = \"0\"\nresponse_buffer_bytes = -1\ntemp_file_bytes = -1\n",
			want: []string{
				"test.toml:7: server.body_buffer_bytes: must be > 0, got 0",
				"test.toml:8: server.response_buffer_bytes: must be > 0, got -1",
				"test.toml:9: server.temp_file_bytes: must be >= 0, got -1",
			},
		},
		{
			name: "log format is text or json",
			src:  minimal + "[log]\nformat = \"logfmt\"\naccess = \"stdout\"\n",
			want: []string{`test.toml:7: log.format: must be "text" or "json", got "logfmt"`},
		},
		{
			name: "sample rate is a ratio, NaN included",
			src:  minimal + "[rum]\nsample_rate = nan\n",
			want: []string{"test.toml:7: rum.sample_rate: must be between 0 and 1, got NaN"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ps := parse(t, tt.src)
			got := make([]string, len(ps))
			for i, p := range ps {
				got[i] = p.String()
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if c != nil {
				t.Errorf("Parse returned a config along with problems")
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		check func(c *Config) (got, want any)
	}{
		{"strip_query default", "", func(c *Config) (any, any) {
			return c.Cache.StripQuery, []string{"utm_*", "gclid", "fbclid", "msclkid"}
		}},
		{"strip_query replaces the default", "[cache]\nstrip_query = [\"ref\"]\n", func(c *Config) (any, any) {
			return c.Cache.StripQuery, []string{"ref"}
		}},
		{"empty strip_query strips nothing", "[cache]\nstrip_query = []\n", func(c *Config) (any, any) {
			return len(c.Cache.StripQuery), 0
		}},
		{"preset none has no default TTL", "", func(c *Config) (any, any) {
			return *c.Sites[0].DefaultTTL, Duration(0)
		}},
		{"preset wordpress defaults to 5m", "preset = \"drupal\"\n", func(c *Config) (any, any) {
			return *c.Sites[0].DefaultTTL, Duration(5 * time.Minute)
		}},
		{"explicit default_ttl wins over the preset", "preset = \"wordpress\"\ndefault_ttl = \"0\"\n", func(c *Config) (any, any) {
			return c.Sites[0].TTL(), time.Duration(0)
		}},
		{"integer zero is a duration", "[cache]\nhit_for_miss = 0\n", func(c *Config) (any, any) {
			return c.Cache.HitForMiss, Duration(0)
		}},
		{"integer sizes are bytes", "[cache]\nmax_object_bytes = 1000\n", func(c *Config) (any, any) {
			return c.Cache.MaxObjectBytes, Size(1000)
		}},
		{"logs default to text and no access log", "", func(c *Config) (any, any) {
			return c.Log, Log{Format: "text"}
		}},
		{"access log to a file, json process log", "[log]\nformat = \"json\"\naccess = \"/var/log/edgevitals/access.log\"\n", func(c *Config) (any, any) {
			return c.Log, Log{Format: "json", Access: "/var/log/edgevitals/access.log"}
		}},
		{"body buffers default", "", func(c *Config) (any, any) {
			return []Size{c.Server.BodyBufferBytes, c.Server.ResponseBufferBytes, c.Server.TempFileBytes}, []Size{64 << 20, 64 << 20, 1 << 30}
		}},
		{"temp_file_bytes 0 turns temporary files off", "[server]\ntemp_file_bytes = 0\n", func(c *Config) (any, any) {
			return c.Server.TempFileBytes, Size(0)
		}},
		{"integers are accepted as floats", "[alerts]\nhit_ratio_below = 1\n", func(c *Config) (any, any) {
			return c.Alerts.HitRatioBelow, 1.0
		}},
		{"purge allow default is loopback", "", func(c *Config) (any, any) {
			return len(c.Purge.AllowNets()), 2
		}},
		{"heuristic freshness is off by default", "", func(c *Config) (any, any) {
			return c.Sites[0].HeuristicMax, Duration(0)
		}},
		{"heuristic_max", "heuristic_max = \"1h\"\n", func(c *Config) (any, any) {
			return c.Sites[0].HeuristicMax, Duration(time.Hour)
		}},
		{"CDN-Cache-Control is forwarded by default", "", func(c *Config) (any, any) {
			return c.Sites[0].StripCDNCacheControl, false
		}},
		{"strip_cdn_cache_control", "strip_cdn_cache_control = true\n", func(c *Config) (any, any) {
			return c.Sites[0].StripCDNCacheControl, true
		}},
		{"no trusted proxies by default", "", func(c *Config) (any, any) {
			return fmt.Sprint(c.Server.TrustedNets(), c.Server.ProxyProtocol), "[] false"
		}},
		{"trusted proxies: addresses are single-address prefixes", "[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.1.2.3/8\", \"::1\"]\nproxy_protocol = true\n", func(c *Config) (any, any) {
			return fmt.Sprint(c.Server.TrustedNets(), c.Server.ProxyProtocol), "[127.0.0.1/32 10.0.0.0/8 ::1/128] true"
		}},
		{"unsafe methods invalidate by default", "", func(c *Config) (any, any) {
			return c.Sites[0].InvalidateOnUnsafeMethods, true
		}},
		{"invalidate_on_unsafe_methods can be turned off", "invalidate_on_unsafe_methods = false\n", func(c *Config) (any, any) {
			return c.Sites[0].InvalidateOnUnsafeMethods, false
		}},
		{"preset none does not compress by default", "", func(c *Config) (any, any) {
			return *c.Sites[0].Compress, false
		}},
		{"CMS presets compress by default", "preset = \"wordpress\"\n", func(c *Config) (any, any) {
			return *c.Sites[0].Compress, true
		}},
		{"compress can be turned off for a CMS preset", "preset = \"drupal\"\ncompress = false\n", func(c *Config) (any, any) {
			return *c.Sites[0].Compress, false
		}},
		{"compress can be turned on for preset none", "compress = true\n", func(c *Config) (any, any) {
			return *c.Sites[0].Compress, true
		}},
		{"token from the environment", "", func(c *Config) (any, any) {
			return c.Server.AdminToken.Reveal(), "env-token"
		}},
	}
	t.Setenv(TokenEnv, "env-token")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ps := parse(t, minimal+tt.extra)
			if len(ps) > 0 {
				t.Fatalf("Parse: %v", ps)
			}
			if got, want := tt.check(c); !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	ps := problems(t, err)
	if len(ps) != 1 || !strings.HasSuffix(ps[0].String(), "nope.toml: cannot read config: no such file or directory") {
		t.Errorf("Load(missing) problems = %v", ps)
	}
}

func TestValidateInCode(t *testing.T) {
	c := Default()
	ps := problems(t, c.Validate())
	if len(ps) != 1 || ps[0].String() != "site: at least one [[site]] is required" {
		t.Errorf("Default().Validate() = %v, want only the missing site", ps)
	}

	s := DefaultSite()
	s.Name, s.Hosts, s.Origins = "demo", []string{"*"}, []string{"http://127.0.0.1:0"}
	p := DefaultPage()
	p.Site, p.URL = "demo", "http://127.0.0.1:8080/"
	c.Sites, c.Vitals.Pages = []Site{s}, []Page{p}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() of a demo-like config = %v, want nil", err)
	}

	c.Sites = []Site{{Name: "demo", Hosts: []string{"*"}, Origins: []string{"http://a"}}}
	want := []string{
		`site[0].preset: must be one of wordpress, drupal, none, got ""`,
		"site[0].origin_timeout: must be > 0, got 0s",
		"site[0].origin_connect_timeout: must be > 0, got 0s",
		"site[0].origin_max_conns: must be > 0, got 0",
	}
	ps = problems(t, c.Validate())
	got := make([]string, len(ps))
	for i, p := range ps {
		got[i] = p.String()
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Validate() of a Site without defaults:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAdminOnLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:9145", true},
		{"[::1]:9145", true},
		{"localhost:9145", true},
		{"127.0.0.2:9145", true},
		{":9145", false},
		{"0.0.0.0:9145", false},
		{"10.0.0.1:9145", false},
		{"example.com:9145", false},
		{"garbage", false},
	}
	for _, tt := range tests {
		c := Default()
		c.Server.AdminListen = tt.addr
		if got := c.AdminOnLoopback(); got != tt.want {
			t.Errorf("AdminOnLoopback(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestAllowNets(t *testing.T) {
	p := Purge{Allow: []string{"10.1.2.3/8", "192.168.0.7", "::1/128", "bogus", "2001:db8::1"}}
	var got []string
	for _, n := range p.AllowNets() {
		got = append(got, n.String())
	}
	want := []string{"10.0.0.0/8", "192.168.0.7/32", "::1/128", "2001:db8::1/128"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AllowNets() = %v, want %v", got, want)
	}
}

func TestValidHost(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"example.com", true},
		{"www.example.com:8080", true},
		{"127.0.0.1", true},
		{"localhost:80", true},
		{"[::1]:8080", true},
		{"[::1]", true},
		{"my_host.internal", true},
		{"", false},
		{"example.com:", false},
		{"example.com:0", false},
		{"example.com:65536", false},
		{"::1", false},
		{"[1.2.3.4]", false},
		{"-bad.com", false},
		{"a..b", false},
		{"a b", false},
		{"*.example.com", false},
		{"http://example.com", false},
	}
	for _, tt := range tests {
		if got := validHost(tt.host); got != tt.want {
			t.Errorf("validHost(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "e.toml", Line: 12, Key: "site[1].origins[0]", Msg: "bad"}, "e.toml:12: site[1].origins[0]: bad"},
		{Problem{File: "e.toml", Key: "site", Msg: "missing"}, "e.toml: site: missing"},
		{Problem{File: "e.toml", Line: 3, Msg: "invalid TOML"}, "e.toml:3: invalid TOML"},
		{Problem{Key: "site", Msg: "missing"}, "site: missing"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("Problem.String() = %q, want %q", got, tt.want)
		}
	}
}
