package field

import (
	_ "embed"
	"hash/maphash"
	"sync"
	"time"
)

// limiter is a token bucket per client, one refill of perMin a minute. Its
// buckets are a fixed table indexed by a keyed hash of the client, so its
// memory is bounded and it never holds an address; two clients that share
// a slot share a budget, which at 16,384 slots is rare.
type limiter struct {
	seed   maphash.Seed
	perMin float64
	mu     sync.Mutex
	slots  [1 << 14]struct {
		tokens float64
		last   int64 // unix ns; 0 = unused
	}
}

func newLimiter(perMin int) *limiter {
	return &limiter{seed: maphash.MakeSeed(), perMin: float64(perMin)}
}

func (l *limiter) slot(client string) int {
	return int(maphash.String(l.seed, client) & (uint64(len(l.slots)) - 1))
}

func (l *limiter) allow(client string, now time.Time) bool {
	i := l.slot(client)
	t := now.UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.slots[i]
	if s.last == 0 {
		s.tokens = l.perMin
	} else if d := t - s.last; d > 0 {
		s.tokens = min(l.perMin, s.tokens+float64(d)*l.perMin/float64(time.Minute))
	}
	if t > s.last {
		s.last = t
	}
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}
