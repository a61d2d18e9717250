package main

import (
	"context"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	full := "Running 3s test @ http://127.0.0.1:1/\n  1 threads and 64 connections\n" +
		"EDGEBENCH requests=1200 duration_us=3000000 bytes=36000000 p50_us=850 p90_us=1500 p99_us=4200 max_us=9000 connect=1 read=2 write=3 status=4 timeout=5\n"
	tests := []struct {
		name    string
		in      string
		want    wrkResult
		wantErr string
	}{
		{"full", full, wrkResult{Requests: 1200, Duration: 3 * time.Second, Bytes: 36000000,
			P50: 850 * time.Microsecond, P90: 1500 * time.Microsecond, P99: 4200 * time.Microsecond, Max: 9 * time.Millisecond,
			Connect: 1, Read: 2, Write: 3, Status: 4, Timeout: 5}, ""},
		{"unknown keys are ignored", "EDGEBENCH requests=1 duration_us=1000000 p50_us=1 p99_us=2 p999_us=3\n",
			wrkResult{Requests: 1, Duration: time.Second, P50: time.Microsecond, P99: 2 * time.Microsecond}, ""},
		{"no line", "unable to connect to 127.0.0.1:1 Connection refused\n", wrkResult{}, "no EDGEBENCH line"},
		{"missing p99", "EDGEBENCH requests=1 duration_us=1 p50_us=1\n", wrkResult{}, "no p99_us"},
		{"not key=value", "EDGEBENCH requests\n", wrkResult{}, "not key=value"},
		{"negative", "EDGEBENCH requests=-1 duration_us=1 p50_us=1 p99_us=1\n", wrkResult{}, "not a count"},
		{"float", "EDGEBENCH requests=1.5 duration_us=1 p50_us=1 p99_us=1\n", wrkResult{}, "not a count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrk(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseWrk(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseWrk(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("parseWrk(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
	r, _ := parseWrk(full)
	if got := r.rps(); got != 400 {
		t.Errorf("rps() = %v, want 400", got)
	}
	if got := r.errors(); got != 15 {
		t.Errorf("errors() = %d, want 15", got)
	}
}

// FuzzParseWrk holds that wrk's output, whatever it is, gives a result or an error and
// never a panic or a negative figure.
func FuzzParseWrk(f *testing.F) {
	f.Add("EDGEBENCH requests=1200 duration_us=3000000 bytes=1 p50_us=850 p90_us=1500 p99_us=4200 max_us=9000 connect=0 read=0 write=0 status=0 timeout=0\n")
	f.Add("EDGEBENCH requests=\n")
	f.Fuzz(func(t *testing.T, out string) {
		r, err := parseWrk(out)
		if err != nil {
			return
		}
		if r.Requests < 0 || r.Duration < 0 || r.P99 < 0 || r.errors() < 0 {
			t.Errorf("parseWrk(%q) = %+v: a negative figure", out, r)
		}
	})
}

// TestWrkScriptAgainstOrigin runs the real wrk with the harness's Lua script against the
// origin for one second: the script must cycle the URL set, send one request in ten as a
// unique miss, and print the line parseWrk reads.
func TestWrkScriptAgainstOrigin(t *testing.T) {
	for _, tool := range []string{"wrk", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if runtime.NumCPU() < 2 {
		t.Skip("needs two cores")
	}
	o := startOrigin(t, 500)
	rec := startRecorder(t, o)
	script, err := writeWrkScript(t.TempDir(), 50, 10)
	if err != nil {
		t.Fatal(err)
	}
	r, err := runWrk(context.Background(), load{script: script, conns: 4, threads: 2, cpu: 1,
		duration: time.Second, nonce: "test", baseURL: "http://" + rec.addr + "/", wrkTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("runWrk: %v", err)
	}
	if r.Requests < 100 || r.errors() != 0 || r.P50 <= 0 || r.P99 < r.P50 {
		t.Errorf("runWrk = %+v, want >= 100 requests, no errors, 0 < p50 <= p99", r)
	}
	if got := o.total.Load(); got < r.Requests {
		t.Errorf("origin answered %d requests, wrk counted %d", got, r.Requests)
	}
	total, queries, unique, paths := rec.counts()
	share := float64(queries) / float64(total)
	if share < 0.08 || share > 0.12 {
		t.Errorf("share of requests with a query = %.3f (%d of %d), want about 0.10", share, queries, total)
	}
	if unique != queries {
		t.Errorf("%d requests with a query but %d distinct ones: every miss must be unique", queries, unique)
	}
	if paths != 50 {
		t.Errorf("distinct paths = %d, want the 50 of the URL set", paths)
	}
}
