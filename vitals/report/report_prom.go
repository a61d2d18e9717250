package report

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// SourcePrometheus is the Source of report lines read from Prometheus:
// every node's figures, not one node's.
const SourcePrometheus = "prometheus"

// Bounds of talking to Prometheus.
const (
	// DefaultPromTimeout bounds one query when NewPromSource makes the
	// client.
	DefaultPromTimeout = 10 * time.Second
	// promReportTimeout bounds every query of one report together.
	promReportTimeout = 60 * time.Second
	// maxPromAnswer bounds an answer: a report's queries return a few
	// series each.
	maxPromAnswer = 8 << 20
)

// PromSource reads the fleet-wide figures of release reports from a
// Prometheus-compatible HTTP API (Prometheus, VictoriaMetrics, Thanos,
// Mimir) that scrapes every edgevitals node: hit ratio, origin p95, field
// CWV, sessions and conversions, each over a release's window with
// increase() and histogram_quantile(), as a Grafana panel would. It is
// safe for concurrent use.
type PromSource struct {
	base   string
	client *http.Client
}

// NewPromSource returns a source for the API at baseURL (e.g.
// http://prometheus:9090, or a path prefix before /api/v1). A nil client
// means one with a DefaultPromTimeout timeout. A malformed URL fails the
// first report, with an error that names it.
func NewPromSource(baseURL string, client *http.Client) *PromSource {
	if client == nil {
		client = &http.Client{Timeout: DefaultPromTimeout}
	}
	return &PromSource{base: strings.TrimRight(baseURL, "/"), client: client}
}

// PromError is an error answer of the API, such as bad_data for an
// expression it cannot parse.
type PromError struct {
	Status    int    // HTTP status
	ErrorType string // errorType: bad_data, execution, timeout, ...
	Message   string
}

func (e *PromError) Error() string {
	return fmt.Sprintf("prometheus answered %d %s: %s", e.Status, e.ErrorType, e.Message)
}

// promSample is one element of an instant vector.
type promSample struct {
	labels map[string]string
	value  float64
}

// query evaluates the instant expression expr at time at.
func (ps *PromSource) query(ctx context.Context, expr string, at time.Time) ([]promSample, error) {
	u, err := url.Parse(ps.base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus URL %q: want http(s)://host[:port][/prefix]", redactURL(ps.base))
	}
	form := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ps.base+"/api/v1/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("query prometheus: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := ps.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query prometheus %s: %w", redactURL(ps.base), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxPromAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("query prometheus %s: read answer: %w", redactURL(ps.base), err)
	}
	if len(raw) > maxPromAnswer {
		return nil, fmt.Errorf("query prometheus %q: answer over %d bytes", expr, maxPromAnswer)
	}
	samples, err := decodePromAnswer(resp.StatusCode, raw)
	if err != nil {
		return nil, fmt.Errorf("query prometheus %q: %w", expr, err)
	}
	return samples, nil
}

// decodePromAnswer reads the answer of an instant query: a vector.
func decodePromAnswer(status int, raw []byte) ([]promSample, error) {
	var env struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.Status == "" {
		return nil, fmt.Errorf("HTTP %d, not an answer of the Prometheus API: %.120q", status, raw)
	}
	if env.Status != "success" {
		return nil, &PromError{Status: status, ErrorType: env.ErrorType, Message: env.Error}
	}
	if env.Data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %q, want vector", env.Data.ResultType)
	}
	var vec []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	if err := json.Unmarshal(env.Data.Result, &vec); err != nil {
		return nil, fmt.Errorf("decode vector: %w", err)
	}
	out := make([]promSample, 0, len(vec))
	for _, e := range vec {
		s, ok := e.Value[1].(string) // a string, so NaN and Inf survive JSON
		if !ok {
			return nil, fmt.Errorf("sample value %v: want a string", e.Value[1])
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("sample value %q: %w", s, err)
		}
		out = append(out, promSample{labels: e.Metric, value: v})
	}
	return out, nil
}

