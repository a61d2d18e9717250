package cache

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Keyer builds cache keys and the query the origin gets, from one list of query parameters to
// drop (tracking parameters such as utm_*). It is immutable and safe for concurrent use.
type Keyer struct {
	exact  []string // names dropped when equal
	prefix []string // names dropped when starting with one of these
}

// NewKeyer returns a Keyer that drops the query parameters named in strip. A trailing * makes
// a prefix match ("utm_*"); names match case-sensitively as sent, without percent-decoding.
// Each bad name is one error: empty, "*" alone (it would drop every parameter), a '*' that is
// not last, or a character that cannot be in a parameter name ('&', '=', '#', space).
func NewKeyer(strip []string) (*Keyer, error) {
	k := &Keyer{}
	var errs []error
	for i, s := range strip {
		name, isPrefix := strings.CutSuffix(s, "*")
		switch {
		case s == "":
			errs = append(errs, fmt.Errorf("strip[%d]: empty parameter name", i))
		case s == "*":
			errs = append(errs, fmt.Errorf("strip[%d]: %q would drop every query parameter", i, s))
		case strings.Contains(name, "*"):
			errs = append(errs, fmt.Errorf("strip[%d]: %q: '*' is only allowed at the end", i, s))
		case strings.ContainsAny(name, "&=# \t?"):
			errs = append(errs, fmt.Errorf("strip[%d]: %q: a parameter name cannot contain '&', '=', '#', '?' or spaces", i, s))
		case isPrefix:
			k.prefix = append(k.prefix, name)
		default:
			k.exact = append(k.exact, name)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return k, nil
}

func (k *Keyer) stripped(name []byte) bool {
	for _, s := range k.exact {
		if string(name) == s {
			return true
		}
	}
	for _, p := range k.prefix {
		if bytes.HasPrefix(name, []byte(p)) {
			return true
		}
	}
	return false
}

// AppendKey appends the primary key "scheme://host/path?query" to dst and returns it: scheme
// and host lowercased, the default port (:80 for http, :443 for https) removed, the query
// cleaned as AppendQuery does, and "?" left out when nothing remains. path is used as given
// ("/" prepended when it does not start with one): the proxy passes the normalized path.
//
// Different requests never share a key: bytes that could blur the parts are percent-escaped
// ('%', '?', '#', controls, spaces and non-ASCII in the path; anything but letters, digits and
// ".-_:[]" in the host), so a Host of "example.com/x" or a decoded "?" in the path cannot
// produce another page's key. It does not allocate when dst has room and the query has at most
// 32 parameters.
func (k *Keyer) AppendKey(dst, scheme, host, path, query []byte) []byte {
	for _, c := range scheme {
		dst = appendEscaped(dst, lower(c), hostByte)
	}
	dst = append(dst, "://"...)
	host = trimDefaultPort(scheme, host)
	for _, c := range host {
		dst = appendEscaped(dst, lower(c), hostByte)
	}
	dst = AppendKeyPath(dst, path)
	n := len(dst)
	dst = append(dst, '?')
	dst = k.AppendQuery(dst, query)
	if len(dst) == n+1 {
		dst = dst[:n]
	}
	return dst
}

// trimDefaultPort drops ":80" from an http host and ":443" from an https host.
func trimDefaultPort(scheme, host []byte) []byte {
	var port string
	switch {
	case equalFold(scheme, "http"):
		port = ":80"
	case equalFold(scheme, "https"):
		port = ":443"
	default:
		return host
	}
	if h, ok := bytes.CutSuffix(host, []byte(port)); ok && len(h) > 0 && (h[len(h)-1] == ']' || bytes.IndexByte(h, ':') < 0) {
		return h
	}
	return host
}

// AppendKeyPath appends path as it appears in a key built by AppendKey (a leading '/' added
// when missing, '%', '?', '#', controls, spaces and non-ASCII percent-escaped), for matching
// key prefixes by path.
func AppendKeyPath(dst, path []byte) []byte {
	if len(path) == 0 || path[0] != '/' {
		dst = append(dst, '/')
	}
	for _, c := range path {
		dst = appendEscaped(dst, c, pathByte)
	}
	return dst
}

func hostByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']'
}

func pathByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '%' && c != '?' && c != '#'
}

// appendEscaped appends c, or %XX when ok(c) is false.
func appendEscaped(dst []byte, c byte, ok func(byte) bool) []byte {
	if ok(c) {
		return append(dst, c)
	}
	const hex = "0123456789ABCDEF"
	return append(dst, '%', hex[c>>4], hex[c&15])
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// param is one query parameter: query[start:end], its name ending at eq (== end without '=').
type param struct{ start, eq, end int }

// AppendQuery appends to dst the cleaned query the origin gets (no leading '?'): parameters
// named in the strip list and empty parameters dropped, the rest sorted by name only (stable,
// so a repeated name keeps the order it came in: "page=5&page=1" is not "page=1&page=5" to an
// application that reads the last one), joined with '&'. Cleaning a cleaned query gives
// it back unchanged. query is what follows the '?' (a '?' inside it is part of a parameter,
// so a cleaned query that starts with one reads back the same); anything from '#' on is
// ignored. It does not allocate
// when dst has room and the query has at most 32 parameters.
func (k *Keyer) AppendQuery(dst, query []byte) []byte {
	if i := bytes.IndexByte(query, '#'); i >= 0 {
		query = query[:i]
	}
	var buf [32]param
	ps := buf[:0]
	for i := 0; i < len(query); {
		end := i
		for end < len(query) && query[end] != '&' {
			end++
		}
		if end > i {
			eq := i
			for eq < end && query[eq] != '=' {
				eq++
			}
			if !k.stripped(query[i:eq]) {
				ps = append(ps, param{start: i, eq: eq, end: end})
			}
		}
		i = end + 1
	}
	// By name only: the order of a repeated name is what the application
	// reads (PHP keeps the last "page", others the first), so it is kept.
	slices.SortStableFunc(ps, func(a, b param) int {
		return bytes.Compare(query[a.start:a.eq], query[b.start:b.eq])
	})
	for i, p := range ps {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, query[p.start:p.end]...)
	}
	return dst
}
