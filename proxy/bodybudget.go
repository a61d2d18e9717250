package proxy

import (
	"container/list"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// budget is a count of bytes that requests share: the memory request bodies
// may hold, the memory of relayed responses, the disk of temporary files.
// reserve takes bytes, waiting at most a given time for them; release gives
// them back. Waiters are served in order, so a large reservation is not
// starved by small ones. A reservation never exceeds the budget's size (it is
// refused at once), and every reservation is released by the one that took
// it, so a waiter is always served or times out: nothing waits forever.
type budget struct {
	mu      sync.Mutex
	size    int64
	used    int64
	waiters list.List // of *budgetWaiter, oldest first
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed once the bytes are the waiter's
}

func newBudget(size int64) *budget { return &budget{size: size} }

// tryReserve takes n bytes if they are free now and nobody waits before it.
func (b *budget) tryReserve(n int64) bool {
	return b.reserve(n, 0)
}

// reserve takes n bytes, waiting at most wait for them. It reports whether
// it got them; on false nothing is held.
func (b *budget) reserve(n int64, wait time.Duration) bool {
	if n <= 0 {
		return true
	}
	b.mu.Lock()
	if n > b.size {
		b.mu.Unlock()
		return false
	}
	if b.waiters.Len() == 0 && b.used+n <= b.size {
		b.used += n
		b.mu.Unlock()
		return true
	}
	if wait <= 0 {
		b.mu.Unlock()
		return false
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	el := b.waiters.PushBack(w)
	b.mu.Unlock()

	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.ready:
		return true
	case <-t.C:
	}
	b.mu.Lock()
	select {
	case <-w.ready:
		// Served while the timer fired: the bytes are ours after all.
		b.mu.Unlock()
		return true
	default:
	}
	b.waiters.Remove(el)
	b.grantLocked() // the head may have been this waiter, blocking smaller ones
	b.mu.Unlock()
	return false
}

// release gives back n bytes taken by reserve or tryReserve.
func (b *budget) release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used = max(0, b.used-n) // more than was reserved would be a bug; never go negative
	b.grantLocked()
	b.mu.Unlock()
}

// grantLocked serves waiters in order while their bytes are free.
func (b *budget) grantLocked() {
	for el := b.waiters.Front(); el != nil; el = b.waiters.Front() {
		w := el.Value.(*budgetWaiter)
		if b.used+w.n > b.size {
			return
		}
		b.used += w.n
		b.waiters.Remove(el)
		close(w.ready)
	}
}

// inUse is the number of bytes reserved now.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// bufferMetrics count what the body buffers could not take.
type bufferMetrics struct {
	requestsBusy  *metrics.Counter // request bodies answered 503: no room
	responsesFull *metrics.Counter // responses cut, or streamed at the client's pace, for want of room
}

// registerBufferMetrics puts the buffers' gauges and counters on set.
func (s *Server) registerBufferMetrics(set *metrics.Set) {
	bodies, responses := s.bodies, s.responses
	set.NewGauge(`edgevitals_body_buffer_bytes{kind="request"}`, func() float64 { return float64(bodies.mem.inUse()) })
	set.NewGauge(`edgevitals_body_buffer_bytes{kind="response"}`, func() float64 { return float64(responses.mem.inUse()) })
	set.NewGauge(`edgevitals_body_buffer_bytes{kind="file"}`, func() float64 {
		if bodies.disk == nil {
			return 0
		}
		return float64(bodies.disk.inUse())
	})
	s.buffers = bufferMetrics{
		requestsBusy:  set.NewCounter(`edgevitals_body_buffer_full_total{kind="request"}`),
		responsesFull: set.NewCounter(`edgevitals_body_buffer_full_total{kind="response"}`),
	}
}
