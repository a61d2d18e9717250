package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/deploy/promtest"
	"github.com/edgevitals/edgevitals/vitals/store"
)

// promCall is one query a fake Prometheus answered.
type promCall struct {
	expr string
	at   time.Time
}

// fakeProm answers the instant query API with answer(expr, at) and
// records the calls.
type fakeProm struct {
	answer func(expr string, at time.Time) (int, string)
	mu     sync.Mutex
	calls  []promCall
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" || r.Method != http.MethodPost {
		http.Error(w, "not the instant query API", http.StatusNotFound)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sec, err := strconv.ParseFloat(r.PostForm.Get("time"), 64)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":%q}`, err.Error())
		return
	}
	at := time.UnixMilli(int64(math.Round(sec * 1000))).UTC()
	expr := r.PostForm.Get("query")
	f.mu.Lock()
	f.calls = append(f.calls, promCall{expr, at})
	f.mu.Unlock()
	status, body := f.answer(expr, at)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

// vector is an API answer: pairs of a label (name=value, or "" for none)
// and a value.
func vector(pairs ...string) string {
	var b strings.Builder
	b.WriteString(`{"status":"success","data":{"resultType":"vector","result":[`)
	for i := 0; i+1 < len(pairs); i += 2 {
		if i > 0 {
			b.WriteString(",")
		}
		labels := "{}"
		if name, value, ok := strings.Cut(pairs[i], "="); ok {
			labels = fmt.Sprintf(`{%q:%q}`, name, value)
		}
		fmt.Fprintf(&b, `{"metric":%s,"value":[1700000000.123,%q]}`, labels, pairs[i+1])
	}
	b.WriteString("]}}")
	return b.String()
}

// TestBuildReportPrometheus: with a PromSource, hit ratio, origin p95,
// field CWV and conversions come from the PromQL API over each window,
// labelled as such, and not from this node's store.
func TestBuildReportPrometheus(t *testing.T) {
	st := openTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	t0 := reportStart
	t1 := t0.Add(2 * time.Hour)
	now := t1.Add(90 * time.Minute)
	for _, r := range []store.Release{{Site: "blog", ID: "v1", At: t0}, {Site: "blog", ID: "v2", At: t1}} {
		if err := st.AddRelease(r); err != nil {
			t.Fatal(err)
		}
	}
	// This node alone saw a steady 50% hit ratio, and three lab samples.
	for i, at := range []time.Time{t0, t1} {
		for j := range 3 {
			if err := st.AddTraffic(store.TrafficPoint{Site: "blog", At: at.Add(time.Duration(j+1) * time.Minute), Hit: 500, Miss: 500}); err != nil {
				t.Fatal(err)
			}
			if err := st.AddSample("blog", "/", store.Sample{Profile: "mobile", At: at.Add(time.Duration(j) * time.Minute), LCP: dur(time.Duration(i+1) * time.Second)}); err != nil {
				t.Fatal(err)
			}
		}
	}

	fp := &fakeProm{answer: func(expr string, at time.Time) (int, string) {
		after := at.Equal(now)
		pick := func(before, afterV string) string {
			if after {
				return afterV
			}
			return before
		}
		switch {
		case strings.HasPrefix(expr, "sum by (cache) "):
			return 200, vector("cache=hit", pick("900.4", "600"), "cache=miss", pick("99.6", "300"), "cache=pass", pick("0", "100"), "cache=bypass", "7")
		case strings.HasPrefix(expr, "sum by (reason) "):
			return 200, vector("reason=private", "10", "reason=set_cookie", pick("0", "400"))
		case strings.HasPrefix(expr, "histogram_quantile(0.95, "):
			return 200, vector("", pick("0.2", "0.21"))
		case strings.HasPrefix(expr, "sum(increase(edgevitals_origin_duration_seconds_count"):
			return 200, vector("", "100")
		case strings.Contains(expr, "edgevitals_field_lcp_seconds_bucket"):
			return 200, vector("device=mobile", pick("2.5", "3.2"), "device=desktop", "1.4", "device=tablet", "NaN")
		case strings.Contains(expr, "edgevitals_field_lcp_seconds_count"):
			return 200, vector("device=mobile", "500", "device=desktop", "500")
		case strings.Contains(expr, "edgevitals_field_inp_seconds_bucket"):
			return 200, vector("device=mobile", "NaN") // histograms without observations
		case strings.Contains(expr, "edgevitals_field_inp_seconds_count"):
			return 200, vector("device=mobile", "0")
		case strings.HasPrefix(expr, "sum(increase(edgevitals_sessions_total"):
			return 200, vector("", "1000")
		case strings.HasPrefix(expr, "sum by (goal) "):
			return 200, vector("goal=order", pick("50", "20"))
		}
		return 200, vector()
	}}
	srv := httptest.NewServer(fp)
	t.Cleanup(srv.Close)

	rep, err := Build(st, "blog", "v2", ReportOptions{Now: now, Edge: NewPromSource(srv.URL+"/", srv.Client())})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		verdict       Verdict
		before, after float64
		nb, na        int
		source        string
		test          bool
	}
	wants := map[lineKey]want{
		{"hit_ratio", "", ""}:                {Regressed, 0.9, 0.6, 1000, 1000, SourcePrometheus, true},
		{"origin_p95_seconds", "", ""}:       {Same, 0.2, 0.21, 100, 100, SourcePrometheus, false},
		{"lab_lcp_seconds", "/", "mobile"}:   {NotEnoughData, 1, 2, 3, 3, "", false},
		{"field_lcp_seconds", "", "mobile"}:  {Regressed, 2.5, 3.2, 500, 500, SourcePrometheus, false},
		{"field_lcp_seconds", "", "desktop"}: {Same, 1.4, 1.4, 500, 500, SourcePrometheus, false},
		{"conversion_rate", "order", ""}:     {Regressed, 0.05, 0.02, 1000, 1000, SourcePrometheus, true},
		// No field_inp_seconds line: nobody measured INP.
	}
	seen := 0
	for _, l := range rep.Lines {
		k := lineKey{l.Metric, l.Page + l.Goal, l.Profile}
		w, ok := wants[k]
		if !ok {
			t.Errorf("unexpected line %v: %+v", k, l)
			continue
		}
		seen++
		if l.Verdict != w.verdict || !near(l.Before, w.before, 1e-9) || !near(l.After, w.after, 1e-9) || l.NBefore != w.nb || l.NAfter != w.na ||
			l.Source != w.source || (l.PValue != nil) != w.test {
			t.Errorf("line %v = %q %v -> %v (%d/%d), source %q, p %v; want %q %v -> %v (%d/%d), source %q, a test %v",
				k, l.Verdict, l.Before, l.After, l.NBefore, l.NAfter, l.Source, l.PValue, w.verdict, w.before, w.after, w.nb, w.na, w.source, w.test)
		}
	}
	if seen != len(wants) {
		t.Errorf("%d lines, want %d", seen, len(wants))
	}
	if rep.Verdict != Regressed || len(rep.NewUncacheable) != 1 || rep.NewUncacheable[0] != "set_cookie" {
		t.Errorf("report = %q, new uncacheable %q; want regressed, [set_cookie]", rep.Verdict, rep.NewUncacheable)
	}

	// Each window is read at its end, over its length, for this site only.
	fp.mu.Lock()
	calls := fp.calls
	fp.mu.Unlock()
	if len(calls) == 0 {
		t.Fatal("no query reached Prometheus")
	}
	for _, c := range calls {
		rng := "[5400s]"
		if c.at.Equal(t1) {
			rng = "[7200s]"
		} else if !c.at.Equal(now) {
			t.Errorf("query %q at %v, want at %v or %v", c.expr, c.at, t1, now)
		}
		if !strings.Contains(c.expr, `{site="blog"}`+rng) {
			t.Errorf("query %q at %v: want the selector {site=\"blog\"}%s", c.expr, c.at, rng)
		}
	}

	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"every node, from Prometheus", "goal order"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, b.String())
		}
	}
}

