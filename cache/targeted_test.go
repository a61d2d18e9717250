package cache

import (
	"testing"
	"time"
)

// RFC 9213 §2.1: "Targeted fields are Dictionary Structured Fields" and "If a targeted field in
// a given response is empty, or a parsing error is encountered, that field MUST be ignored by
// the cache"; "Implementations SHOULD NOT consume values that violate these inferred
// constraints" (max-age an integer, no-store a boolean true, no-cache a boolean or a string).
func TestParseTargeted(t *testing.T) {
	none := Directives{MaxAge: -1, SMaxAge: -1, StaleWhileRevalidate: -1, StaleIfError: -1, MinFresh: -1, MaxStale: -1}
	with := func(f func(d *Directives)) Directives {
		d := none
		f(&d)
		return d
	}
	valid := func(in string, want Directives) {
		t.Helper()
		got, ok := ParseTargeted([]byte(in))
		if !ok || got != want {
			t.Errorf("ParseTargeted(%q) = %+v, %v; want %+v, true", in, got, ok, want)
		}
	}
	invalid := func(in string) {
		t.Helper()
		if got, ok := ParseTargeted([]byte(in)); ok {
			t.Errorf("ParseTargeted(%q) = %+v, true; want the field ignored", in, got)
		}
	}
	valid("max-age=3600", with(func(d *Directives) { d.MaxAge = 3600 }))
	valid("max-age=2147483648", with(func(d *Directives) { d.MaxAge = maxDelta }))
	valid("max-age=99999999999", with(func(d *Directives) { d.MaxAge = maxDelta }))
	valid("max-age=999999999999999", with(func(d *Directives) { d.MaxAge = maxDelta })) // 15 digits, the most an Integer has
	valid("max-age=0", with(func(d *Directives) { d.MaxAge = 0 }))
	valid("foobar, max-age=3600", with(func(d *Directives) { d.MaxAge = 3600 }))
	valid("s-maxage=20, stale-while-revalidate=30, stale-if-error=60", with(func(d *Directives) {
		d.SMaxAge, d.StaleWhileRevalidate, d.StaleIfError = 20, 30, 60
	}))
	valid("no-store", with(func(d *Directives) { d.NoStore = true }))
	valid("no-store=?1", with(func(d *Directives) { d.NoStore = true }))
	valid("no-store=?0, max-age=5", with(func(d *Directives) { d.MaxAge = 5 }))
	valid(`no-cache="set-cookie", private="x"`, with(func(d *Directives) { d.NoCache, d.Private = true, true }))
	valid("public, must-revalidate, proxy-revalidate, no-transform, immutable", with(func(d *Directives) {
		d.Public, d.MustRevalidate, d.ProxyRevalidate, d.NoTransform, d.Immutable = true, true, true, true, true
	}))
	valid("max-age=10, max-age=20", with(func(d *Directives) { d.MaxAge = 20 })) // RFC 8941 §4.2.2: the last wins
	valid("max-age=60;foo=bar;baz", with(func(d *Directives) { d.MaxAge = 60 })) // parameters are ignored
	valid("max-age=60; a=1, private", with(func(d *Directives) { d.MaxAge = 60; d.Private = true }))
	valid("  max-age=60 ,\tprivate  ", with(func(d *Directives) { d.MaxAge = 60; d.Private = true }))
	valid("none", none) // RFC 9213 §3.1's way to say nothing without an empty field
	// Unknown directives may have any valid value.
	valid(`x=1.5, y="s", z=tok/en:1, w=:aGVsbG8=:, v=(1 2 "a");p, u=?0, t=-3, *s=*`, none)
	// min-fresh and max-stale are request directives: ignored here.
	valid("min-fresh=5, max-stale=7", none)

	invalid("")
	invalid("   ")
	invalid("max-age=10000, &&&&&") // unknown type
	invalid(`max-age="10000"`)      // a String where an Integer belongs
	invalid("max-age=1.5")
	invalid("max-age=-1")
	invalid("max-age=abc")
	invalid("max-age=?1")
	invalid("max-age")                  // bare key: Boolean true, not an Integer
	invalid("max-age=(1 2)")            // an inner list
	invalid("max-age = 100")            // RFC 8941: no space around "="
	invalid("max-age =100")             //
	invalid("max-age= 100")             //
	invalid("MaX-aGe=3600")             // keys are lowercase
	invalid("Private")                  //
	invalid("no-store=1")               // an Integer where a Boolean belongs
	invalid("no-cache=foo")             // a Token
	invalid("private=:YQ==:")           // a Byte Sequence
	invalid("max-age=60,")              // a trailing comma
	invalid(",max-age=60")              // a leading comma
	invalid("max-age=60,,x")            // an empty member
	invalid("max-age=60 x")             // members need commas
	invalid("max-age=1234567890123456") // 16 digits
	invalid(`x="unterminated`)
	invalid(`x="bad\q"`)
	invalid("x=\"tab\tinside\"")
	invalid("x=1.")
	invalid("x=1.2345")
	invalid("x=1234567890123.5") // 13 integer digits in a Decimal
	invalid("x=-")
	invalid("x=?2")
	invalid("x=:not base64!:")
	invalid("x=:unterminated")
	invalid("x=(1 2")
	invalid("x=(1,2)")
	invalid("x;=1")
	invalid("x;P=1")
	invalid("max-age=60;p=")
	invalid("\tmax-age=60") // only SP may lead a field value (RFC 8941 §4.2)
	invalid("é=1")
}

