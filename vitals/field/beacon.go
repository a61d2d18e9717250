package field

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
)

// MaxBeaconBytes is the largest beacon body the collector accepts. A real
// beacon is about 250 bytes plus the page's path.
const MaxBeaconBytes = 4 << 10

// MaxBeaconBytes is the largest beacon body Beacon accepts, for the proxy
// that reads beacons off the connection.
func (c *Collector) MaxBeaconBytes() int { return MaxBeaconBytes }

// Bounds of beacon values: times in milliseconds, CLS unitless. A value
// beyond them is a broken or forged beacon, not a slow page: the script
// leaves such values out.
const (
	maxBeaconMillis = 60e3
	maxBeaconCLS    = 10
	maxPathBytes    = 1024
	maxReleaseBytes = 128
)

// Devices are the device classes a beacon reports (metric label device).
var Devices = []string{"mobile", "desktop", "tablet"}

// CacheStates are the cache outcomes of a page view a beacon reports
// (metric label cache): the proxy's Server-Timing, or unknown without it.
var CacheStates = []string{"hit", "stale", "miss", "pass", "bypass", "unknown"}

const (
	numDevices     = 3
	numCacheStates = 6
	cacheUnknown   = 5 // index of "unknown" in CacheStates
)

// reading is one Core Web Vital of a beacon; ok is false when the page did
// not measure it.
type reading struct {
	v  float64
	ok bool
}

// beacon is one checked beacon.
type beacon struct {
	sid, path, rel, conv string
	dev, cache           uint8 // indexes into Devices and CacheStates
	lcp, fcp, ttfb, inp  reading
	cls                  reading
}

// hasVitals reports whether the beacon carries any measurement.
func (b *beacon) hasVitals() bool {
	return b.lcp.ok || b.fcp.ok || b.ttfb.ok || b.inp.ok || b.cls.ok
}

// reason is why a beacon was rejected: the label of
// edgevitals_beacons_rejected_total.
type reason uint8

const (
	reasonTooLarge reason = iota
	reasonRateLimited
	reasonMalformed
	reasonVersion
	reasonInvalid
	reasonOutOfRange
	reasonUnknownGoal
	numReasons
)

var reasonNames = [numReasons]string{"too_large", "rate_limited", "malformed", "version", "invalid", "out_of_range", "unknown_goal"}

func (r reason) String() string { return reasonNames[r] }

// BeaconError is why a beacon was rejected.
type BeaconError struct {
	Reason string // as in edgevitals_beacons_rejected_total
	Msg    string
	r      reason
}

func (e *BeaconError) Error() string { return "beacon " + e.Reason + ": " + e.Msg }

func rejectf(r reason, format string, a ...any) *BeaconError {
	return &BeaconError{Reason: r.String(), Msg: fmt.Sprintf(format, a...), r: r}
}

func reasonOf(err error) reason {
	if be, ok := errors.AsType[*BeaconError](err); ok {
		return be.r
	}
	return reasonMalformed
}

// beacon fields, as bits of a set.
const (
	fieldV = 1 << iota
	fieldSID
	fieldPath
	fieldLCP
	fieldCLS
	fieldINP
	fieldFCP
	fieldTTFB
	fieldDev
	fieldCache
	fieldRel
	fieldConv
)

var beaconFields = map[string]int{
	"v": fieldV, "sid": fieldSID, "path": fieldPath, "lcp": fieldLCP, "cls": fieldCLS, "inp": fieldINP,
	"fcp": fieldFCP, "ttfb": fieldTTFB, "dev": fieldDev, "cache": fieldCache, "rel": fieldRel, "conv": fieldConv,
}

