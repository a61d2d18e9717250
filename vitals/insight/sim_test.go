package insight

import (
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sim is a tiny cache in front of a synthetic origin: a request's key is its path, its
// parameters in the key and its Vary values; the first request of a key misses, the next hit.
type sim struct {
	t      *testing.T
	l      *Learner
	rng    *rand.Rand
	start  time.Time
	cached map[string]bool
	n      int // requests so far
	spread time.Duration
	total  int
	missFP bool // fingerprints on misses and passes only, as a proxy hashing origin bodies gives
}

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// req is one synthetic request. page names what the origin answers: equal pages, equal
// fingerprints.
type req struct {
	path         string
	params       []string // "name=value"; a leading "-" marks a stripped one
	cookies      []string
	bypassCookie string
	vary         [][2]string
	reason       string // a Pass with this reason
	page         string
	once         bool // a URL seen once: a miss, not remembered
}

func newSim(t *testing.T, o Options, total int) *sim {
	t.Helper()
	if o.StripQuery == nil {
		o.StripQuery = []string{"utm_*", "gclid", "fbclid", "msclkid"}
	}
	l, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &sim{t: t, l: l, rng: rand.New(rand.NewPCG(1, 2)), start: t0, cached: map[string]bool{},
		spread: 10 * time.Minute, total: total}
}

// now is the end of the fed traffic.
func (s *sim) now() time.Time { return s.start.Add(s.spread) }

func fingerprint(page string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(page))
	return h.Sum64() | 1
}

func (s *sim) serve(r req) {
	o := Observation{Site: "blog", Path: []byte(r.path), Reason: r.reason}
	o.Time = s.start.Add(time.Duration(int64(s.spread) * int64(s.n) / int64(max(s.total, 1))))
	s.n++
	key := []string{r.path}
	for _, p := range r.params {
		name, value, _ := strings.Cut(strings.TrimPrefix(p, "-"), "=")
		stripped := strings.HasPrefix(p, "-")
		o.Params = append(o.Params, Param{Name: []byte(name), Value: []byte(value), Stripped: stripped})
		if !stripped {
			key = append(key, name+"="+value)
		}
	}
	for _, c := range r.cookies {
		o.Cookies = append(o.Cookies, []byte(c))
	}
	for _, f := range r.vary {
		o.Vary = append(o.Vary, Field{Name: []byte(f[0]), Value: []byte(f[1])})
		key = append(key, f[0]+":"+f[1])
	}
	slices.Sort(key[1:])
	k := strings.Join(key, "&")
	o.Fingerprint = fingerprint(r.page)
	switch {
	case r.bypassCookie != "":
		o.Outcome, o.BypassCookie = Bypass, []byte(r.bypassCookie)
	case r.reason != "":
		o.Outcome = Pass
	case r.once:
		o.Outcome = Miss
	case s.cached[k]:
		o.Outcome = Hit
	default:
		o.Outcome = Miss
		s.cached[k] = true
	}
	if s.missFP && (o.Outcome == Hit || o.Outcome == Bypass) {
		o.Fingerprint = 0
	}
	s.l.Observe(&o)
}

// baseline is ordinary traffic: 200 pages in a few sections, a tracking parameter that the
// key already drops on some requests.
func (s *sim) baseline() req {
	var r req
	switch n := s.rng.IntN(200); {
	case n == 0:
		r.path = "/"
	case n < 100:
		r.path = "/product/" + strconv.Itoa(n)
	default:
		r.path = "/blog/a-post-about-" + strconv.Itoa(n) + "/"
	}
	r.page = r.path
	if s.rng.IntN(5) == 0 {
		r.params = append(r.params, "-utm_source=news"+strconv.Itoa(s.rng.IntN(50)))
	}
	r.cookies = []string{"_ga"}
	return r
}

func (s *sim) run(gen func() req) {
	for range s.total {
		s.serve(gen())
	}
}

func near(got, want, tol float64) bool { return got >= want-tol && got <= want+tol }
