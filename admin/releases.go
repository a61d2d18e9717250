package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/cache"
	"github.com/edgevitals/edgevitals/proxy"
	"github.com/edgevitals/edgevitals/vitals/release"
	"github.com/edgevitals/edgevitals/vitals/report"
	"github.com/edgevitals/edgevitals/vitals/store"
)

// ReleasesOptions configure the release endpoints, the traffic recorder
// and the regression check.
type ReleasesOptions struct {
	Registry *release.Registry // where releases are recorded; required
	Store    *store.Store      // where traffic is recorded and reports read; required
	Report   report.ReportOptions
	Clock    func() time.Time
	Logger   *slog.Logger
	// Notify is called when the latest release of a site turns regressed
	// (the built-in webhook), on Run's goroutine; nil means no notice.
	Notify func(site string, rep report.Report)
}

// Releases records a minute of each site's traffic at a time for the
// reports (from the proxy's Snapshot), checks each site's latest release
// for a regression, and answers /api/releases and /api/report.
type Releases struct {
	o     ReleasesOptions
	proxy *proxy.Server
	mu    sync.Mutex
	last  map[string]proxy.Counters // cumulative counts at the previous recording
}

// NewReleases builds the release endpoints and recorder for the sites of p.
func NewReleases(p *proxy.Server, o ReleasesOptions) (*Releases, error) {
	if o.Registry == nil || o.Store == nil {
		return nil, errors.New("releases: a registry and a store are required")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Releases{o: o, proxy: p, last: map[string]proxy.Counters{}}, nil
}

// CheckRegressions builds the report of each site's latest release and
// notifies once when it turns regressed.
func (r *Releases) CheckRegressions() {
	o := r.o.Report
	o.Now = r.o.Clock()
	for _, site := range r.proxy.Sites() {
		rep, err := report.Build(r.o.Store, site, "", o)
		switch {
		case errors.Is(err, store.ErrNoRelease), errors.Is(err, store.ErrNoPredecessor), errors.Is(err, store.ErrPredecessorGone):
			continue // nothing to compare
		case err != nil:
			r.o.Logger.Error("check the latest release for a regression", "site", site, "err", err)
			continue
		}
		turned := r.o.Registry.MarkVerdict(site, rep.Release.ID, rep.Verdict == report.Regressed)
		if turned && r.o.Notify != nil {
			r.o.Notify(site, rep)
		}
	}
}

// RecordTraffic stores one point per site: what happened since the last call.
func (r *Releases) RecordTraffic() {
	now := r.o.Clock()
	for _, site := range r.proxy.Sites() {
		cur, ok := r.proxy.Snapshot(site)
		if !ok {
			continue // removed by a reload since Sites
		}
		r.mu.Lock()
		prev, seen := r.last[site]
		r.last[site] = cur
		r.mu.Unlock()
		if !seen {
			continue // the first call only sets the baseline
		}
		d := func(o proxy.Outcome) uint64 { return cur.Requests[o] - prev.Requests[o] }
		p := store.TrafficPoint{
			Site: site, At: now,
			Hit: d(proxy.OutcomeHit), Stale: d(proxy.OutcomeStale), Miss: d(proxy.OutcomeMiss),
			Pass: d(proxy.OutcomePass), Bypass: d(proxy.OutcomeBypass), Error: d(proxy.OutcomeError),
			Origin: cur.Origin - prev.Origin, OriginErrors: cur.OriginErrors - prev.OriginErrors,
			OriginBuckets: make([]uint64, len(cur.OriginBuckets)),
			Uncacheable:   map[string]uint64{},
		}
		for i := range cur.OriginBuckets {
			p.OriginBuckets[i] = cur.OriginBuckets[i] - prev.OriginBuckets[i]
		}
		for i := cache.Reason(1); i < cache.NumReasons; i++ {
			if d := cur.Uncacheable[i] - prev.Uncacheable[i]; d > 0 {
				p.Uncacheable[i.String()] = d
			}
		}
		if err := r.o.Store.AddTraffic(p); err != nil {
			r.o.Logger.Error("record traffic", "site", site, "err", err)
		}
	}
}

// Run records traffic every minute, then checks for regressions, until
// ctx ends.
func (r *Releases) Run(ctx context.Context) {
	r.RecordTraffic()
	every(ctx, time.Minute, func() {
		r.RecordTraffic()
		r.CheckRegressions()
	})
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
	rel := store.Release{Site: req.Site, ID: req.ID, Note: req.Note, Source: store.SourceAPI}
	if req.At != "" {
		at, err := time.Parse(time.RFC3339, req.At)
		if err != nil {
			jsonError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("at: want RFC 3339, got %q", req.At))
			return
		}
		rel.At = at
	}
	if src := string(ctx.QueryArgs().Peek("source")); src == store.SourceCLI {
		rel.Source = src
	}
	switch err := r.o.Registry.Record(rel); {
	case errors.Is(err, store.ErrReleaseExists):
		jsonError(ctx, fasthttp.StatusConflict, fmt.Sprintf("release %q of site %q is already recorded", rel.ID, rel.Site))
	case errors.Is(err, store.ErrInvalidRelease):
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
	if site != "" && !r.proxy.HasSite(site) {
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
		list = []store.Release{}
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
		sites := r.proxy.Sites()
		if len(sites) != 1 {
			jsonError(ctx, fasthttp.StatusBadRequest, "site is required when more than one site is configured")
			return
		}
		site = sites[0]
	}
	if !r.proxy.HasSite(site) {
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
	rep, err := report.Build(r.o.Store, site, id, o)
	switch {
	case errors.Is(err, store.ErrNoRelease):
		jsonError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("release %q of site %q is not recorded", id, site))
	case errors.Is(err, store.ErrNoPredecessor):
		writeJSON(ctx, fasthttp.StatusConflict, ReportError{
			Error:  fmt.Sprintf("release %q is the first of site %q: nothing to compare it with", id, site),
			Reason: ReasonFirstRelease,
		})
	case errors.Is(err, store.ErrPredecessorGone):
		writeJSON(ctx, fasthttp.StatusUnprocessableEntity, ReportError{Error: err.Error(), Reason: ReasonCannotCompare})
	case err != nil:
		r.o.Logger.Error("build report", "site", site, "release", id, "err", err)
		jsonError(ctx, fasthttp.StatusInternalServerError, "report error")
	default:
		writeJSON(ctx, fasthttp.StatusOK, rep)
	}
}
