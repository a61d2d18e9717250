// Package release is the registry of each site's releases: one validation
// of release ids, notes and sources, the durable write, what the proxy's
// release header detection hands over (Offer), the check of a release a
// beacon names (KnownRelease), and the edgevitals_release_* families.
package release

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// Burster is the part of the lab sampler releases use: extra samples soon
// after a release, so a verdict is possible within the hour.
type Burster interface{ Burst(site string) }

// Options configure the release registry.
type Options struct {
	Store *store.Store
	// Sites returns the names of the sites releases may name, now (a
	// config reload changes them); it is called on the goroutine that
	// records a release, and once by New. Required.
	Sites      func() []string
	Sampler    Burster       // may be nil
	BurstDelay time.Duration // wait for the cache to refill before the burst; default 2m
	Metrics    *metrics.Set
	Clock      func() time.Time
	Logger     *slog.Logger
	// AddRelease, when set, writes a release in place of
	// Store.AddRelease (a writer that also mirrors releases elsewhere). It
	// is called on the goroutine that records the release: the API
	// handler's, or the one a release header change starts. It must be
	// durable when it returns nil, and return store.ErrReleaseExists
	// (wrapped) for a release already recorded. nil means Store.AddRelease.
	AddRelease func(store.Release) error
	// HeaderRetry is how long a site waits after a release seen in its
	// release header failed to be written before a later origin response
	// tries again, on Clock; 0 means DefaultHeaderRetry.
	HeaderRetry time.Duration
}

// DefaultHeaderRetry spaces the writes of a release seen in a release
// header while the store fails: one attempt per site per interval, however
// many responses carry the header.
const DefaultHeaderRetry = 30 * time.Second

// Registry records each site's releases (from CI/CD through the admin API
// and the CLI, or from a change of the origin's release header) and
// exports edgevitals_release_info and edgevitals_release_regressed.
type Registry struct {
	o    Options
	hook *releaseHook

	set       *metrics.Set // o.Metrics, or a set of its own
	mu        sync.Mutex
	recent    map[string][]store.Release // per site, newest last, at most keepReleaseInfo
	regressed map[string]string          // site -> latest release id when its report regressed
	failing   map[string]int             // site -> header release writes failed in a row

	readFailing atomic.Bool // KnownRelease's store reads fail
}

// keepReleaseInfo bounds the release label of edgevitals_release_info.
const keepReleaseInfo = 20