func TestParseTargetedAllocs(t *testing.T) {
	v := []byte(`max-age=600, stale-while-revalidate=30, no-cache="set-cookie", x=(1 2);a=?1`)
	if n := testing.AllocsPerRun(100, func() { ParseTargeted(v) }); n != 0 {
		t.Errorf("ParseTargeted allocs = %v, want 0", n)
	}
}

// CDN-Cache-Control that does not parse is ignored as a whole, and Cache-Control (or
// Surrogate-Control) decides, as if the field were absent (RFC 9213 §2.1).
func TestEvaluateInvalidCDNCacheControl(t *testing.T) {
	get := Request{Method: []byte("GET")}
	f := func(cdn, cc string, wantStore bool, wantFresh time.Duration) {
		t.Helper()
		p := Evaluate(get, Response{Status: 200, CacheControl: []byte(cc), CDNCacheControl: []byte(cdn), ContentLength: 1}, t0, t0, Defaults{})
		if p.Store != wantStore || p.Freshness != wantFresh {
			t.Errorf("CDN-Cache-Control %q, Cache-Control %q: store %v for %v (reason %s), want store %v for %v", cdn, cc, p.Store, p.Freshness, p.Reason, wantStore, wantFresh)
		}
	}
	f("max-age=10000, &&&&&", "no-store", false, 0)
	f(`max-age="10000"`, "no-store", false, 0)
	f("max-age=10000", "no-store", true, 10000*time.Second) // valid: it wins over no-store
	f("max-age =100", "max-age=1", true, time.Second)
	f("max-age= 100", "max-age=1", true, time.Second)
	f("max-age=1.5", "max-age=7", true, 7*time.Second)
	f("max-age=-1", "max-age=7", true, 7*time.Second)
	f("", "max-age=7", true, 7*time.Second)
	f("max-age=1", "max-age=3600", true, time.Second) // a valid short one wins
	// Surrogate-Control is the next fallback.
	p := Evaluate(get, Response{Status: 200, CacheControl: []byte("max-age=1"), CDNCacheControl: []byte("max-age=1.0"), SurrogateControl: []byte("max-age=300"), ContentLength: 1}, t0, t0, Defaults{})
	if !p.Store || p.Freshness != 5*time.Minute {
		t.Errorf("invalid CDN-Cache-Control with Surrogate-Control max-age=300: %+v, want 5m from Surrogate-Control", p)
	}
}

func FuzzParseTargeted(f *testing.F) {
	f.Add([]byte("max-age=60, private"))
	f.Add([]byte(`no-cache="a", x=(1 2.5 "s" :YQ==: ?0 tok);p=1`))
	f.Add([]byte("max-age=10000, &&&&&"))
	f.Fuzz(func(t *testing.T, v []byte) {
		d, ok := ParseTargeted(v)
		if !ok {
			if d != (Directives{}) {
				t.Fatalf("ParseTargeted(%q) = %+v, false: want zero Directives when invalid", v, d)
			}
			return
		}
		for _, n := range []int64{d.MaxAge, d.SMaxAge, d.StaleWhileRevalidate, d.StaleIfError} {
			if n < -1 || n > maxDelta {
				t.Fatalf("ParseTargeted(%q) = %+v: delta out of range", v, d)
			}
		}
		// A valid dictionary stays valid with another member after it, and with SP
		// around it (RFC 8941 §4.2).
		more := append(append([]byte(" "), v...), ", zz-extension=?1 "...)
		if _, ok := ParseTargeted(more); !ok {
			t.Fatalf("ParseTargeted(%q) valid, but %q not", v, more)
		}
	})
}
