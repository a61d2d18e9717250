// Package promtest runs a real Prometheus server on loopback for tests, so that the
// edgevitals rules and dashboard are checked by the engine that users run, not by a mock.
//
// Start writes a config, starts the `prometheus` binary (Debian's package, or any on
// PATH) on 127.0.0.1 with a free port and a temporary storage directory, waits until it is
// ready and stops it when the test ends. Query, WaitFor and Alerts read its HTTP API.
//
// When the binaries are missing, tests skip with a loud message, unless the environment
// variable CI is set: in CI a missing Prometheus is a failure, never a silent pass.
package promtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Timeouts bound every wait, so a broken Prometheus fails a test instead of hanging it.
const (
	startTimeout   = 60 * time.Second
	stopTimeout    = 15 * time.Second
	requestTimeout = 10 * time.Second
	pollInterval   = 100 * time.Millisecond
	startAttempts  = 3 // a free port can be taken between choosing it and binding it
)

// Sample is one element of an instant query result: its labels (with __name__ when the
// expression keeps it) and its value. A scalar result is one Sample with no labels.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Alert is one pending or firing alert as Prometheus reports it.
type Alert struct {
	Name        string // the alertname label
	State       string // "pending" or "firing"
	Labels      map[string]string
	Annotations map[string]string
}

// APIError is an error answer of the Prometheus HTTP API, such as bad_data for an
// expression that does not parse.
type APIError struct {
	Type    string // errorType: bad_data, execution, timeout, ...
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("prometheus %s: %s", e.Type, e.Message) }

// Server is a Prometheus process started by Start. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the server, e.g. http://127.0.0.1:40123.
	URL string

	client *http.Client
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	log    *syncBuffer   // the server's stderr, shown when a test fails
}

// Binary returns the path of the named binary (prometheus, promtool). When it is not on
// PATH it skips the test with a loud message, or fails it when the environment variable CI
// is set.
func Binary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI and was not found: %v (apt-get install -y prometheus)", name, err)
	}
	t.Skipf("!!! SKIPPED: %s not found (%v). These tests check the rules and dashboard "+
		"against a real Prometheus; install it (apt-get install -y prometheus). "+
		"With CI=true this is a failure.", name, err)
	return ""
}

// Start runs Prometheus on loopback, scraping scrapeTargets (host:port, path /metrics)
// every second as job "edgevitals" and evaluating rulesFiles every second. It returns
// once the server is ready; the server stops when the test ends.
func Start(t testing.TB, scrapeTargets []string, rulesFiles []string) *Server {
	t.Helper()
	bin := Binary(t, "prometheus")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	cfg, err := config(scrapeTargets, rulesFiles)
	if err != nil {
		t.Fatalf("promtest: %v", err)
	}
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatalf("promtest: write config: %v", err)
	}
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		s, err := start(t, bin, cfgPath, filepath.Join(dir, fmt.Sprintf("data%d", attempt)))
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("promtest: start prometheus: %v", lastErr)
	return nil
}

// config writes the Prometheus configuration. Targets and rule paths are quoted as JSON
// strings, which YAML reads as they are.
func config(targets, rules []string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n")
	if len(rules) > 0 {
		b.WriteString("rule_files:\n")
		for _, r := range rules {
			abs, err := filepath.Abs(r)
			if err != nil {
				return nil, fmt.Errorf("rules file %q: %w", r, err)
			}
			if _, err := os.Stat(abs); err != nil {
				return nil, fmt.Errorf("rules file: %w", err)
			}
			fmt.Fprintf(&b, "  - %s\n", quote(abs))
		}
	}
	if len(targets) > 0 {
		b.WriteString("scrape_configs:\n  - job_name: edgevitals\n    static_configs:\n      - targets:\n")
		for _, tg := range targets {
			if _, _, err := net.SplitHostPort(tg); err != nil {
				return nil, fmt.Errorf("scrape target %q: want host:port: %w", tg, err)
			}
			fmt.Fprintf(&b, "          - %s\n", quote(tg))
		}
	}
	return b.Bytes(), nil
}