// redactURL drops a password from u, for errors and logs.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

// promWindow is what Prometheus holds for one window of a report.
type promWindow struct {
	traffic   store.TrafficPoint                 // requests by cache outcome, uncacheable reasons
	origin    histQuantile                       // p95 of the origin's response time
	field     map[string]map[string]histQuantile // metric -> device -> p75
	sessions  uint64
	converted map[string]uint64 // by goal
}

// window reads [from, to) of site: each query is evaluated at to over a
// range of the window's length. An empty window reads nothing.
func (ps *PromSource) window(ctx context.Context, site string, from, to time.Time) (promWindow, error) {
	w := promWindow{traffic: store.TrafficPoint{Site: site, At: to}, field: map[string]map[string]histQuantile{}, converted: map[string]uint64{}}
	if !from.Before(to) {
		return w, nil
	}
	sel := "{site=" + strconv.Quote(site) + "}"
	rng := "[" + promDuration(to.Sub(from)) + "]"
	q := func(expr string) ([]promSample, error) { return ps.query(ctx, expr, to) }
	inc := func(metric string) string { return "increase(" + metric + sel + rng + ")" }

	// Requests by cache outcome, as edgevitals_requests_total counts them:
	// the hit ratio and the share of each reason not to cache.
	res, err := q("sum by (cache) (" + inc("edgevitals_requests_total") + ")")
	if err != nil {
		return w, err
	}
	for _, s := range res {
		n := promCount(s.value)
		switch s.labels["cache"] {
		case "hit":
			w.traffic.Hit += n
		case "stale":
			w.traffic.Stale += n
		case "miss":
			w.traffic.Miss += n
		case "pass":
			w.traffic.Pass += n
		case "bypass":
			w.traffic.Bypass += n
		case "error":
			w.traffic.Error += n
		}
	}
	if res, err = q("sum by (reason) (" + inc("edgevitals_uncacheable_total") + ")"); err != nil {
		return w, err
	}
	for _, s := range res {
		r, n := s.labels["reason"], promCount(s.value)
		if n == 0 || r == "" || len(r) > store.MaxReasonName || len(w.traffic.Uncacheable) >= store.MaxReasons {
			continue
		}
		if w.traffic.Uncacheable == nil {
			w.traffic.Uncacheable = map[string]uint64{}
		}
		w.traffic.Uncacheable[r] += n
	}

	if w.origin.v, w.origin.ok, err = promScalar(q, "histogram_quantile(0.95, sum by (le) ("+inc("edgevitals_origin_duration_seconds_bucket")+"))"); err != nil {
		return w, err
	}
	if w.origin.n, err = promSum(q, "sum("+inc("edgevitals_origin_duration_seconds_count")+")"); err != nil {
		return w, err
	}

	// Field CWV by device: the p75 as Grafana draws it, and how many page
	// views it stands on.
	for _, m := range fieldMetrics {
		h := "edgevitals_" + m.metric
		byDev := map[string]histQuantile{}
		res, err := q("histogram_quantile(0.75, sum by (device, le) (" + inc(h+"_bucket") + "))")
		if err != nil {
			return w, err
		}
		for _, s := range res {
			if !math.IsNaN(s.value) && !math.IsInf(s.value, 0) && s.value >= 0 {
				byDev[s.labels["device"]] = histQuantile{v: s.value, ok: true}
			}
		}
		if res, err = q("sum by (device) (" + inc(h+"_count") + ")"); err != nil {
			return w, err
		}
		for _, s := range res {
			d := byDev[s.labels["device"]]
			d.n = promCount(s.value)
			byDev[s.labels["device"]] = d
		}
		w.field[m.metric] = byDev
	}

	if w.sessions, err = promSum(q, "sum("+inc("edgevitals_sessions_total")+")"); err != nil {
		return w, err
	}
	if res, err = q("sum by (goal) (" + inc("edgevitals_conversions_total") + ")"); err != nil {
		return w, err
	}
	for _, s := range res {
		if g := s.labels["goal"]; g != "" {
			w.converted[g] += promCount(s.value)
		}
	}
	return w, nil
}

