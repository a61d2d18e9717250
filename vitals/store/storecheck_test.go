package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// filled is a store file written by filledStore, with what bbolt's public
// API reports of its pages.
type filled struct {
	path     string
	data     []byte
	pageSize int
	pages    int64 // pages the meta page bbolt uses counts
	freelist int   // id of the freelist page
	leaf     int   // id of a leaf page
	branch   int   // id of a branch page
}

// filledStore writes a store with enough samples and releases to span many
// pages and closes it.
func filledStore(t *testing.T) filled {
	t.Helper()
	var (
		path                   = filepath.Join(t.TempDir(), "edgevitals.db")
		data                   []byte
		pageSize               int
		pages                  int64
		freelist, leaf, branch int
	)
	st, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i := range 400 {
		s := Sample{URL: "http://blog/", Profile: "mobile", At: t0.Add(time.Duration(i) * time.Minute), LCP: dur(time.Second), CacheStatus: strings.Repeat("x", 100)}
		if err := st.AddSample("blog", "/", s); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if err := st.AddRelease(Release{Site: "blog", ID: fmt.Sprintf("v%d", i), At: t0.Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	freelist, leaf, branch = -1, -1, -1
	err = st.db.View(func(tx *bolt.Tx) error {
		pageSize = tx.DB().Info().PageSize
		pages = tx.Size() / int64(pageSize)
		for id := 2; int64(id) < pages; id++ {
			p, err := tx.Page(id)
			if err != nil {
				return err
			}
			if p == nil {
				continue
			}
			switch p.Type {
			case "freelist":
				freelist = id
			case "leaf":
				leaf = id
			case "branch":
				branch = id
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if data, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	if freelist <= 2 || leaf < 2 || branch < 2 || pages < 8 {
		t.Fatalf("store of %d pages with freelist at %d, a leaf at %d, a branch at %d: want the freelist past the meta pages, a leaf and a branch",
			pages, freelist, leaf, branch)
	}
	return filled{path: path, data: data, pageSize: pageSize, pages: pages, freelist: freelist, leaf: leaf, branch: branch}
}

// TestOpenStoreRefusesDamagedFiles: a truncated or overwritten store file
// is refused with a *DamagedError that names the file and says what is
// wrong, before bbolt maps it (a truncated file used to die with SIGBUS in
// bbolt's freelist, an overwritten one with "invalid database"), and the
// file is left byte for byte as it was.
func TestOpenStoreRefusesDamagedFiles(t *testing.T) {
	fs := filledStore(t)
	good, ps, pages, freelist, leaf := fs.data, fs.pageSize, fs.pages, fs.freelist, fs.leaf
	// A branch page whose first child is itself: bbolt's cursor would go
	// round it for ever.
	cycle := bytes.Clone(good)
	binary.NativeEndian.PutUint64(cycle[fs.branch*ps+16+8:], uint64(fs.branch))
	fill := func(b []byte, from, to int, v byte) []byte {
		b = bytes.Clone(b)
		for i := from; i < to; i++ {
			b[i] = v
		}
		return b
	}
	garbage := make([]byte, len(good))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.UintN(256))
	}
	f := func(name string, data []byte, want string) {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "edgevitals.db")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			st, err := OpenStore(path)
			if err == nil {
				st.Close()
				t.Fatalf("OpenStore of a file %s = nil error, want a *DamagedError", name)
			}
			var de *DamagedError
			if !errors.As(err, &de) {
				t.Fatalf("OpenStore of a file %s = %v, want a *DamagedError", name, err)
			}
			t.Logf("%s: %v", name, err)
			if de.Path != path || !strings.Contains(err.Error(), path) || !strings.Contains(de.Problem, want) {
				t.Errorf("OpenStore of a file %s = %q (path %q), want the path %q and %q", name, err, de.Path, path, want)
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
				t.Errorf("OpenStore changed the damaged file (%d bytes, was %d; %v)", len(got), len(data), err)
			}
		})
	}
	f("truncated inside meta page 0", good[:40], "truncated")
	f("truncated inside meta page 1", good[:ps+40], "truncated")
	f("truncated after the meta pages, before the freelist", good[:freelist*ps], "truncated")
	f("truncated mid-file", good[:len(good)/2], "truncated")
	f("short of its last page by a byte", good[:int(pages)*ps-1], "truncated")
	f("overwritten with random bytes", garbage, "not a bbolt file")
	f("overwritten from the start with text", append(bytes.Repeat([]byte("GET / HTTP/1.1\r\n"), 2*ps/16), good[2*ps:]...), "not a bbolt file")
	f("with its freelist page overwritten", fill(good, freelist*ps, (freelist+1)*ps, 0xFF), "freelist page")
	f("with a data page overwritten", fill(good, leaf*ps, (leaf+1)*ps, 0xFF), "")
	f("with a branch page pointing at itself", cycle, "reached twice")
}

// TestOpenStoreFileShapes: what is not damage opens. A missing or empty
// file is a fresh store; a store that lacks a bucket (written before the
// bucket existed) gets it. A bbolt file another program wrote is refused:
// adding our buckets to it would mix two programs' data.
func TestOpenStoreFileShapes(t *testing.T) {
	f := func(name string, prepare func(path string), wantDamaged string) {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "edgevitals.db")
			prepare(path)
			st, err := OpenStore(path)
			var de *DamagedError
			if wantDamaged != "" {
				if !errors.As(err, &de) || !strings.Contains(de.Problem, wantDamaged) {
					t.Fatalf("OpenStore = %v, want a *DamagedError with %q", err, wantDamaged)
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenStore = %v, want a store", err)
			}
			defer st.Close()
			if err := st.AddRelease(Release{Site: "blog", ID: "v1", At: time.Now()}); err != nil {
				t.Errorf("AddRelease on the opened store: %v", err)
			}
		})
	}
	raw := func(prepare func(tx *bolt.Tx) error) func(string) {
		return func(path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(prepare); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	f("missing", func(string) {}, "")
	f("empty", func(path string) {
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}, "")
	f("an empty bbolt file", raw(func(*bolt.Tx) error { return nil }), "")
	f("a store without its releases bucket", raw(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket(bucketMeta)
		return err
	}), "")
	f("a bbolt file of another program", raw(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("sessions"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}), "not an edgevitals store")
	f("with meta page 0 torn (bbolt falls back to page 1)", func(path string) {
		raw(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket(bucketMeta)
			return err
		})(path)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := 16; i < 80; i++ {
			data[i] = 0
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}, "")
	f("a bad version record", raw(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keyVersion, []byte("one"))
	}), "version record")
}

