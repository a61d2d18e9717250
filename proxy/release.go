package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/cache"
	"github.com/edgevitals/edgevitals/vitals"
)

// Burster is the part of the lab sampler releases use: extra samples soon
// after a release, so a verdict is possible within the hour.
type Burster interface{ Burst(site string) }

// ReleaseOptions configure the release registry.
type ReleaseOptions struct {
	Store      *vitals.Store
	Sampler    Burster       // may be nil
	BurstDelay time.Duration // wait for the cache to refill before the burst; default 2m
	Metrics    *metrics.Set
	Report     vitals.ReportOptions
	Clock      func() time.Time
	Logger     *slog.Logger
	// Notify is called when the latest release of a site turns regressed
	// (the built-in webhook); may be nil.
	Notify func(site string, rep vitals.Report)
	// AddRelease, when set, writes a release in place of
	// Store.AddRelease (a writer that also mirrors releases elsewhere). It
	// is called on the goroutine that records the release: the API
	// handler's, or the one a release header change starts. It must be
	// durable when it returns nil, and return vitals.ErrReleaseExists
	// (wrapped) for a release already recorded. nil means Store.AddRelease.
	AddRelease func(vitals.Release) error
	// HeaderRetry is how long a site waits after a release seen in its
	// release header failed to be written before a later origin response
	// tries again, on Clock; 0 means DefaultHeaderRetry.
	HeaderRetry time.Duration
}

// DefaultHeaderRetry spaces the writes of a release seen in a release
// header while the store fails: one attempt per site per interval, however
// many responses carry the header.
const DefaultHeaderRetry = 30 * time.Second

// Releases records each site's releases (from CI/CD through the admin API
// and the CLI, or from a change of the origin's release header), records a
// minute of traffic at a time for the reports, exports
// edgevitals_release_info and answers /api/releases and /api/report.
type Releases struct {
	o     ReleaseOptions
	proxy *Server
	hook  *releaseHook

	set       *metrics.Set // o.Metrics, or a set of its own
	mu        sync.Mutex
	recent    map[string][]vitals.Release // per site, newest last, at most keepReleaseInfo
	last      map[string]trafficCounts    // cumulative counts at the previous recording
	regressed map[string]string           // site -> latest release id when its report regressed
	failing   map[string]int              // site -> header release writes failed in a row

	readFailing atomic.Bool // KnownRelease's store reads fail
}

// keepReleaseInfo bounds the release label of edgevitals_release_info.
const keepReleaseInfo = 20

