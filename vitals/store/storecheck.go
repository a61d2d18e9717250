package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DamagedError is a store file that cannot be opened safely: bbolt would
// refuse it, or, worse, map pages past the end of the file and die with
// SIGBUS. The file is left as it is; MoveAside keeps it for inspection.
type DamagedError struct {
	Path    string
	Problem string // what is wrong, one line: "truncated: ..." or "not a bbolt file: ..."
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("store file %s is damaged: %s", e.Path, e.Problem)
}

// The on-disk layout of bbolt v1.5 (go.etcd.io/bbolt/internal/common):
// every page starts with a 16-byte header {id u64, flags u16, count u16,
// overflow u32}; pages 0 and 1 are meta pages whose body, right after the
// header, is {magic u32, version u32, pageSize u32, flags u32, root
// {pgid u64, sequence u64}, freelist u64, pgid u64, txid u64, checksum u64}.
// The checksum is FNV-64a over the body up to the checksum. Integers are in
// the machine's byte order. bbolt uses the valid meta page with the higher
// txid (page 0 on a tie).
const (
	boltMagic          = 0xED0CDAED
	boltVersion        = 2
	boltPageHeader     = 16
	boltMetaSize       = 64 // body of a meta page, checksum included
	boltMetaSummed     = 56 // bytes the checksum covers
	boltFlagBranch     = 0x01
	boltFlagLeaf       = 0x02
	boltFlagFreelist   = 0x10
	boltFlagBucket     = 0x01 // a leaf element that is a bucket
	boltBucketHeader   = 16   // {root pgid u64, sequence u64} before an inline bucket's page
	boltNoFreelist     = ^uint64(0)
	boltMinPageSize    = 1024
	boltMaxPageSize    = 1024 << 14 // the largest page size bbolt probes for
	boltFreelistLength = 0xFFFF     // page count meaning "the length is the first element"
)

// boltMeta is a decoded meta page body.
type boltMeta struct {
	magic, version, pageSize uint32
	root, freelist, pgid     uint64
	txid                     uint64
	checksum, sum            uint64
}

func decodeMeta(page []byte) boltMeta {
	b := page[boltPageHeader : boltPageHeader+boltMetaSize]
	ne := binary.NativeEndian
	h := fnv.New64a()
	h.Write(b[:boltMetaSummed]) // a hash.Hash never fails to write
	return boltMeta{
		magic: ne.Uint32(b[0:]), version: ne.Uint32(b[4:]), pageSize: ne.Uint32(b[8:]),
		root: ne.Uint64(b[16:]), freelist: ne.Uint64(b[32:]), pgid: ne.Uint64(b[40:]),
		txid: ne.Uint64(b[48:]), checksum: ne.Uint64(b[56:]), sum: h.Sum64(),
	}
}

// problem says what is wrong with m, "" when it is a valid meta page.
func (m boltMeta) problem() string {
	switch {
	case m.magic != boltMagic:
		return fmt.Sprintf("magic %#x, want %#x", m.magic, boltMagic)
	case m.version != boltVersion:
		return fmt.Sprintf("format version %d, want %d", m.version, boltVersion)
	case m.checksum != m.sum:
		return fmt.Sprintf("checksum %#x, computed %#x", m.checksum, m.sum)
	case m.pageSize < boltMinPageSize || m.pageSize > boltMaxPageSize || m.pageSize&(m.pageSize-1) != 0:
		return fmt.Sprintf("page size %d", m.pageSize)
	}
	return ""
}

// readAt reads len(b) bytes at off, reporting a short file as ok false.
func readAt(f *os.File, b []byte, off int64) (bool, error) {
	n, err := f.ReadAt(b, off)
	if n == len(b) {
		return true, nil
	}
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	return false, err
}

