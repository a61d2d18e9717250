package cache

import (
	"bytes"
	"time"
)

// Reason says why a request or response was not stored. String() is the value of the reason
// label of edgevitals_uncacheable_total.
type Reason uint8

// Reasons, in the order Evaluate checks them.
const (
	ReasonNone Reason = iota
	ReasonSetCookie
	ReasonPrivate
	ReasonNoStore
	ReasonAuthorization
	ReasonBypassCookie
	ReasonBypassPath
	ReasonVaryStar
	ReasonStatus
	ReasonTooLarge
	ReasonMethod
	ReasonNoFreshness
	NumReasons
)

var reasonNames = [NumReasons]string{
	ReasonNone:          "",
	ReasonSetCookie:     "set_cookie",
	ReasonPrivate:       "private",
	ReasonNoStore:       "no_store",
	ReasonAuthorization: "authorization",
	ReasonBypassCookie:  "bypass_cookie",
	ReasonBypassPath:    "bypass_path",
	ReasonVaryStar:      "vary_star",
	ReasonStatus:        "status",
	ReasonTooLarge:      "too_large",
	ReasonMethod:        "method",
	ReasonNoFreshness:   "no_freshness",
}

// String returns the metric label of r ("" for ReasonNone, "unknown" out of range).
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Response is what the policy reads from an origin response. Multi-line fields arrive joined
// with ", ". Slices are only read during the call.
type Response struct {
	Status                                                                                        int
	CacheControl, CDNCacheControl, SurrogateControl, Expires, Date, Age, LastModified, ETag, Vary []byte
	SetCookie                                                                                     bool
	ContentLength                                                                                 int64 // -1 when unknown
}

// Request is what the policy reads from the client request. Slices are only read during the call.
type Request struct {
	Method        []byte
	Authorization bool
}

// DefaultKeep is how long a response with validators is kept past its freshness and stale
// windows, so that it can still be revalidated with a conditional request, when
// Defaults.Keep is 0.
const DefaultKeep = time.Hour

// Defaults are a site's settings for responses that say nothing.
type Defaults struct {
	DefaultTTL                         time.Duration // freshness when the response has none; 0 = RFC: no guessing
	StaleWhileRevalidate, StaleIfError time.Duration // when the response says nothing
	MaxObjectBytes                     int64         // larger responses are not stored; 0 = no limit
	Keep                               time.Duration // extra hold for responses with validators; 0 = DefaultKeep
}

// Policy is the verdict on one origin response.
type Policy struct {
	Store      bool
	Reason     Reason        // set when !Store
	Freshness  time.Duration // freshness lifetime (RFC 9111 §4.2.1)
	InitialAge time.Duration // corrected_initial_age (§4.2.3): Age header, apparent age, response delay
	SWR, SIE   time.Duration // stale windows (RFC 5861), 0 when forbidden
	NoStale    bool          // must-revalidate, proxy-revalidate or s-maxage: never serve stale, not even stale-if-error
	NoCache    bool          // stored, but must be validated before each use
	Hold       time.Duration // how long the store keeps it: Freshness + max(SWR, SIE), plus a keep time with validators; > 0 when Store
}

// status classes for storing (RFC 9111 §3, §4.2.2).
const (
	statusNever        = iota // never stored
	statusHeuristic           // heuristically cacheable: DefaultTTL applies
	statusExplicitOnly        // stored only with explicit freshness
)

func statusClass(code int) int {
	switch code {
	case 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501:
		return statusHeuristic
	case 206, 304:
		// 206: partial content is never stored; 304: not a full response.
		return statusNever
	}
	if code >= 200 && code < 500 {
		return statusExplicitOnly
	}
	return statusNever
}

func refuse(r Reason) Policy { return Policy{Reason: r} }

