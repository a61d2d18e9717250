package cache

import (
	"slices"
	"strings"
)

// Header gives a request's header values; *fasthttp.RequestHeader satisfies it. The returned
// slice is only read until the next call.
type Header interface {
	Peek(key string) []byte
}

// maxVaryNames bounds how many header names one response may vary on.
const maxVaryNames = 16

// VaryNames returns the header names listed in a Vary value, lowercased, sorted and
// deduplicated, as Entry.Vary wants them. "*" is dropped (Evaluate refuses such responses) and
// at most 16 names are kept.
func VaryNames(v []byte) []string {
	var names []string
	for len(v) > 0 {
		var name []byte
		name, v = cutMember(v)
		if len(name) > 0 && string(name) != "*" && len(names) < maxVaryNames {
			names = append(names, strings.ToLower(string(name)))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// AppendVaryValues appends to dst the request's values for names, normalized and copied, as
// Entry.VaryValues wants them.
func AppendVaryValues(dst [][]byte, names []string, req Header) [][]byte {
	for _, name := range names {
		dst = append(dst, appendNormalized(nil, req.Peek(name)))
	}
	return dst
}

// varyMatch reports whether req has, for each of e's Vary names, the value e was stored for.
// A nil req has no header fields. It does not allocate.
func varyMatch(e *Entry, req Header) bool {
	for i, name := range e.Vary {
		var v []byte
		if req != nil {
			v = req.Peek(name)
		}
		if i >= len(e.VaryValues) || !equalNormalized(e.VaryValues[i], v) {
			return false
		}
	}
	return true
}

// sameVary reports whether two entries answer the same requests: same Vary names and values.
func sameVary(a, b *Entry) bool {
	return slices.Equal(a.Vary, b.Vary) && slices.EqualFunc(a.VaryValues, b.VaryValues,
		func(x, y []byte) bool { return string(x) == string(y) })
}

// normalizer yields a field value normalized for Vary matching (RFC 9111 §4.1): leading and
// trailing whitespace removed, runs of inner whitespace folded into one space, and no
// whitespace around commas.
type normalizer struct {
	v       []byte
	i       int
	pending bool // whitespace seen since the last byte yielded
	started bool // a byte was yielded
	last    byte // the last byte yielded
	queued  int  // a byte to yield after a folded space, or -1
}

func newNormalizer(v []byte) normalizer { return normalizer{v: v, queued: -1} }

// next returns the next normalized byte, or -1 at the end.
func (n *normalizer) next() int {
	if n.queued >= 0 {
		c := n.queued
		n.queued = -1
		n.last = byte(c)
		return c
	}
	for n.i < len(n.v) {
		c := n.v[n.i]
		n.i++
		if isSpace(c) {
			n.pending = true
			continue
		}
		space := n.pending && n.started && n.last != ',' && c != ','
		n.pending = false
		n.started = true
		if space {
			n.queued = int(c)
			n.last = ' '
			return ' '
		}
		n.last = c
		return int(c)
	}
	return -1
}

// appendNormalized appends the normalized form of v to dst.
func appendNormalized(dst, v []byte) []byte {
	n := newNormalizer(v)
	for c := n.next(); c >= 0; c = n.next() {
		dst = append(dst, byte(c))
	}
	return dst
}

// equalNormalized reports whether the normalized form of raw equals norm, without allocating.
func equalNormalized(norm, raw []byte) bool {
	n := newNormalizer(raw)
	for i := 0; ; i++ {
		c := n.next()
		if c < 0 {
			return i == len(norm)
		}
		if i >= len(norm) || norm[i] != byte(c) {
			return false
		}
	}
}
