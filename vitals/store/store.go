// Package store is edgevitals' embedded bbolt store: it opens the file
// (checking it, and moving a damaged one aside), prunes by retention, and
// owns the keys and encodings of every bucket: lab samples, releases,
// traffic minutes, field aggregates. The record types (Sample, Release,
// TrafficPoint, FieldAggregate) and their limits are defined here, so a
// stored value is checked in one place whoever writes it. It imports
// nothing of edgevitals.
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Store keeps what vitals measures in one bbolt file under data_dir, so it
// survives restarts and kill -9. Each kind of record (lab samples, releases,
// minutes of edge traffic, field aggregates) has its own bucket, and every
// value is a versioned JSON document, so a later version can read and
// migrate old files. A Store is safe for concurrent use.
type Store struct {
	db *bolt.DB
}

// storeVersion is the layout of the file; it is written once in the meta
// bucket and checked on open.
const storeVersion = 1

// recordVersion is the encoding of one value; readers reject versions they
// do not know instead of misreading them.
const recordVersion = 1

var (
	bucketMeta     = []byte("meta")
	bucketSamples  = []byte("lab_samples")
	bucketReleases = []byte("releases")
	bucketTraffic  = []byte("traffic")
	bucketField    = []byte("field_aggregates")
	// bucketPruned holds, per site, the latest release retention deleted:
	// the site's first remaining release then has a predecessor, just not
	// in the store any more.
	bucketPruned = []byte("releases_pruned")
	keyVersion   = []byte("version")
)

// ErrStoreVersion means the file was written by a newer edgevitals.
var ErrStoreVersion = errors.New("store written by a newer edgevitals")

// OpenStore opens or creates the store file at path. It fails within a
// second when another process holds the file. A damaged file (truncated,
// overwritten, pages bbolt cannot read, not an edgevitals store) is
// refused with a *DamagedError before bbolt can crash on it, and left
// untouched; OpenStoreRecovering moves it aside instead.
func OpenStore(path string) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	if err := checkFile(path); err != nil {
		return nil, err
	}
	// bbolt's own file, so that a panic inside Open can still release it
	// (and its lock); the mapping of a damaged file stays until exit.
	var file *os.File
	openFile := func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	var db *bolt.DB
	err := guarded(path, func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, OpenFile: openFile})
		return err
	})
	var de *DamagedError
	switch {
	case errors.As(err, &de):
		if file != nil {
			file.Close() // the panic's error is the one worth reporting
		}
		return nil, err
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("open store %s: another edgevitals holds it", path)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrChecksum):
		return nil, &DamagedError{Path: path, Problem: err.Error()}
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = guarded(path, func() error {
		if _, err := walk(db); err != nil {
			return &DamagedError{Path: path, Problem: err.Error()}
		}
		return db.Update(initBuckets)
	})
	if err != nil {
		db.Close() // the open error is the one worth reporting
		if errors.As(err, &de) {
			return nil, err
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// errForeign is a bbolt file that edgevitals did not write: buckets, but
// no meta bucket with a version record.
var errForeign = errors.New("not an edgevitals store")

// initBuckets checks the version record and creates the buckets a fresh
// file (or one of an older edgevitals) lacks. A bad version record or a
// file that holds other programs' buckets is a *DamagedError.
func initBuckets(tx *bolt.Tx) error {
	path := tx.DB().Path()
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		var names []string
		err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			names = append(names, fmt.Sprintf("%q", name))
			return nil
		})
		if err != nil {
			return err
		}
		if len(names) > 0 {
			return &DamagedError{Path: path, Problem: fmt.Sprintf("%v: no %q bucket, but %s", errForeign, bucketMeta, strings.Join(names, ", "))}
		}
		var err2 error
		if meta, err2 = tx.CreateBucket(bucketMeta); err2 != nil {
			return err2
		}
	}
	if v := meta.Get(keyVersion); v != nil {
		if len(v) != 8 {
			return &DamagedError{Path: path, Problem: fmt.Sprintf("bad version record of %d bytes", len(v))}
		}
		if got := binary.BigEndian.Uint64(v); got > storeVersion {
			return fmt.Errorf("%w: file version %d, this one reads up to %d", ErrStoreVersion, got, storeVersion)
		}
	} else if err := meta.Put(keyVersion, binary.BigEndian.AppendUint64(nil, storeVersion)); err != nil {
		return err
	}
	for _, name := range [][]byte{bucketSamples, bucketReleases, bucketTraffic, bucketField, bucketPruned} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the file.
func (st *Store) Close() error {
	return st.db.Close()
}

// sampleRecord is the stored value of a lab sample.
type sampleRecord struct {
	V      int    `json:"v"`
	Site   string `json:"site"`
	Page   string `json:"page"`
	Sample Sample `json:"sample"`
}

// sampleKey orders samples by site, page, profile, then time: a range of
// one page and profile is one cursor scan. The last 16 bytes are the time
// (unix ns) and a sequence, so two samples in one nanosecond both stay.
func samplePrefix(site, page, profile string) []byte {
	k := make([]byte, 0, len(site)+len(page)+len(profile)+3+16)
	k = append(k, site...)
	k = append(k, 0)
	k = append(k, page...)
	k = append(k, 0)
	k = append(k, profile...)
	return append(k, 0)
}

// sitePrefix is site NUL: every bucket keys its records by site first, so
// one site's records are one cursor scan.
func sitePrefix(site string) []byte {
	return append([]byte(site), 0)
}

func timeKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(max(t.UnixNano(), 0)))
}

func checkName(what, v string) error {
	if strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("%s %q holds a NUL byte", what, v)
	}
	return nil
}

// AddSample records a sample of page (the configured URL's path, as in the
// edgevitals_lab_* metrics) of site.
func (st *Store) AddSample(site, page string, s Sample) error {
	if err := errors.Join(checkName("site", site), checkName("page", page), checkName("profile", s.Profile)); err != nil {
		return fmt.Errorf("add sample: %w", err)
	}
	if s.At.IsZero() {
		return errors.New("add sample: no time")
	}
	v, err := json.Marshal(sampleRecord{V: recordVersion, Site: site, Page: page, Sample: s})
	if err != nil {
		return fmt.Errorf("add sample: %w", err)
	}
	err = st.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSamples)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		k := append(samplePrefix(site, page, s.Profile), timeKey(s.At)...)
		k = binary.BigEndian.AppendUint64(k, seq)
		return b.Put(k, v)
	})
	if err != nil {
		return fmt.Errorf("add sample: %w", err)
	}
	return nil
}

// Samples returns the samples of site, page and profile taken in [from, to),
// oldest first.
func (st *Store) Samples(site, page, profile string, from, to time.Time) ([]Sample, error) {
	out, err := scan(st, bucketSamples, samplePrefix(site, page, profile), timeKey(from), timeKey(to), decodeSample)
	if err != nil {
		return nil, fmt.Errorf("read samples: %w", err)
	}
	return out, nil
}

// scan decodes, in key order, the values of bucket whose keys are prefix
// followed by something in [from, to): every key in that range has the
// prefix.
func scan[T any](st *Store, bucket, prefix, from, to []byte, decode func([]byte) (T, error)) ([]T, error) {
	lo := append(bytes.Clone(prefix), from...)
	hi := append(bytes.Clone(prefix), to...)
	var out []T
	err := st.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.Seek(lo); k != nil && bytes.Compare(k, hi) < 0; k, v = c.Next() {
			x, err := decode(v)
			if err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
			out = append(out, x)
		}
		return nil
	})
	return out, err
}

func decodeSample(v []byte) (Sample, error) {
	var head struct {
		V int `json:"v"`
	}
	if err := json.Unmarshal(v, &head); err != nil {
		return Sample{}, err
	}
	if head.V != recordVersion {
		return Sample{}, fmt.Errorf("sample record version %d, want %d", head.V, recordVersion)
	}
	var r sampleRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return Sample{}, err
	}
	return r.Sample, nil
}

// Prune deletes what is older than before (the retention bound): lab
// samples taken and traffic minutes ended before it, field aggregates of
// hours that ended by it, and releases whose window ended before it (a
// window ends when the site's next release starts, so each site's latest
// release is kept whatever its age). It returns how many records went.
func (st *Store) Prune(before time.Time) (int, error) {
	cut := timeKey(before)
	n := 0
	err := st.db.Update(func(tx *bolt.Tx) error {
		// Sample keys end in time and sequence, traffic keys in time.
		for _, p := range []struct {
			bucket []byte
			tail   int
		}{{bucketSamples, 16}, {bucketTraffic, 8}} {
			m, err := deleteWhere(tx.Bucket(p.bucket), func(k []byte) bool {
				return len(k) >= p.tail && bytes.Compare(k[len(k)-p.tail:len(k)-p.tail+8], cut) < 0
			})
			n += m
			if err != nil {
				return err
			}
		}
		m, err := deleteWhere(tx.Bucket(bucketField), func(k []byte) bool { return fieldEndedBy(k, before) })
		n += m
		if err != nil {
			return err
		}
		m, err = pruneReleases(tx, before)
		n += m
		return err
	})
	if err != nil {
		return n, fmt.Errorf("prune: %w", err)
	}
	return n, nil
}

// deleteWhere deletes the keys of b that doomed reports true for, and
// returns how many went.
func deleteWhere(b *bolt.Bucket, doomed func(k []byte) bool) (int, error) {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if doomed(k) {
			keys = append(keys, bytes.Clone(k))
		}
	}
	// Deleting while iterating makes bbolt's cursor skip keys.
	for i, k := range keys {
		if err := b.Delete(k); err != nil {
			return i, err
		}
	}
	return len(keys), nil
}

// LabSeries lists the pages and profiles the store holds samples of for
// site, in key order. It reads one key per series: after each, it seeks
// past the rest of that series.
func (st *Store) LabSeries(site string) ([]Series, error) {
	prefix := sitePrefix(site)
	var out []Series
	err := st.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSamples).Cursor()
		k, _ := c.Seek(prefix)
		for k != nil && bytes.HasPrefix(k, prefix) {
			if len(k) < len(prefix)+16 {
				return fmt.Errorf("sample key %q too short", k)
			}
			head := k[:len(k)-16] // site NUL page NUL profile NUL
			parts := bytes.Split(head, []byte{0})
			if len(parts) != 4 {
				return fmt.Errorf("sample key %q malformed", k)
			}
			out = append(out, Series{Page: string(parts[1]), Profile: string(parts[2])})
			next := bytes.Clone(head)
			next[len(next)-1] = 1 // just past every key of this series
			k, _ = c.Seek(next)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list lab series of site %q: %w", site, err)
	}
	return out, nil
}

// Series is one page and profile of a site that lab samples are kept of.
type Series struct{ Page, Profile string }
