package cache

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func httpDate(t time.Time) string { return t.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT") }

func TestEvaluate(t *testing.T) {
	get := Request{Method: []byte("GET")}
	site := Defaults{DefaultTTL: 5 * time.Minute, StaleWhileRevalidate: 30 * time.Second, StaleIfError: time.Hour, MaxObjectBytes: 1 << 20}
	rfc := Defaults{} // preset none: no guessing
	ok200 := func(cc string) Response { return Response{Status: 200, CacheControl: []byte(cc), ContentLength: -1} }
	type want struct {
		store     bool
		reason    Reason
		freshness time.Duration
		swr, sie  time.Duration
		noStale   bool
		noCache   bool
	}
	tests := []struct {
		name string
		req  Request
		resp Response
		d    Defaults
		want want
	}{
		{"max-age", get, ok200("max-age=60"), site, want{store: true, freshness: time.Minute, swr: 30 * time.Second, sie: time.Hour}},
		{"HEAD is storable", Request{Method: []byte("HEAD")}, ok200("max-age=60"), rfc, want{store: true, freshness: time.Minute}},
		{"POST", Request{Method: []byte("POST")}, ok200("max-age=60"), site, want{reason: ReasonMethod}},
		{"lowercase get is another method", Request{Method: []byte("get")}, ok200("max-age=60"), site, want{reason: ReasonMethod}},
		{"s-maxage over max-age", get, ok200("max-age=10, s-maxage=100"), site, want{store: true, freshness: 100 * time.Second, noStale: true}},
		{"CDN-Cache-Control first", get, Response{Status: 200, CacheControl: []byte("max-age=0, must-revalidate"), CDNCacheControl: []byte("max-age=600"), SurrogateControl: []byte("max-age=5")}, site,
			want{store: true, freshness: 10 * time.Minute, swr: 30 * time.Second, sie: time.Hour}},
		{"Surrogate-Control next", get, Response{Status: 200, CacheControl: []byte("max-age=1"), SurrogateControl: []byte("max-age=300")}, rfc, want{store: true, freshness: 5 * time.Minute}},
		{"targeted s-maxage forbids stale", get, Response{Status: 200, CDNCacheControl: []byte("s-maxage=20")}, site, want{store: true, freshness: 20 * time.Second, noStale: true}},
		{"targeted without freshness falls back to Cache-Control", get, Response{Status: 200, CacheControl: []byte("max-age=7"), SurrogateControl: []byte(`content="ESI/1.0"`)}, rfc, want{store: true, freshness: 7 * time.Second}},
		{"targeted replaces no-cache", get, Response{Status: 200, CacheControl: []byte("no-cache"), CDNCacheControl: []byte("max-age=60")}, rfc, want{store: true, freshness: time.Minute}},
		{"targeted freshness overrides Cache-Control no-store", get, Response{Status: 200, CacheControl: []byte("no-store"), CDNCacheControl: []byte("max-age=60")}, site, want{store: true, freshness: time.Minute, swr: 30 * time.Second, sie: time.Hour}},
		{"targeted without freshness: Cache-Control no-store holds", get, Response{Status: 200, CacheControl: []byte("no-store"), CDNCacheControl: []byte("stale-if-error=60")}, site, want{reason: ReasonNoStore}},
		{"Cache-Control private wins over targeted", get, Response{Status: 200, CacheControl: []byte("private"), CDNCacheControl: []byte("max-age=60")}, site, want{reason: ReasonPrivate}},
		{"targeted no-store", get, Response{Status: 200, CacheControl: []byte("max-age=60"), CDNCacheControl: []byte("no-store")}, site, want{reason: ReasonNoStore}},
		{"private", get, ok200("private, max-age=60"), site, want{reason: ReasonPrivate}},
		{"qualified private", get, ok200(`private="set-cookie", max-age=60`), site, want{reason: ReasonPrivate}},
		{"Set-Cookie never", get, Response{Status: 200, CacheControl: []byte("public, s-maxage=600"), SetCookie: true}, site, want{reason: ReasonSetCookie}},
		{"Vary star", get, Response{Status: 200, CacheControl: []byte("max-age=60"), Vary: []byte("Accept-Encoding, *")}, site, want{reason: ReasonVaryStar}},
		{"Vary without star", get, Response{Status: 200, CacheControl: []byte("max-age=60"), Vary: []byte("Accept-Encoding")}, rfc, want{store: true, freshness: time.Minute}},
		{"Authorization", Request{Method: []byte("GET"), Authorization: true}, ok200("max-age=60"), site, want{reason: ReasonAuthorization}},
		{"Authorization with public", Request{Method: []byte("GET"), Authorization: true}, ok200("public, max-age=60"), rfc, want{store: true, freshness: time.Minute}},
		{"Authorization with s-maxage", Request{Method: []byte("GET"), Authorization: true}, ok200("s-maxage=60"), rfc, want{store: true, freshness: time.Minute, noStale: true}},
		{"Authorization with must-revalidate", Request{Method: []byte("GET"), Authorization: true}, ok200("must-revalidate, max-age=60"), rfc, want{store: true, freshness: time.Minute, noStale: true}},
		{"too large", get, Response{Status: 200, CacheControl: []byte("max-age=60"), ContentLength: 2 << 20}, site, want{reason: ReasonTooLarge}},
		{"unknown length", get, Response{Status: 200, CacheControl: []byte("max-age=60"), ContentLength: -1}, site, want{store: true, freshness: time.Minute, swr: 30 * time.Second, sie: time.Hour}},
		{"206 never", get, Response{Status: 206, CacheControl: []byte("max-age=60")}, site, want{reason: ReasonStatus}},
		// RFC 9111 §3: a response may be stored when "the response status code is final"
		// and it "contains ... a max-age response directive" (or Expires, s-maxage, public,
		// or a heuristically cacheable status); 5xx are final statuses.
		{"500 with max-age", get, Response{Status: 500, CacheControl: []byte("max-age=60")}, rfc, want{store: true, freshness: time.Minute}},
		{"503 with s-maxage", get, Response{Status: 503, CacheControl: []byte("s-maxage=60")}, rfc, want{store: true, freshness: time.Minute, noStale: true}},
		{"599 with Expires", get, Response{Status: 599, Date: []byte(httpDate(t0)), Expires: []byte(httpDate(t0.Add(time.Minute)))}, rfc, want{store: true, freshness: time.Minute}},
		{"502 with CDN-Cache-Control", get, Response{Status: 502, CDNCacheControl: []byte("max-age=60")}, rfc, want{store: true, freshness: time.Minute}},
		{"500 without freshness", get, Response{Status: 500}, site, want{reason: ReasonStatus}},
		{"503 without freshness", get, Response{Status: 503, LastModified: []byte(httpDate(t0.Add(-time.Hour)))}, site, want{reason: ReasonStatus}},
		{"100 never", get, Response{Status: 100, CacheControl: []byte("max-age=60")}, site, want{reason: ReasonStatus}},
		// §5.2.2.9: "If a response with the public directive has no explicit freshness
		// information, it is heuristically cacheable".
		{"599 public is heuristic", get, Response{Status: 599, CacheControl: []byte("public")}, site, want{store: true, freshness: 5 * time.Minute, swr: 30 * time.Second, sie: time.Hour}},
		{"403 public is heuristic", get, Response{Status: 403, CacheControl: []byte("public")}, site, want{store: true, freshness: 5 * time.Minute, swr: 30 * time.Second, sie: time.Hour}},
		{"403 without public", get, Response{Status: 403}, site, want{reason: ReasonStatus}},
		{"501 heuristic", get, Response{Status: 501}, site, want{store: true, freshness: 5 * time.Minute, swr: 30 * time.Second, sie: time.Hour}},
		{"404 heuristic", get, Response{Status: 404}, site, want{store: true, freshness: 5 * time.Minute, swr: 30 * time.Second, sie: time.Hour}},
		{"302 without freshness", get, Response{Status: 302}, site, want{reason: ReasonStatus}},
		{"302 with max-age", get, Response{Status: 302, CacheControl: []byte("max-age=30")}, rfc, want{store: true, freshness: 30 * time.Second}},
		{"307 with Expires", get, Response{Status: 307, Date: []byte(httpDate(t0)), Expires: []byte(httpDate(t0.Add(time.Minute)))}, rfc, want{store: true, freshness: time.Minute}},
		{"Expires minus Date", get, Response{Status: 200, Date: []byte(httpDate(t0.Add(-time.Hour))), Expires: []byte(httpDate(t0.Add(-time.Hour + 90*time.Second)))}, rfc, want{store: true, freshness: 90 * time.Second}},
		{"Expires without Date uses response time", get, Response{Status: 200, Expires: []byte(httpDate(t0.Add(2 * time.Minute)))}, rfc, want{store: true, freshness: 2 * time.Minute}},
		{"Expires in RFC 850 form", get, Response{Status: 200, Date: []byte("Sunday, 01-Mar-26 12:00:00 GMT"), Expires: []byte("Sunday, 01-Mar-26 12:01:00 GMT")}, rfc, want{store: true, freshness: time.Minute}},
		{"Expires in asctime form", get, Response{Status: 200, Date: []byte("Sun Mar  1 12:00:00 2026"), Expires: []byte("Sun Mar  1 12:00:30 2026")}, rfc, want{store: true, freshness: 30 * time.Second}},
		{"max-age over Expires", get, Response{Status: 200, CacheControl: []byte("max-age=10"), Expires: []byte(httpDate(t0.Add(time.Hour)))}, rfc, want{store: true, freshness: 10 * time.Second}},
		{"invalid Expires is stale, no default", get, Response{Status: 200, Expires: []byte("0"), ETag: []byte(`"v1"`)}, site, want{store: true, swr: 30 * time.Second, sie: time.Hour}},
		{"invalid Expires without validators", get, Response{Status: 200, Expires: []byte("-1")}, site, want{reason: ReasonNoFreshness}},
		{"default TTL", get, Response{Status: 200}, site, want{store: true, freshness: 5 * time.Minute, swr: 30 * time.Second, sie: time.Hour}},
		{"no freshness at all", get, Response{Status: 200}, rfc, want{reason: ReasonNoFreshness}},
		{"max-age=0 without validators", get, ok200("max-age=0"), site, want{reason: ReasonNoFreshness}},
		{"max-age=0 with ETag is stored for revalidation", get, Response{Status: 200, CacheControl: []byte("max-age=0"), ETag: []byte(`"x"`)}, rfc, want{store: true}},
		{"no freshness but Last-Modified", get, Response{Status: 200, LastModified: []byte(httpDate(t0.Add(-time.Hour)))}, rfc, want{store: true}},
		{"max-age=0 with explicit stale-while-revalidate", get, ok200("max-age=0, stale-while-revalidate=60"), rfc, want{store: true, swr: time.Minute}},
		{"invalid max-age is stale", get, Response{Status: 200, CacheControl: []byte("max-age=soon"), ETag: []byte(`"x"`)}, site, want{store: true, swr: 30 * time.Second, sie: time.Hour}},
		{"no-cache stored", get, Response{Status: 200, CacheControl: []byte("no-cache"), ETag: []byte(`"x"`)}, site, want{store: true, freshness: 5 * time.Minute, noCache: true}},
		{"no-cache keeps explicit stale-if-error only", get, Response{Status: 200, CacheControl: []byte("no-cache, max-age=60, stale-if-error=100, stale-while-revalidate=9")}, site, want{store: true, freshness: time.Minute, sie: 100 * time.Second, noCache: true}},
		{"stale directives override defaults", get, ok200("max-age=60, stale-while-revalidate=5, stale-if-error=7"), site, want{store: true, freshness: time.Minute, swr: 5 * time.Second, sie: 7 * time.Second}},
		{"must-revalidate forbids stale", get, ok200("max-age=60, must-revalidate, stale-if-error=100"), site, want{store: true, freshness: time.Minute, noStale: true}},
		{"proxy-revalidate forbids stale", get, ok200("max-age=60, proxy-revalidate"), site, want{store: true, freshness: time.Minute, noStale: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.resp.ContentLength == 0 {
				tt.resp.ContentLength = -1
			}
			p := Evaluate(tt.req, tt.resp, t0, t0, tt.d)
			got := want{p.Store, p.Reason, p.Freshness, p.SWR, p.SIE, p.NoStale, p.NoCache}
			if got != tt.want {
				t.Errorf("Evaluate() = %+v, want %+v", got, tt.want)
			}
			if p.Store && p.Hold < p.Freshness+max(p.SWR, p.SIE) || p.Store && p.Hold <= 0 {
				t.Errorf("Evaluate() Hold = %v, want ≥ %v and > 0", p.Hold, p.Freshness+max(p.SWR, p.SIE))
			}
			if !p.Store && p.Reason == ReasonNone {
				t.Errorf("Evaluate() refused without a reason")
			}
		})
	}
}

func TestEvaluateAge(t *testing.T) {
	get := Request{Method: []byte("GET")}
	tests := []struct {
		name                 string
		age, date            string
		requestAt, respondAt time.Time
		want                 time.Duration
	}{
		{"nothing", "", "", t0, t0, 0},
		{"response delay", "", "", t0, t0.Add(2 * time.Second), 2 * time.Second},
		{"Age header plus delay", "100", "", t0, t0.Add(time.Second), 101 * time.Second},
		{"apparent age from Date", "", httpDate(t0.Add(-30 * time.Second)), t0, t0, 30 * time.Second},
		{"Age beats smaller apparent age", "60", httpDate(t0.Add(-30 * time.Second)), t0, t0, 60 * time.Second},
		{"Date in the future is no age", "", httpDate(t0.Add(time.Hour)), t0, t0, 0},
		{"invalid Age: ignored", "abc", "", t0, t0, 0},
		{"invalid Age still leaves the delay", "abc", "", t0, t0.Add(time.Second), time.Second},
		{"an Age list: the first", "5,900", "", t0, t0, 5 * time.Second},
		{"joined Age lines: the first", "5, 900", "", t0, t0, 5 * time.Second},
		{"Age capped at 2^31", "99999999999999999999", "", t0, t0, maxDelta * time.Second},
		{"invalid Date ignored", "", "yesterday", t0, t0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := Response{Status: 200, CacheControl: []byte("max-age=600"), Age: []byte(tt.age), Date: []byte(tt.date), ContentLength: -1}
			p := Evaluate(get, resp, tt.requestAt, tt.respondAt, Defaults{})
			if p.InitialAge != tt.want {
				t.Errorf("InitialAge = %v, want %v", p.InitialAge, tt.want)
			}
		})
	}
}

