package cache

// ParseTargeted parses a targeted cache-control field value such as CDN-Cache-Control (RFC 9213),
// several field lines joined with ", ". ok is false when the field must be ignored, and the
// cache then falls back to Cache-Control: RFC 9213 §2.1, "If a targeted field in a given
// response is empty, or a parsing error is encountered, that field MUST be ignored by the cache
// (i.e., it behaves as if the field were not present, likely falling back to other cache
// control mechanisms present)."
//
// Targeted fields are Structured Field Dictionaries (RFC 8941), and RFC 9213 §2.1 maps the
// directives onto its types: "the max-age directive ... has an integer value; no-store ...
// always has a boolean true value, and no-cache ... has a value that can either be boolean true
// or a string", and "Implementations SHOULD NOT consume values that violate these inferred
// constraints". A value of the wrong type for a directive edgevitals uses (max-age="60",
// max-age=1.5, max-age=-1, no-store=1) therefore makes the whole field invalid, like a syntax
// error, rather than being coerced. Keys are case-sensitive lowercase (MAX-AGE is a parse
// error); a key given twice takes its last value (RFC 8941 §4.2.2); parameters are ignored;
// unknown directives are ignored whatever their value. Integers larger than 2^31 are clamped
// to it (RFC 9111 §1.2.2). It does not allocate; v is only read during the call.
func ParseTargeted(v []byte) (d Directives, ok bool) {
	d = Directives{MaxAge: -1, SMaxAge: -1, StaleWhileRevalidate: -1, StaleIfError: -1, MinFresh: -1, MaxStale: -1}
	p := newSFDict(v)
	n := 0
	for p.next() {
		n++
		m := &p.m
		var delta *int64
		var flag *bool
		switch string(m.key) {
		case "max-age":
			delta = &d.MaxAge
		case "s-maxage":
			delta = &d.SMaxAge
		case "stale-while-revalidate":
			delta = &d.StaleWhileRevalidate
		case "stale-if-error":
			delta = &d.StaleIfError
		case "no-store":
			flag = &d.NoStore
		case "no-cache":
			flag = &d.NoCache
		case "private":
			flag = &d.Private
		case "public":
			flag = &d.Public
		case "must-revalidate":
			flag = &d.MustRevalidate
		case "proxy-revalidate":
			flag = &d.ProxyRevalidate
		case "no-transform":
			flag = &d.NoTransform
		case "immutable":
			flag = &d.Immutable
		default:
			continue
		}
		switch {
		case delta != nil:
			if m.typ != sfInteger || m.val[0] == '-' {
				return Directives{}, false
			}
			*delta = parseDelta(m.val)
		case m.typ == sfBoolean:
			*flag = m.val[0] == '1'
		case m.typ == sfString && (flag == &d.NoCache || flag == &d.Private):
			// Qualified no-cache="field" and private="field": read as unqualified,
			// the safe reading for a shared cache that does not strip fields.
			*flag = true
		default:
			return Directives{}, false
		}
	}
	if p.err || n == 0 {
		return Directives{}, false
	}
	return d, true
}
