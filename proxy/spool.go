package proxy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// A spool holds a body between a writer and a reader that go at different
// paces, so that neither waits on the other: the origin writes a response as
// fast as it sends it while the client reads at its own pace, and a client
// writes a request body at its pace while the origin gets it once it is
// whole (as nginx's proxy_buffering and proxy_request_buffering do).
//
// The first bytes are held in memory, a ring of at most spoolMemBytes taken
// from a memory budget. What does not fit goes to a temporary file, taken
// from the disk budget write by write. The file is removed from its
// directory as soon as it is created, so no temporary file is ever left
// behind, even by a crash; its space goes back to the budget when the reader
// catches up with the writer, and when the spool is freed. A write that
// neither budget can take fails with errSpoolFull: the writer never waits.
//
// A spool is freed when the writer has finished (finish) and the reader has
// closed (Close), whichever comes last.
type spool struct {
	b *spoolBudgets

	mu      sync.Mutex
	cond    sync.Cond // signalled on every write and on finish and Close
	ring    []byte    // memory; its length is the ring's capacity
	pooled  bool      // ring came from ringPool
	memHeld int64     // bytes of mem reserved for ring
	head, n int       // ring: first unread byte, unread bytes

	f        *os.File
	fr, fw   int64 // file read and write offsets: fw-fr bytes unread
	diskHeld int64 // bytes of disk reserved for the file
	spilled  bool  // writes go to the file until the reader catches up

	size   int64 // bytes written in all
	done   bool  // the writer has finished
	werr   error // why the writer stopped early; nil at the end of the body
	closed bool  // the reader has closed
	freed  bool
}

// spoolBudgets are what spools draw from: a memory budget (one for request
// bodies, one for responses) and the disk budget the two share.
type spoolBudgets struct {
	dir  string  // where temporary files are made
	mem  *budget // memory of rings
	disk *budget // bytes in temporary files; nil means none are made
}

// spoolMemBytes is the largest ring of one spool.
const spoolMemBytes = 64 << 10

var ringPool = sync.Pool{New: func() any { b := make([]byte, spoolMemBytes); return &b }}

var (
	// errSpoolFull: neither the memory nor the disk budget can take more.
	errSpoolFull = errors.New("body buffers full")
	// errReaderGone: the reader closed before the body ended.
	errReaderGone = errors.New("body reader closed")
)

// newSpool makes a spool whose ring holds want bytes (at most
// spoolMemBytes; a negative want, a body of unknown length, gets the most).
// It waits at most wait for the ring's memory. Without it, it makes a spool
// that goes straight to disk when spill is true, and returns nil otherwise.
func (b *spoolBudgets) newSpool(want int64, wait time.Duration, spill bool) *spool {
	if want < 0 || want > spoolMemBytes {
		want = spoolMemBytes
	}
	want = min(want, b.mem.size) // a budget smaller than one ring still takes bodies
	s := &spool{b: b}
	s.cond.L = &s.mu
	if want > 0 && b.mem.reserve(want, wait) {
		s.memHeld = want
		if want == spoolMemBytes {
			s.ring, s.pooled = *ringPool.Get().(*[]byte), true
		} else {
			s.ring = make([]byte, want)
		}
	} else if want > 0 && !spill {
		return nil
	}
	return s
}