// checkFile checks the bbolt file at path against its meta pages before
// bbolt maps it: one meta page valid, the file long enough for every page
// that meta page counts, the root and freelist pages inside it, and the
// freelist page well formed (bbolt reads it on open, unchecked). A missing
// or empty file is fine: bbolt creates it. It returns a *DamagedError, or
// another error when the file cannot be read at all.
func checkFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check store file: %w", err)
	}
	defer f.Close() // read only: nothing to flush
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("check store file: %w", err)
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	damaged := func(format string, args ...any) error {
		return &DamagedError{Path: path, Problem: fmt.Sprintf(format, args...)}
	}
	metaAt := func(off int64) (boltMeta, bool, error) {
		buf := make([]byte, boltPageHeader+boltMetaSize)
		ok, err := readAt(f, buf, off)
		if !ok || err != nil {
			return boltMeta{}, false, err
		}
		return decodeMeta(buf), true, nil
	}

	// The page size: from page 0, or, as bbolt does, from the second meta
	// page found at one of the sizes bbolt could have used.
	m0, ok, err := metaAt(0)
	if err != nil {
		return fmt.Errorf("check store file: %w", err)
	}
	if !ok {
		return damaged("truncated: %d bytes, shorter than one meta page", size)
	}
	p0 := m0.problem()
	pageSize := int64(m0.pageSize)
	if p0 != "" {
		pageSize = 0
		for ps := int64(boltMinPageSize); ps <= boltMaxPageSize && ps < size; ps *= 2 {
			m, ok, err := metaAt(ps)
			if err != nil {
				return fmt.Errorf("check store file: %w", err)
			}
			if ok && m.problem() == "" && int64(m.pageSize) == ps {
				pageSize = ps
				break
			}
		}
		if pageSize == 0 {
			if m0.magic != boltMagic {
				return damaged("not a bbolt file: meta page 0 has %s, and no valid meta page 1 was found", p0)
			}
			return damaged("both meta pages are invalid: page 0 has %s, and no valid meta page 1 was found", p0)
		}
	}
	if size < 2*pageSize {
		return damaged("truncated: %d bytes, shorter than the two meta pages of %d bytes", size, pageSize)
	}
	m1, _, err := metaAt(pageSize)
	if err != nil {
		return fmt.Errorf("check store file: %w", err)
	}
	p0, p1 := m0.problem(), m1.problem()
	if p0 == "" && int64(m0.pageSize) != pageSize {
		p0 = fmt.Sprintf("page size %d, page 1 says %d", m0.pageSize, pageSize)
	}
	if p1 == "" && int64(m1.pageSize) != pageSize {
		p1 = fmt.Sprintf("page size %d, page 0 says %d", m1.pageSize, pageSize)
	}
	var m boltMeta
	switch {
	case p0 == "" && (p1 != "" || m0.txid >= m1.txid):
		m = m0
	case p1 == "":
		m = m1
	default:
		return damaged("both meta pages are invalid: page 0 has %s, page 1 has %s", p0, p1)
	}

	// Every page the meta page counts must be in the file: bbolt maps
	// them, and touching one past the end is SIGBUS.
	if m.pgid < 4 || m.pgid > uint64(size/pageSize) {
		return damaged("truncated: %d bytes, but its meta page (txid %d) counts %d pages of %d bytes (%d bytes)",
			size, m.txid, m.pgid, pageSize, m.pgid*uint64(pageSize))
	}
	if m.root < 2 || m.root >= m.pgid {
		return damaged("meta page (txid %d) puts the root at page %d of %d", m.txid, m.root, m.pgid)
	}
	if p := checkPageKind(f, m.root, m.pgid, pageSize, boltFlagBranch, boltFlagLeaf); p != "" {
		return damaged("root page %d: %s", m.root, p)
	}
	tc := &treeCheck{f: f, pageSize: pageSize, pgid: m.pgid, used: map[uint64]bool{}}
	if p, err := tc.tree(m.root, 0); err != nil {
		return fmt.Errorf("check store file: %w", err)
	} else if p != "" {
		return damaged("%s", p)
	}
	if m.freelist == boltNoFreelist {
		return nil
	}
	if m.freelist < 2 || m.freelist >= m.pgid {
		return damaged("meta page (txid %d) puts the freelist at page %d of %d", m.txid, m.freelist, m.pgid)
	}
	if p := checkFreelist(f, m.freelist, m.pgid, pageSize, tc.used); p != "" {
		return damaged("freelist page %d: %s", m.freelist, p)
	}
	return nil
}

