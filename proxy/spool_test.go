package proxy

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	b := newBudget(100)
	f := func(what string, got, want bool) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	f("reserve 60", b.tryReserve(60), true)
	f("reserve 50 over the rest", b.tryReserve(50), false)
	f("reserve more than the size", b.reserve(101, time.Hour), false) // refused at once, never waits
	f("reserve 40", b.tryReserve(40), true)
	f("reserve 1 when full, short wait", b.reserve(1, time.Millisecond), false)
	if got := b.inUse(); got != 100 {
		t.Errorf("inUse = %d after a timed-out wait, want 100", got)
	}

	// A waiter is served, in order, when bytes come back.
	got := make(chan string, 2)
	var wg sync.WaitGroup
	for _, w := range []struct {
		name string
		n    int64
	}{{"big", 60}, {"small", 10}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b.reserve(w.n, 10*time.Second) {
				got <- w.name
				return
			}
			got <- w.name + " timed out"
		}()
		waitFor(t, w.name+" waiting", func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.waiters.Len() > 0 && b.waiters.Back().Value.(*budgetWaiter).n == w.n
		})
	}
	b.release(10) // enough for small, not for big: small must not jump the queue
	b.mu.Lock()
	used, waiting := b.used, b.waiters.Len()
	b.mu.Unlock()
	if used != 90 || waiting != 2 {
		t.Errorf("after freeing 10 bytes: used %d with %d waiting, want 90 with 2 (small waits behind big)", used, waiting)
	}
	b.release(60) // both fit now, big first
	for range 2 {
		if name := <-got; strings.HasSuffix(name, "timed out") {
			t.Errorf("%s, want served", name)
		}
	}
	wg.Wait()
	if got := b.inUse(); got != 100 {
		t.Errorf("inUse = %d, want 100", got)
	}
	b.release(100)
	if got := b.inUse(); got != 0 {
		t.Errorf("inUse = %d after releasing all, want 0", got)
	}
}

// TestSpoolKeepsOrder writes bodies through spools of every shape (ring
// only, spilled to a file, back to the ring when the reader catches up) with
// a reader at a different pace, and checks every byte comes out in order and
// every budget byte and file goes back.
func TestSpoolKeepsOrder(t *testing.T) {
	dir := t.TempDir()
	f := func(name string, size, chunk int, diskSize int64, readerPause bool) {
		t.Helper()
		b := &spoolBudgets{dir: dir, mem: newBudget(1 << 20), disk: newBudget(diskSize)}
		body := make([]byte, size)
		rng := rand.New(rand.NewPCG(uint64(size), uint64(chunk)))
		for i := range body {
			body[i] = byte(rng.IntN(256))
		}
		sp := b.newSpool(-1, 0, true)
		writeErr := make(chan error, 1)
		step := make(chan struct{})
		go func() {
			var err error
			for off := 0; off < len(body) && err == nil; off += chunk {
				_, err = sp.Write(body[off:min(off+chunk, len(body))])
				if readerPause && off == 0 {
					close(step) // the reader starts once the first chunk is in
				}
			}
			sp.finish(err)
			writeErr <- err
		}()
		if readerPause {
			<-step
		}
		got, err := io.ReadAll(io.LimitReader(sp, int64(size)+1))
		if err != nil {
			t.Fatalf("%s: read: %v", name, err)
		}
		if werr := <-writeErr; werr != nil {
			t.Fatalf("%s: write: %v", name, werr)
		}
		if !bytes.Equal(got, body) {
			t.Errorf("%s: read %d bytes, not the %d written in order", name, len(got), len(body))
		}
		if err := sp.Close(); err != nil {
			t.Errorf("%s: close: %v", name, err)
		}
		if m, d := b.mem.inUse(), b.disk.inUse(); m != 0 || d != 0 {
			t.Errorf("%s: after close memory %d and disk %d held, want 0 and 0", name, m, d)
		}
	}
	f("fits the ring", 1000, 100, 1<<20, false)
	f("wraps the ring", spoolMemBytes*5, 7777, 64<<20, false)
	f("spills to disk", 3<<20, 64<<10, 64<<20, true)
	f("odd chunks", 1<<20+3, 4093, 64<<20, false)
	if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
		t.Errorf("temporary directory holds %d entries (%v), want none", len(left), err)
	}
}