func TestPromSourceErrors(t *testing.T) {
	st := openTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	for _, r := range []store.Release{{Site: "blog", ID: "v1", At: reportStart}, {Site: "blog", ID: "v2", At: reportStart.Add(time.Hour)}} {
		if err := st.AddRelease(r); err != nil {
			t.Fatal(err)
		}
	}
	answering := func(status int, body string) string {
		srv := httptest.NewServer(&fakeProm{answer: func(string, time.Time) (int, string) { return status, body }})
		t.Cleanup(srv.Close)
		return srv.URL
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := strings.Replace(closed.URL, "http://", "http://edge:s3cret@", 1)
	closed.Close()
	tests := []struct {
		name    string
		url     string
		want    string // in the error
		promErr string // the PromError's type, if one
	}{
		{"an expression it rejects", answering(400, `{"status":"error","errorType":"bad_data","error":"parse error at char 5"}`), "parse error at char 5", "bad_data"},
		{"a proxy's error page", answering(502, "<html>Bad Gateway</html>"), "HTTP 502, not an answer of the Prometheus API", ""},
		{"a range vector", answering(200, `{"status":"success","data":{"resultType":"matrix","result":[]}}`), `result type "matrix", want vector`, ""},
		{"a number for a value", answering(200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,2]}]}}`), "want a string", ""},
		{"no scheme", "prometheus:9090", `prometheus URL "prometheus:9090"`, ""},
		{"nobody listening, password redacted", closedURL, "edge:xxxxx@", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(st, "blog", "v2", ReportOptions{Now: reportStart.Add(2 * time.Hour), Edge: NewPromSource(tt.url, nil)})
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("BuildReport error = %v, want one containing %q (and no password)", err, tt.want)
			}
			var pe *PromError
			if got := errors.As(err, &pe); got != (tt.promErr != "") || (got && pe.ErrorType != tt.promErr) {
				t.Errorf("error %v: PromError %v, want type %q", err, pe, tt.promErr)
			}
		})
	}
}

func TestPromDuration(t *testing.T) {
	f := func(d time.Duration, want string) {
		t.Helper()
		if got := promDuration(d); got != want {
			t.Errorf("promDuration(%v) = %q, want %q", d, got, want)
		}
	}
	f(2*time.Hour, "7200s")
	f(2300*time.Millisecond, "2300ms")
	f(2300*time.Millisecond+time.Microsecond, "2301ms")
	f(time.Nanosecond, "1ms")
	f(7*24*time.Hour, "604800s")
}

func TestPromCount(t *testing.T) {
	f := func(v float64, want uint64) {
		t.Helper()
		if got := promCount(v); got != want {
			t.Errorf("promCount(%v) = %d, want %d", v, got, want)
		}
	}
	f(199.6, 200)
	f(0.4, 0)
	f(-3, 0)
	f(math.NaN(), 0)
	f(math.Inf(1), 0)
	f(1e30, math.MaxInt64)
}

func FuzzPromAnswer(f *testing.F) {
	f.Add(200, []byte(vector("cache=hit", "12.5", "", "NaN")))
	f.Add(400, []byte(`{"status":"error","errorType":"bad_data","error":"x"}`))
	f.Add(200, []byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":null,"value":[1,"+Inf"]}]}}`))
	f.Fuzz(func(t *testing.T, status int, raw []byte) {
		samples, err := decodePromAnswer(status, raw)
		if err != nil && samples != nil {
			t.Errorf("decodePromAnswer = %v and error %v; want one or the other", samples, err)
		}
		for _, s := range samples {
			_ = s.labels["device"] // a nil map reads as empty
		}
	})
}