// Evaluate decides whether a shared cache may store resp (RFC 9111 §3, §4.2; RFC 9213; RFC 5861)
// and for how long. requestTime is when the request went to the origin and responseTime when
// the response arrived. CDN-Cache-Control, else Surrogate-Control, replaces Cache-Control for
// freshness, no-cache and stale directives when present, but no-store and private in
// Cache-Control always win. A response with Set-Cookie is never stored.
func Evaluate(req Request, resp Response, requestTime, responseTime time.Time, d Defaults) Policy {
	if !storableMethod(req.Method) {
		return refuse(ReasonMethod)
	}
	class := statusClass(resp.Status)
	if class == statusNever {
		return refuse(ReasonStatus)
	}
	cc := ParseCacheControl(resp.CacheControl)
	eff, targeted := cc, false
	if t := trimSpace(resp.CDNCacheControl); len(t) > 0 {
		eff, targeted = ParseCacheControl(t), true
	} else if t := surrogateFor(trimSpace(resp.SurrogateControl), SurrogateName); len(t) > 0 {
		eff, targeted = ParseCacheControl(t), true
	}
	// A field targeted at this cache with its own freshness overrides
	// Cache-Control: no-store (RFC 9213 §2.1; "no-store for browsers, an
	// hour at the edge" is a common origin setting). private always wins.
	overrides := targeted && (eff.MaxAge >= 0 || eff.SMaxAge >= 0)
	switch {
	case eff.NoStore || (cc.NoStore && !overrides):
		return refuse(ReasonNoStore)
	case cc.Private || eff.Private:
		return refuse(ReasonPrivate)
	case resp.SetCookie:
		return refuse(ReasonSetCookie)
	case varyStar(resp.Vary):
		return refuse(ReasonVaryStar)
	case req.Authorization && !(eff.Public || eff.SMaxAge >= 0 || eff.MustRevalidate ||
		cc.Public || cc.SMaxAge >= 0 || cc.MustRevalidate):
		return refuse(ReasonAuthorization)
	case d.MaxObjectBytes > 0 && resp.ContentLength > d.MaxObjectBytes:
		return refuse(ReasonTooLarge)
	}

	date, dateOK := parseHTTPDate(resp.Date)
	var fresh int64 // seconds, or -1 for DefaultTTL
	explicit := true
	noStale := eff.MustRevalidate || eff.ProxyRevalidate
	switch {
	case targeted && eff.SMaxAge >= 0:
		fresh, noStale = eff.SMaxAge, true
	case targeted && eff.MaxAge >= 0:
		fresh = eff.MaxAge
	case cc.SMaxAge >= 0:
		fresh, noStale = cc.SMaxAge, true
	case cc.MaxAge >= 0:
		fresh = cc.MaxAge
	case len(trimSpace(resp.Expires)) > 0:
		// An invalid Expires (such as "0") means already expired (RFC 9111 §5.3).
		if exp, ok := parseHTTPDate(resp.Expires); ok {
			base := responseTime
			if dateOK {
				base = date
			}
			fresh = max(0, int64(exp.Sub(base)/time.Second))
		}
	default:
		explicit = false
		fresh = -1
	}
	if !explicit && class != statusHeuristic {
		return refuse(ReasonStatus)
	}
	p := Policy{Store: true, NoStale: noStale, NoCache: eff.NoCache}
	if fresh >= 0 {
		p.Freshness = time.Duration(fresh) * time.Second
	} else {
		p.Freshness = max(0, d.DefaultTTL)
	}

	if !p.NoStale {
		p.SWR = window(eff.StaleWhileRevalidate, d.StaleWhileRevalidate)
		p.SIE = window(eff.StaleIfError, d.StaleIfError)
		if p.NoCache {
			// Every use needs validation: never serve it stale while revalidating, and
			// on origin errors only when the response itself allows it.
			p.SWR = 0
			p.SIE = window(eff.StaleIfError, 0)
		}
	}

	validators := len(resp.ETag) > 0 || len(resp.LastModified) > 0
	explicitStale := !p.NoStale && (eff.StaleWhileRevalidate > 0 || eff.StaleIfError > 0)
	if p.Freshness == 0 && !validators && !p.NoCache && !explicitStale {
		return refuse(ReasonNoFreshness)
	}

	p.InitialAge = initialAge(resp.Age, date, dateOK, requestTime, responseTime)
	p.Hold = p.Freshness + max(p.SWR, p.SIE)
	if validators {
		keep := d.Keep
		if keep <= 0 {
			keep = DefaultKeep
		}
		p.Hold += keep
	}
	if p.Hold <= 0 {
		// no-cache without validators, freshness or stale-if-error: nothing to reuse.
		return refuse(ReasonNoFreshness)
	}
	return p
}

