package cache

import (
	"fmt"
	"testing"
	"time"
)

func BenchmarkStoreGet(b *testing.B) {
	s := newStore(b, Options{MaxBytes: 64 << 20, Clock: func() time.Time { return t0 }})
	const n = 1024
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "https://blog.example/post/%d/", i)
		e := entry("blog", string(keys[i]), "hello world")
		e.Vary, e.VaryValues = []string{"accept-encoding"}, [][]byte{[]byte("gzip")}
		s.Set(e)
	}
	var req Header = staticHeader{[]byte("gzip")}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.Get(keys[i%n], req)
			i++
		}
	})
}

func BenchmarkStoreSet(b *testing.B) {
	s := newStore(b, Options{MaxBytes: 64 << 20, Clock: func() time.Time { return t0 }})
	es := make([]*Entry, 1024)
	for i := range es {
		es[i] = entry("blog", fmt.Sprintf("https://blog.example/post/%d/", i), "hello world", "home")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.Set(es[i%len(es)])
	}
}

func BenchmarkAppendKey(b *testing.B) {
	k := mustKeyer(b, defaultStrip)
	scheme, host, path := []byte("https"), []byte("WWW.example.com:443"), []byte("/blog/post/")
	query := []byte("utm_source=news&b=2&a=1&gclid=x&c=3")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]byte, 0, 256)
		for pb.Next() {
			dst = k.AppendKey(dst[:0], scheme, host, path, query)
		}
	})
}

func BenchmarkParseCacheControl(b *testing.B) {
	v := []byte(`public, max-age=60, s-maxage="120", stale-while-revalidate=30, no-cache="set-cookie"`)
	b.ReportAllocs()
	for b.Loop() {
		ParseCacheControl(v)
	}
}

func BenchmarkFlightPassing(b *testing.B) {
	f := NewFlight(FlightOptions{HitForMiss: time.Minute})
	key := []byte("https://blog.example/cart/")
	f.Pass(key)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f.Passing(key)
		}
	})
}
