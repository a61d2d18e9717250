package admin

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/proxy"
	"github.com/edgevitals/edgevitals/proxy/proxytest"
	"github.com/edgevitals/edgevitals/vitals/release"
	"github.com/edgevitals/edgevitals/vitals/store"
)

// logRecords collects log records, for counting the lines a fault makes.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

// count is how many records at level have a message containing msg.
func (l *logRecords) count(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.Level == level && strings.Contains(r.Message, msg) {
			n++
		}
	}
	return n
}

// headerFixture is a proxy whose origin names its release in X-Release,
// with a release registry on a real store whose writes can be made to fail:
// while failing is set they go to a closed bbolt store, which refuses them
// as a store that lost its file does.
type headerFixture struct {
	h        *proxytest.Harness
	registry *release.Registry
	releases *Releases
	store    *store.Store
	failing  atomic.Bool
	writes   atomic.Int64 // attempts to write a release
	release  atomic.Pointer[string]
	logs     *logRecords
	n        int
}

func newHeaderFixture(t *testing.T) *headerFixture {
	t.Helper()
	f := &headerFixture{logs: &logRecords{}}
	v := "v1"
	f.release.Store(&v)
	f.h = proxytest.New(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Release", *f.release.Load())
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "page")
	}, func(o *proxy.Options) {
		o.Sites[0].ReleaseHeader = "X-Release"
		// Responses arrive after the registry is built below.
		o.OnRelease = func(site, id string, accept func()) { f.registry.Offer(site, id, accept) }
	})
	dir := t.TempDir()
	var err error
	if f.store, err = store.OpenStore(filepath.Join(dir, "edgevitals.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	dead, err := store.OpenStore(filepath.Join(dir, "closed.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := dead.Close(); err != nil {
		t.Fatal(err)
	}
	f.registry, err = release.New(release.Options{
		Store: f.store, Sites: f.h.Proxy.Sites, Metrics: f.h.Set, Clock: f.h.Clock.Now, Logger: slog.New(f.logs),
		HeaderRetry: 30 * time.Second,
		AddRelease: func(rel store.Release) error {
			f.writes.Add(1)
			if f.failing.Load() {
				return dead.AddRelease(rel)
			}
			return f.store.AddRelease(rel)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.releases, err = NewReleases(f.h.Proxy, ReleasesOptions{Registry: f.registry, Store: f.store, Clock: f.h.Clock.Now, Logger: slog.New(f.logs)})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// miss fetches a page not in the cache, so the origin answers with its
// release header, and waits for the write it may have started.
func (f *headerFixture) miss(t *testing.T) {
	t.Helper()
	f.n++
	if r := f.h.Get(fmt.Sprintf("/post/%d/", f.n)); r.Status != http.StatusOK {
		t.Fatalf("GET = %d", r.Status)
	}
	f.registry.Sync()
}

func (f *headerFixture) recorded(t *testing.T, id string) (store.Release, bool) {
	t.Helper()
	rel, ok, err := f.store.Release("blog", id)
	if err != nil {
		t.Fatal(err)
	}
	return rel, ok
}

func (f *headerFixture) writeErrors() string {
	for _, l := range strings.Split(f.h.MetricsText(), "\n") {
		if strings.HasPrefix(l, `edgevitals_release_write_errors_total{site="blog"} `) {
			return strings.TrimPrefix(l, `edgevitals_release_write_errors_total{site="blog"} `)
		}
	}
	return "absent"
}

// TestReleaseHeaderRetriedAfterFailedWrite: a release seen in the origin's
// release header counts as seen only once it is written. While the store
// fails, later responses try again, at most once per HeaderRetry per site
// on the injected clock (not once per response); each failure is counted
// in edgevitals_release_write_errors_total, the streak is logged once, and
// the release, once written, starts when it was first seen. Marking it
// seen before the write would lose it for good on one failed write.
func TestReleaseHeaderRetriedAfterFailedWrite(t *testing.T) {
	f := newHeaderFixture(t)
	if got := f.writeErrors(); got != "0" {
		t.Errorf("edgevitals_release_write_errors_total before any failure = %s, want 0", got)
	}
	f.miss(t) // v1 is written
	if _, ok := f.recorded(t, "v1"); !ok {
		t.Fatal("v1 from the origin header was not recorded")
	}

	f.failing.Store(true)
	v2 := "v2"
	f.release.Store(&v2)
	firstSeen := f.h.Clock.Now()
	f.miss(t)
	for range 5 { // many responses within the retry interval: no write
		f.miss(t)
	}
	if got := f.writes.Load(); got != 2 {
		t.Errorf("writes after v2's first failed write and 5 more responses = %d, want 2 (v1, then v2 once)", got)
	}
	f.h.Clock.Advance(31 * time.Second)
	f.miss(t) // tried again, fails again
	if got := f.writes.Load(); got != 3 {
		t.Errorf("writes after the retry interval = %d, want 3", got)
	}
	if got := f.writeErrors(); got != "2" {
		t.Errorf("edgevitals_release_write_errors_total = %s, want 2", got)
	}
	if n := f.logs.count(slog.LevelError, "not recorded"); n != 1 {
		t.Errorf("%d error lines for one streak of failed writes, want 1", n)
	}

	f.failing.Store(false) // the store is back
	f.miss(t)              // still within the interval
	if _, ok := f.recorded(t, "v2"); ok {
		t.Error("v2 written before the retry interval passed")
	}
	f.h.Clock.Advance(31 * time.Second)
	f.miss(t)
	rel, ok := f.recorded(t, "v2")
	if !ok {
		t.Fatal("v2 was never recorded after the store came back")
	}
	if !rel.At.Equal(firstSeen) || rel.Source != store.SourceHeader {
		t.Errorf("v2 = at %v from %q, want at %v (first seen) from the header", rel.At, rel.Source, firstSeen)
	}
	if n := f.logs.count(slog.LevelInfo, "recorded after failed writes"); n != 1 {
		t.Errorf("%d lines saying v2 was recorded after failures, want 1", n)
	}
	writes := f.writes.Load()
	f.h.Clock.Advance(time.Hour)
	f.miss(t)
	f.miss(t)
	if got := f.writes.Load(); got != writes {
		t.Errorf("writes once v2 is recorded went from %d to %d, want no more", writes, got)
	}
}

// TestReleaseHeaderChangesDuringFailures: the origin moves on to another
// release while writes fail: the value recorded once the store is back is
// the one the origin names then, starting when it was first seen, and the
// counting and logging cover the whole streak.
func TestReleaseHeaderChangesDuringFailures(t *testing.T) {
	f := newHeaderFixture(t)
	f.failing.Store(true)
	f.miss(t) // v1 fails
	f.h.Clock.Advance(10 * time.Second)
	v2 := "v2"
	f.release.Store(&v2)
	v2Seen := f.h.Clock.Now()
	f.miss(t) // within the interval: v2 noted, not written
	f.h.Clock.Advance(31 * time.Second)
	f.miss(t) // v2 fails
	f.failing.Store(false)
	f.h.Clock.Advance(31 * time.Second)
	f.miss(t)
	if _, ok := f.recorded(t, "v1"); ok {
		t.Error("v1, gone from the origin before the store came back, was recorded")
	}
	rel, ok := f.recorded(t, "v2")
	if !ok || !rel.At.Equal(v2Seen) {
		t.Errorf("v2 = %+v (recorded %v), want it recorded at %v", rel, ok, v2Seen)
	}
	if got := f.writeErrors(); got != "2" {
		t.Errorf("edgevitals_release_write_errors_total = %s, want 2", got)
	}
	if n := f.logs.count(slog.LevelError, "not recorded"); n != 1 {
		t.Errorf("%d error lines for one streak, want 1", n)
	}
}

// TestReleaseAPIStoreFailures: a store that fails is a 500 on the release
// and report endpoints, counted, never a 400 with the store's internals, a
// 201 with an empty release, or a 404 "no release yet".
func TestReleaseAPIStoreFailures(t *testing.T) {
	f := newHeaderFixture(t)
	admin := NewAdmin(f.h.Proxy, AdminOptions{Token: "t", Loopback: true, Metrics: f.h.Set})
	f.releases.Register(admin)
	do := func(method, target, body string) (int, string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(target)
		ctx.Request.Header.Set("Authorization", "Bearer t")
		ctx.Request.SetBodyString(body)
		admin.Handler(&ctx)
		return ctx.Response.StatusCode(), string(ctx.Response.Body())
	}
	f.failing.Store(true)
	code, body := do("POST", "/api/releases", `{"site":"blog","id":"v9"}`)
	if code != http.StatusInternalServerError || !strings.Contains(body, "store error") || strings.Contains(body, "database not open") {
		t.Errorf("POST /api/releases on a failing store = %d %s, want 500 store error without internals", code, body)
	}
	if got := f.writeErrors(); got != "1" {
		t.Errorf("edgevitals_release_write_errors_total = %s, want 1", got)
	}
	code, body = do("POST", "/api/releases", `{"site":"nope","id":"v9"}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "unknown site") {
		t.Errorf("POST /api/releases of an unknown site = %d %s, want 400", code, body)
	}

	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/api/report?site=blog", "/api/report?site=blog&release=v1"} {
		code, body = do("GET", target, "")
		if code != http.StatusInternalServerError || strings.Contains(body, "no release yet") || strings.Contains(body, `"lines"`) {
			t.Errorf("GET %s on a closed store = %d %s, want 500", target, code, body)
		}
	}
}

// TestKnownReleaseStoreFailure: the field-data collector's release check
// answers the latest releases from memory, older ones from the store, and
// a store that cannot answer is logged once per streak instead of quietly
// turning every beacon's release into "other".
func TestKnownReleaseStoreFailure(t *testing.T) {
	f := newHeaderFixture(t)
	for _, id := range []string{"r1", "r2"} {
		if err := f.store.AddRelease(store.Release{Site: "blog", ID: id, At: f.h.Clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.registry.Record(store.Release{Site: "blog", ID: "r3", Source: store.SourceAPI}); err != nil {
		t.Fatal(err)
	}
	if !f.registry.KnownRelease("blog", "r1") || f.registry.KnownRelease("blog", "forged") {
		t.Error("KnownRelease does not tell a stored release from a forged one")
	}
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	if !f.registry.KnownRelease("blog", "r3") {
		t.Error("KnownRelease of a release in memory needs the store")
	}
	for range 3 {
		if f.registry.KnownRelease("blog", "r2") {
			t.Error("KnownRelease vouched for a release it could not check")
		}
	}
	if n := f.logs.count(slog.LevelError, "cannot check a release"); n != 1 {
		t.Errorf("%d error lines for a store that cannot answer three checks, want 1", n)
	}
}
