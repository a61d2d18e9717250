package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestStoreReleases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st := openTestStore(t, path)
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	add := func(r Release) {
		t.Helper()
		if err := st.AddRelease(r); err != nil {
			t.Fatalf("AddRelease(%+v) = %v", r, err)
		}
	}
	// Recorded out of order: a pipeline may backfill an older release.
	v2 := Release{Site: "blog", ID: "v2", At: t0.Add(2 * time.Hour), Source: SourceHeader}
	v1 := Release{Site: "blog", ID: "v1", Note: "first", At: t0, Source: SourceAPI}
	v3a := Release{Site: "blog", ID: "v3a", At: t0.Add(3 * time.Hour), Source: SourceCLI}
	v3b := Release{Site: "blog", ID: "v3b", At: t0.Add(3 * time.Hour), Source: SourceCLI}
	shop := Release{Site: "shop", ID: "v1", At: t0.Add(time.Hour), Source: SourceAPI}
	other := Release{Site: "blog2", ID: "x", At: t0.Add(time.Minute)}
	for _, r := range []Release{v2, v1, v3a, v3b, shop, other} {
		add(r)
	}

	dup := v1
	dup.Note = "again"
	if err := st.AddRelease(dup); !errors.Is(err, ErrReleaseExists) {
		t.Errorf("AddRelease of a recorded (site, id) = %v, want ErrReleaseExists", err)
	}

	tests := []struct {
		site string
		want []Release
	}{
		{"blog", []Release{v1, v2, v3a, v3b}}, // same start: order of recording
		{"shop", []Release{shop}},
		{"blo", nil}, // a site name is not a prefix match
		{"", []Release{v1, other, shop, v2, v3a, v3b}},
	}
	for _, tt := range tests {
		got, err := st.Releases(tt.site)
		if err != nil {
			t.Fatal(err)
		}
		if !releasesEqual(got, tt.want) {
			t.Errorf("Releases(%q) = %v, want %v", tt.site, ids(got), ids(tt.want))
		}
	}

	got, ok, err := st.Release("blog", "v1")
	if err != nil || !ok || !releasesEqual([]Release{got}, []Release{v1}) {
		t.Errorf("Release(blog, v1) = %+v, %v, %v; want %+v (the first one kept)", got, ok, err, v1)
	}
	if _, ok, err := st.Release("shop", "v2"); ok || err != nil {
		t.Errorf("Release(shop, v2) = _, %v, %v; want not found", ok, err)
	}

	// Releases survive a restart.
	st.Close()
	st = openTestStore(t, path)
	got2, err := st.Releases("blog")
	if err != nil || !releasesEqual(got2, []Release{v1, v2, v3a, v3b}) {
		t.Errorf("after reopen: %v, %v", ids(got2), err)
	}
}

func releasesEqual(a, b []Release) bool {
	return slices.EqualFunc(a, b, func(x, y Release) bool {
		return x.Site == y.Site && x.ID == y.ID && x.Note == y.Note && x.At.Equal(y.At) && x.Source == y.Source
	})
}

func ids(rs []Release) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Site+"/"+r.ID)
	}
	return out
}

func TestStoreReleaseRejects(t *testing.T) {
	st := openTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	at := time.Unix(1.8e9, 0)
	tests := []struct {
		name string
		r    Release
	}{
		{"no site", Release{ID: "v1", At: at}},
		{"no id", Release{Site: "blog", At: at}},
		{"no time", Release{Site: "blog", ID: "v1"}},
		{"nul in site", Release{Site: "bl\x00og", ID: "v1", At: at}},
		{"nul in id", Release{Site: "blog", ID: "v\x001", At: at}},
		{"unknown source", Release{Site: "blog", ID: "v1", At: at, Source: "ftp"}},
		{"long id", Release{Site: "blog", ID: strings.Repeat("x", MaxReleaseID+1), At: at}},
		{"long note", Release{Site: "blog", ID: "v1", At: at, Note: strings.Repeat("x", MaxReleaseNote+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := st.AddRelease(tt.r); err == nil {
				t.Errorf("AddRelease(%+v) = nil, want an error", tt.r)
			}
		})
	}
	if got, err := st.Releases(""); err != nil || len(got) != 0 {
		t.Errorf("after rejected adds: %v, %v; want no release", ids(got), err)
	}
}

// TestReleaseSurvivesKill records releases in a child process and kills it
// with SIGKILL right after they were acknowledged: every acknowledged
// release must be in the file.
func TestReleaseSurvivesKill(t *testing.T) {
	if path := os.Getenv("EDGEVITALS_RELEASE_CHILD"); path != "" {
		releaseChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "s.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestReleaseSurvivesKill$")
	cmd.Env = append(os.Environ(), "EDGEVITALS_RELEASE_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked, other []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		id, ok := strings.CutPrefix(sc.Text(), "acked ")
		if !ok {
			other = append(other, sc.Text())
			continue
		}
		acked = append(acked, id)
		if len(acked) == 20 {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed: its error only says so
	if len(acked) < 20 {
		t.Fatalf("child acknowledged %d releases, want 20; it said %q", len(acked), other)
	}

	st := openTestStore(t, path)
	for _, id := range acked {
		if _, ok, err := st.Release("blog", id); !ok || err != nil {
			t.Errorf("acknowledged release %s lost after kill -9: %v, %v", id, ok, err)
		}
	}
}

// releaseChild records releases until killed (or 1,000 of them, should the
// parent be gone), printing each one's id once AddRelease returned.
func releaseChild(path string) {
	st, err := OpenStore(path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		id := fmt.Sprintf("v%d", i)
		if err := st.AddRelease(Release{Site: "blog", ID: id, At: at.Add(time.Duration(i) * time.Minute), Source: SourceCLI}); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("acked", id)
	}
	os.Exit(0)
}
