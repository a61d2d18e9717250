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
	ReasonVaryTooMany // more Vary names than a stored variant can be keyed on (see VaryNames)
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
	ReasonVaryTooMany:   "vary_too_many",
}

// reasonMeanings explain each reason to whoever reads a report or the
// dashboard.
var reasonMeanings = [NumReasons]string{
	ReasonSetCookie:     "the origin sets a cookie on responses, so they cannot be shared",
	ReasonPrivate:       "the origin marks responses Cache-Control: private",
	ReasonNoStore:       "the origin marks responses Cache-Control: no-store",
	ReasonAuthorization: "requests carry credentials (Authorization)",
	ReasonBypassCookie:  "visitors carry a login or session cookie",
	ReasonBypassPath:    "requests go to paths that are never cached (admin, cart, checkout)",
	ReasonVaryStar:      "the origin sends Vary: *",
	ReasonStatus:        "the origin answers with a status that is not cached",
	ReasonTooLarge:      "responses are larger than the cache's object size limit",
	ReasonMethod:        "requests use a method that is not cached",
	ReasonNoFreshness:   "responses have no freshness information and no default TTL applies",
	ReasonVaryTooMany:   "the origin varies on more header fields than a stored copy can be keyed on",
}

// Meaning explains r in a sentence fragment ("" for ReasonNone and out of
// range).
func (r Reason) Meaning() string {
	if r < NumReasons {
		return reasonMeanings[r]
	}
	return ""
}

// ReasonNamed is the reason whose String is name (a stored or scraped
// label value); false for none.
func ReasonNamed(name string) (Reason, bool) {
	for r := ReasonNone + 1; r < NumReasons; r++ {
		if reasonNames[r] == name {
			return r, true
		}
	}
	return ReasonNone, false
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
	// HeuristicMax turns on heuristic freshness from Last-Modified (RFC 9111 §4.2.2): a
	// response without explicit freshness but with a valid Last-Modified is fresh for 10% of
	// (Date - Last-Modified), at most HeuristicMax, instead of DefaultTTL. 0 = off.
	HeuristicMax time.Duration
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
	Heuristic  bool          // Freshness is heuristic (RFC 9111 §4.2.2): from Last-Modified or DefaultTTL
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
	if code >= 200 && code < 600 {
		// RFC 9111 §3: any final status may be stored when the response has explicit
		// freshness (5xx included); only the statuses above get heuristic freshness.
		return statusExplicitOnly
	}
	return statusNever
}

func refuse(r Reason) Policy { return Policy{Reason: r} }

// Evaluate decides whether a shared cache may store resp (RFC 9111 §3, §4.2; RFC 9213; RFC 5861)
// and for how long. requestTime is when the request went to the origin and responseTime when
// the response arrived. A valid CDN-Cache-Control (ParseTargeted; an invalid one is ignored as a
// whole), else Surrogate-Control, replaces Cache-Control for freshness, no-cache and stale
// directives when present; Cache-Control private always wins, and Cache-Control no-store wins
// unless the targeted field gives freshness. A response with Set-Cookie is never stored. Any
// final status may be stored with explicit freshness; heuristic freshness (DefaultTTL, or
// Last-Modified with HeuristicMax) needs a heuristically cacheable status or public.
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
	if t, ok := ParseTargeted(resp.CDNCacheControl); ok {
		eff, targeted = t, true
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

	date, dateOK := ParseHTTPDate(resp.Date, responseTime)
	base := responseTime // what Expires and Last-Modified are measured from
	if dateOK {
		base = date
	}
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
		// RFC 9111 §5.3: "A cache recipient MUST interpret invalid date formats,
		// especially the value "0", as representing a time in the past (i.e.,
		// "already expired")." Several Expires lines, joined, are not a date either.
		if exp, ok := ParseHTTPDate(resp.Expires, responseTime); ok {
			fresh = min(max(0, int64(exp.Sub(base)/time.Second)), maxDelta)
		}
	default:
		explicit = false
		fresh = -1
	}
	// RFC 9111 §5.2.2.9: "If a response with the public directive has no explicit
	// freshness information, it is heuristically cacheable".
	if !explicit && class != statusHeuristic && !eff.Public {
		return refuse(ReasonStatus)
	}
	p := Policy{Store: true, NoStale: noStale, NoCache: eff.NoCache}
	if fresh >= 0 {
		p.Freshness = time.Duration(fresh) * time.Second
	} else {
		p.Freshness, p.Heuristic = heuristicFreshness(resp.LastModified, base, responseTime, d)
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

// heuristicFreshness is the freshness lifetime of a response without explicit freshness
// (RFC 9111 §4.2.2): "If the response has a Last-Modified header field (Section 8.8.2 of
// [HTTP]), caches are encouraged to use a heuristic expiration value that is no more than some
// fraction of the interval since that time. A typical setting of this fraction might be 10%."
// With d.HeuristicMax set and a valid Last-Modified, it is 10% of base - Last-Modified (base is
// Date, else the response time), at most d.HeuristicMax, whole seconds; else d.DefaultTTL. The
// Warning field that RFC 7234 asked for with heuristics is obsolete (RFC 9111 §5.5) and is not
// sent; Age is, as on every response from the cache.
func heuristicFreshness(lastModified []byte, base, now time.Time, d Defaults) (time.Duration, bool) {
	if d.HeuristicMax > 0 {
		if lm, ok := ParseHTTPDate(lastModified, now); ok {
			f := min(max(0, base.Sub(lm)/10), d.HeuristicMax)
			return f.Truncate(time.Second), true
		}
	}
	return max(0, d.DefaultTTL), d.DefaultTTL > 0
}

// window is a stale window from a directive (seconds, -1 when absent) or the site default.
func window(directive int64, def time.Duration) time.Duration {
	if directive >= 0 {
		return time.Duration(directive) * time.Second
	}
	return max(0, def)
}

// initialAge is corrected_initial_age (RFC 9111 §4.2.3), the Age field read by ageField.
func initialAge(ageValue []byte, date time.Time, dateOK bool, requestTime, responseTime time.Time) time.Duration {
	var apparent time.Duration
	if dateOK {
		apparent = max(0, responseTime.Sub(date))
	}
	delay := max(0, responseTime.Sub(requestTime))
	return max(apparent, ageField(ageValue)+delay)
}

// ageField reads the Age field (several lines joined with ", "), RFC 9111 §5.1: "Although it
// is defined as a singleton header field, a cache encountering a message with a list-based Age
// field value SHOULD use the first member of the field value, discarding subsequent ones. If
// the field value (after discarding additional members, as per above) is invalid (e.g., it
// contains something other than a non-negative integer), a cache SHOULD ignore the field."
// So "0, 7200" and two lines "0" and "7200" are 0 s old, while "1.5", "-1", "abc" and
// "60;foo=bar" count as no Age at all. Values above 2^31 are 2^31 (§1.2.2).
func ageField(v []byte) time.Duration {
	first, _ := cutMember(v)
	if n := parseDelta(first); n > 0 {
		return time.Duration(n) * time.Second
	}
	return 0
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
