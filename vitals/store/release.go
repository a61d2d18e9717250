package store

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Release is one deploy of a site. Its window, the time its figures are
// measured over, runs from At to the next release of the site (or now).
type Release struct {
	Site   string    `json:"site"`
	ID     string    `json:"id"`
	Note   string    `json:"note,omitempty"`
	At     time.Time `json:"at"`     // start of the release's window
	Source string    `json:"source"` // "api", "header" (origin release_header changed), "cli"
}

// Release sources.
const (
	SourceAPI    = "api"
	SourceHeader = "header"
	SourceCLI    = "cli"
)

// Bounds of what a release record holds: an ID becomes a Prometheus label
// value and a note is a line of text, not a changelog.
const (
	MaxReleaseID   = 64   // bytes
	MaxReleaseNote = 1024 // bytes
)

// releaseID is what a release id may look like.
var releaseID = regexp.MustCompile(fmt.Sprintf(`^[A-Za-z0-9][A-Za-z0-9._:+-]{0,%d}$`, MaxReleaseID-1))

// CheckReleaseID says what is wrong with a release id, nil when nothing:
// the rule of the ids the registry takes from users (an id becomes a label
// value). The store itself keeps any id within MaxReleaseID bytes and
// without a NUL, so what an older file holds still reads and shows.
func CheckReleaseID(id string) error {
	if !releaseID.MatchString(id) {
		return fmt.Errorf("release id %q: want 1-%d of A-Z a-z 0-9 . _ : + -", id, MaxReleaseID)
	}
	return nil
}

// CheckReleaseNote says what is wrong with a release note, nil when
// nothing.
func CheckReleaseNote(note string) error {
	if len(note) > MaxReleaseNote {
		return fmt.Errorf("note longer than %d bytes", MaxReleaseNote)
	}
	return nil
}

var (
	// ErrInvalidRelease is returned for a release that fails validation
	// (no site, an id too long...): the caller's mistake, not the store's.
	ErrInvalidRelease = errors.New("invalid release")
	// ErrReleaseExists is returned when (Site, ID) is already recorded.
	ErrReleaseExists = errors.New("release already recorded")
	// ErrNoRelease is returned when a report names a release the store
	// does not hold.
	ErrNoRelease = errors.New("no such release")
	// ErrNoPredecessor is returned for a report of a site's first release:
	// there is nothing to compare it with.
	ErrNoPredecessor = errors.New("release has no predecessor")
	// ErrPredecessorGone is returned for a report of the oldest release
	// the store holds when the site had releases before it that retention
	// deleted: there was something to compare with, and it is gone. It is
	// not a first release.
	ErrPredecessorGone = errors.New("cannot compare: predecessor not in the store")
)

// releaseRecord is the stored value of a release. Seq is the order of
// recording, which orders releases that share a start time.
type releaseRecord struct {
	V       int     `json:"v"`
	Seq     uint64  `json:"seq"`
	Release Release `json:"release"`
}

// releaseKey is site NUL id: one site's releases are one prefix, and a
// lookup by (site, id) is one Get.
func releaseKey(site, id string) []byte {
	k := make([]byte, 0, len(site)+1+len(id))
	k = append(k, site...)
	k = append(k, 0)
	return append(k, id...)
}

func (r Release) check() error {
	var errs []error
	if r.Site == "" {
		errs = append(errs, errors.New("no site"))
	}
	if r.ID == "" {
		errs = append(errs, errors.New("no id"))
	}
	if len(r.ID) > MaxReleaseID {
		errs = append(errs, fmt.Errorf("id of %d bytes, at most %d", len(r.ID), MaxReleaseID))
	}
	errs = append(errs, CheckReleaseNote(r.Note))
	if r.At.IsZero() {
		errs = append(errs, errors.New("no start time"))
	}
	switch r.Source {
	case "", SourceAPI, SourceHeader, SourceCLI:
	default:
		errs = append(errs, fmt.Errorf("source %q: want %q, %q or %q", r.Source, SourceAPI, SourceHeader, SourceCLI))
	}
	errs = append(errs, checkName("site", r.Site), checkName("id", r.ID))
	return errors.Join(errs...)
}

// AddRelease records a release. It is durable when AddRelease returns (the
// bbolt transaction is committed and synced), so an acknowledged release
// survives kill -9. A second release with the same site and ID is refused
// with ErrReleaseExists, and the first one is kept unchanged.
func (st *Store) AddRelease(r Release) error {
	if err := r.check(); err != nil {
		return fmt.Errorf("add release %q of site %q: %w: %w", r.ID, r.Site, ErrInvalidRelease, err)
	}
	r.At = r.At.UTC()
	err := st.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketReleases)
		k := releaseKey(r.Site, r.ID)
		if b.Get(k) != nil {
			return ErrReleaseExists
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		v, err := json.Marshal(releaseRecord{V: recordVersion, Seq: seq, Release: r})
		if err != nil {
			return err
		}
		return b.Put(k, v)
	})
	if err != nil {
		return fmt.Errorf("add release %q of site %q: %w", r.ID, r.Site, err)
	}
	return nil
}

// Releases returns the releases of site ordered by start time (releases
// that start at the same time in the order they were recorded); site ""
// returns every site's.
func (st *Store) Releases(site string) ([]Release, error) {
	recs, err := st.releaseRecords(site)
	if err != nil {
		return nil, err
	}
	out := make([]Release, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Release)
	}
	return out, nil
}

