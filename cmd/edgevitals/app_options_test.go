package main

import (
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/config"
)

// TestProxyOptionsCacheSwitches: the per-site cache switches reach the proxy and the policy.
func TestProxyOptionsCacheSwitches(t *testing.T) {
	f := func(extra string, wantMax time.Duration, wantStrip bool) {
		t.Helper()
		cfg, err := config.Parse("test.toml", []byte("[[site]]\nname = \"blog\"\nhosts = [\"example.com\"]\norigins = [\"http://127.0.0.1:8081\"]\n"+extra))
		if err != nil {
			t.Fatalf("Parse(%q): %v", extra, err)
		}
		s := proxyOptions(cfg)[0]
		if s.Defaults.HeuristicMax != wantMax || s.StripCDNCacheControl != wantStrip {
			t.Errorf("%q: HeuristicMax %v, StripCDNCacheControl %v; want %v, %v", extra, s.Defaults.HeuristicMax, s.StripCDNCacheControl, wantMax, wantStrip)
		}
	}
	f("", 0, false)
	f("heuristic_max = \"1h\"\nstrip_cdn_cache_control = true\n", time.Hour, true)
}

// TestProxyOptionsCompress: site.compress, or its preset's default, reaches the proxy.
func TestProxyOptionsCompress(t *testing.T) {
	f := func(extra string, want bool) {
		t.Helper()
		cfg, err := config.Parse("test.toml", []byte("[[site]]\nname = \"blog\"\nhosts = [\"example.com\"]\norigins = [\"http://127.0.0.1:8081\"]\n"+extra))
		if err != nil {
			t.Fatalf("Parse(%q): %v", extra, err)
		}
		if got := proxyOptions(cfg)[0].Compress; got != want {
			t.Errorf("%q: Compress = %v, want %v", extra, got, want)
		}
	}
	f("", false)
	f("preset = \"wordpress\"\n", true)
	f("preset = \"wordpress\"\ncompress = false\n", false)
	f("compress = true\n", true)
}