func quote(s string) string {
	q, _ := json.Marshal(s) // a string always marshals
	return string(q)
}

// start runs one attempt: a free port, the process, and a wait for /-/ready or for the
// process to exit (a port taken meanwhile), whichever comes first.
func start(t testing.TB, bin, cfgPath, dataDir string) (*Server, error) {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	log := &syncBuffer{}
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+dataDir,
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout = log
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	s := &Server{
		URL:    "http://" + addr,
		client: &http.Client{Timeout: requestTimeout},
		cmd:    cmd,
		exited: make(chan struct{}),
		log:    log,
	}
	go func() {
		// Wait reaps the process; its error is the exit status, reported by stop.
		_ = cmd.Wait()
		close(s.exited)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, fmt.Errorf("%w\nprometheus log:\n%s", err, log.String())
	}
	t.Cleanup(func() {
		if out := log.String(); t.Failed() && out != "" {
			t.Logf("prometheus log:\n%s", out)
		}
		if err := s.stop(); err != nil {
			t.Errorf("promtest: %v", err)
		}
	})
	return s, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	return addr, nil
}

func (s *Server) waitReady(ctx context.Context) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if s.ready(ctx) {
			return nil
		}
		select {
		case <-s.exited:
			return errors.New("prometheus exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("prometheus not ready at %s: %w", s.URL, ctx.Err())
		case <-tick.C:
		}
	}
}

func (s *Server) ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/-/ready", nil)
	if err != nil {
		return false
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body) // drain for connection reuse; the status is the answer
	return resp.StatusCode == http.StatusOK
}

// stop terminates the process this Server started (by its PID), and kills it if it has
// not exited within stopTimeout.
func (s *Server) stop() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		select {
		case <-s.exited: // it exited between the check and the signal
			return nil
		default:
			return fmt.Errorf("stop prometheus (pid %d): %w", s.cmd.Process.Pid, err)
		}
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-s.exited:
		return nil
	case <-timer.C:
	}
	if err := s.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("kill prometheus (pid %d): %w", s.cmd.Process.Pid, err)
	}
	<-s.exited
	return fmt.Errorf("prometheus (pid %d) ignored SIGINT for %v and was killed", s.cmd.Process.Pid, stopTimeout)
}

// apiResponse is the envelope of every Prometheus API answer.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func (s *Server) api(ctx context.Context, method, path string, form url.Values) (json.RawMessage, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, body)
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", path, err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: read answer: %w", path, err)
	}
	var r apiResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("prometheus %s: HTTP %d, not an API answer: %.200q", path, resp.StatusCode, raw)
	}
	if r.Status != "success" {
		return nil, &APIError{Type: r.ErrorType, Message: r.Error}
	}
	return r.Data, nil
}

// Query evaluates expr at the current time. An expression Prometheus rejects returns an
// *APIError; an empty result is not an error.
func (s *Server) Query(expr string) ([]Sample, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	return s.query(ctx, expr)
}

func (s *Server) query(ctx context.Context, expr string) ([]Sample, error) {
	data, err := s.api(ctx, http.MethodPost, "/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	samples, err := decodeResult(data)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	return samples, nil
}

// decodeResult reads the data of an instant query: a vector or a scalar.
func decodeResult(data json.RawMessage) ([]Sample, error) {
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("decode result: %w", err)
	}
	switch d.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(d.Result, &vec); err != nil {
			return nil, fmt.Errorf("decode vector: %w", err)
		}
		out := make([]Sample, 0, len(vec))
		for _, e := range vec {
			v, err := sampleValue(e.Value)
			if err != nil {
				return nil, err
			}
			if e.Metric == nil {
				e.Metric = map[string]string{}
			}
			out = append(out, Sample{Labels: e.Metric, Value: v})
		}
		return out, nil
	case "scalar":
		var pair [2]any
		if err := json.Unmarshal(d.Result, &pair); err != nil {
			return nil, fmt.Errorf("decode scalar: %w", err)
		}
		v, err := sampleValue(pair)
		if err != nil {
			return nil, err
		}
		return []Sample{{Labels: map[string]string{}, Value: v}}, nil
	default:
		return nil, fmt.Errorf("result type %q: want vector or scalar (an instant expression)", d.ResultType)
	}
}