func TestEvaluateHold(t *testing.T) {
	get := Request{Method: []byte("GET")}
	f := func(resp Response, d Defaults, want time.Duration) {
		t.Helper()
		resp.Status, resp.ContentLength = 200, -1
		if got := Evaluate(get, resp, t0, t0, d).Hold; got != want {
			t.Errorf("Hold(%q) = %v, want %v", resp.CacheControl, got, want)
		}
	}
	f(Response{CacheControl: []byte("max-age=60")}, Defaults{StaleWhileRevalidate: 10 * time.Second, StaleIfError: time.Minute}, 2*time.Minute)
	f(Response{CacheControl: []byte("max-age=60"), ETag: []byte(`"e"`)}, Defaults{}, time.Minute+DefaultKeep)
	f(Response{CacheControl: []byte("max-age=60"), ETag: []byte(`"e"`)}, Defaults{Keep: time.Minute}, 2*time.Minute)
	f(Response{CacheControl: []byte("max-age=60, must-revalidate")}, Defaults{StaleIfError: time.Hour}, time.Minute)
}

func TestReasonString(t *testing.T) {
	seen := map[string]bool{}
	for r := ReasonNone + 1; r < NumReasons; r++ {
		s := r.String()
		if s == "" || seen[s] {
			t.Errorf("Reason(%d).String() = %q: empty or repeated", r, s)
		}
		seen[s] = true
	}
	if ReasonNone.String() != "" || NumReasons.String() != "unknown" {
		t.Errorf("ReasonNone = %q, NumReasons = %q; want \"\" and \"unknown\"", ReasonNone.String(), NumReasons.String())
	}
}

