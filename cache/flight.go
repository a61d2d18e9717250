package cache

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Errors a waiter of Flight.Do gets instead of an entry.
var (
	ErrBusy        = errors.New("cache: too many requests waiting for the same origin fetch")
	ErrWaitTimeout = errors.New("cache: timed out waiting for another request's origin fetch")
	// ErrFetchPanicked is what waiters get when the leader's fetch panicked; the leader's
	// goroutine panics on.
	ErrFetchPanicked = errors.New("cache: the origin fetch that requests were waiting for panicked")
)

// FlightOptions configure a Flight.
type FlightOptions struct {
	MaxWaiters  int              // waiters per key beyond which Do answers ErrBusy at once; 0 = unlimited
	WaitTimeout time.Duration    // how long a waiter waits for the leader; 0 = as long as the fetch takes
	HitForMiss  time.Duration    // how long Pass marks a key uncacheable
	Clock       func() time.Time // for hit-for-miss; nil = time.Now
}

// Flight coalesces concurrent misses for one key (a singleflight with bounds), so that the
// origin sees one request per key however many clients ask at once, and remembers keys that
// turned out uncacheable (Varnish's hit-for-miss) so that their requests skip the queue.
type Flight struct {
	o         FlightOptions
	mu        sync.Mutex
	calls     map[string]*call
	coalesced atomic.Uint64

	passMu    sync.RWMutex
	pass      map[string]time.Time // key → passing until
	nextSweep int
}

type call struct {
	done    chan struct{} // closed when fetch returns
	e       *Entry
	err     error
	waiters int
}

// NewFlight returns a Flight.
func NewFlight(o FlightOptions) *Flight {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return &Flight{o: o, calls: make(map[string]*call), pass: make(map[string]time.Time), nextSweep: passSweepAt}
}

// Do calls fetch once for concurrent callers of one key. The caller that runs fetch is the
// leader: leader is true and e and err are fetch's. Waiters are woken the moment fetch returns
// and get the same *Entry (shared, read-only). When fetch returned a nil entry without error
// (the response was not shareable), waiters get (nil, false, nil) and must go to the origin on
// their own; when it failed, waiters get its error too, so that a failing origin is not asked
// again by every waiter. A waiter gives up after WaitTimeout (ErrWaitTimeout), and one past
// MaxWaiters gets ErrBusy at once. key is copied; fetch runs on the caller's goroutine.
// A background refresh may call Do as well, so stale-while-revalidate makes one refresh.
func (f *Flight) Do(key []byte, fetch func() (*Entry, error)) (e *Entry, leader bool, err error) {
	f.mu.Lock()
	if c := f.calls[string(key)]; c != nil {
		if f.o.MaxWaiters > 0 && c.waiters >= f.o.MaxWaiters {
			f.mu.Unlock()
			return nil, false, ErrBusy
		}
		c.waiters++
		f.mu.Unlock()
		return f.wait(c)
	}
	c := &call{done: make(chan struct{})}
	k := string(key)
	f.calls[k] = c
	f.mu.Unlock()

	defer func() {
		if !leader {
			c.err = ErrFetchPanicked // fetch did not return
		}
		f.mu.Lock()
		delete(f.calls, k)
		f.mu.Unlock()
		close(c.done)
	}()
	c.e, c.err = fetch()
	leader = true
	return c.e, true, c.err
}

func (f *Flight) wait(c *call) (*Entry, bool, error) {
	if f.o.WaitTimeout > 0 {
		t := time.NewTimer(f.o.WaitTimeout)
		defer t.Stop()
		select {
		case <-c.done:
		case <-t.C:
			return nil, false, ErrWaitTimeout
		}
	} else {
		<-c.done
	}
	if c.err != nil {
		return nil, false, c.err
	}
	if c.e != nil {
		f.coalesced.Add(1)
	}
	return c.e, false, nil
}

// Waiting is how many requests wait for fetches now in flight.
func (f *Flight) Waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c.waiters
	}
	return n
}

// Inflight reports whether key has a fetch running, so that a stale-while-revalidate refresh
// can be skipped. It does not allocate.
func (f *Flight) Inflight(key []byte) bool {
	f.mu.Lock()
	_, ok := f.calls[string(key)]
	f.mu.Unlock()
	return ok
}

// Coalesced is the number of waiters served by another caller's fetch, for the metric.
func (f *Flight) Coalesced() uint64 { return f.coalesced.Load() }

// passSweepAt is the number of hit-for-miss marks above which Pass drops expired ones.
const passSweepAt = 1024

// Pass marks key as uncacheable until now+HitForMiss: its requests go straight to the origin
// instead of queueing behind a fetch whose response nobody else may use. key is copied.
func (f *Flight) Pass(key []byte) {
	if f.o.HitForMiss <= 0 {
		return
	}
	now := f.o.Clock()
	f.passMu.Lock()
	defer f.passMu.Unlock()
	f.pass[string(key)] = now.Add(f.o.HitForMiss)
	if len(f.pass) >= f.nextSweep {
		for k, until := range f.pass {
			if !now.Before(until) {
				delete(f.pass, k)
			}
		}
		f.nextSweep = max(passSweepAt, 2*len(f.pass))
	}
}

// Passing reports whether key is marked uncacheable (see Pass). It does not allocate.
func (f *Flight) Passing(key []byte) bool {
	f.passMu.RLock()
	until, ok := f.pass[string(key)]
	f.passMu.RUnlock()
	return ok && f.o.Clock().Before(until)
}