// treeCheck walks the B+trees of a bbolt file from the file, with bounds
// checked before every read: bbolt itself follows page ids and offsets
// unchecked, so a damaged page sends it past its mapping (a fault) or
// round a cycle of pages for ever.
type treeCheck struct {
	f        *os.File
	pageSize int64
	pgid     uint64
	used     map[uint64]bool // pages reached so far, overflow pages included
}

// maxTreeDepth bounds the nesting of pages and buckets: a B+tree of 4 KiB
// pages is a few levels deep for any store edgevitals keeps.
const maxTreeDepth = 64

// tree checks the tree rooted at page id. It returns what is wrong (""
// when nothing is), or an error when the file cannot be read.
func (c *treeCheck) tree(id uint64, depth int) (string, error) {
	if depth > maxTreeDepth {
		return fmt.Sprintf("pages nested deeper than %d at page %d", maxTreeDepth, id), nil
	}
	if id < 2 || id >= c.pgid {
		return fmt.Sprintf("a tree points at page %d, outside [2, %d)", id, c.pgid), nil
	}
	pid, _, _, overflow, err := pageHeader(c.f, id, c.pageSize)
	if err != nil {
		return "", err
	}
	switch {
	case pid != id:
		return fmt.Sprintf("page %d: its header says page %d", id, pid), nil
	case id+uint64(overflow)+1 > c.pgid:
		return fmt.Sprintf("page %d: %d overflow pages run past page %d", id, overflow, c.pgid), nil
	}
	for i := id; i <= id+uint64(overflow); i++ {
		if c.used[i] {
			return fmt.Sprintf("page %d is reached twice", i), nil
		}
		c.used[i] = true
	}
	buf := make([]byte, (int64(overflow)+1)*c.pageSize)
	if _, err := c.f.ReadAt(buf, int64(id)*c.pageSize); err != nil {
		return "", err
	}
	return c.elements(buf, fmt.Sprintf("page %d", id), depth, false)
}

// elements checks the elements of a page held in buf: a file page, or an
// inline bucket's page inside a value.
func (c *treeCheck) elements(buf []byte, where string, depth int, inline bool) (string, error) {
	if len(buf) < boltPageHeader {
		return fmt.Sprintf("%s: %d bytes, shorter than a page header", where, len(buf)), nil
	}
	ne := binary.NativeEndian
	flags, count := ne.Uint16(buf[8:]), int64(ne.Uint16(buf[10:]))
	const elem = 16 // branch and leaf elements are 16 bytes each
	if boltPageHeader+count*elem > int64(len(buf)) {
		return fmt.Sprintf("%s: %d elements do not fit in %d bytes", where, count, len(buf)), nil
	}
	switch {
	case flags == boltFlagBranch && !inline:
		if count == 0 {
			return fmt.Sprintf("%s: a branch page with no elements", where), nil
		}
		for i := range count {
			at := boltPageHeader + i*elem
			pos, ksize, child := int64(ne.Uint32(buf[at:])), int64(ne.Uint32(buf[at+4:])), ne.Uint64(buf[at+8:])
			if at+pos+ksize > int64(len(buf)) {
				return fmt.Sprintf("%s: key %d runs past the page", where, i), nil
			}
			if p, err := c.tree(child, depth+1); p != "" || err != nil {
				return p, err
			}
		}
	case flags == boltFlagLeaf:
		for i := range count {
			at := boltPageHeader + i*elem
			eflags, pos := ne.Uint32(buf[at:]), int64(ne.Uint32(buf[at+4:]))
			ksize, vsize := int64(ne.Uint32(buf[at+8:])), int64(ne.Uint32(buf[at+12:]))
			end := at + pos + ksize + vsize
			if end > int64(len(buf)) {
				return fmt.Sprintf("%s: key or value %d runs past the page", where, i), nil
			}
			if eflags&boltFlagBucket == 0 {
				continue
			}
			v := buf[at+pos+ksize : end]
			if len(v) < boltBucketHeader {
				return fmt.Sprintf("%s: bucket %d has a header of %d bytes", where, i, len(v)), nil
			}
			if depth >= maxTreeDepth {
				return fmt.Sprintf("%s: buckets nested deeper than %d", where, maxTreeDepth), nil
			}
			var p string
			var err error
			if root := ne.Uint64(v); root == 0 {
				p, err = c.elements(v[boltBucketHeader:], fmt.Sprintf("%s: inline bucket %d", where, i), depth+1, true)
			} else {
				p, err = c.tree(root, depth+1)
			}
			if p != "" || err != nil {
				return p, err
			}
		}
	default:
		return fmt.Sprintf("%s: page type %#x where a tree page belongs", where, flags), nil
	}
	return "", nil
}