// promDuration writes d for a range selector, in seconds when they are
// whole, else in milliseconds (rounded up), so the range is the window.
func promDuration(d time.Duration) string {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms%1000 == 0 {
		return strconv.FormatInt(int64(ms/1000), 10) + "s"
	}
	return strconv.FormatInt(int64(ms), 10) + "ms"
}

// promScalar is the value of an expression that yields at most one series;
// false when it yields none, or NaN (a histogram without observations).
func promScalar(q func(string) ([]promSample, error), expr string) (float64, bool, error) {
	res, err := q(expr)
	if err != nil || len(res) == 0 {
		return 0, false, err
	}
	v := res[0].value
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, false, nil
	}
	return v, true, nil
}

func promSum(q func(string) ([]promSample, error), expr string) (uint64, error) {
	res, err := q(expr)
	if err != nil || len(res) == 0 {
		return 0, err
	}
	return promCount(res[0].value), nil
}

// promCount rounds an increase() to a count: Prometheus extrapolates to
// the window's edges, so counts of events come back fractional.
func promCount(v float64) uint64 {
	switch {
	case !(v > 0) || math.IsInf(v, 0):
		return 0
	case v >= math.MaxInt64:
		return math.MaxInt64
	}
	return uint64(math.Round(v))
}

// promLines are the lines of a report that come from Prometheus: hit
// ratio and origin p95 first, then field CWV by device and conversion
// rates (after the lab lines, which only the store holds).
func promLines(before, after promWindow, reasons []string, o ReportOptions) (edge, field []Line) {
	edge = []Line{hitRatioLine(before.traffic, after.traffic, reasons, o), originLine(before.origin, after.origin, o)}
	// A p75 read from histograms has no test, so like the origin's p95 it
	// needs more observations than a tested line before the thresholds
	// alone may call it.
	need := max(o.MinSamples, o.MinOriginRequests)
	for _, dev := range reportDevices {
		for _, m := range fieldMetrics {
			b, a := before.field[m.metric][dev], after.field[m.metric][dev]
			if b.n == 0 && a.n == 0 {
				continue
			}
			l := m.comparison(dev, "", o.Thresholds).quantiles(b, a, need, "page views")
			l.Profile = dev
			field = append(field, l)
		}
	}
	goals := map[string]bool{}
	for g := range before.converted {
		goals[g] = true
	}
	for g := range after.converted {
		goals[g] = true
	}
	for _, g := range slices.Sorted(maps.Keys(goals)) {
		field = append(field, conversionLine(g, before.converted[g], before.sessions, after.converted[g], after.sessions, o))
	}
	for i := range edge {
		edge[i].Source = SourcePrometheus
	}
	for i := range field {
		field[i].Source = SourcePrometheus
	}
	return edge, field
}

// lines reads the edge and field lines of both windows of a report from
// Prometheus: PromSource is an EdgeSource.
func (ps *PromSource) lines(site string, w reportWindows, o ReportOptions) (edge, field []Line, reasons []string, err error) {
	pb, pa, err := ps.promReport(site, w.prevFrom, w.from, w.to)
	if err != nil {
		return nil, nil, nil, err
	}
	reasons = newReasons(pb.traffic, pa.traffic)
	edge, field = promLines(pb, pa, reasons, o)
	return edge, field, reasons, nil
}

// promReport reads both windows of a report from Prometheus.
func (ps *PromSource) promReport(site string, prevFrom, from, to time.Time) (before, after promWindow, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), promReportTimeout)
	defer cancel()
	if before, err = ps.window(ctx, site, prevFrom, from); err != nil {
		return before, after, err
	}
	after, err = ps.window(ctx, site, from, to)
	return before, after, err
}