// parseBeacon decodes and checks one beacon body (see Collector.Beacon for
// the format). It is strict: exact field names, each at most once, values of
// the right type and range, one JSON object and nothing after it.
func parseBeacon(body []byte) (beacon, error) {
	if len(body) > MaxBeaconBytes {
		return beacon{}, rejectf(reasonTooLarge, "%d bytes, at most %d", len(body), MaxBeaconBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return beacon{}, rejectf(reasonMalformed, "not a JSON object")
	}
	var (
		b         beacon
		seen      int
		version   json.Number
		firstErr  error
		firstFail = func(err error) {
			if firstErr == nil {
				firstErr = err
			}
		}
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return beacon{}, rejectf(reasonMalformed, "bad JSON: %v", err)
		}
		key, _ := tok.(string)
		val, err := dec.Token()
		if err != nil {
			return beacon{}, rejectf(reasonMalformed, "bad JSON: %v", err)
		}
		if _, nested := val.(json.Delim); nested {
			return beacon{}, rejectf(reasonMalformed, "field %q holds an object or array", key)
		}
		f, known := beaconFields[key]
		switch {
		case !known:
			// Keep reading: a newer script's beacon is a version
			// problem, which is the more useful reason to count.
			firstFail(rejectf(reasonMalformed, "unknown field %q", key))
			continue
		case seen&f != 0:
			firstFail(rejectf(reasonMalformed, "field %q twice", key))
			continue
		}
		seen |= f
		if err := b.set(f, key, val, &version); err != nil {
			firstFail(err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return beacon{}, rejectf(reasonMalformed, "bad JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return beacon{}, rejectf(reasonMalformed, "data after the JSON object")
	}
	if seen&fieldV == 0 {
		return beacon{}, rejectf(reasonVersion, "no version field v")
	}
	if v, err := version.Float64(); err != nil || v != 1 {
		return beacon{}, rejectf(reasonVersion, "version %q, this collector reads 1", version)
	}
	if firstErr != nil {
		return beacon{}, firstErr
	}
	for _, r := range []struct {
		name string
		f    int
	}{{"sid", fieldSID}, {"path", fieldPath}, {"dev", fieldDev}} {
		if seen&r.f == 0 {
			return beacon{}, rejectf(reasonInvalid, "no field %s", r.name)
		}
	}
	if seen&fieldCache == 0 {
		b.cache = cacheUnknown
	}
	if b.conv != "" && b.hasVitals() {
		return beacon{}, rejectf(reasonInvalid, "a conversion beacon carries no measurements")
	}
	return b, nil
}

// set checks and stores the value of field f.
func (b *beacon) set(f int, key string, val any, version *json.Number) error {
	if val == nil {
		switch f {
		case fieldLCP, fieldCLS, fieldINP, fieldFCP, fieldTTFB, fieldCache, fieldRel, fieldConv:
			return nil // not measured, not known
		}
		return rejectf(reasonMalformed, "field %q is null", key)
	}
	switch f {
	case fieldV:
		n, ok := val.(json.Number)
		if !ok {
			return rejectf(reasonVersion, "version %v is not a number", val)
		}
		*version = n
		return nil
	case fieldLCP, fieldINP, fieldFCP, fieldTTFB, fieldCLS:
		n, ok := val.(json.Number)
		if !ok {
			return rejectf(reasonMalformed, "field %q: want a number, got %T", key, val)
		}
		limit := float64(maxBeaconMillis)
		if f == fieldCLS {
			limit = maxBeaconCLS
		}
		v, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.IsNaN(v) || v < 0 || v > limit {
			return rejectf(reasonOutOfRange, "%s %s out of range [0, %g]", key, n, limit)
		}
		r := reading{v: v, ok: true}
		switch f {
		case fieldLCP:
			b.lcp = r
		case fieldINP:
			b.inp = r
		case fieldFCP:
			b.fcp = r
		case fieldTTFB:
			b.ttfb = r
		case fieldCLS:
			b.cls = r
		}
		return nil
	}
	s, ok := val.(string)
	if !ok {
		return rejectf(reasonMalformed, "field %q: want a string, got %T", key, val)
	}
	switch f {
	case fieldSID:
		if !validSID(s) {
			return rejectf(reasonInvalid, "sid %q: want 16 to 32 of A-Z a-z 0-9 _ -", s)
		}
		b.sid = s
	case fieldPath:
		if len(s) == 0 || s[0] != '/' || len(s) > maxPathBytes || !printable(s) {
			return rejectf(reasonInvalid, "path %q: want an absolute path of printable ASCII, at most %d bytes", clip(s), maxPathBytes)
		}
		b.path = s
	case fieldDev:
		i := slices.Index(Devices, s)
		if i < 0 {
			return rejectf(reasonInvalid, "dev %q: want one of %q", clip(s), Devices)
		}
		b.dev = uint8(i)
	case fieldCache:
		i := slices.Index(CacheStates, s)
		if i < 0 {
			return rejectf(reasonInvalid, "cache %q: want one of %q", clip(s), CacheStates)
		}
		b.cache = uint8(i)
	case fieldRel:
		if len(s) > maxReleaseBytes || !printable(s) {
			return rejectf(reasonInvalid, "rel %q: want printable ASCII, at most %d bytes", clip(s), maxReleaseBytes)
		}
		b.rel = s
	case fieldConv:
		if !validName(s) {
			return rejectf(reasonInvalid, "conv %q: want a goal name", clip(s))
		}
		b.conv = s
	}
	return nil
}

func validSID(s string) bool {
	if len(s) < 16 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// printable reports whether s is visible ASCII: no space, control or
// non-ASCII byte (browsers percent-encode those in paths).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// clip shortens a rejected value for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
