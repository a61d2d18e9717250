package promtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "r.yml")
	if err := os.WriteFile(rules, []byte("groups: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		targets []string
		rules   []string
		want    []string // substrings of the config
		wantErr string
	}{
		{name: "empty", want: []string{"scrape_interval: 1s", "evaluation_interval: 1s"}},
		{name: "target and rules", targets: []string{"127.0.0.1:9145"}, rules: []string{rules},
			want: []string{`- "127.0.0.1:9145"`, "job_name: edgevitals", fmt.Sprintf("- %q", rules)}},
		{name: "target without port", targets: []string{"127.0.0.1"}, wantErr: "want host:port"},
		{name: "missing rules file", rules: []string{filepath.Join(t.TempDir(), "none.yml")}, wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config(tt.targets, tt.rules)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("config() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("config() error = %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(got), w) {
					t.Errorf("config() = %q, want it to contain %q", got, w)
				}
			}
		})
	}
}

func TestDecodeResult(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    []Sample
		wantErr string
	}{
		{name: "vector", data: `{"resultType":"vector","result":[{"metric":{"site":"blog"},"value":[1,"0.5"]}]}`,
			want: []Sample{{Labels: map[string]string{"site": "blog"}, Value: 0.5}}},
		{name: "empty vector", data: `{"resultType":"vector","result":[]}`, want: []Sample{}},
		{name: "scalar", data: `{"resultType":"scalar","result":[1,"+Inf"]}`,
			want: []Sample{{Labels: map[string]string{}, Value: math.Inf(1)}}},
		{name: "matrix", data: `{"resultType":"matrix","result":[]}`, wantErr: "want vector or scalar"},
		{name: "number value", data: `{"resultType":"scalar","result":[1,2]}`, wantErr: "want a string"},
		{name: "bad value", data: `{"resultType":"scalar","result":[1,"x"]}`, wantErr: "invalid syntax"},
		{name: "not json", data: `{`, wantErr: "decode result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeResult([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("decodeResult(%s) error = %v, want one containing %q", tt.data, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeResult(%s) error = %v", tt.data, err)
			}
			if Format(got) != Format(tt.want) || len(got) != len(tt.want) {
				t.Errorf("decodeResult(%s) = %s, want %s", tt.data, Format(got), Format(tt.want))
			}
		})
	}
}

// exposition is a tiny /metrics endpoint whose hit counter the test moves.
type exposition struct{ hits, misses atomic.Int64 }

func (e *exposition) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "edgevitals_requests_total{site=\"blog\",cache=\"hit\"} %d\n", e.hits.Load())
	fmt.Fprintf(w, "edgevitals_requests_total{site=\"blog\",cache=\"miss\"} %d\n", e.misses.Load())
}

// TestServer drives a real Prometheus: it scrapes a loopback target, records a rule and
// raises an alert, and rejects a bad expression with an APIError.
func TestServer(t *testing.T) {
	exp := &exposition{}
	exp.hits.Store(3)
	exp.misses.Store(1)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: exp, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l) //nolint:errcheck // returns ErrServerClosed at Close
	t.Cleanup(func() { srv.Close() })

	rules := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(rules, []byte(`groups:
  - name: t
    rules:
      - record: site:requests:sum
        expr: sum by (site) (edgevitals_requests_total)
      - alert: Misses
        expr: edgevitals_requests_total{cache="miss"} > 0
        labels: {severity: warning}
        annotations: {summary: 'misses on {{ $labels.site }}'}
`), 0o644); err != nil {
		t.Fatal(err)
	}

	s := Start(t, []string{l.Addr().String()}, []string{rules})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := s.WaitFor(ctx, `site:requests:sum{site="blog"}`, func(got []Sample) bool {
		return len(got) == 1 && got[0].Value == 4
	}); err != nil {
		t.Fatal(err)
	}
	exp.hits.Store(10)
	if err := s.WaitFor(ctx, `site:requests:sum`, func(got []Sample) bool {
		return len(got) == 1 && got[0].Value == 11 && got[0].Labels["site"] == "blog"
	}); err != nil {
		t.Fatal(err)
	}

	if err := s.WaitFor(ctx, `ALERTS{alertname="Misses"}`, func(got []Sample) bool { return len(got) == 1 }); err != nil {
		t.Fatal(err)
	}
	alerts, err := s.Alerts()
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].Name != "Misses" || alerts[0].State != "firing" ||
		alerts[0].Labels["site"] != "blog" || alerts[0].Annotations["summary"] != "misses on blog" {
		t.Errorf("Alerts() = %+v, want one firing Misses on blog", alerts)
	}

	tests := []struct {
		expr    string
		want    string // Format of the result
		wantErr string // errorType
	}{
		{expr: "1 + 1", want: "map[] 2"},
		{expr: "0 / 0", want: "map[] NaN"},
		{expr: `edgevitals_requests_total{site="none"}`, want: "(no samples)"},
		{expr: "sum(", wantErr: "bad_data"},
		{expr: "up[5m]", wantErr: ""}, // a range vector: decoded as an error of ours, below
	}
	for _, tt := range tests {
		got, err := s.Query(tt.expr)
		var apiErr *APIError
		switch {
		case tt.expr == "up[5m]":
			if err == nil || !strings.Contains(err.Error(), "want vector or scalar") {
				t.Errorf("Query(%q) error = %v, want a result type error", tt.expr, err)
			}
		case tt.wantErr != "":
			if !errors.As(err, &apiErr) || apiErr.Type != tt.wantErr {
				t.Errorf("Query(%q) error = %v, want an APIError %s", tt.expr, err, tt.wantErr)
			}
			// WaitFor gives up at once on an expression that cannot parse.
			if err := s.WaitFor(ctx, tt.expr, func([]Sample) bool { return true }); !errors.As(err, &apiErr) {
				t.Errorf("WaitFor(%q) error = %v, want an APIError", tt.expr, err)
			}
		case err != nil:
			t.Errorf("Query(%q) error = %v", tt.expr, err)
		case Format(got) != tt.want:
			t.Errorf("Query(%q) = %s, want %s", tt.expr, Format(got), tt.want)
		}
	}

	// A condition that never holds ends with the context, and says what it saw last.
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	err = s.WaitFor(short, `site:requests:sum`, func([]Sample) bool { return false })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "site:blog") {
		t.Errorf("WaitFor(never) error = %v, want a deadline error with the last result", err)
	}
}