// fleetNode is one edgevitals node's /metrics, as Prometheus scrapes it: the
// requests counters of site blog, which the test moves.
type fleetNode struct{ hit, miss atomic.Int64 }

func (n *fleetNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "edgevitals_requests_total{site=\"blog\",cache=\"hit\"} %d\n", n.hit.Load())
	fmt.Fprintf(w, "edgevitals_requests_total{site=\"blog\",cache=\"miss\"} %d\n", n.miss.Load())
}

func (n *fleetNode) add(hit, miss int64) {
	n.hit.Add(hit)
	n.miss.Add(miss)
}

func serveFleetNode(t *testing.T, n *fleetNode) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: n, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l) //nolint:errcheck // returns ErrServerClosed at Close
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// TestFleetReportPrometheus is the check: a real Prometheus scrapes
// two nodes, and the report's hit ratio counts both nodes' traffic. Node A
// serves 90% hits throughout; node B 50% before the release and 10% after.
// Alone, A would say 90% -> 90% (same) and B 50% -> 10%; together they say
// 70% -> 50%, regressed.
func TestFleetReportPrometheus(t *testing.T) {
	a, b := &fleetNode{}, &fleetNode{}
	prom := promtest.Start(t, []string{serveFleetNode(t, a), serveFleetNode(t, b)}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const series = `edgevitals_requests_total{site="blog"}`
	if err := prom.WaitFor(ctx, "count("+series+")", func(s []promtest.Sample) bool { return len(s) == 1 && s[0].Value == 4 }); err != nil {
		t.Fatalf("both nodes scraped: %v", err)
	}
	// scraped waits until Prometheus holds a sample of every series taken
	// after at: what the counters were then is in its store.
	scraped := func(at time.Time) {
		t.Helper()
		want := float64(at.UnixMilli()) / 1000
		if err := prom.WaitFor(ctx, "min(timestamp("+series+"))", func(s []promtest.Sample) bool { return len(s) == 1 && s[0].Value > want }); err != nil {
			t.Fatal(err)
		}
	}

	st := openTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	t0 := time.Now()
	scraped(t0) // the counters at v1's start are inside its window
	a.add(90, 10)
	b.add(50, 50)
	scraped(time.Now())
	t1 := time.Now()
	scraped(t1)
	a.add(90, 10)
	b.add(10, 90)
	scraped(time.Now())
	now := time.Now()
	for _, r := range []store.Release{{Site: "blog", ID: "v1", At: t0}, {Site: "blog", ID: "v2", At: t1}} {
		if err := st.AddRelease(r); err != nil {
			t.Fatal(err)
		}
	}

	rep, err := Build(st, "blog", "v2", ReportOptions{Now: now, Edge: NewPromSource(prom.URL, nil)})
	if err != nil {
		t.Fatal(err)
	}
	l := rep.Lines[0]
	if l.Metric != "hit_ratio" || l.Source != SourcePrometheus {
		t.Fatalf("first line = %+v, want the hit ratio from prometheus", l)
	}
	// increase() extrapolates each node's counters to the window's edges
	// by its own scrape times, which weighs the nodes a little unevenly;
	// one node alone is far outside these bounds.
	if !(l.Before > 0.6 && l.Before < 0.8) || !(l.After > 0.3 && l.After < 0.7) || l.NBefore < 200 || l.NAfter < 200 {
		t.Errorf("hit ratio = %.3f -> %.3f of %d/%d requests, want about 70%% -> 50%% of at least 200 each (both nodes)", l.Before, l.After, l.NBefore, l.NAfter)
	}
	if l.Verdict != Regressed || l.PValue == nil {
		t.Errorf("hit ratio verdict = %q (%s), want regressed", l.Verdict, l.Why)
	}
}