// sampleValue reads [timestamp, "value"]; the value is a string so NaN and ±Inf survive JSON.
func sampleValue(pair [2]any) (float64, error) {
	s, ok := pair[1].(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v: want a string", pair[1])
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("sample value: %w", err)
	}
	return v, nil
}

// WaitFor evaluates expr until cond accepts the result or ctx ends, polling the API so
// that callers need no sleeps. An expression Prometheus rejects fails at once; other
// errors (the server busy) are retried. On timeout the error holds the last result.
func (s *Server) WaitFor(ctx context.Context, expr string, cond func([]Sample) bool) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last []Sample
	var lastErr error
	for {
		qctx, cancel := context.WithTimeout(ctx, requestTimeout)
		samples, err := s.query(qctx, expr)
		cancel()
		var apiErr *APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.Type == "bad_data":
			return err
		case err != nil && ctx.Err() != nil:
			// The deadline cut this query short: report what was seen before it.
		case err != nil:
			lastErr = err
		case cond(samples):
			return nil
		default:
			last, lastErr = samples, nil
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("wait for %q: %w (last error: %v)", expr, ctx.Err(), lastErr)
			}
			return fmt.Errorf("wait for %q: %w (last result: %s)", expr, ctx.Err(), Format(last))
		case <-s.exited:
			return fmt.Errorf("wait for %q: prometheus exited", expr)
		case <-tick.C:
		}
	}
}

// Alerts returns the alerts that are pending or firing now.
func (s *Server) Alerts() ([]Alert, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	data, err := s.api(ctx, http.MethodGet, "/api/v1/alerts", nil)
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	var d struct {
		Alerts []struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
			State       string            `json:"state"`
		} `json:"alerts"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("alerts: decode: %w", err)
	}
	out := make([]Alert, 0, len(d.Alerts))
	for _, a := range d.Alerts {
		out = append(out, Alert{Name: a.Labels["alertname"], State: a.State, Labels: a.Labels, Annotations: a.Annotations})
	}
	return out, nil
}

// Rule is one recording or alerting rule as Prometheus loaded it.
type Rule struct {
	Group       string
	Name        string // the alert's name or the recorded series
	Type        string // "alerting" or "recording"
	Query       string
	Labels      map[string]string
	Annotations map[string]string // alerting rules only
}

// Rules returns every rule of the loaded rule files, in file order: what Prometheus
// itself read from them, so tests need no YAML parser of their own.
func (s *Server) Rules() ([]Rule, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	data, err := s.api(ctx, http.MethodGet, "/api/v1/rules", nil)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	var d struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name        string            `json:"name"`
				Type        string            `json:"type"`
				Query       string            `json:"query"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("rules: decode: %w", err)
	}
	var out []Rule
	for _, g := range d.Groups {
		for _, r := range g.Rules {
			out = append(out, Rule{Group: g.Name, Name: r.Name, Type: r.Type, Query: r.Query, Labels: r.Labels, Annotations: r.Annotations})
		}
	}
	return out, nil
}

// Format renders samples one per line as `{labels} value`, for test failure messages.
func Format(samples []Sample) string {
	if len(samples) == 0 {
		return "(no samples)"
	}
	var b strings.Builder
	for i, s := range samples {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%v %g", s.Labels, s.Value)
	}
	return b.String()
}

// syncBuffer collects the server's output; the process writes while tests read.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 {
		return len(p), nil // enough to diagnose; drop the rest rather than grow without end
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
