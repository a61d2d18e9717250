package cache

import (
	"sync/atomic"
	"time"
)

// Field is one stored response header line.
type Field struct{ Name, Value []byte }

// Entry is one stored response. It is immutable once passed to Store.Set (except for the
// soft-purge mark, which is atomic) and shared by all readers without copying: callers must
// not modify any of its slices, and whoever builds an Entry must give it bytes it owns (copied
// out of any request or response buffer that is reused).
type Entry struct {
	Key        string   // primary key (see Keyer)
	Site       string   // site name, for purges scoped to one site
	Status     int      // status code to replay
	Header     []Field  // end-to-end headers to replay, in order (hop-by-hop, Set-Cookie, Age already removed)
	Body       []byte   // response body
	Vary       []string // lowercased header names from the response's Vary, sorted, deduplicated (see VaryNames)
	VaryValues [][]byte // the request's values for those names at store time, normalized (see AppendVaryValues)

	ETag, LastModified []byte   // validators for conditional requests
	Keys               []string // surrogate keys (Surrogate-Key and Cache-Tag, see AppendKeys), for purge
	// Encoded are copies of Body in other content codings, made once when the entry was
	// stored; nil when the body was stored only as the origin sent it.
	Encoded []Encoded

	RequestTime, ResponseTime time.Time // when the origin request was sent and the response received
	Policy                    Policy    // the verdict of Evaluate

	purged atomic.Bool // soft-purged: never Fresh again
	size   int64       // set before the entry is shared
}

// State is where an entry stands in its life at a given time.
type State uint8

// States of an entry.
const (
	Fresh           State = iota // serve it
	StaleRevalidate              // stale, inside stale-while-revalidate: serve it and refresh in the background
	StaleIfError                 // stale, inside stale-if-error: serve it only when the origin fails
	Expired                      // go to the origin (a conditional request when it has validators)
)

var stateNames = [...]string{"fresh", "stale-revalidate", "stale-if-error", "expired"}

// String names the state, for logs and debug headers.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// Age is current_age (RFC 9111 §4.2.3): the corrected initial age plus the time since the
// response was received.
func (e *Entry) Age(now time.Time) time.Duration {
	return e.Policy.InitialAge + max(0, now.Sub(e.ResponseTime))
}

// TTL is the remaining freshness (Freshness - Age); negative once stale.
func (e *Entry) TTL(now time.Time) time.Duration {
	return e.Policy.Freshness - e.Age(now)
}

// State tells what the proxy may do with the entry at now. A soft-purged entry is never Fresh:
// it is StaleRevalidate (served stale while one background refresh runs) unless NoStale, then
// Expired. A NoCache entry is never Fresh nor StaleRevalidate.
func (e *Entry) State(now time.Time) State {
	p := &e.Policy
	age := e.Age(now)
	if age < p.Freshness && !p.NoCache {
		switch {
		case !e.purged.Load():
			return Fresh
		case p.NoStale:
			return Expired
		}
		return StaleRevalidate
	}
	if p.NoStale {
		return Expired
	}
	stale := max(0, age-p.Freshness)
	if !p.NoCache && stale < p.SWR {
		return StaleRevalidate
	}
	if stale < p.SIE {
		return StaleIfError
	}
	return Expired
}

// Purged reports whether the entry was soft-purged.
func (e *Entry) Purged() bool { return e.purged.Load() }

// Costs of an entry beyond its bytes, roughly what Go spends on the headers of its slices and
// on the store's bookkeeping; they keep many tiny entries from overrunning the budget.
const (
	// entryOverhead is the Entry itself (352 bytes, a size class of its own) and what the store
	// spends per primary key: the variants, the index's slot, ristretto's item, expiry and
	// cost slots.
	entryOverhead = 544
	sliceOverhead = 24
	// keyCost is what one surrogate key costs beyond its bytes: its string header in Keys
	// and its share of the index (a map slot, or a member of a shared key's set, with the
	// maps' slack). BenchmarkIndexMemory and TestStoreHeapWithinBudget measure it.
	keyCost = 112
)

// Size is the bytes the entry costs in the store: key, headers, body and its encoded copies,
// vary values, surrogate keys with their share of the index, and bookkeeping.
func (e *Entry) Size() int64 {
	if e.size > 0 {
		return e.size
	}
	return e.computeSize()
}

