package cache

// A parser of Structured Field Dictionaries (RFC 8941 §3.2, parsed as §4.2.2 says), for the
// targeted cache-control fields of RFC 9213. It reports each member's key, the type of its
// value and the value's bytes; parameters and inner lists are checked, then dropped. It never
// allocates.
//
// Why not a library: the cache package imports only the standard library and ristretto
// (internal/archtest holds it to that), the policy runs on every miss and revalidation, and only the
// dictionary grammar is needed, not serialization. The grammar is small; the fuzz target
// FuzzParseTargeted and the RFC 8941 cases in sfv_test.go hold it.

// sfType is the type of a dictionary member's value.
type sfType uint8

const (
	sfInteger sfType = iota + 1
	sfDecimal
	sfString
	sfToken
	sfBytes
	sfBoolean
	sfInnerList
)

// Limits of RFC 8941 §3.3.1 and §3.3.2.
const (
	sfMaxIntegerDigits = 15
	sfMaxDecimalInt    = 12
	sfMaxFraction      = 3
)

// sfMember is one dictionary member. val is the integer's or decimal's text (with its sign),
// the string's content between the quotes (escapes not undone), the token, the base64 text,
// or "1"/"0" for a boolean; empty for an inner list.
type sfMember struct {
	key, val []byte
	typ      sfType
}

// sfDict walks a dictionary field value. Use: for d.next() { d.m ... }; then d.err reports
// whether the value failed to parse. Several field lines are parsed joined with ", " (RFC
// 8941 §4.2).
type sfDict struct {
	in    []byte
	i     int
	m     sfMember
	err   bool
	first bool
}

func newSFDict(v []byte) sfDict {
	d := sfDict{in: v, first: true}
	for d.i < len(v) && v[d.i] == ' ' { // §4.2: discard leading SP
		d.i++
	}
	return d
}

// next parses the next member into d.m. It returns false at the end of the value or on a
// parse error (then d.err is set).
func (d *sfDict) next() bool {
	if d.err {
		return false
	}
	if !d.first {
		// §4.2.2: discard OWS; the value may end here (then only SP may trail, which
		// §4.2 discards) or continue with "," OWS and another member.
		d.ows()
		if d.i >= len(d.in) {
			return false
		}
		if d.in[d.i] != ',' {
			return d.fail()
		}
		d.i++
		d.ows()
		if d.i >= len(d.in) {
			return d.fail() // a trailing comma
		}
	} else if d.i >= len(d.in) {
		return false // empty
	}
	d.first = false
	key, ok := d.key()
	if !ok {
		return d.fail()
	}
	d.m = sfMember{key: key}
	if d.i < len(d.in) && d.in[d.i] == '=' {
		d.i++
		if d.i < len(d.in) && d.in[d.i] == '(' {
			if !d.innerList() {
				return d.fail()
			}
			d.m.typ = sfInnerList
		} else {
			typ, val, ok := d.bareItem()
			if !ok {
				return d.fail()
			}
			d.m.typ, d.m.val = typ, val
		}
	} else {
		d.m.typ, d.m.val = sfBoolean, one
	}
	if !d.params() {
		return d.fail()
	}
	return true
}

var one = []byte("1")

func (d *sfDict) fail() bool {
	d.err = true
	return false
}

func (d *sfDict) ows() {
	for d.i < len(d.in) && (d.in[d.i] == ' ' || d.in[d.i] == '\t') {
		d.i++
	}
}

