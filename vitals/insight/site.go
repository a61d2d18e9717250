package insight

import (
	"hash/maphash"
	"sync"
)

// Counters of each table, per bucket.
const (
	// site totals
	totRequests  = iota // every observation
	totNonHit           // not served from the cache (miss, pass, bypass)
	totCacheable        // not bypassed
	totCacheableNonHit
	numTot
)

const (
	cntReq    = 0 // param, vary, group: requests carrying it; cookie: requests it bypassed
	cntNonHit = 1 // param, vary, group; cookie: requests carrying it
	cntSame   = 2 // param, cookie: comparisons that found the same page
	cntDiffer = 3 // param, cookie: comparisons that found another page
	cntSeen   = 1 // cookie: requests carrying it

	maxReasons    = 4 // uncacheable reasons told apart per URL group; more share the last
	cntReason     = 2 // group: first reason counter
	groupCounters = cntReason + maxReasons

	sketchValues   = 0 // param, vary: distinct values
	sketchVariants = 1 // vary: distinct (URL, value)
	sketchURLs     = 2 // vary: distinct URLs
)

type site struct {
	mu   sync.Mutex
	name string
	opt  *Options
	seed maphash.Seed

	started     bool
	first, head int64 // absolute buckets: the first observed, the newest

	tot                            []uint32 // [bucket][numTot]
	params, cookies, varys, groups *table
	reasons                        [][maxReasons - 1]string // per group entry
	varyGroup                      [][4]tally               // per vary entry: where it is seen

	evidence []evidenceSlot
	base     []baseSlot
	scratch  [MaxTemplateLen]byte
	hashes   [MaxFields]struct {
		idx               int
		name, value, pair uint64
	}
}

// tally is a tiny decaying Space-Saving slot: a URL group key and its weight.
type tally struct {
	key uint64
	n   uint32
}

// evidenceSlot remembers, for one parameter in one context (path and every other key part),
// the last value seen and the fingerprint of its page.
type evidenceSlot struct{ key, value, fp uint64 }

// baseSlot remembers the fingerprint of the cacheable page of one URL and variant.
type baseSlot struct{ key, fp uint64 }

func newSite(name string, o *Options, seed maphash.Seed) *site {
	nb := o.Buckets
	return &site{
		name: name, opt: o, seed: seed,
		tot:       make([]uint32, nb*numTot),
		params:    newTable(o.Params, nb, 4, 1),
		cookies:   newTable(o.Cookies, nb, 4, 0),
		varys:     newTable(o.Varys, nb, 2, 3),
		groups:    newTable(o.Groups, nb, groupCounters, 0),
		reasons:   make([][maxReasons - 1]string, o.Groups),
		varyGroup: make([][4]tally, o.Varys),
		evidence:  make([]evidenceSlot, evidenceSlots),
		base:      make([]baseSlot, baseSlots),
	}
}

// advance makes abs countable, expiring buckets that fall out of the history, and returns
// its slot; ok is false when abs is older than the history.
func (s *site) advance(abs int64) (slot int, ok bool) {
	nb := int64(s.opt.Buckets)
	switch {
	case !s.started:
		s.started, s.first, s.head = true, abs, abs
	case abs > s.head:
		from := max(s.head+1, abs-nb+1)
		for b := from; b <= abs; b++ {
			s.expire(int(b%nb), b)
		}
		s.head = abs
	case abs <= s.head-nb:
		return 0, false
	}
	if abs < s.first {
		s.first = abs
	}
	return int(((abs % nb) + nb) % nb), true
}

func (s *site) expire(slot int, abs int64) {
	clear(s.tot[slot*numTot:][:numTot])
	s.params.expire(slot, abs)
	s.cookies.expire(slot, abs)
	s.varys.expire(slot, abs)
	s.groups.expire(slot, abs)
	for i := range s.varyGroup {
		for j := range s.varyGroup[i] {
			s.varyGroup[i][j].n -= s.varyGroup[i][j].n / uint32(s.opt.Buckets)
		}
	}
}

func (s *site) hash(b []byte) uint64 { return maphash.Bytes(s.seed, b) }

