package cache

// Directives is a parsed Cache-Control value (also Surrogate-Control, which shares its syntax;
// CDN-Cache-Control is a Structured Field and ParseTargeted reads it). Delta-seconds fields are -1 when absent. An invalid value
// of max-age or s-maxage makes it 0 (stale, RFC 9111 §4.2.1); when a directive appears more
// than once the first valid occurrence wins. Qualified no-cache="x" and private="x" are treated
// as unqualified, which is the safe reading for a shared cache that does not strip fields.
// Values larger than 2^31 are clamped to 2^31 (RFC 9111 §1.2.2).
type Directives struct {
	MaxAge, SMaxAge, StaleWhileRevalidate, StaleIfError, MinFresh, MaxStale int64

	NoStore, NoCache, Private, Public, MustRevalidate, ProxyRevalidate, NoTransform, Immutable, OnlyIfCached bool
}

// maxDelta is the largest delta-seconds value kept (RFC 9111 §1.2.2).
const maxDelta = 2147483648

// badDelta marks a delta-seconds value that did not parse.
const badDelta = -2

// ParseCacheControl parses one Cache-Control field value (several field lines joined with
// ", "). Names are case-insensitive; quoted values, spaces, tabs, empty members and members
// separated by spaces only are tolerated; unknown directives are ignored. It never fails and
// does not allocate; v is only read during the call.
func ParseCacheControl(v []byte) Directives {
	d := Directives{MaxAge: -1, SMaxAge: -1, StaleWhileRevalidate: -1, StaleIfError: -1, MinFresh: -1, MaxStale: -1}
	var maxAgeBad, sMaxAgeBad bool
	i := 0
	for i < len(v) {
		for i < len(v) && (isSpace(v[i]) || v[i] == ',') {
			i++
		}
		if i >= len(v) {
			break
		}
		start := i
		for i < len(v) && v[i] != '=' && v[i] != ',' && !isSpace(v[i]) {
			i++
		}
		name := v[start:i]
		for i < len(v) && isSpace(v[i]) {
			i++
		}
		var val []byte
		hasVal := false
		if i < len(v) && v[i] == '=' {
			hasVal = true
			i++
			for i < len(v) && isSpace(v[i]) {
				i++
			}
			if i < len(v) && v[i] == '"' {
				i++
				start = i
				for i < len(v) && v[i] != '"' {
					if v[i] == '\\' && i+1 < len(v) {
						i++
					}
					i++
				}
				val = v[start:i]
				if i < len(v) {
					i++ // closing quote
				}
			} else {
				start = i
				for i < len(v) && v[i] != ',' && !isSpace(v[i]) {
					i++
				}
				val = v[start:i]
			}
		}
		if len(name) == 0 {
			// "=x" without a name: skip to the next member.
			for i < len(v) && v[i] != ',' {
				i++
			}
			continue
		}
		n := int64(badDelta)
		if hasVal {
			n = parseDelta(val)
		}
		switch {
		case equalFold(name, "max-age"):
			d.MaxAge, maxAgeBad = firstValid(d.MaxAge, maxAgeBad, n)
		case equalFold(name, "s-maxage"):
			d.SMaxAge, sMaxAgeBad = firstValid(d.SMaxAge, sMaxAgeBad, n)
		case equalFold(name, "stale-while-revalidate"):
			if d.StaleWhileRevalidate < 0 && n >= 0 {
				d.StaleWhileRevalidate = n
			}
		case equalFold(name, "stale-if-error"):
			if d.StaleIfError < 0 && n >= 0 {
				d.StaleIfError = n
			}
		case equalFold(name, "min-fresh"):
			if d.MinFresh < 0 && n >= 0 {
				d.MinFresh = n
			}
		case equalFold(name, "max-stale"):
			if d.MaxStale < 0 {
				switch {
				case !hasVal:
					d.MaxStale = maxDelta // any staleness is acceptable
				case n >= 0:
					d.MaxStale = n
				}
			}
		case equalFold(name, "no-store"):
			d.NoStore = true
		case equalFold(name, "no-cache"):
			d.NoCache = true
		case equalFold(name, "private"):
			d.Private = true
		case equalFold(name, "public"):
			d.Public = true
		case equalFold(name, "must-revalidate"):
			d.MustRevalidate = true
		case equalFold(name, "proxy-revalidate"):
			d.ProxyRevalidate = true
		case equalFold(name, "no-transform"):
			d.NoTransform = true
		case equalFold(name, "immutable"):
			d.Immutable = true
		case equalFold(name, "only-if-cached"):
			d.OnlyIfCached = true
		}
	}
	return d
}

// firstValid applies one occurrence of max-age or s-maxage: the first valid value wins, and an
// invalid one stands as 0 (stale) only until a valid one appears.
func firstValid(cur int64, bad bool, n int64) (int64, bool) {
	switch {
	case n >= 0 && (cur < 0 || bad):
		return n, false
	case n < 0 && cur < 0:
		return 0, true
	}
	return cur, bad
}

// parseDelta parses delta-seconds: one or more ASCII digits, clamped to maxDelta. It returns
// badDelta for anything else.
func parseDelta(b []byte) int64 {
	if len(b) == 0 {
		return badDelta
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return badDelta
		}
		if n < maxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, maxDelta)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

// equalFold reports whether b equals the lowercase ASCII string s, ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// trimSpace returns b without leading and trailing spaces and tabs.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
