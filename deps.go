//go:build deps

// Package edgevitals pins the chosen dependencies while the packages that use
// them are being written; the build tag keeps it out of every build.
package edgevitals

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/VictoriaMetrics/metrics"
	_ "github.com/chromedp/chromedp"
	_ "github.com/dgraph-io/ristretto/v2"
	_ "github.com/valyala/fasthttp"
	_ "go.etcd.io/bbolt"
)