// TestSpoolFull: when the ring and the disk budget are full, a write fails
// at once with errSpoolFull instead of waiting for the reader, and the
// reader gets what was written and then that error.
func TestSpoolFull(t *testing.T) {
	f := func(name string, disk *budget, wantBuffered int) {
		t.Helper()
		b := &spoolBudgets{dir: t.TempDir(), mem: newBudget(spoolMemBytes), disk: disk}
		sp := b.newSpool(-1, 0, true)
		n, err := sp.Write(make([]byte, 4*spoolMemBytes))
		if !errors.Is(err, errSpoolFull) {
			t.Fatalf("%s: write past the buffers: %v, want errSpoolFull", name, err)
		}
		if n != wantBuffered {
			t.Errorf("%s: wrote %d, want %d", name, n, wantBuffered)
		}
		sp.finish(err)
		got, err := io.ReadAll(sp)
		if !errors.Is(err, errSpoolFull) || len(got) != wantBuffered {
			t.Errorf("%s: reader got %d bytes and %v, want %d and errSpoolFull", name, len(got), err, wantBuffered)
		}
		if err := sp.Close(); err != nil {
			t.Fatal(err)
		}
		if b.mem.inUse() != 0 || disk != nil && disk.inUse() != 0 {
			t.Errorf("%s: budgets not given back", name)
		}
	}
	f("no disk", nil, spoolMemBytes)
	f("small disk", newBudget(1000), spoolMemBytes)
}

// TestSpoolReaderGone: once the reader has closed, the writer's next write
// fails (the relay then stops reading the origin), and the spool is freed
// when the writer finishes.
func TestSpoolReaderGone(t *testing.T) {
	b := &spoolBudgets{dir: t.TempDir(), mem: newBudget(1 << 20), disk: newBudget(1 << 20)}
	sp := b.newSpool(-1, 0, true)
	if _, err := sp.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Write([]byte("def")); !errors.Is(err, errReaderGone) {
		t.Errorf("write after the reader closed: %v, want errReaderGone", err)
	}
	if b.mem.inUse() == 0 {
		t.Error("freed before the writer finished")
	}
	sp.finish(errReaderGone)
	if b.mem.inUse() != 0 {
		t.Errorf("memory held after both ends finished: %d", b.mem.inUse())
	}
}

// TestSpoolMemoryWait: without room for its ring, a spool that may not
// spill is refused after the wait (the caller answers 503); one that may
// spill goes straight to disk.
func TestSpoolMemoryWait(t *testing.T) {
	b := &spoolBudgets{dir: t.TempDir(), mem: newBudget(spoolMemBytes), disk: newBudget(1 << 20)}
	first := b.newSpool(-1, 0, false)
	if first == nil {
		t.Fatal("first spool refused with the budget free")
	}
	if sp := b.newSpool(100, time.Millisecond, false); sp != nil {
		t.Error("second spool got memory the first holds")
	}
	sp := b.newSpool(100, 0, true)
	if sp == nil || sp.memHeld != 0 {
		t.Fatal("a spool that may spill was refused or got memory")
	}
	if _, err := sp.Write([]byte("to disk")); err != nil {
		t.Fatal(err)
	}
	if b.disk.inUse() != int64(len("to disk")) {
		t.Errorf("disk in use = %d, want %d", b.disk.inUse(), len("to disk"))
	}
	sp.finish(nil)
	sp.Close()
	first.finish(nil)
	first.Close()
	if b.mem.inUse() != 0 || b.disk.inUse() != 0 {
		t.Errorf("budgets held after close: memory %d, disk %d", b.mem.inUse(), b.disk.inUse())
	}
}