// New builds the registry and reads the latest releases of every site
// from the store.
func New(o Options) (*Registry, error) {
	if o.Store == nil || o.Sites == nil {
		return nil, errors.New("releases: a store and the sites are required")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BurstDelay <= 0 {
		o.BurstDelay = 2 * time.Minute
	}
	if o.AddRelease == nil {
		o.AddRelease = o.Store.AddRelease
	}
	if o.HeaderRetry <= 0 {
		o.HeaderRetry = DefaultHeaderRetry
	}
	r := &Registry{o: o, set: o.Metrics, recent: map[string][]store.Release{},
		regressed: map[string]string{}, failing: map[string]int{}}
	if r.set == nil {
		r.set = metrics.NewSet()
	}
	for _, site := range o.Sites() {
		r.writeErrors(site) // every configured site's series, at 0
	}
	all, err := o.Store.Releases("")
	if err != nil {
		return nil, fmt.Errorf("releases: %w", err)
	}
	for _, rel := range all {
		r.remember(rel)
	}
	if o.Metrics != nil {
		o.Metrics.RegisterMetricsWriter(r.writeInfo)
	}
	r.hook = &releaseHook{known: r.known, record: r.fromHeader, clock: o.Clock, retry: o.HeaderRetry, sites: map[string]*headerState{}}
	return r, nil
}

// Offer is the proxy's OnRelease: a response of site carried id in its
// release header, and the proxy's current release of the site is another.
// It returns at once; the write, if one is due, runs on its own goroutine,
// and accept is called once id is recorded (or known already). A failed
// write is tried again when the proxy offers id after the retry interval.
func (r *Registry) Offer(site, id string, accept func()) { r.hook.offer(site, id, accept) }

// Sync waits until every release detected from an origin header so far has
// been written, or has failed to be.
func (r *Registry) Sync() { r.hook.pending.Wait() }

// releaseHook is how the proxy hands over a release header value it has not
// recorded: a value counts as seen (accepted) only once it is written,
// so a failed write is tried again on a later response, at most once per
// retry interval per site, one write at a time.
type releaseHook struct {
	known   func(site, id string) bool // recorded already: no write needed
	record  func(site, id string, at time.Time) error
	clock   func() time.Time
	retry   time.Duration
	pending sync.WaitGroup // header-detected releases being recorded

	mu    sync.Mutex
	sites map[string]*headerState
}

// headerState is one site's release header value on its way to the store.
type headerState struct {
	id   string    // the value being recorded
	at   time.Time // when it was first seen: the release's start
	busy bool      // a write is under way
	next time.Time // after a failed write, no new attempt before this
}

// offer is called by the proxy, on the request's goroutine, with a
// response's release header value v that differs from the site's current
// release. It returns at once; the write, if one is due, runs on its own
// goroutine.
func (h *releaseHook) offer(site, v string, accept func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sites[site]
	if s == nil {
		s = &headerState{}
		h.sites[site] = s
	}
	if s.busy {
		return
	}
	now := h.clock()
	if s.id != v {
		s.id, s.at = v, now
	}
	if now.Before(s.next) {
		return
	}
	id, at := s.id, s.at
	if h.known(site, id) {
		accept()
		return
	}
	s.busy = true
	// Recording is a durable write: keep it off the request.
	h.pending.Add(1)
	go func() {
		defer h.pending.Done()
		err := h.record(site, id, at)
		h.mu.Lock()
		defer h.mu.Unlock()
		s.busy = false
		if err != nil {
			s.next = h.clock().Add(h.retry)
			return
		}
		s.next = time.Time{}
		accept()
	}()
}

// known reports whether release id of site is recorded, from the releases
// this registry holds in memory (the latest of each site).
func (r *Registry) known(site, id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rel := range r.recent[site] {
		if rel.ID == id {
			return true
		}
	}
	return false
}

// KnownRelease reports whether id is a recorded release of site: from
// memory for the latest releases, else from the store. A store that
// cannot answer is logged (once until it answers again) and the release
// counts as unknown: what cannot be checked is not trusted. It is the
// field-data collector's KnownRelease; safe for concurrent use.
func (r *Registry) KnownRelease(site, id string) bool {
	if r.known(site, id) {
		return true
	}
	_, ok, err := r.o.Store.Release(site, id)
	if err != nil {
		if !r.readFailing.Swap(true) {
			r.o.Logger.Error("cannot check a release against the store; beacons naming releases not in memory count as other until it answers",
				"site", site, "release", id, "err", err)
		}
		return false
	}
	if r.readFailing.Swap(false) {
		r.o.Logger.Info("the store answers release checks again")
	}
	return ok
}

// writeErrors is the counter of failed release writes of site.
func (r *Registry) writeErrors(site string) *metrics.Counter {
	// Not per request: once per site at start, then once per failed write.
	return r.set.GetOrCreateCounter(fmt.Sprintf(`edgevitals_release_write_errors_total{site=%q}`, site))
}

// Record adds a release. It is durable when Record returns.
func (r *Registry) Record(rel store.Release) error {
	if !slices.Contains(r.o.Sites(), rel.Site) {
		return fmt.Errorf("%w: unknown site %q", store.ErrInvalidRelease, rel.Site)
	}
	if err := errors.Join(store.CheckReleaseID(rel.ID), store.CheckReleaseNote(rel.Note)); err != nil {
		return fmt.Errorf("%w: %w", store.ErrInvalidRelease, err)
	}
	if rel.At.IsZero() {
		rel.At = r.o.Clock()
	}
	if err := r.o.AddRelease(rel); err != nil {
		if !errors.Is(err, store.ErrReleaseExists) && !errors.Is(err, store.ErrInvalidRelease) {
			r.writeErrors(rel.Site).Inc()
		}
		return err
	}
	r.remember(rel)
	r.o.Logger.Info("release recorded", "site", rel.Site, "release", rel.ID, "source", rel.Source)
	if r.o.Sampler != nil {
		site, delay := rel.Site, r.o.BurstDelay
		time.AfterFunc(delay, func() { r.o.Sampler.Burst(site) })
	}
	return nil
}

// fromHeader records a release seen in a site's release header at at. It
// returns an error only when trying again later may help: the write
// failed. It logs once per streak of failures, and once when a write
// succeeds after a streak.
func (r *Registry) fromHeader(site, id string, at time.Time) error {
	err := r.Record(store.Release{Site: site, ID: id, At: at, Source: store.SourceHeader})
	switch {
	case errors.Is(err, store.ErrInvalidRelease):
		r.o.Logger.Warn("release from origin header not recorded", "site", site, "release", id, "err", err)
		return nil // the same value will never do
	case err != nil && !errors.Is(err, store.ErrReleaseExists):
		r.mu.Lock()
		r.failing[site]++
		first := r.failing[site] == 1
		r.mu.Unlock()
		if first {
			r.o.Logger.Error("release from origin header not recorded; trying again on a later response",
				"site", site, "release", id, "retry_every", r.o.HeaderRetry, "err", err)
		}
		return err
	}
	r.mu.Lock()
	failed := r.failing[site]
	delete(r.failing, site)
	r.mu.Unlock()
	if failed > 0 {
		r.o.Logger.Info("release from origin header recorded after failed writes", "site", site, "release", id, "failed_writes", failed)
	}
	return nil
}

func (r *Registry) remember(rel store.Release) {
	r.mu.Lock()
	defer r.mu.Unlock()
	list := append(r.recent[rel.Site], rel)
	sort.SliceStable(list, func(i, j int) bool { return list[i].At.Before(list[j].At) })
	if len(list) > keepReleaseInfo {
		list = list[len(list)-keepReleaseInfo:]
	}
	r.recent[rel.Site] = list
}

// writeInfo writes edgevitals_release_info{site,release} = start time in
// unix seconds, for Grafana's release annotations, and
// edgevitals_release_regressed{site,release} = 1 when the latest release's
// report says regressed (0 otherwise), for the alert rule.
func (r *Registry) writeInfo(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sites := make([]string, 0, len(r.recent))
	for s := range r.recent {
		sites = append(sites, s)
	}
	sort.Strings(sites)
	if len(sites) == 0 {
		return
	}
	// One HELP and TYPE per family, then its series: metrics.WriteGauge*
	// repeats the metadata on every call, which promtool rejects.
	metrics.WriteMetadataIfNeeded(w, "edgevitals_release_info", "gauge")
	for _, s := range sites {
		for _, rel := range r.recent[s] {
			fmt.Fprintf(w, "edgevitals_release_info{site=%q,release=%q} %d\n", s, rel.ID, rel.At.Unix())
		}
	}
	metrics.WriteMetadataIfNeeded(w, "edgevitals_release_regressed", "gauge")
	for _, s := range sites {
		list := r.recent[s]
		latest := list[len(list)-1].ID
		v := 0
		if r.regressed[s] == latest {
			v = 1
		}
		fmt.Fprintf(w, "edgevitals_release_regressed{site=%q,release=%q} %d\n", s, latest, v)
	}
}

// MarkVerdict records whether the report of release id, the latest of
// site, says regressed, for edgevitals_release_regressed. It returns true
// when the site's latest release has just turned regressed: once per
// release, however often its report is checked.
func (r *Registry) MarkVerdict(site, id string, regressed bool) (turned bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	was := r.regressed[site]
	if regressed {
		r.regressed[site] = id
	} else if was == id {
		delete(r.regressed, site)
	}
	return regressed && was != id
}
