package proxy

import (
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// BenchmarkCountHit is what counting costs a hit: the requests counter, the
// response-time histogram and the rolling hit ratio of one site, as observe
// does them at the end of every request. Compare it with BenchmarkHit, which
// includes it.
func BenchmarkCountHit(b *testing.B) {
	m := newSiteMetrics(metrics.NewSet(), "blog", time.Now, nil)
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.observe(OutcomeHit, start)
	}
}

// BenchmarkCountHitParallel is BenchmarkCountHit from every core at once: the
// counters are shared atomics, so this is their cost under contention.
func BenchmarkCountHitParallel(b *testing.B) {
	m := newSiteMetrics(metrics.NewSet(), "blog", time.Now, nil)
	start := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.observe(OutcomeHit, start)
		}
	})
}