// Release returns the release id of site, and whether it is recorded.
func (st *Store) Release(site, id string) (Release, bool, error) {
	var (
		rec releaseRecord
		ok  bool
	)
	err := st.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketReleases).Get(releaseKey(site, id))
		if v == nil {
			return nil
		}
		var err error
		rec, err = decodeRelease(v)
		ok = err == nil
		return err
	})
	if err != nil {
		return Release{}, false, fmt.Errorf("read release %q of site %q: %w", id, site, err)
	}
	return rec.Release, ok, nil
}

// History is a site's releases in order, with what retention deleted
// before the oldest.
type History struct {
	Releases []Release
	// Pruned is the latest release of the site that retention deleted,
	// nil when it deleted none: the oldest release in Releases then had a
	// predecessor the store no longer holds.
	Pruned *PrunedRelease
}

// PrunedRelease is what the store keeps of a release retention deleted.
type PrunedRelease struct {
	ID  string
	End time.Time // when its window ended
}

// ReleaseHistory reads the releases of site, ordered, and the latest of
// them that retention deleted.
func (st *Store) ReleaseHistory(site string) (History, error) {
	recs, pruned, gone, err := st.releaseHistory(site)
	if err != nil {
		return History{}, err
	}
	h := History{Releases: make([]Release, len(recs))}
	for i, r := range recs {
		h.Releases[i] = r.Release
	}
	if gone {
		h.Pruned = &PrunedRelease{ID: pruned.Release.ID, End: pruned.End}
	}
	return h, nil
}

func (st *Store) releaseRecords(site string) ([]releaseRecord, error) {
	recs, _, _, err := st.releaseHistory(site)
	return recs, err
}

// releaseHistory reads the releases of site ("" for all), ordered, and,
// for one site, the latest of its releases that retention deleted.
func (st *Store) releaseHistory(site string) ([]releaseRecord, prunedRecord, bool, error) {
	var (
		out    []releaseRecord
		pruned prunedRecord
		gone   bool
	)
	err := st.db.View(func(tx *bolt.Tx) error {
		var err error
		if out, err = scanReleases(tx, site); err != nil || site == "" {
			return err
		}
		pruned, gone, err = prunedOf(tx, site)
		return err
	})
	if err != nil {
		return nil, prunedRecord{}, false, fmt.Errorf("read releases: %w", err)
	}
	return out, pruned, gone, nil
}

// scanReleases reads the releases of site ("" for all), ordered.
func scanReleases(tx *bolt.Tx, site string) ([]releaseRecord, error) {
	var prefix []byte
	if site != "" {
		prefix = sitePrefix(site)
	}
	var out []releaseRecord
	c := tx.Bucket(bucketReleases).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		r, err := decodeRelease(v)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b releaseRecord) int {
		if c := a.Release.At.Compare(b.Release.At); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	return out, nil
}

func decodeRelease(v []byte) (releaseRecord, error) {
	var r releaseRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return r, err
	}
	if r.V != recordVersion {
		return r, fmt.Errorf("release record version %d, want %d", r.V, recordVersion)
	}
	return r, nil
}

// prunedRecord is the stored value of bucketPruned: the latest release of
// a site that retention deleted, and the end of its window.
type prunedRecord struct {
	V       int       `json:"v"`
	Release Release   `json:"release"`
	End     time.Time `json:"end"`
}

// pruneReleases deletes the releases whose window ended before the bound:
// a release's window lasts until the site's next release starts, so the
// site's latest release, whose window is still open, is never deleted,
// and a release that started long ago but was replaced within retention
// stays, for the report of the release after it. The latest deleted
// release of each site is noted in bucketPruned, so a report of the
// oldest remaining one says its predecessor is gone rather than calling
// it the site's first.
func pruneReleases(tx *bolt.Tx, before time.Time) (int, error) {
	all, err := scanReleases(tx, "")
	if err != nil {
		return 0, err
	}
	bySite := map[string][]releaseRecord{} // each in order, as all is
	for _, r := range all {
		bySite[r.Release.Site] = append(bySite[r.Release.Site], r)
	}
	b, pb := tx.Bucket(bucketReleases), tx.Bucket(bucketPruned)
	n := 0
	for site, list := range bySite {
		var last prunedRecord
		for i := 0; i+1 < len(list) && list[i+1].Release.At.Before(before); i++ {
			r := list[i].Release
			if err := b.Delete(releaseKey(r.Site, r.ID)); err != nil {
				return n, err
			}
			n++
			last = prunedRecord{V: recordVersion, Release: r, End: list[i+1].Release.At}
		}
		if last.V == 0 {
			continue
		}
		if prev, ok, err := prunedOf(tx, site); err != nil {
			return n, err
		} else if ok && prev.Release.At.After(last.Release.At) {
			continue // a release back-dated before the pruned ones
		}
		v, err := json.Marshal(last)
		if err != nil {
			return n, err
		}
		if err := pb.Put(sitePrefix(site), v); err != nil {
			return n, err
		}
	}
	return n, nil
}

// prunedOf returns the latest release of site that retention deleted.
func prunedOf(tx *bolt.Tx, site string) (prunedRecord, bool, error) {
	v := tx.Bucket(bucketPruned).Get(sitePrefix(site))
	if v == nil {
		return prunedRecord{}, false, nil
	}
	var r prunedRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return r, false, fmt.Errorf("pruned release of site %q: %w", site, err)
	}
	if r.V != recordVersion {
		return r, false, fmt.Errorf("pruned release of site %q: record version %d, want %d", site, r.V, recordVersion)
	}
	return r, true, nil
}