// key: ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ) (§4.2.3.3).
func (d *sfDict) key() ([]byte, bool) {
	start := d.i
	if d.i >= len(d.in) || !(isLCAlpha(d.in[d.i]) || d.in[d.i] == '*') {
		return nil, false
	}
	d.i++
	for d.i < len(d.in) {
		c := d.in[d.i]
		if !(isLCAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
		d.i++
	}
	return d.in[start:d.i], true
}

// params: *( ";" *SP key [ "=" bare-item ] ) (§4.2.3.2). Their values are checked, not kept.
func (d *sfDict) params() bool {
	for d.i < len(d.in) && d.in[d.i] == ';' {
		d.i++
		for d.i < len(d.in) && d.in[d.i] == ' ' {
			d.i++
		}
		if _, ok := d.key(); !ok {
			return false
		}
		if d.i < len(d.in) && d.in[d.i] == '=' {
			d.i++
			if _, _, ok := d.bareItem(); !ok {
				return false
			}
		}
	}
	return true
}

// innerList: "(" *SP [ item *( 1*SP item ) *SP ] ")" parameters (§4.2.1.2).
func (d *sfDict) innerList() bool {
	d.i++ // "("
	for d.i < len(d.in) {
		for d.i < len(d.in) && d.in[d.i] == ' ' {
			d.i++
		}
		if d.i < len(d.in) && d.in[d.i] == ')' {
			d.i++
			return d.params()
		}
		if _, _, ok := d.bareItem(); !ok || !d.params() {
			return false
		}
		if d.i >= len(d.in) || (d.in[d.i] != ' ' && d.in[d.i] != ')') {
			return false
		}
	}
	return false // no closing parenthesis
}

// bareItem parses an Integer, Decimal, String, Token, Byte Sequence or Boolean (§4.2.3.1).
func (d *sfDict) bareItem() (sfType, []byte, bool) {
	if d.i >= len(d.in) {
		return 0, nil, false
	}
	switch c := d.in[d.i]; {
	case c == '-' || isDigit(c):
		return d.number()
	case c == '"':
		return d.str()
	case c == '*' || isAlpha(c):
		start := d.i
		d.i++
		for d.i < len(d.in) && (isTchar(d.in[d.i]) || d.in[d.i] == ':' || d.in[d.i] == '/') {
			d.i++
		}
		return sfToken, d.in[start:d.i], true
	case c == ':':
		d.i++
		start := d.i
		for d.i < len(d.in) && d.in[d.i] != ':' {
			if c := d.in[d.i]; !(isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '=') {
				return 0, nil, false
			}
			d.i++
		}
		if d.i >= len(d.in) {
			return 0, nil, false
		}
		d.i++
		return sfBytes, d.in[start : d.i-1], true
	case c == '?':
		if d.i+1 < len(d.in) && (d.in[d.i+1] == '0' || d.in[d.i+1] == '1') {
			d.i += 2
			return sfBoolean, d.in[d.i-1 : d.i], true
		}
	}
	return 0, nil, false
}

// number parses an Integer or a Decimal (§4.2.4).
func (d *sfDict) number() (sfType, []byte, bool) {
	start := d.i
	if d.in[d.i] == '-' {
		d.i++
	}
	if d.i >= len(d.in) || !isDigit(d.in[d.i]) {
		return 0, nil, false
	}
	typ, n, dot := sfInteger, 0, -1
	for d.i < len(d.in) {
		c := d.in[d.i]
		switch {
		case isDigit(c):
		case c == '.' && typ == sfInteger:
			if n > sfMaxDecimalInt {
				return 0, nil, false
			}
			typ, dot = sfDecimal, n
		default:
			goto done
		}
		n++
		d.i++
		if typ == sfInteger && n > sfMaxIntegerDigits || typ == sfDecimal && n > 16 {
			return 0, nil, false
		}
	}
done:
	if typ == sfDecimal {
		frac := n - dot - 1
		if frac < 1 || frac > sfMaxFraction {
			return 0, nil, false
		}
	}
	return typ, d.in[start:d.i], true
}

// str parses a String (§4.2.5): printable ASCII, with \" and \\ the only escapes.
func (d *sfDict) str() (sfType, []byte, bool) {
	d.i++ // opening quote
	start := d.i
	for d.i < len(d.in) {
		c := d.in[d.i]
		switch {
		case c == '\\':
			if d.i+1 >= len(d.in) || (d.in[d.i+1] != '"' && d.in[d.i+1] != '\\') {
				return 0, nil, false
			}
			d.i += 2
			continue
		case c == '"':
			d.i++
			return sfString, d.in[start : d.i-1], true
		case c < 0x20 || c > 0x7e:
			return 0, nil, false
		}
		d.i++
	}
	return 0, nil, false // unterminated
}

func isLCAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isAlpha(c byte) bool   { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }

// isTchar: the token characters of RFC 9110 §5.6.2.
func isTchar(c byte) bool {
	if isAlpha(c) || isDigit(c) {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
