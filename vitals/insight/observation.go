package insight

import (
	"bytes"
	"time"
)

// Outcome is what the cache did with a request, as edgevitals_requests_total counts it. The
// zero Outcome is not an outcome: Observe drops such an observation.
type Outcome uint8

// Outcomes. Hit and Stale were served from the cache; the others were not.
const (
	Hit Outcome = iota + 1
	Stale
	Miss
	Pass   // the URL is known uncacheable (hit-for-miss) or its response was not stored
	Bypass // the request itself bypassed the cache (a bypass cookie, path, parameter, header)
	numOutcomes
)

// MaxFields bounds how many query parameters, cookies and Vary fields Observe reads from one
// observation; the rest are ignored.
const MaxFields = 32

// MaxNameLen bounds the stored length of a name (parameter, cookie, Vary field, URL group).
const MaxNameLen = 80

// Param is one query parameter as the request sent it, before any stripping: name and value
// undecoded, as cache.Keyer matches them.
type Param struct {
	Name, Value []byte
	// Stripped is true when cache.strip_query removes the parameter from the key (and the
	// origin request). The zero value, false, means it is part of the key.
	Stripped bool
}

// Field is one field a response varies on, with the request's value for it.
type Field struct {
	Name  []byte // lowercase, as cache.VaryNames gives it
	Value []byte // as the cache keys the variant (Accept-Encoding folded); nil when absent
}

// Observation is what the request path hands out for one request. The slices are only read
// during Observe and never retained. Zero fields mean "none" or "unknown".
type Observation struct {
	Site    string    // the configured site name
	Path    []byte    // the normalized path, without the query
	Params  []Param   // the query parameters, in the order sent
	Cookies [][]byte  // the names of the request's cookies, BypassCookie included
	Outcome Outcome   // required
	Time    time.Time // required: when the request arrived, on the learner's clock

	// BypassCookie is the name of the cookie that made the request bypass (Outcome Bypass).
	BypassCookie []byte
	// Reason is the uncacheable reason of a Pass, as cache.Reason.String() spells it
	// ("private", "set_cookie", ...); "" when none.
	Reason string
	// Vary holds the fields the response varies on (from cache.VaryNames) with the request's
	// values; nil when the response has no Vary.
	Vary []Field
	// Fingerprint identifies the response body (a hash of the ETag or of the body): equal
	// fingerprints mean identical pages. 0 means unknown. Give it for misses and passes at
	// least; for hits it may be the stored object's.
	Fingerprint uint64
}

// AppendParams appends the parameters of a raw query (without '?') to dst and returns it.
// Names and values alias query; empty members are skipped and Stripped is left false. It does
// not allocate when dst has room.
func AppendParams(dst []Param, query []byte) []Param {
	for len(query) > 0 {
		var member []byte
		if i := bytes.IndexByte(query, '&'); i >= 0 {
			member, query = query[:i], query[i+1:]
		} else {
			member, query = query, nil
		}
		if len(member) == 0 {
			continue
		}
		p := Param{Name: member}
		if i := bytes.IndexByte(member, '='); i >= 0 {
			p.Name, p.Value = member[:i], member[i+1:]
		}
		if len(p.Name) == 0 {
			continue
		}
		dst = append(dst, p)
	}
	return dst
}
