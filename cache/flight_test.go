package cache

import (
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// waitFor yields until key has n waiters: the test needs them queued before the leader ends.
func waitFor(t *testing.T, f *Flight, key string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		c := f.calls[key]
		got := 0
		if c != nil {
			got = c.waiters
		}
		f.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters on %q, want %d", got, key, n)
		}
		runtime.Gosched()
	}
}

type result struct {
	e      *Entry
	leader bool
	err    error
}

// startLeader runs Do for key in a goroutine with a fetch that blocks until release is closed
// and then returns (e, err); it returns once the fetch is running.
func startLeader(t *testing.T, f *Flight, key string, e *Entry, err error) (release chan struct{}, done chan result) {
	t.Helper()
	release, done = make(chan struct{}), make(chan result, 1)
	running := make(chan struct{})
	go func() {
		var r result
		r.e, r.leader, r.err = f.Do([]byte(key), func() (*Entry, error) {
			close(running)
			<-release
			return e, err
		})
		done <- r
	}()
	<-running
	return release, done
}

func TestFlightCoalesces(t *testing.T) {
	f := NewFlight(FlightOptions{WaitTimeout: time.Minute})
	want := entry("blog", "http://a/", "page")
	release, leaderDone := startLeader(t, f, "http://a/", want, nil)
	if !f.Inflight([]byte("http://a/")) || f.Inflight([]byte("http://b/")) {
		t.Errorf("Inflight wrong while fetching")
	}
	const n = 199
	results := make(chan result, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			var r result
			r.e, r.leader, r.err = f.Do([]byte("http://a/"), func() (*Entry, error) {
				t.Error("a second fetch ran")
				return nil, nil
			})
			results <- r
		})
	}
	waitFor(t, f, "http://a/", n)
	close(release)
	wg.Wait()
	close(results)
	for r := range results {
		if r.e != want || r.leader || r.err != nil {
			t.Errorf("waiter got (%v, %v, %v), want the leader's entry", r.e, r.leader, r.err)
		}
	}
	if r := <-leaderDone; r.e != want || !r.leader || r.err != nil {
		t.Errorf("leader got (%v, %v, %v), want its entry as leader", r.e, r.leader, r.err)
	}
	if f.Coalesced() != n {
		t.Errorf("Coalesced() = %d, want %d", f.Coalesced(), n)
	}
	if f.Inflight([]byte("http://a/")) {
		t.Errorf("Inflight after the fetch ended")
	}
}

func TestFlightOutcomes(t *testing.T) {
	errOrigin := errors.New("origin refused")
	tests := []struct {
		name    string
		e       *Entry
		err     error
		wantErr error
	}{
		{"not shareable releases waiters at once", nil, nil, nil},
		{"origin error reaches waiters", nil, errOrigin, errOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A wait timeout far beyond the test's run proves the waiters are woken, not timed out.
			f := NewFlight(FlightOptions{WaitTimeout: time.Hour})
			release, leaderDone := startLeader(t, f, "k", tt.e, tt.err)
			waiter := make(chan result, 1)
			go func() {
				var r result
				r.e, r.leader, r.err = f.Do([]byte("k"), func() (*Entry, error) { return nil, nil })
				waiter <- r
			}()
			waitFor(t, f, "k", 1)
			close(release)
			if r := <-waiter; r.e != nil || r.leader || !errors.Is(r.err, tt.wantErr) {
				t.Errorf("waiter got (%v, %v, %v), want (nil, false, %v)", r.e, r.leader, r.err, tt.wantErr)
			}
			if r := <-leaderDone; !r.leader || r.err != tt.err {
				t.Errorf("leader got (%v, %v, %v)", r.e, r.leader, r.err)
			}
			if f.Coalesced() != 0 {
				t.Errorf("Coalesced() = %d, want 0 when nothing was shared", f.Coalesced())
			}
		})
	}
}

func TestFlightTimeout(t *testing.T) {
	f := NewFlight(FlightOptions{WaitTimeout: 5 * time.Millisecond})
	release, leaderDone := startLeader(t, f, "k", nil, nil)
	defer func() { close(release); <-leaderDone }()
	if _, leader, err := f.Do([]byte("k"), nil); !errors.Is(err, ErrWaitTimeout) || leader {
		t.Errorf("Do while the leader hangs = %v, %v; want ErrWaitTimeout", leader, err)
	}
}