func (s *site) observe(o *Observation, slot int, abs int64) {
	nonHit := o.Outcome >= Miss
	bypass := o.Outcome == Bypass
	tot := s.tot[slot*numTot:][:numTot]
	tot[totRequests]++
	if nonHit {
		tot[totNonHit]++
	}
	if !bypass {
		tot[totCacheable]++
		if nonHit {
			tot[totCacheableNonHit]++
		}
	}
	tpl := Template(s.scratch[:0], o.Path)
	groupKey := s.hash(tpl)
	g, fresh := s.groups.acquire(groupKey, tpl, false, abs)
	if fresh {
		s.reasons[g] = [maxReasons - 1]string{}
	}
	s.groups.add(g, slot, cntReq, 1)
	if nonHit {
		s.groups.add(g, slot, cntNonHit, 1)
	}
	if o.Outcome == Pass && o.Reason != "" {
		s.groups.add(g, slot, cntReason+s.reasonIndex(g, o.Reason), 1)
	}

	pathHash := s.hash(o.Path)
	n, sum := s.hashParams(o.Params)
	var varySum uint64
	vary := o.Vary[:min(len(o.Vary), MaxFields)]
	for _, f := range vary {
		varySum += mix(s.hash(f.Name), s.hash(f.Value))
	}
	url := mix(pathHash, sum)
	page := mix(url, varySum)
	s.observeCookies(o, slot, abs, page)
	if bypass {
		return
	}
	for i := range n {
		h := &s.hashes[i]
		e, _ := s.params.acquire(h.name, o.Params[h.idx].Name, false, abs)
		s.params.add(e, slot, cntReq, 1)
		if nonHit {
			s.params.add(e, slot, cntNonHit, 1)
		}
		hllAdd(s.params.sketch(e, slot, sketchValues), h.value)
		if o.Fingerprint != 0 {
			ctx := mix(h.name, mix(pathHash, sum-h.pair+varySum))
			s.compareValue(e, slot, ctx, h.value, o.Fingerprint)
		}
	}
	for _, f := range vary {
		s.observeVary(f, slot, abs, url, groupKey, nonHit)
	}
	if o.Fingerprint != 0 {
		s.base[page%baseSlots] = baseSlot{key: page, fp: o.Fingerprint}
	}
}

// hashParams hashes the parameters in the key (at most MaxFields) into s.hashes and returns
// how many, with the sum of their (name, value) hashes, which does not depend on their order.
func (s *site) hashParams(all []Param) (n int, sum uint64) {
	for i := range all {
		if all[i].Stripped || len(all[i].Name) == 0 {
			continue
		}
		if n == MaxFields {
			break
		}
		h := &s.hashes[n]
		h.idx = i
		h.name, h.value = s.hash(all[i].Name), s.hash(all[i].Value)
		h.pair = mix(h.name, h.value)
		sum += h.pair
		n++
	}
	return n, sum
}

// compareValue compares the page of a parameter's value with the page last seen for another
// value in the same context: the same fingerprint counts for ignoring the parameter.
func (s *site) compareValue(e, slot int, ctx, value, fp uint64) {
	ev := &s.evidence[ctx%evidenceSlots]
	if ev.key == ctx && ev.value != value {
		if ev.fp == fp {
			s.params.add(e, slot, cntSame, 1)
		} else {
			s.params.add(e, slot, cntDiffer, 1)
		}
	}
	*ev = evidenceSlot{key: ctx, value: value, fp: fp}
}

func (s *site) observeCookies(o *Observation, slot int, abs int64, page uint64) {
	if len(o.BypassCookie) > 0 && o.Outcome == Bypass {
		stem, star := cookieStem(o.BypassCookie)
		c, _ := s.cookies.acquire(s.cookieKey(stem, star), stem, star, abs)
		s.cookies.add(c, slot, cntReq, 1)
		if o.Fingerprint != 0 {
			if b := s.base[page%baseSlots]; b.key == page {
				if b.fp == o.Fingerprint {
					s.cookies.add(c, slot, cntSame, 1)
				} else {
					s.cookies.add(c, slot, cntDiffer, 1)
				}
			}
		}
	}
	for _, name := range o.Cookies[:min(len(o.Cookies), MaxFields)] {
		if c, ok := s.cookies.find(s.cookieKey(cookieStem(name))); ok {
			s.cookies.add(c, slot, cntSeen, 1)
		}
	}
}

func (s *site) cookieKey(stem []byte, star bool) uint64 {
	h := s.hash(stem)
	if star {
		h = mix(h, '*')
	}
	return h
}

func (s *site) observeVary(f Field, slot int, abs int64, url, group uint64, nonHit bool) {
	v, fresh := s.varys.acquire(s.hash(f.Name), f.Name, false, abs)
	if fresh {
		s.varyGroup[v] = [4]tally{}
	}
	s.varys.add(v, slot, cntReq, 1)
	if nonHit {
		s.varys.add(v, slot, cntNonHit, 1)
	}
	value := s.hash(f.Value)
	hllAdd(s.varys.sketch(v, slot, sketchValues), value)
	hllAdd(s.varys.sketch(v, slot, sketchVariants), mix(url, value))
	hllAdd(s.varys.sketch(v, slot, sketchURLs), url)
	countTally(&s.varyGroup[v], group)
}

// countTally counts key in a 4-slot Space-Saving table.
func countTally(t *[4]tally, key uint64) {
	least := 0
	for i := range t {
		if t[i].key == key && t[i].n > 0 {
			t[i].n++
			return
		}
		if t[i].n < t[least].n {
			least = i
		}
	}
	t[least] = tally{key: key, n: t[least].n + 1}
}

// reasonIndex returns the counter of reason in group g, naming a free one when new; the last
// counter takes the reasons that find none.
func (s *site) reasonIndex(g int, reason string) int {
	r := &s.reasons[g]
	for i := range r {
		switch r[i] {
		case reason:
			return i
		case "":
			r[i] = reason
			return i
		}
	}
	return maxReasons - 1
}
