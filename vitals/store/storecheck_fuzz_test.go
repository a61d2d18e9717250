package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzOpenStore: whatever bytes the store file holds, OpenStore returns a
// store or an error, never a crash; a store it returns can be written.
func FuzzOpenStore(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.db")
	st, err := OpenStore(path)
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		if err := st.AddRelease(Release{Site: "blog", ID: string(rune('a' + i)), At: time.Unix(int64(i), 0)}); err != nil {
			f.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:4096+100])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "edgevitals.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := OpenStore(path)
		var de *DamagedError
		if err != nil {
			if !errors.As(err, &de) && !errors.Is(err, ErrStoreVersion) {
				t.Logf("not a DamagedError: %v", err)
			}
			return
		}
		defer st.Close()
		if err := st.AddRelease(Release{Site: "fuzz", ID: "z", At: time.Unix(9, 0)}); err != nil && !errors.Is(err, ErrReleaseExists) {
			t.Logf("write on an opened store: %v", err)
		}
	})
}
