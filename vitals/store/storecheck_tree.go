package store

import (
	"encoding/binary"
	"fmt"
	"os"
)

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