// Write adds p to the body. It never waits for the reader: what the ring
// cannot hold goes to the file, and when the disk budget cannot take it
// either, Write fails with errSpoolFull. After the reader has closed it
// fails with errReaderGone.
func (s *spool) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	written := 0
	defer func() {
		if written > 0 {
			s.size += int64(written)
			s.cond.Broadcast()
		}
	}()
	for len(p) > 0 {
		if s.closed {
			return written, errReaderGone
		}
		if s.spilled && s.n == 0 && s.fr == s.fw {
			s.unspillLocked()
		}
		if !s.spilled {
			if free := len(s.ring) - s.n; free > 0 {
				m := min(free, len(p))
				at := (s.head + s.n) % len(s.ring)
				c := copy(s.ring[at:], p[:m])
				copy(s.ring, p[c:m]) // the part that wraps around
				s.n += m
				written += m
				p = p[m:]
				continue
			}
			s.spilled = true
		}
		n, err := s.writeFileLocked(p)
		written += n
		p = p[n:]
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// writeFileLocked appends p to the file, taking its bytes from the disk budget.
func (s *spool) writeFileLocked(p []byte) (int, error) {
	if s.b.disk == nil || !s.b.disk.tryReserve(int64(len(p))) {
		return 0, errSpoolFull
	}
	s.diskHeld += int64(len(p))
	if s.f == nil {
		f, err := createUnlinked(s.b.dir)
		if err != nil {
			return 0, err
		}
		s.f = f
	}
	n, err := s.f.WriteAt(p, s.fw)
	s.fw += int64(n)
	if err != nil {
		return n, fmt.Errorf("write body buffer file: %w", err)
	}
	return n, nil
}

// unspillLocked empties the file once the reader has read all of it, giving
// its space back, so a long body read by a fast enough client never holds
// more than a little disk.
func (s *spool) unspillLocked() {
	if s.f != nil {
		if err := s.f.Truncate(0); err != nil {
			// Keep appending to the file: its space is still held and
			// still counted, so the budget stays true.
			return
		}
	}
	s.fr, s.fw = 0, 0
	if s.b.disk != nil {
		s.b.disk.release(s.diskHeld)
	}
	s.diskHeld = 0
	s.spilled = false
}

// createUnlinked makes a temporary file in dir and removes its name at once:
// the file lives as long as it is open and is never left behind.
func createUnlinked(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "edgevitals-body-*")
	if err != nil {
		return nil, fmt.Errorf("create body buffer file: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		// Close errors add nothing to the removal's: report that one.
		_ = f.Close()
		return nil, fmt.Errorf("unlink body buffer file: %w", err)
	}
	return f, nil
}

// finish ends the body: err is nil at its end, else why the writer stopped
// (the reader gets it once it has read what was written).
func (s *spool) finish(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done, s.werr = true, err
	s.cond.Broadcast()
	if s.closed {
		s.freeLocked()
	}
}

// Read reads the body in order, waiting for the writer when it has read all
// that was written. After the end it returns io.EOF, or the writer's error.
func (s *spool) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		switch {
		case s.freed:
			return 0, errReaderGone
		case s.n > 0:
			m := min(s.n, len(p), len(s.ring)-s.head)
			copy(p, s.ring[s.head:s.head+m])
			s.head = (s.head + m) % len(s.ring)
			s.n -= m
			if s.n == 0 {
				s.head = 0
			}
			return m, nil
		case s.fw > s.fr:
			m := int(min(int64(len(p)), s.fw-s.fr))
			n, err := s.f.ReadAt(p[:m], s.fr)
			s.fr += int64(n)
			if n > 0 {
				return n, nil
			}
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("read body buffer file: %w", err)
		case s.done:
			if s.werr != nil {
				return 0, s.werr
			}
			return 0, io.EOF
		}
		s.cond.Wait()
	}
}

// Close is the reader's: the spool is freed once the writer has finished
// too, and the writer's next Write fails with errReaderGone. It may be
// called more than once.
func (s *spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.cond.Broadcast()
	if s.done {
		s.freeLocked()
	}
	return nil
}

// Len is the number of bytes written so far.
func (s *spool) Len() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

func (s *spool) freeLocked() {
	if s.freed {
		return
	}
	s.freed = true
	if s.pooled {
		b := s.ring
		ringPool.Put(&b)
	}
	s.ring, s.n = nil, 0
	s.b.mem.release(s.memHeld)
	s.memHeld = 0
	if s.f != nil {
		// The file has no name: closing it frees its space, and an error
		// closing it cannot lose data anyone still needs.
		_ = s.f.Close()
		s.f = nil
	}
	if s.b.disk != nil {
		s.b.disk.release(s.diskHeld)
	}
	s.diskHeld = 0
}
