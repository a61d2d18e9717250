package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"runtime/debug"

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
	damaged := func(format string, args ...any) error { return damagedf(path, format, args...) }
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

	return checkPages(f, path, size, pageSize, m)
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

// damagedf is the DamagedError of the file at path.
func damagedf(path, format string, args ...any) error {
	return &DamagedError{Path: path, Problem: fmt.Sprintf(format, args...)}
}

// checkPages checks the pages the chosen meta page m names: every page it
// counts is in the file, and the root tree and the freelist are sound.
func checkPages(f *os.File, path string, size, pageSize int64, m boltMeta) error {
	damaged := func(format string, args ...any) error { return damagedf(path, format, args...) }
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
