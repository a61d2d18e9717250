package cache

import (
	"testing"
)

func TestParseCacheControl(t *testing.T) {
	none := Directives{MaxAge: -1, SMaxAge: -1, StaleWhileRevalidate: -1, StaleIfError: -1, MinFresh: -1, MaxStale: -1}
	with := func(f func(d *Directives)) Directives {
		d := none
		f(&d)
		return d
	}
	tests := []struct {
		in   string
		want Directives
	}{
		{"", none},
		{" , ,, ", none},
		{"max-age=60", with(func(d *Directives) { d.MaxAge = 60 })},
		{"MAX-AGE=60, Public", with(func(d *Directives) { d.MaxAge = 60; d.Public = true })},
		{`max-age="120"`, with(func(d *Directives) { d.MaxAge = 120 })},
		{"max-age = 30 , s-maxage=10", with(func(d *Directives) { d.MaxAge = 30; d.SMaxAge = 10 })},
		{"max-age=abc", with(func(d *Directives) { d.MaxAge = 0 })},
		{"max-age", with(func(d *Directives) { d.MaxAge = 0 })},
		{"max-age=-5", with(func(d *Directives) { d.MaxAge = 0 })},
		{"max-age=abc, max-age=60", with(func(d *Directives) { d.MaxAge = 60 })},
		{"max-age=60, max-age=10", with(func(d *Directives) { d.MaxAge = 60 })},
		{"max-age=60, max-age=abc", with(func(d *Directives) { d.MaxAge = 60 })},
		{"s-maxage=x", with(func(d *Directives) { d.SMaxAge = 0 })},
		{"max-age=99999999999999999999", with(func(d *Directives) { d.MaxAge = maxDelta })},
		{"stale-while-revalidate=30, stale-if-error=600", with(func(d *Directives) { d.StaleWhileRevalidate = 30; d.StaleIfError = 600 })},
		{"stale-while-revalidate=x, stale-while-revalidate=5", with(func(d *Directives) { d.StaleWhileRevalidate = 5 })},
		{"min-fresh=5, max-stale", with(func(d *Directives) { d.MinFresh = 5; d.MaxStale = maxDelta })},
		{"max-stale=7", with(func(d *Directives) { d.MaxStale = 7 })},
		{"no-store", with(func(d *Directives) { d.NoStore = true })},
		{`no-cache="Set-Cookie, X-Foo", max-age=5`, with(func(d *Directives) { d.NoCache = true; d.MaxAge = 5 })},
		{`private="x"`, with(func(d *Directives) { d.Private = true })},
		{"must-revalidate,proxy-revalidate,no-transform,immutable,only-if-cached", with(func(d *Directives) {
			d.MustRevalidate, d.ProxyRevalidate, d.NoTransform, d.Immutable, d.OnlyIfCached = true, true, true, true, true
		})},
		{"public max-age=60", with(func(d *Directives) { d.Public = true; d.MaxAge = 60 })},
		{"\tpublic,\tmax-age=60\t", with(func(d *Directives) { d.Public = true; d.MaxAge = 60 })},
		{`foo="a,b,max-age=1", max-age=2`, with(func(d *Directives) { d.MaxAge = 2 })},
		{`foo="unterminated, max-age=1`, none},
		{`x="a\"b", public`, with(func(d *Directives) { d.Public = true })},
		{"=5, no-store", with(func(d *Directives) { d.NoStore = true })},
		{"max-ages=5, nostore", none},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := ParseCacheControl([]byte(tt.in)); got != tt.want {
				t.Errorf("ParseCacheControl(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseCacheControlAllocs(t *testing.T) {
	v := []byte(`public, max-age=60, s-maxage="120", stale-while-revalidate=30, no-cache="set-cookie"`)
	if n := testing.AllocsPerRun(100, func() { ParseCacheControl(v) }); n != 0 {
		t.Errorf("ParseCacheControl allocs = %v, want 0", n)
	}
}

func FuzzParseCacheControl(f *testing.F) {
	f.Add([]byte("max-age=60, public"))
	f.Add([]byte(`no-cache="a,b", s-maxage=x`))
	f.Fuzz(func(t *testing.T, v []byte) {
		d := ParseCacheControl(v)
		for _, n := range []int64{d.MaxAge, d.SMaxAge, d.StaleWhileRevalidate, d.StaleIfError, d.MinFresh, d.MaxStale} {
			if n < -1 || n > maxDelta {
				t.Fatalf("ParseCacheControl(%q) = %+v: delta out of range", v, d)
			}
		}
	})
}