// RFC 9111 §5.1: "Although it is defined as a singleton header field, a cache encountering a
// message with a list-based Age field value SHOULD use the first member of the field value,
// discarding subsequent ones. If the field value (after discarding additional members, as per
// above) is invalid (e.g., it contains something other than a non-negative integer), a cache
// SHOULD ignore the field." Age arrives with several lines joined by ", " (responseInfo).
func TestAgeField(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	date := []byte(httpDate(now))
	f := func(age string, wantFresh bool) {
		t.Helper()
		p := Evaluate(Request{Method: []byte("GET")}, Response{
			Status: 200, CacheControl: []byte("max-age=3600"), Date: date, Age: []byte(age), ContentLength: 1,
		}, now, now, Defaults{})
		fresh := p.Freshness > p.InitialAge
		if fresh != wantFresh {
			t.Errorf("Age %q: fresh = %v (initial age %v), want %v", age, fresh, p.InitialAge, wantFresh)
		}
	}
	f("", true)
	f("0", true)
	f("600", true)
	f("0,7200", true)  // the first member counts
	f("0, 7200", true) // also when two lines were joined
	f("0, old", true)
	f("0, 0", true)
	f("7200", false)
	f("7200,0", false)
	f("7200, 0", false)
	f("2147483647", false)
	f("2147483648", false)
	f("2147483649", false)
	f("99999999999999999999", false)
	// Not a non-negative integer: the field is ignored, the response is fresh.
	f("abc", true)
	f("-7200", true)
	f("7200.0", true)
	f("1.5", true)
	f("60;foo=bar", true)
	f("old, 0", true)
}