func TestFlightBusy(t *testing.T) {
	f := NewFlight(FlightOptions{MaxWaiters: 2})
	release, leaderDone := startLeader(t, f, "k", entry("blog", "k", "x"), nil)
	waiters := make(chan result, 2)
	for range 2 {
		go func() {
			var r result
			r.e, r.leader, r.err = f.Do([]byte("k"), nil)
			waiters <- r
		}()
	}
	waitFor(t, f, "k", 2)
	if _, _, err := f.Do([]byte("k"), nil); !errors.Is(err, ErrBusy) {
		t.Errorf("third waiter got %v, want ErrBusy", err)
	}
	// Another key is not affected.
	if _, leader, err := f.Do([]byte("other"), func() (*Entry, error) { return nil, nil }); !leader || err != nil {
		t.Errorf("Do(other) = %v, %v; want leader", leader, err)
	}
	close(release)
	for range 2 {
		if r := <-waiters; r.e == nil || r.err != nil {
			t.Errorf("queued waiter got (%v, %v)", r.e, r.err)
		}
	}
	<-leaderDone
}

func TestFlightPanic(t *testing.T) {
	f := NewFlight(FlightOptions{})
	release := make(chan struct{})
	running := make(chan struct{})
	recovered := make(chan any, 1)
	go func() {
		defer func() { recovered <- recover() }()
		f.Do([]byte("k"), func() (*Entry, error) {
			close(running)
			<-release
			panic("boom")
		})
	}()
	<-running
	waiter := make(chan error, 1)
	go func() {
		_, _, err := f.Do([]byte("k"), nil)
		waiter <- err
	}()
	waitFor(t, f, "k", 1)
	close(release)
	if err := <-waiter; !errors.Is(err, ErrFetchPanicked) {
		t.Errorf("waiter of a panicking fetch got %v, want ErrFetchPanicked", err)
	}
	if r := <-recovered; r != "boom" {
		t.Errorf("leader recovered %v, want the panic to go on", r)
	}
	if f.Inflight([]byte("k")) {
		t.Errorf("a panicked fetch is still in flight")
	}
}

func TestFlightHitForMiss(t *testing.T) {
	c := newClock()
	f := NewFlight(FlightOptions{HitForMiss: time.Minute, Clock: c.Now})
	key := []byte("http://a/cart")
	if f.Passing(key) {
		t.Fatalf("Passing before Pass")
	}
	f.Pass(key)
	steps := []struct {
		advance time.Duration
		want    bool
	}{{0, true}, {59 * time.Second, true}, {time.Second, false}}
	for _, s := range steps {
		c.Advance(s.advance)
		if got := f.Passing(key); got != s.want {
			t.Errorf("Passing at +%v = %v, want %v", c.Now().Sub(t0), got, s.want)
		}
	}
	off := NewFlight(FlightOptions{})
	off.Pass(key)
	if off.Passing(key) {
		t.Errorf("Passing with HitForMiss 0, want hit-for-miss off")
	}
}

func TestFlightPassSweeps(t *testing.T) {
	c := newClock()
	f := NewFlight(FlightOptions{HitForMiss: time.Second, Clock: c.Now})
	for i := range passSweepAt - 1 {
		f.Pass([]byte{byte(i), byte(i >> 8)})
	}
	c.Advance(time.Minute)
	f.Pass([]byte("fresh"))
	if len(f.pass) != 1 {
		t.Errorf("%d hit-for-miss marks after expiry, want 1", len(f.pass))
	}
}

func TestFlightAllocs(t *testing.T) {
	f := NewFlight(FlightOptions{HitForMiss: time.Minute})
	key := []byte("http://a/cart")
	f.Pass(key)
	if n := testing.AllocsPerRun(100, func() { f.Passing(key) }); n != 0 {
		t.Errorf("Passing allocs = %v, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { f.Inflight(key) }); n != 0 {
		t.Errorf("Inflight allocs = %v, want 0", n)
	}
}