// TestOpenStoreRecovering: a damaged file is moved aside (never deleted,
// byte for byte the same), a fresh store starts at the same path and
// works, and the Recovery says where the file went and why. Two damaged
// files in one second do not overwrite each other.
func TestOpenStoreRecovering(t *testing.T) {
	fs := filledStore(t)
	good, ps := fs.data, fs.pageSize
	dir := t.TempDir()
	path := filepath.Join(dir, "edgevitals.db")
	now := time.Date(2026, 12, 7, 23, 5, 9, 0, time.UTC)
	damaged := [][]byte{good[:len(good)/2], good[:ps+10]}
	var moved []string
	for i, data := range damaged {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, rec, err := OpenStoreRecovering(path, now)
		if err != nil {
			t.Fatalf("OpenStoreRecovering #%d = %v, want a fresh store", i, err)
		}
		if rec == nil || rec.Path != path || !strings.Contains(rec.Problem, "truncated") {
			t.Fatalf("Recovery #%d = %+v, want the path and the problem", i, rec)
		}
		if got, err := os.ReadFile(rec.MovedTo); err != nil || !bytes.Equal(got, data) {
			t.Errorf("the file moved to %s is not the damaged file (%v)", rec.MovedTo, err)
		}
		if !strings.Contains(rec.String(), rec.MovedTo) || !strings.Contains(rec.String(), "started fresh") {
			t.Errorf("Recovery.String() = %q, want where the file went and that the store started fresh", rec.String())
		}
		if err := st.AddRelease(Release{Site: "blog", ID: "v1", At: now}); err != nil {
			t.Errorf("AddRelease on the fresh store: %v", err)
		}
		st.Close()
		moved = append(moved, rec.MovedTo)
	}
	if want := path + ".damaged-20261207T230509Z"; moved[0] != want || moved[1] == moved[0] {
		t.Errorf("moved to %q, want %q then another name", moved, want)
	}

	// A good store is opened as it is.
	st, rec, err := OpenStoreRecovering(path, now)
	if err != nil || rec != nil {
		t.Fatalf("OpenStoreRecovering of a good store = %v, %+v; want no recovery", err, rec)
	}
	if _, ok, err := st.Release("blog", "v1"); err != nil || !ok {
		t.Errorf("the release of the fresh store did not survive a reopen: %v %v", ok, err)
	}
	st.Close()
}