// pageHeader reads the header of page id.
func pageHeader(f *os.File, id uint64, pageSize int64) (pid uint64, flags, count uint16, overflow uint32, err error) {
	var h [boltPageHeader]byte
	if _, err := f.ReadAt(h[:], int64(id)*pageSize); err != nil {
		return 0, 0, 0, 0, err
	}
	ne := binary.NativeEndian
	return ne.Uint64(h[0:]), ne.Uint16(h[8:]), ne.Uint16(h[10:]), ne.Uint32(h[12:]), nil
}

// checkPageKind says what is wrong with page id of a file of pgid pages,
// "" when its header names it, has one of the flags, and its overflow
// pages are in the file.
func checkPageKind(f *os.File, id, pgid uint64, pageSize int64, flags ...uint16) string {
	pid, fl, _, overflow, err := pageHeader(f, id, pageSize)
	switch {
	case err != nil:
		return err.Error()
	case pid != id:
		return fmt.Sprintf("its header says page %d", pid)
	case id+uint64(overflow)+1 > pgid:
		return fmt.Sprintf("%d overflow pages run past page %d", overflow, pgid)
	}
	for _, want := range flags {
		if fl == want {
			return ""
		}
	}
	return fmt.Sprintf("page type %#x", fl)
}

// checkFreelist says what is wrong with the freelist page id, "" when it
// is well formed: its ids fit in the page and its overflow, and each is a
// page of the file that no tree uses.
func checkFreelist(f *os.File, id, pgid uint64, pageSize int64, used map[uint64]bool) string {
	if p := checkPageKind(f, id, pgid, pageSize, boltFlagFreelist); p != "" {
		return p
	}
	_, _, count, overflow, err := pageHeader(f, id, pageSize)
	if err != nil {
		return err.Error()
	}
	room := ((int64(overflow)+1)*pageSize - boltPageHeader) / 8 // page ids the page holds
	first, n := int64(0), int64(count)
	if count == boltFreelistLength {
		var b [8]byte
		if _, err := f.ReadAt(b[:], int64(id)*pageSize+boltPageHeader); err != nil {
			return err.Error()
		}
		total := binary.NativeEndian.Uint64(b[:])
		if total >= uint64(room) {
			return fmt.Sprintf("%d free page ids do not fit in %d", total, room-1)
		}
		first, n = 1, int64(total)
	}
	if first+n > room {
		return fmt.Sprintf("%d free page ids do not fit in %d", n, room)
	}
	ids := make([]byte, n*8)
	if _, err := f.ReadAt(ids, int64(id)*pageSize+boltPageHeader+first*8); err != nil {
		return err.Error()
	}
	for i := range n {
		p := binary.NativeEndian.Uint64(ids[i*8:])
		switch {
		case p < 2 || p >= pgid:
			return fmt.Sprintf("free page id %d outside [2, %d)", p, pgid)
		case used[p]:
			return fmt.Sprintf("page %d is both free and in use", p)
		}
	}
	return ""
}

// guarded runs f with faults on memory turned into panics (bbolt reads a
// memory-mapped file), and turns a panic into a *DamagedError: bbolt
// panics on pages it cannot make sense of. It is a second line behind
// checkFile, which keeps bbolt from mapping past the end of the file.
func guarded(path string, f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &DamagedError{Path: path, Problem: fmt.Sprintf("unreadable pages: %v", r)}
		}
	}()
	return f()
}

// walk reads every key and value of every bucket once, so a damaged page
// is found at open, inside guarded, and not later by a request. It
// returns the bytes walkBucket folded, which callers may ignore.
func walk(db *bolt.DB) (byte, error) {
	var sum byte
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			s, err := walkBucket(b, 0)
			sum ^= s
			return err
		})
	})
	return sum, err
}

