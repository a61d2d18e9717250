package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/config"
	"github.com/edgevitals/edgevitals/vitals/store"
)

// TestServeWithDamagedStore: serve started on a data_dir whose store file
// is damaged (truncated, as a full disk or a bad copy leaves it; or
// overwritten) keeps the edge up: it caches and serves the site, logs one
// line naming the file, where it went and what was wrong, keeps the
// damaged file byte for byte, records releases on a fresh store, and
// /readyz says what is off while staying ready, instead of dying with SIGBUS
// (truncated) or exiting with "invalid database" (overwritten).
func TestServeWithDamagedStore(t *testing.T) {
	// A store as a running edgevitals leaves it, with enough in it to
	// span pages.
	dir := t.TempDir()
	st, err := store.OpenStore(filepath.Join(dir, "edgevitals.db"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-48 * time.Hour)
	for i := range 300 {
		s := store.Sample{URL: "http://www.example.com/", Profile: "mobile", At: t0.Add(time.Duration(i) * time.Minute), CacheStatus: strings.Repeat("x", 100)}
		if err := st.AddSample("blog", "/", s); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, "edgevitals.db"))
	if err != nil {
		t.Fatal(err)
	}

	f := func(name string, damaged []byte, problem string) {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			file := filepath.Join(dataDir, "edgevitals.db")
			if err := os.WriteFile(file, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs lockedBuffer
			origin := newCacheableOrigin(t)
			a := startTestAppLog(t, origin.URL, func(c *config.Config) { c.DataDir = dataDir }, slog.New(slog.NewTextHandler(&logs, nil)))
			proxyURL := "http://" + a.proxyLn.Addr().String()
			if cs := cacheStatusOf(t, proxyURL+"/post/"); cs != storedMiss {
				t.Errorf("first GET Cache-Status = %q, want %q", cs, storedMiss)
			}
			if cs := cacheStatusOf(t, proxyURL+"/post/"); !freshHit.MatchString(cs) {
				t.Errorf("second GET Cache-Status = %q, want %s", cs, freshHit)
			}

			var lines []string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "damaged") {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 {
				t.Fatalf("%d log lines speak of the damaged store, want 1; log:\n%s", len(lines), logs.String())
			}
			moved, err := filepath.Glob(file + ".damaged-*")
			if err != nil || len(moved) != 1 {
				t.Fatalf("damaged files kept = %v (%v), want one", moved, err)
			}
			for _, want := range []string{"level=ERROR", "file=" + file, "moved_to=" + moved[0], problem} {
				if !strings.Contains(lines[0], want) {
					t.Errorf("the log line %q does not hold %q", lines[0], want)
				}
			}
			if kept, err := os.ReadFile(moved[0]); err != nil || !bytes.Equal(kept, damaged) {
				t.Errorf("the file kept at %s is not the damaged file (%v)", moved[0], err)
			}

			// Vitals run on the fresh store: a release is recorded.
			code, body := adminDo(t, a, http.MethodPost, "/api/releases", `{"site":"blog","id":"v2"}`)
			if code != http.StatusCreated || !strings.Contains(body, `"id":"v2"`) {
				t.Errorf("POST /api/releases = %d %s, want 201 with the release", code, body)
			}

			code, body = adminDo(t, a, http.MethodGet, "/readyz", "")
			want := fmt.Sprintf("off: store: damaged file moved to %s (", moved[0])
			if code != http.StatusOK || !strings.Contains(body, "proxy: ready\n") || !strings.Contains(body, want) || !strings.Contains(body, "started fresh\n") {
				t.Errorf("/readyz = %d %q, want 200, ready, and a line with %q ... started fresh", code, body, want)
			}
		})
	}
	f("truncated mid-file", good[:len(good)/2], "truncated")
	f("overwritten", append(bytes.Repeat([]byte("overwritten "), len(good)/12), make([]byte, len(good)%12)...), "not a bbolt file")
}

// adminDo sends one request to the app's admin listener with its token.
func adminDo(t *testing.T, a *app, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+a.adminLn.Addr().String()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.Server.AdminToken.Reveal())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
