package vitals

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
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
	maxReleaseID   = 256
	maxReleaseNote = 4096
)

var (
	// ErrReleaseExists is returned when (Site, ID) is already recorded.
	ErrReleaseExists = errors.New("release already recorded")
	// ErrNoRelease is returned when a report names a release the store
	// does not hold.
	ErrNoRelease = errors.New("no such release")
	// ErrNoPredecessor is returned for a report of a site's first release:
	// there is nothing to compare it with.
	ErrNoPredecessor = errors.New("release has no predecessor")
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
	if len(r.ID) > maxReleaseID {
		errs = append(errs, fmt.Errorf("id of %d bytes, at most %d", len(r.ID), maxReleaseID))
	}
	if len(r.Note) > maxReleaseNote {
		errs = append(errs, fmt.Errorf("note of %d bytes, at most %d", len(r.Note), maxReleaseNote))
	}
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
		return fmt.Errorf("add release %q of site %q: %w", r.ID, r.Site, err)
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

func (st *Store) releaseRecords(site string) ([]releaseRecord, error) {
	var out []releaseRecord
	err := st.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = scanReleases(tx, site)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read releases: %w", err)
	}
	return out, nil
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

// pruneReleases deletes releases that started before the bound, but keeps
// each site's latest: it is the release the site runs now.
func pruneReleases(tx *bolt.Tx, before time.Time) (int, error) {
	all, err := scanReleases(tx, "")
	if err != nil {
		return 0, err
	}
	latest := map[string]string{} // site -> id of its latest release
	for _, r := range all {
		latest[r.Release.Site] = r.Release.ID // all is ordered, so the last one wins
	}
	b := tx.Bucket(bucketReleases)
	n := 0
	for _, r := range all {
		if r.Release.At.Before(before) && latest[r.Release.Site] != r.Release.ID {
			if err := b.Delete(releaseKey(r.Release.Site, r.Release.ID)); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