func (e *Entry) computeSize() int64 {
	n := int64(entryOverhead + len(e.Key) + len(e.Site) + len(e.Body) + len(e.ETag) + len(e.LastModified))
	for _, f := range e.Header {
		n += int64(2*sliceOverhead + len(f.Name) + len(f.Value))
	}
	for _, s := range e.Vary {
		n += int64(16 + len(s))
	}
	for _, v := range e.VaryValues {
		n += int64(sliceOverhead + len(v))
	}
	for _, s := range e.Keys {
		n += int64(keyCost + len(s))
	}
	for i := range e.Encoded {
		n += e.Encoded[i].size()
	}
	return n
}

// notUpdated lists fields that a 304 must not change in the stored response (RFC 9111 §3.2):
// they describe the stored body, which a 304 does not replace. ETag too: a 304 that names
// another strong validator does not describe the stored representation (§4.3.4), and the
// stored body keeps its own.
var notUpdated = [...]string{"content-length", "content-encoding", "content-range", "transfer-encoding", "content-md5", "etag"}

// Revalidated returns a new Entry for a 304 Not Modified (RFC 9111 §4.3.4): the stored header
// fields are replaced by those of the 304 with the same name (except Content-Length,
// Content-Encoding, Content-Range and Transfer-Encoding), new fields are appended, and the times
// and policy are the new ones; the body, its encoded copies and Vary are shared with e. h is copied and may be
// reused after the call. p is Evaluate's verdict on the updated response. e is not changed,
// and the new entry is not soft-purged.
func (e *Entry) Revalidated(h []Field, p Policy, requestTime, responseTime time.Time) *Entry {
	n := &Entry{
		Key: e.Key, Site: e.Site, Status: e.Status, Body: e.Body,
		Vary: e.Vary, VaryValues: e.VaryValues,
		ETag: e.ETag, LastModified: e.LastModified, Keys: e.Keys, Encoded: e.Encoded,
		RequestTime: requestTime, ResponseTime: responseTime, Policy: p,
	}
	// Copy the updating fields into one block owned by the new entry.
	total := 0
	for _, f := range h {
		total += len(f.Name) + len(f.Value)
	}
	arena := make([]byte, 0, total)
	upd := make([]Field, 0, len(h))
	for _, f := range h {
		if len(f.Name) == 0 || !updatable(f.Name) {
			continue
		}
		s := len(arena)
		arena = append(arena, f.Name...)
		name := arena[s:len(arena):len(arena)]
		s = len(arena)
		arena = append(arena, f.Value...)
		upd = append(upd, Field{Name: name, Value: arena[s:len(arena):len(arena)]})
	}

	out := make([]Field, 0, len(e.Header)+len(upd))
	emitted := make([]bool, len(upd))
	for _, f := range e.Header {
		if !hasField(upd, f.Name) {
			out = append(out, f)
			continue
		}
		// Replace every stored line of this name by the 304's lines, where the first stood.
		for j, u := range upd {
			if !emitted[j] && equalFoldBytes(u.Name, f.Name) {
				out = append(out, u)
				emitted[j] = true
			}
		}
	}
	var keys []string
	newKeys := false
	for j, u := range upd {
		if !emitted[j] {
			out = append(out, u)
		}
		switch {
		case equalFold(u.Name, "etag"):
			n.ETag = u.Value
		case equalFold(u.Name, "last-modified"):
			n.LastModified = u.Value
		case equalFold(u.Name, "surrogate-key"), equalFold(u.Name, "cache-tag"):
			keys = AppendKeys(keys, u.Value)
			newKeys = true
		}
	}
	if newKeys {
		n.Keys = keys
	}
	n.Header = out
	n.size = n.computeSize()
	return n
}

func updatable(name []byte) bool {
	for _, s := range notUpdated {
		if equalFold(name, s) {
			return false
		}
	}
	return true
}

func hasField(fs []Field, name []byte) bool {
	for _, f := range fs {
		if equalFoldBytes(f.Name, name) {
			return true
		}
	}
	return false
}

// equalFoldBytes compares two header names ignoring ASCII case.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
