package release

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/vitals/store"
	"github.com/edgevitals/edgevitals/vitals/vitalstest"
)

func newRegistry(t *testing.T) (*Registry, *store.Store) {
	t.Helper()
	st := vitalstest.OpenStore(t, filepath.Join(t.TempDir(), "edgevitals.db"))
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	r, err := New(Options{Store: st, Sites: func() []string { return []string{"blog"} }, Clock: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	return r, st
}

// TestRecordRejects: the registry refuses, as invalid and without writing,
// a release of a site that is not configured and one the store's rule of
// ids and notes refuses; the same rule the store applies to its writes.
func TestRecordRejects(t *testing.T) {
	r, st := newRegistry(t)
	f := func(rel store.Release, want string) {
		t.Helper()
		err := r.Record(rel)
		if !errors.Is(err, store.ErrInvalidRelease) || !strings.Contains(err.Error(), want) {
			t.Errorf("Record(%+v) = %v, want ErrInvalidRelease saying %q", rel, err, want)
		}
	}
	f(store.Release{Site: "shop", ID: "v1"}, `unknown site "shop"`)
	f(store.Release{Site: "blog", ID: ""}, "release id")
	f(store.Release{Site: "blog", ID: "v 1"}, "release id")
	f(store.Release{Site: "blog", ID: strings.Repeat("x", store.MaxReleaseID+1)}, "release id")
	f(store.Release{Site: "blog", ID: "v1", Note: strings.Repeat("x", store.MaxReleaseNote+1)}, "note longer than")
	if got, err := st.Releases(""); err != nil || len(got) != 0 {
		t.Errorf("after refused releases the store holds %v, %v; want none", got, err)
	}
	if err := r.Record(store.Release{Site: "blog", ID: strings.Repeat("x", store.MaxReleaseID), Note: strings.Repeat("x", store.MaxReleaseNote)}); err != nil {
		t.Errorf("Record of a release at the limits = %v", err)
	}
}

// TestMarkVerdictTurnsOnce: a release turns regressed once however often
// its report is checked, again after it recovered, and not when it is not
// the one marked regressed.
func TestMarkVerdictTurnsOnce(t *testing.T) {
	r, _ := newRegistry(t)
	steps := []struct {
		id        string
		regressed bool
		turned    bool
	}{
		{"v1", false, false},
		{"v1", true, true},
		{"v1", true, false},
		{"v1", false, false},
		{"v1", true, true},
		{"v2", true, true},
		{"v2", true, false},
	}
	for i, s := range steps {
		if got := r.MarkVerdict("blog", s.id, s.regressed); got != s.turned {
			t.Errorf("step %d: MarkVerdict(%s, %v) = %v, want %v", i, s.id, s.regressed, got, s.turned)
		}
	}
}