// walkBucket reads b's keys and values and returns their first and last
// bytes folded together: used by its caller, so the reads stay in the
// compiled code.
func walkBucket(b *bolt.Bucket, depth int) (byte, error) {
	if depth > 8 {
		return 0, errors.New("buckets nested deeper than 8")
	}
	var sum byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				s, err := walkBucket(nb, depth+1)
				if err != nil {
					return 0, err
				}
				sum ^= s
			}
			continue
		}
		// Both ends: a key or value that runs past the mapping faults here.
		if len(k) > 0 {
			sum ^= k[0] ^ k[len(k)-1]
		}
		if len(v) > 0 {
			sum ^= v[0] ^ v[len(v)-1]
		}
	}
	return sum, nil
}

// Recovery says that OpenStoreRecovering found the store file damaged and
// started a fresh store: at Path once the damaged file is moved aside, or,
// when it could not be moved, in a temporary directory (TempDir), whose
// contents a restart does not keep.
type Recovery struct {
	Path    string // the store file
	MovedTo string // where the damaged file is kept; "" when it stayed at Path
	Problem string // what was wrong with it
	// TempDir holds the fresh store when the damaged file could not be
	// moved (MoveError says why); "" otherwise.
	TempDir   string
	MoveError string
}

func (r *Recovery) String() string {
	if r.TempDir != "" {
		return fmt.Sprintf("store: damaged file %s (%s) could not be moved aside (%s); started fresh in %s, lost on restart",
			r.Path, r.Problem, r.MoveError, r.TempDir)
	}
	return fmt.Sprintf("store: damaged file moved to %s (%s); started fresh", r.MovedTo, r.Problem)
}

// OpenStoreRecovering opens the store at path like OpenStore; when the file
// is damaged, it moves the file aside (MoveAside, never deleting it) and
// starts a fresh store at path, saying so in the Recovery. When the file
// cannot be moved, or no fresh store can be made beside it, the fresh
// store goes in a new temporary directory instead, so vitals keep running
// until the operator looks. Other errors (another edgevitals holds the
// file, a newer edgevitals wrote it, no permission to read it) are
// returned as they are: moving the file would not help.
func OpenStoreRecovering(path string, now time.Time) (*Store, *Recovery, error) {
	st, err := OpenStore(path)
	var de *DamagedError
	if !errors.As(err, &de) {
		return st, nil, err
	}
	if held, herr := heldByAnother(path); herr != nil || held {
		if herr != nil {
			return nil, nil, fmt.Errorf("%w (checking whether another process holds it: %w)", err, herr)
		}
		return nil, nil, fmt.Errorf("open store %s: another edgevitals holds it", path)
	}
	rec := &Recovery{Path: path, Problem: de.Problem}
	moved, merr := MoveAside(path, now)
	if merr == nil {
		rec.MovedTo = moved
		if st, err = OpenStore(path); err == nil {
			return st, rec, nil
		}
		merr = fmt.Errorf("open a fresh store at %s: %w", path, err)
	}
	rec.MoveError = merr.Error()
	if rec.TempDir, err = os.MkdirTemp("", "edgevitals-store-"); err != nil {
		return nil, nil, fmt.Errorf("%w; %w; and no temporary store: %w", de, merr, err)
	}
	if st, err = OpenStore(filepath.Join(rec.TempDir, filepath.Base(path))); err != nil {
		return nil, nil, fmt.Errorf("%w; %w; and no temporary store: %w", de, merr, err)
	}
	return st, rec, nil
}

// MoveAside renames the file at path to path.damaged-<UTC time>, with a
// counter when that name is taken, and returns the new name. It never
// deletes or overwrites a file.
func MoveAside(path string, now time.Time) (string, error) {
	base := path + ".damaged-" + now.UTC().Format("20060102T150405Z")
	for i := range 100 {
		to := base
		if i > 0 {
			to = fmt.Sprintf("%s-%d", base, i)
		}
		if _, err := os.Lstat(to); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Rename(path, to); err != nil {
			return "", fmt.Errorf("move damaged store file aside: %w", err)
		}
		return to, nil
	}
	return "", fmt.Errorf("move damaged store file aside: %s and 99 more names are taken", base)
}