func TestSurrogateTargets(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := string(surrogateFor([]byte(in), "edgevitals")); got != want {
			t.Errorf("surrogateFor(%q) = %q, want %q", in, got, want)
		}
	}
	f("max-age=60", "max-age=60")
	f("max-age=60;edgevitals", "max-age=60")
	f("max-age=60;EdgeVitals", "max-age=60")
	f("max-age=60;other", "")
	f("no-store;other, max-age=30", "max-age=30")
	f("max-age=10;other, max-age=20 ; edgevitals", "max-age=20")
	f("", "")
}

func TestSurrogateControlOverridesNoStore(t *testing.T) {
	get := Request{Method: []byte("GET")}
	p := Evaluate(get, Response{Status: 200, CacheControl: []byte("no-store"), SurrogateControl: []byte("max-age=600;edgevitals"), ContentLength: 1}, t0, t0, Defaults{})
	if !p.Store || p.Freshness != 10*time.Minute {
		t.Errorf("targeted Surrogate-Control over no-store: %+v, want stored for 10m", p)
	}
	p = Evaluate(get, Response{Status: 200, CacheControl: []byte("no-store"), SurrogateControl: []byte("max-age=600;somebody-else"), ContentLength: 1}, t0, t0, Defaults{})
	if p.Store {
		t.Error("Surrogate-Control for another device overrode no-store")
	}
	p = Evaluate(get, Response{Status: 200, CacheControl: []byte("private"), CDNCacheControl: []byte("max-age=600"), ContentLength: 1}, t0, t0, Defaults{})
	if p.Store {
		t.Error("a targeted field overrode private")
	}
}
