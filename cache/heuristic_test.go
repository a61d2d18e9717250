package cache

import (
	"testing"
	"time"
)

// RFC 9111 §4.2.2: "If the response has a Last-Modified header field (Section 8.8.2 of [HTTP]),
// caches are encouraged to use a heuristic expiration value that is no more than some fraction
// of the interval since that time. A typical setting of this fraction might be 10%." Only for
// heuristically cacheable statuses (RFC 9110 §15.1) or public responses, and "Caches MUST NOT
// use heuristics to determine freshness when an explicit expiration time is present".
func TestHeuristicFreshness(t *testing.T) {
	get := Request{Method: []byte("GET")}
	on := Defaults{HeuristicMax: time.Hour}
	lm := func(ago time.Duration) []byte { return []byte(httpDate(t0.Add(-ago))) }
	date := []byte(httpDate(t0))
	type want struct {
		store     bool
		reason    Reason
		freshness time.Duration
		heuristic bool
	}
	f := func(name string, resp Response, d Defaults, w want) {
		t.Helper()
		resp.ContentLength = -1
		p := Evaluate(get, resp, t0, t0, d)
		if got := (want{p.Store, p.Reason, p.Freshness, p.Heuristic}); got != w {
			t.Errorf("%s: Evaluate() = %+v, want %+v", name, got, w)
		}
	}
	f("10% of a day", Response{Status: 200, Date: date, LastModified: lm(24 * time.Hour)}, Defaults{HeuristicMax: 24 * time.Hour}, want{true, 0, 144 * time.Minute, true})
	f("capped by HeuristicMax", Response{Status: 200, Date: date, LastModified: lm(24 * time.Hour)}, on, want{true, 0, time.Hour, true})
	f("whole seconds", Response{Status: 200, Date: date, LastModified: lm(15 * time.Second)}, on, want{true, 0, time.Second, true})
	f("without Date: from the response time", Response{Status: 200, LastModified: lm(100 * time.Second)}, on, want{true, 0, 10 * time.Second, true})
	f("Last-Modified after Date: 0", Response{Status: 200, Date: date, LastModified: lm(-time.Hour)}, on, want{true, 0, 0, true})
	f("invalid Last-Modified: DefaultTTL", Response{Status: 200, Date: date, LastModified: []byte("yesterday")}, Defaults{HeuristicMax: time.Hour, DefaultTTL: time.Minute}, want{true, 0, time.Minute, true})
	f("without Last-Modified: DefaultTTL", Response{Status: 200, Date: date}, Defaults{HeuristicMax: time.Hour, DefaultTTL: time.Minute}, want{true, 0, time.Minute, true})
	f("without Last-Modified nor DefaultTTL: nothing", Response{Status: 200, Date: date}, on, want{false, ReasonNoFreshness, 0, false})
	f("off: no guessing", Response{Status: 200, Date: date, LastModified: lm(24 * time.Hour)}, Defaults{}, want{true, 0, 0, false}) // stored for revalidation only
	f("over DefaultTTL when on", Response{Status: 404, Date: date, LastModified: lm(10 * time.Minute)}, Defaults{HeuristicMax: time.Hour, DefaultTTL: 5 * time.Minute}, want{true, 0, time.Minute, true})
	f("explicit max-age wins", Response{Status: 200, CacheControl: []byte("max-age=7"), Date: date, LastModified: lm(24 * time.Hour)}, on, want{true, 0, 7 * time.Second, false})
	f("invalid Expires is explicit: stale", Response{Status: 200, Expires: []byte("0"), Date: date, LastModified: lm(24 * time.Hour)}, on, want{true, 0, 0, false})
	f("max-age=0 is explicit", Response{Status: 200, CacheControl: []byte("max-age=0"), Date: date, LastModified: lm(24 * time.Hour)}, on, want{true, 0, 0, false})
	for _, code := range []int{201, 202, 403, 502, 503, 504, 599} {
		f("status not heuristically cacheable", Response{Status: code, Date: date, LastModified: lm(24 * time.Hour)}, on, want{false, ReasonStatus, 0, false})
	}
	for _, code := range []int{200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501} {
		f("heuristically cacheable status", Response{Status: code, Date: date, LastModified: lm(24 * time.Hour)}, on, want{true, 0, time.Hour, true})
	}
	f("599 with public", Response{Status: 599, CacheControl: []byte("public"), Date: date, LastModified: lm(24 * time.Hour)}, on, want{true, 0, time.Hour, true})
}

// RFC 9111 §5.3: "A cache recipient MUST interpret invalid date formats, especially the value
// "0", as representing a time in the past (i.e., "already expired")." RFC 9110 §5.6.7 defines
// the valid ones; several Expires lines (joined with ", ") are not one date.
func TestEvaluateExpires(t *testing.T) {
	get := Request{Method: []byte("GET")}
	date := []byte(httpDate(t0))
	f := func(expires string, want time.Duration) {
		t.Helper()
		p := Evaluate(get, Response{Status: 200, Date: date, Expires: []byte(expires), ETag: []byte(`"e"`), ContentLength: 1}, t0, t0, Defaults{DefaultTTL: time.Hour})
		if !p.Store || p.Freshness != want {
			t.Errorf("Expires %q: store %v, freshness %v; want stored with %v", expires, p.Store, p.Freshness, want)
		}
	}
	f(httpDate(t0.Add(time.Hour)), time.Hour)
	f("Tue, 19 Jan 2038 14:14:08 GMT", time.Date(2038, 1, 19, 14, 14, 8, 0, time.UTC).Sub(t0))
	f("Sun, 21 Nov 2286 04:46:39 GMT", maxDelta*time.Second)
	f("SUN, 01 MAR 2026 13:00:00 gmt", time.Hour)
	f("Sunday, 01-Mar-26 13:00:00 GMT", time.Hour)
	f("Sun Mar  1 13:00:00 2026", time.Hour)
	f(httpDate(t0.Add(-time.Hour)), 0)
	for _, bad := range []string{
		"0", "-1", "Thu, 18 Aug 2050 02:01:18 UTC", "Thu, 18 Aug 2050 02:01:18 AEST", "Thu, 18 Aug 50 02:01:18 GMT",
		"Thu 18 Aug 2050 02:01:18 GMT", "Thu, 18  Aug  2050 02:01:18 GMT", "Thu, 18-Aug-2050 02:01:18 GMT",
		"Thu, 18 Aug 2050 02.01.18 GMT", "Thu, 18 Aug 2050 2:01:18 GMT",
		"Thu, 18 Aug 2050 02:01:18 GMT, Thu, 18 Aug 2050 02:01:19 GMT",
	} {
		f(bad, 0)
	}
}
