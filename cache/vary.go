package cache

import (
	"bytes"
	"slices"
	"strings"
)

// Header gives a request's header values; *fasthttp.RequestHeader satisfies it. Peek returns
// a field's value (the first line's), PeekAll the value of each line, in order, or none; Vary
// matching uses PeekAll. The returned slices are only read until the next call.
type Header interface {
	Peek(key string) []byte
	PeekAll(key string) [][]byte
}

// MaxVaryNames bounds how many distinct header names a stored response may vary on. A
// response that varies on more cannot be keyed: it is not stored (ReasonVaryTooMany).
const MaxVaryNames = 16

// VaryNames returns the header names listed in a Vary value (repeated Vary lines joined with
// ", "), lowercased, sorted and deduplicated, as Entry.Vary wants them; empty members are
// skipped. ok is false when a stored variant could not hold what the response varies on: "*",
// or more than MaxVaryNames distinct names. Such a response must not be stored: names are then
// nil.
func VaryNames(v []byte) (names []string, ok bool) {
	for len(v) > 0 {
		var name []byte
		name, v = cutMember(v)
		switch {
		case len(name) == 0:
			continue
		case string(name) == "*":
			return nil, false
		}
		n := strings.ToLower(string(name))
		if slices.Contains(names, n) {
			continue
		}
		if len(names) == MaxVaryNames {
			return nil, false
		}
		names = append(names, n)
	}
	slices.Sort(names)
	return names, true
}

// lineSep separates the normalized values of a field's lines in a stored Vary value. It
// cannot occur in a normalized value (line breaks normalize to a space), so a field sent on
// two lines never matches the same values sent on one line or in another split: the origin
// may read them differently (some use the first line, some the last).
const lineSep = '\n'

// AppendVaryValues appends to dst the request's values for names, normalized and copied, as
// Entry.VaryValues wants them: the field's lines are kept apart by lineSep, and a field the
// request lacks gives nil.
func AppendVaryValues(dst [][]byte, names []string, req Header) [][]byte {
	for _, name := range names {
		var v []byte
		for i, line := range req.PeekAll(name) {
			if i > 0 {
				v = append(v, lineSep)
			}
			v = appendNormalized(v, line)
		}
		dst = append(dst, v)
	}
	return dst
}

// Matches reports whether req has, for each of e's Vary names, the value e was stored for,
// line by line: the proxy checks it before serving a coalesced waiter another request's
// response. A nil req has no header fields. It does not allocate.
func (e *Entry) Matches(req Header) bool {
	if len(e.VaryValues) != len(e.Vary) {
		return false
	}
	for i, name := range e.Vary {
		var lines [][]byte
		if req != nil {
			lines = req.PeekAll(name)
		}
		if !equalLines(e.VaryValues[i], lines) {
			return false
		}
	}
	return true
}

// equalLines reports whether norm, as AppendVaryValues stores it, is the normalized form of
// lines: as many lines, each equal once normalized. An absent field and one empty line are
// alike, as they always were.
func equalLines(norm []byte, lines [][]byte) bool {
	if len(lines) == 0 {
		return len(norm) == 0
	}
	for i, line := range lines {
		seg, rest := norm, []byte(nil)
		j := bytes.IndexByte(norm, lineSep)
		if j >= 0 {
			seg, rest = norm[:j], norm[j+1:]
		}
		if last := i == len(lines)-1; last != (j < 0) || !equalNormalized(seg, line) {
			return false
		}
		norm = rest
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
		if isSpace(c) || c == '\r' || c == '\n' {
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
