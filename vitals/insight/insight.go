package insight

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Kind is what fragments the cache.
type Kind uint8

// Kinds, as the kind label of edgevitals_fragmentation_share spells them.
const (
	KindParam Kind = iota + 1
	KindCookie
	KindVary
	KindPath
)

var kindNames = [...]string{"", "param", "cookie", "vary", "path"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// MarshalText gives the label spelling, for JSON.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Verdict is what comparing pages said about a parameter or a cookie.
type Verdict uint8

// Verdicts.
const (
	NotCompared Verdict = iota // too few comparisons to tell
	Identical                  // the page was the same whatever its value (or with it)
	Different                  // the page changed with it: part of the page
)

var verdictNames = [...]string{"not_compared", "identical", "different"}

func (v Verdict) String() string { return verdictNames[min(int(v), len(verdictNames)-1)] }

// MarshalText gives the spelling, for JSON.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Insight is one cause of fragmentation in a window, with its fix.
type Insight struct {
	Kind Kind `json:"kind"`
	// Name is the parameter, the cookie (a hashed suffix as "*"), the Vary field, or the URL
	// group (see Template).
	Name   string  `json:"name"`
	Group  string  `json:"group,omitempty"`  // vary: the URL group it is seen on most
	Reason string  `json:"reason,omitempty"` // path: the uncacheable reason
	Share  float64 `json:"share"`            // of requests, 0..1 (see the package comment)
	Points float64 `json:"points"`           // hit-ratio points it costs, 0..100
	// Seen (cookie) is the share of requests carrying the cookie, 0..1, counted from when it
	// first made a request bypass.
	Seen float64 `json:"seen,omitempty"`
	// Of (path) is the share of the group's responses marked with Reason, 0..1.
	Of       float64 `json:"of,omitempty"`
	Distinct uint64  `json:"distinct,omitempty"` // param, vary: distinct values (estimated)
	Variants uint64  `json:"variants,omitempty"` // vary: distinct URL variants (estimated)
	URLs     uint64  `json:"urls,omitempty"`     // vary: distinct URLs (estimated)
	// Verdict, Compared and Differed (param, cookie) say what page comparisons found.
	Verdict    Verdict `json:"verdict"`
	Compared   uint64  `json:"compared,omitempty"`
	Differed   uint64  `json:"differed,omitempty"`
	Evidence   string  `json:"evidence"`
	Suggestion string  `json:"suggestion"`
	// ConfigKey and Config are the key and the full line that would fix it; empty when the
	// fix is at the origin or the evidence does not allow one.
	ConfigKey string `json:"config_key,omitempty"`
	Config    string `json:"config,omitempty"`
}

// ErrBeyondHistory is returned for a window that starts before the kept history.
var ErrBeyondHistory = errors.New("window starts before the kept history")

// Insights returns the causes of the last Options.Window before now, largest Points first,
// those under Options.MinPoints left out. An unknown site has none.
func (l *Learner) Insights(site string, now time.Time) []Insight {
	in, err := l.Window(site, now.Add(-l.opt.Window), now)
	if err != nil {
		// The window is never longer than the history (New checks it): only a site that
		// has seen nothing since can be here, and it has nothing to say.
		return nil
	}
	return in
}

// Window returns the causes of [from, to), as Insights does. A window reaching before the
// kept history is ErrBeyondHistory, not a partial answer.
func (l *Learner) Window(site string, from, to time.Time) ([]Insight, error) {
	s := l.site(site, false)
	if s == nil {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	slots, err := s.view(from, to)
	if err != nil {
		return nil, err
	}
	return s.insights(slots), nil
}

// Span is a time window [From, To).
type Span struct{ From, To time.Time }

// Change is a cause that grew from one window to the next.
type Change struct {
	Insight         // in the later window
	Before  float64 `json:"before"` // its Points in the earlier window
	New     bool    `json:"new"`    // it was not there (under MinPoints) before
}

// Compare returns the causes whose Points grew by at least MinPoints from before to after,
// the largest growth first: what a release brought.
func (l *Learner) Compare(site string, before, after Span) ([]Change, error) {
	prev, err := l.Window(site, before.From, before.To)
	if err != nil {
		return nil, fmt.Errorf("earlier window: %w", err)
	}
	next, err := l.Window(site, after.From, after.To)
	if err != nil {
		return nil, fmt.Errorf("later window: %w", err)
	}
	type id struct {
		kind         Kind
		name, reason string
	}
	was := make(map[id]float64, len(prev))
	for _, in := range prev {
		was[id{in.Kind, in.Name, in.Reason}] = in.Points
	}
	var out []Change
	for _, in := range next {
		p, ok := was[id{in.Kind, in.Name, in.Reason}]
		if in.Points-p >= l.opt.MinPoints {
			out = append(out, Change{Insight: in, Before: p, New: !ok})
		}
	}
	slices.SortStableFunc(out, func(a, b Change) int {
		return cmp.Compare(b.Points-b.Before, a.Points-a.Before)
	})
	return out, nil
}

// view returns the slots of the buckets of [from, to) that the history holds.
func (s *site) view(from, to time.Time) ([]int, error) {
	if !to.After(from) {
		return nil, fmt.Errorf("window %s..%s: empty", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if !s.started {
		return nil, nil
	}
	w, nb := int64(s.opt.Bucket), int64(s.opt.Buckets)
	a, b := floorDiv(from.UnixNano(), w), floorDiv(to.UnixNano()-1, w)
	oldest := s.head - nb + 1
	if a < oldest && s.first < oldest {
		return nil, fmt.Errorf("window from %s: %w (from %s)", from.Format(time.RFC3339), ErrBeyondHistory,
			time.Unix(0, oldest*w).UTC().Format(time.RFC3339))
	}
	var slots []int
	for x := max(a, oldest); x <= min(b, s.head); x++ {
		slots = append(slots, int(((x%nb)+nb)%nb))
	}
	return slots, nil
}

type totals struct{ req, nonHit, cacheable, cacheableNonHit uint64 }

func (s *site) totals(slots []int) totals {
	var t totals
	for _, b := range slots {
		row := s.tot[b*numTot:][:numTot]
		t.req += uint64(row[totRequests])
		t.nonHit += uint64(row[totNonHit])
		t.cacheable += uint64(row[totCacheable])
		t.cacheableNonHit += uint64(row[totCacheableNonHit])
	}
	return t
}

// excess is the hit-ratio points lost by req cacheable requests with nonHit misses, against
// the miss rate of the other cacheable requests.
func (t totals) excess(req, nonHit uint64) float64 {
	if req == 0 || t.req == 0 {
		return 0
	}
	with := float64(nonHit) / float64(req)
	without := 0.0
	if rest := t.cacheable - min(req, t.cacheable); rest > 0 {
		without = float64(t.cacheableNonHit-min(nonHit, t.cacheableNonHit)) / float64(rest)
	}
	return 100 * float64(req) / float64(t.req) * max(0, with-without)
}

func (s *site) insights(slots []int) []Insight {
	t := s.totals(slots)
	if t.req == 0 {
		return nil
	}
	var out []Insight
	out = s.paramInsights(out, slots, t)
	out = s.cookieInsights(out, slots, t)
	out = s.varyInsights(out, slots, t)
	out = s.pathInsights(out, slots, t)
	out = slices.DeleteFunc(out, func(in Insight) bool { return in.Points < s.opt.MinPoints })
	slices.SortFunc(out, func(a, b Insight) int {
		return cmp.Or(cmp.Compare(b.Points, a.Points), cmp.Compare(b.Share, a.Share),
			cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Reason, b.Reason))
	})
	return out
}