// TestOpenStoreRecoveringLeavesAHeldFile: a file some process holds (its
// bbolt lock taken) is not moved aside even when it reads as damaged: the
// holder may be writing it.
func TestOpenStoreRecoveringLeavesAHeldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "edgevitals.db")
	data := bytes.Repeat([]byte("not a store "), 1000)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenStoreRecovering(path, time.Now()); err == nil || !strings.Contains(err.Error(), "holds it") {
		t.Errorf("OpenStoreRecovering of a held file = %v, want that another process holds it", err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
		t.Errorf("the held file was moved or changed: %v", err)
	}
}

// TestOpenStoreRecoveringCannotMove: when the damaged file cannot be moved
// aside (here every name MoveAside may use is taken), vitals still start,
// on a store in a temporary directory, and the Recovery says the file
// stayed, why, and that the store is lost on restart. Nothing is
// overwritten.
func TestOpenStoreRecoveringCannotMove(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "edgevitals.db")
	damaged := bytes.Repeat([]byte("overwritten "), 1000)
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 23, 30, 0, 0, time.UTC)
	taken := path + ".damaged-20261207T233000Z"
	for i := range 100 {
		name := taken
		if i > 0 {
			name = fmt.Sprintf("%s-%d", taken, i)
		}
		if err := os.WriteFile(name, []byte("earlier"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	st, rec, err := OpenStoreRecovering(path, now)
	if err != nil {
		t.Fatalf("OpenStoreRecovering with every aside name taken = %v, want a temporary store", err)
	}
	defer st.Close()
	if rec == nil || rec.TempDir == "" || rec.MovedTo != "" || !strings.Contains(rec.MoveError, "taken") {
		t.Fatalf("Recovery = %+v, want a temporary dir and the move error", rec)
	}
	t.Cleanup(func() { os.RemoveAll(rec.TempDir) })
	for _, want := range []string{path, "could not be moved aside", rec.TempDir, "lost on restart"} {
		if !strings.Contains(rec.String(), want) {
			t.Errorf("Recovery.String() = %q, want %q in it", rec.String(), want)
		}
	}
	if err := st.AddRelease(Release{Site: "blog", ID: "v1", At: now}); err != nil {
		t.Errorf("AddRelease on the temporary store: %v", err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, damaged) {
		t.Errorf("the damaged file changed: %v", err)
	}
	if got, err := os.ReadFile(taken + "-99"); err != nil || string(got) != "earlier" {
		t.Errorf("an earlier damaged file was overwritten: %q %v", got, err)
	}
}

// TestOpenStoreCorruptedBytes: a store with a few bytes changed anywhere
// (a bad sector, a torn write) opens or is refused, within seconds, and a
// store that opens can be written and closed: no crash, no endless loop
// (a branch page pointing back at itself sends bbolt's cursor round for
// ever; the file check walks the trees with every page id and offset
// checked, and each page reached once).
func TestOpenStoreCorruptedBytes(t *testing.T) {
	good := filledStore(t).data
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 11))
	opened, refused := 0, 0
	for i := range 300 {
		data := bytes.Clone(good)
		for range 1 + rng.IntN(4) {
			data[rng.IntN(len(data))] = byte(rng.UintN(256))
		}
		path := filepath.Join(dir, fmt.Sprintf("m%d.db", i))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			st, err := OpenStore(path)
			if err == nil {
				opened++
				if werr := st.AddRelease(Release{Site: "check", ID: "w", At: time.Unix(1, 0)}); werr != nil {
					t.Logf("mutation %d: write on the opened store: %v", i, werr)
				}
				err = st.Close()
			} else {
				refused++
			}
			done <- err
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("OpenStore of mutation %d did not return within 10 s", i)
		}
	}
	t.Logf("%d mutations opened, %d refused", opened, refused)
	if refused == 0 {
		t.Error("no mutation was refused: the damage checks did not run")
	}
}
