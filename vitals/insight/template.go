package insight

// MaxTemplateLen bounds the length of a URL group (see Template).
const MaxTemplateLen = 2*maxSegment + 8

// maxSegment is the longest path segment kept literally in a URL group.
const maxSegment = 32

// Template appends to dst the URL group of path and returns it: the first path segment, and
// the second when more follow it, lowercased, with every segment that looks like an id or a
// slug collapsed to "*", and "/*" standing for whatever follows. A segment is collapsed when
// it contains a digit, a '%', a byte outside printable ASCII or two hyphens, is 8 or more hex
// letters, or is longer than maxSegment bytes. Examples: "/product/123" and
// "/product/blue-shirt" give "/product/*", "/en/product/x" gives "/en/product/*",
// "/2024/05/post" gives "/*", "/about/" stays. The result starts with '/', holds no '%', '?',
// '#' or control bytes, is at most MaxTemplateLen bytes, and Template(Template(p)) ==
// Template(p). It does not allocate when dst has room.
func Template(dst, path []byte) []byte {
	var segs [3][]byte
	n, trailing := 0, false
	for len(path) > 0 && n < len(segs) {
		for len(path) > 0 && path[0] == '/' {
			path = path[1:]
		}
		end := 0
		for end < len(path) && path[end] != '/' {
			end++
		}
		if end == 0 {
			break
		}
		segs[n], path = path[:end], path[end:]
		n++
		trailing = len(path) > 0 && onlySlashes(path)
	}
	dst = append(dst, '/')
	if n == 0 {
		return dst
	}
	if collapsed(segs[0]) {
		return append(dst, '*')
	}
	dst = appendLower(dst, segs[0])
	switch {
	case n == 1:
		if trailing {
			dst = append(dst, '/')
		}
	case n == 3 && !collapsed(segs[1]):
		dst = append(dst, '/')
		dst = appendLower(dst, segs[1])
		dst = append(dst, "/*"...)
	default:
		dst = append(dst, "/*"...)
	}
	return dst
}

func onlySlashes(b []byte) bool {
	for _, c := range b {
		if c != '/' {
			return false
		}
	}
	return true
}

// collapsed reports whether a path segment is an id or a slug rather than a section name.
func collapsed(seg []byte) bool {
	if len(seg) > maxSegment {
		return true
	}
	hyphens, hex := 0, 0
	for _, c := range seg {
		if isHex(c) {
			hex++
		}
		switch {
		case c >= '0' && c <= '9', c == '%', c <= ' ', c >= 0x7f, c == '?', c == '#':
			return true
		case c == '-':
			hyphens++
		}
	}
	return hyphens >= 2 || hex == len(seg) && hex >= 8
}

func appendLower(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// cookieStem returns the part of a cookie name kept as its identity and whether a hashed
// suffix was cut: a trailing run of 16 or more hex digits ("wordpress_logged_in_5c1f…",
// "SESS3a9…") stands for "*", so one cookie per site does not become one name per site.
func cookieStem(name []byte) (stem []byte, star bool) {
	i := len(name)
	for i > 0 && isHex(name[i-1]) {
		i--
	}
	if len(name)-i >= 16 {
		return name[:i], true
	}
	return name, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