// NewReleases builds the registry for a proxy and hooks it to the proxy's
// release header detection.
func NewReleases(p *Server, o ReleaseOptions) (*Releases, error) {
	if o.Store == nil {
		return nil, errors.New("releases: a store is required")
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
	r := &Releases{o: o, proxy: p, set: o.Metrics, recent: map[string][]vitals.Release{}, last: map[string]trafficCounts{},
		regressed: map[string]string{}, failing: map[string]int{}}
	if r.set == nil {
		r.set = metrics.NewSet()
	}
	for _, st := range p.sitesNow() {
		r.writeErrors(st.Name) // every configured site's series, at 0
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
	p.onRelease.Store(r.hook)
	return r, nil
}

// Sync waits until every release detected from an origin header so far has
// been written, or has failed to be.
func (r *Releases) Sync() { r.hook.pending.Wait() }

// releaseHook is how the proxy hands over a release header value it has not
// recorded: a value counts as seen (site.release) only once it is written,
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
// response's release header value v that differs from st.release. It
// returns at once; the write, if one is due, runs on its own goroutine.
func (h *releaseHook) offer(st *site, v []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sites[st.Name]
	if s == nil {
		s = &headerState{}
		h.sites[st.Name] = s
	}
	if s.busy {
		return
	}
	now := h.clock()
	if s.id != string(v) {
		s.id, s.at = string(v), now
	}
	if now.Before(s.next) {
		return
	}
	id, at := s.id, s.at
	if h.known(st.Name, id) {
		st.release.Store(&id)
		return
	}
	s.busy = true
	// Recording is a durable write: keep it off the request.
	h.pending.Add(1)
	go func() {
		defer h.pending.Done()
		err := h.record(st.Name, id, at)
		h.mu.Lock()
		defer h.mu.Unlock()
		s.busy = false
		if err != nil {
			s.next = h.clock().Add(h.retry)
			return
		}
		s.next = time.Time{}
		st.release.Store(&id)
	}()
}

// known reports whether release id of site is recorded, from the releases
// this registry holds in memory (the latest of each site).
func (r *Releases) known(site, id string) bool {
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
func (r *Releases) KnownRelease(site, id string) bool {
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
func (r *Releases) writeErrors(site string) *metrics.Counter {
	// Not per request: once per site at start, then once per failed write.
	return r.set.GetOrCreateCounter(fmt.Sprintf(`edgevitals_release_write_errors_total{site=%q}`, site))
}

// releaseID is what a release id may look like: it becomes a label value.
var releaseID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:+-]{0,63}$`)

// Record adds a release. It is durable when Record returns.
func (r *Releases) Record(rel vitals.Release) error {
	if r.proxy.siteNamed(rel.Site) == nil {
		return fmt.Errorf("%w: unknown site %q", vitals.ErrInvalidRelease, rel.Site)
	}
	if !releaseID.MatchString(rel.ID) {
		return fmt.Errorf("%w: release id %q: want 1-64 of A-Z a-z 0-9 . _ : + -", vitals.ErrInvalidRelease, rel.ID)
	}
	if len(rel.Note) > 1024 {
		return fmt.Errorf("%w: note longer than 1024 bytes", vitals.ErrInvalidRelease)
	}
	if rel.At.IsZero() {
		rel.At = r.o.Clock()
	}
	if err := r.o.AddRelease(rel); err != nil {
		if !errors.Is(err, vitals.ErrReleaseExists) && !errors.Is(err, vitals.ErrInvalidRelease) {
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
func (r *Releases) fromHeader(site, id string, at time.Time) error {
	err := r.Record(vitals.Release{Site: site, ID: id, At: at, Source: vitals.SourceHeader})
	switch {
	case errors.Is(err, vitals.ErrInvalidRelease):
		r.o.Logger.Warn("release from origin header not recorded", "site", site, "release", id, "err", err)
		return nil // the same value will never do
	case err != nil && !errors.Is(err, vitals.ErrReleaseExists):
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

func (r *Releases) remember(rel vitals.Release) {
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
func (r *Releases) writeInfo(w io.Writer) {
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

// CheckRegressions builds the report of each site's latest release and
// notifies once when it turns regressed.
func (r *Releases) CheckRegressions() {
	o := r.o.Report
	o.Now = r.o.Clock()
	for _, st := range r.proxy.sitesNow() {
		rep, err := r.o.Store.BuildReport(st.Name, "", o)
		switch {
		case errors.Is(err, vitals.ErrNoRelease), errors.Is(err, vitals.ErrNoPredecessor), errors.Is(err, vitals.ErrPredecessorGone):
			continue // nothing to compare
		case err != nil:
			r.o.Logger.Error("check the latest release for a regression", "site", st.Name, "err", err)
			continue
		}
		r.mu.Lock()
		was := r.regressed[st.Name]
		now := rep.Verdict == vitals.Regressed
		if now {
			r.regressed[st.Name] = rep.Release.ID
		} else if was == rep.Release.ID {
			delete(r.regressed, st.Name)
		}
		r.mu.Unlock()
		if now && was != rep.Release.ID && r.o.Notify != nil {
			r.o.Notify(st.Name, rep)
		}
	}
}

// trafficCounts are a site's cumulative counters at one moment.
type trafficCounts struct {
	outcomes    [numOutcomes]uint64
	origin      uint64
	originErr   uint64
	buckets     []uint64
	uncacheable [cache.NumReasons]uint64
}

// RecordTraffic stores one point per site: what happened since the last call.
func (r *Releases) RecordTraffic() {
	now := r.o.Clock()
	for _, st := range r.proxy.sitesNow() {
		cur := st.metrics.counts()
		r.mu.Lock()
		prev, seen := r.last[st.Name]
		r.last[st.Name] = cur
		r.mu.Unlock()
		if !seen {
			continue // the first call only sets the baseline
		}
		p := vitals.TrafficPoint{
			Site: st.Name, At: now,
			Hit: cur.outcomes[outcomeHit] - prev.outcomes[outcomeHit], Stale: cur.outcomes[outcomeStale] - prev.outcomes[outcomeStale],
			Miss: cur.outcomes[outcomeMiss] - prev.outcomes[outcomeMiss], Pass: cur.outcomes[outcomePass] - prev.outcomes[outcomePass],
			Bypass: cur.outcomes[outcomeBypass] - prev.outcomes[outcomeBypass], Error: cur.outcomes[outcomeError] - prev.outcomes[outcomeError],
			Origin: cur.origin - prev.origin, OriginErrors: cur.originErr - prev.originErr,
			OriginBuckets: make([]uint64, len(cur.buckets)),
			Uncacheable:   map[string]uint64{},
		}
		for i := range cur.buckets {
			p.OriginBuckets[i] = cur.buckets[i] - prev.buckets[i]
		}
		for i := cache.Reason(1); i < cache.NumReasons; i++ {
			if d := cur.uncacheable[i] - prev.uncacheable[i]; d > 0 {
				p.Uncacheable[i.String()] = d
			}
		}
		if err := r.o.Store.AddTraffic(p); err != nil {
			r.o.Logger.Error("record traffic", "site", st.Name, "err", err)
		}
	}
}

// Run records traffic every minute until ctx ends.
func (r *Releases) Run(ctx context.Context) error {
	r.RecordTraffic()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			r.RecordTraffic()
			r.CheckRegressions()
		}
	}
}

// Register adds the release endpoints to the admin API.
func (r *Releases) Register(a *Admin) {
	a.Handle("POST", "/api/releases", r.apiAdd, true)
	a.Handle("GET", "/api/releases", r.apiList, false)
	a.Handle("GET", "/api/report", r.apiReport, false)
}

// ReleaseRequest is the body of POST /api/releases.
type ReleaseRequest struct {
	Site string `json:"site"`
	ID   string `json:"id"`
	Note string `json:"note"`
	At   string `json:"at"` // RFC 3339, optional
}

func (r *Releases) apiAdd(ctx *fasthttp.RequestCtx) {
	var req ReleaseRequest
	if err := decodeBody(ctx, &req); err != nil {
		jsonError(ctx, fasthttp.StatusBadRequest, "bad release: "+err.Error())
		return
	}
	rel := vitals.Release{Site: req.Site, ID: req.ID, Note: req.Note, Source: "api"}
	if req.At != "" {
		at, err := time.Parse(time.RFC3339, req.At)
		if err != nil {
			jsonError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("at: want RFC 3339, got %q", req.At))
			return
		}
		rel.At = at
	}
	if src := string(ctx.QueryArgs().Peek("source")); src == "cli" {
		rel.Source = src
	}
	switch err := r.Record(rel); {
	case errors.Is(err, vitals.ErrReleaseExists):
		jsonError(ctx, fasthttp.StatusConflict, fmt.Sprintf("release %q of site %q is already recorded", rel.ID, rel.Site))
	case errors.Is(err, vitals.ErrInvalidRelease):
		jsonError(ctx, fasthttp.StatusBadRequest, err.Error())
	case err != nil:
		r.o.Logger.Error("record release", "site", rel.Site, "release", rel.ID, "err", err)
		jsonError(ctx, fasthttp.StatusInternalServerError, fmt.Sprintf("release %q of site %q not recorded: store error", rel.ID, rel.Site))
	default:
		// Just written; read back for the time the store filled in.
		stored, ok, err := r.o.Store.Release(rel.Site, rel.ID)
		if err != nil || !ok {
			r.o.Logger.Error("read back a recorded release", "site", rel.Site, "release", rel.ID, "found", ok, "err", err)
			jsonError(ctx, fasthttp.StatusInternalServerError, fmt.Sprintf("release %q of site %q was recorded, but reading it back failed", rel.ID, rel.Site))
			return
		}
		writeJSON(ctx, fasthttp.StatusCreated, stored)
	}
}

func (r *Releases) apiList(ctx *fasthttp.RequestCtx) {
	site := string(ctx.QueryArgs().Peek("site"))
	if site != "" && r.proxy.siteNamed(site) == nil {
		jsonError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("unknown site %q", site))
		return
	}
	list, err := r.o.Store.Releases(site)
	if err != nil {
		r.o.Logger.Error("list releases", "err", err)
		jsonError(ctx, fasthttp.StatusInternalServerError, "store error")
		return
	}
	if list == nil {
		list = []vitals.Release{}
	}
	writeJSON(ctx, fasthttp.StatusOK, list)
}

// ReportError is the body of a GET /api/report that has no report: Error
// for people, Reason for programs (a guardrail lets only a site's first
// release through without a report).
type ReportError struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

// Reasons of a ReportError.
const (
	// ReasonFirstRelease (409): the site's very first release, nothing it
	// could have regressed against.
	ReasonFirstRelease = "first_release"
	// ReasonCannotCompare (422): the release had a predecessor, but the
	// store no longer holds it (retention deleted it).
	ReasonCannotCompare = "cannot_compare"
)

func (r *Releases) apiReport(ctx *fasthttp.RequestCtx) {
	site := string(ctx.QueryArgs().Peek("site"))
	id := string(ctx.QueryArgs().Peek("release"))
	if site == "" {
		sites := r.proxy.sitesNow()
		if len(sites) != 1 {
			jsonError(ctx, fasthttp.StatusBadRequest, "site is required when more than one site is configured")
			return
		}
		site = sites[0].Name
	}
	if r.proxy.siteNamed(site) == nil {
		jsonError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("unknown site %q", site))
		return
	}
	if id == "" {
		list, err := r.o.Store.Releases(site)
		if err != nil {
			r.o.Logger.Error("build report: list releases", "site", site, "err", err)
			jsonError(ctx, fasthttp.StatusInternalServerError, "store error")
			return
		}
		if len(list) == 0 {
			jsonError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("site %q has no release yet", site))
			return
		}
		id = list[len(list)-1].ID
	}
	o := r.o.Report
	o.Now = r.o.Clock()
	rep, err := r.o.Store.BuildReport(site, id, o)
	switch {
	case errors.Is(err, vitals.ErrNoRelease):
		jsonError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("release %q of site %q is not recorded", id, site))
	case errors.Is(err, vitals.ErrNoPredecessor):
		writeJSON(ctx, fasthttp.StatusConflict, ReportError{
			Error:  fmt.Sprintf("release %q is the first of site %q: nothing to compare it with", id, site),
			Reason: ReasonFirstRelease,
		})
	case errors.Is(err, vitals.ErrPredecessorGone):
		writeJSON(ctx, fasthttp.StatusUnprocessableEntity, ReportError{Error: err.Error(), Reason: ReasonCannotCompare})
	case err != nil:
		r.o.Logger.Error("build report", "site", site, "release", id, "err", err)
		jsonError(ctx, fasthttp.StatusInternalServerError, "report error")
	default:
		writeJSON(ctx, fasthttp.StatusOK, rep)
	}
}