// window is a stale window from a directive (seconds, -1 when absent) or the site default.
func window(directive int64, def time.Duration) time.Duration {
	if directive >= 0 {
		return time.Duration(directive) * time.Second
	}
	return max(0, def)
}

// initialAge is corrected_initial_age (RFC 9111 §4.2.3).
func initialAge(ageField []byte, date time.Time, dateOK bool, requestTime, responseTime time.Time) time.Duration {
	var apparent time.Duration
	if dateOK {
		apparent = max(0, responseTime.Sub(date))
	}
	var age time.Duration
	if v := trimSpace(ageField); len(v) > 0 {
		if !validAge(v) {
			// Age is a singleton of delta-seconds. Anything else (negative,
			// a float, text, parameters, a list made of repeated lines):
			// trust nothing about the response's age and treat it as stale,
			// as for an invalid Expires.
			return staleAge
		}
		first, _ := cutMember(v)
		if n := parseDelta(first); n > 0 {
			age = time.Duration(n) * time.Second
		}
	}
	delay := max(0, responseTime.Sub(requestTime))
	return max(apparent, age+delay)
}

// staleAge is the age given to a response whose Age field is invalid: older
// than any freshness lifetime.
const staleAge = 100 * 365 * 24 * time.Hour

// validAge accepts delta-seconds, or a comma-separated list of them with no
// white space (a list from one sender: its first member counts). A list
// with spaces is what joining repeated Age lines gives, and repeated lines
// are not a valid singleton.
func validAge(v []byte) bool {
	for {
		m, rest, more := bytes.Cut(v, comma)
		if !allDigits(m) {
			return false
		}
		if !more {
			return true
		}
		v = rest
	}
}

func allDigits(v []byte) bool {
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(v) > 0
}

// comma separates the members of a list field.
var comma = []byte(",")

// cutMember splits the first comma-separated member off a list field value: the member,
// trimmed of spaces and tabs, and what follows its comma (nil after the last member).
func cutMember(v []byte) (member, rest []byte) {
	m, rest, _ := bytes.Cut(v, comma)
	return trimSpace(m), rest
}

func storableMethod(m []byte) bool {
	return string(m) == "GET" || string(m) == "HEAD"
}

// varyStar reports whether a Vary value lists "*".
func varyStar(v []byte) bool {
	for len(v) > 0 {
		var m []byte
		if m, v = cutMember(v); string(m) == "*" {
			return true
		}
	}
	return false
}

// httpDateLayouts are the HTTP-date forms a recipient must accept (RFC 9110 §5.6.7).
var httpDateLayouts = [...]string{
	"Mon, 02 Jan 2006 15:04:05 GMT",
	"Monday, 02-Jan-06 15:04:05 GMT",
	"Mon Jan _2 15:04:05 2006",
}

// parseHTTPDate parses an HTTP-date (the first member when several lines were joined).
func parseHTTPDate(v []byte) (time.Time, bool) {
	v = trimSpace(v)
	if len(v) == 0 || len(v) > 64 {
		return time.Time{}, false
	}
	s := string(v)
	for _, layout := range httpDateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// SurrogateName is the device token edgevitals announces in
// Surrogate-Capability and answers to in Surrogate-Control targets.
const SurrogateName = "edgevitals"

// surrogateFor keeps the Surrogate-Control directives meant for device name:
// those without a target and those whose ";target" is name (Edge
// Architecture 1.0), with the target removed. Without any target it returns
// v itself and does not allocate.
func surrogateFor(v []byte, name string) []byte {
	if bytes.IndexByte(v, ';') < 0 {
		return v
	}
	var out []byte
	for len(v) > 0 {
		var dir []byte
		dir, v = cutMember(v)
		if d, target, ok := bytes.Cut(dir, []byte(";")); ok {
			dir = trimSpace(d)
			if !equalFold(trimSpace(target), name) {
				dir = nil
			}
		}
		if len(dir) == 0 {
			continue
		}
		if len(out) > 0 {
			out = append(out, ", "...)
		}
		out = append(out, dir...)
	}
	return out
}
