package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/edgevitals/edgevitals/vitals/lab"
)

func TestMeasureUsageAndMissingChromium(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no url", nil, 2, "no URL to measure"},
		{"bad runs", []string{"-runs", "0", "http://a/"}, 2, "-runs must be >= 1"},
		{"bad profile", []string{"-profile", "tablet", "http://a/"}, 2, `unknown profile "tablet"`},
		{"relative url", []string{"/x"}, 2, "not an absolute http(s) URL"},
		{"unknown flag", []string{"-fast", "http://a/"}, 2, "flag provided but not defined"},
		{"no chromium", []string{"-chromium", "/nonexistent/chromium", "http://a/"}, 1, "vitals.chromium"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runMeasure(tt.args, &out, &errb)
			if code != tt.wantCode || !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("measure %q = %d, stderr %q; want %d and %q", tt.args, code, errb.String(), tt.wantCode, tt.wantErr)
			}
		})
	}
}

func TestMeasureNoChromiumIsOneLine(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runMeasure([]string{"-chromium", "/nonexistent/chromium", "http://a/"}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if lines := strings.Count(errb.String(), "\n"); lines != 1 || !strings.Contains(errb.String(), "apt-get install -y chromium") {
		t.Errorf("stderr = %q, want one line naming apt-get install -y chromium", errb.String())
	}
}

func TestMeasureJSON(t *testing.T) {
	if _, err := lab.FindChromium(""); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs Chromium: %v", err)
		}
		t.Skipf("SKIPPED: NO CHROMIUM, measure is NOT tested: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Status", "edgevitals; hit")
		fmt.Fprint(w, `<!doctype html><h1>hello</h1>`)
	}))
	defer srv.Close()
	var out, errb bytes.Buffer
	code := runMeasure([]string{"-profile", "desktop", "-runs", "1", "-json", srv.URL + "/"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "run 1/1") {
		t.Errorf("no progress on stderr: %q", errb.String())
	}
	var got []map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
	}
	if len(got) != 1 {
		t.Fatalf("%d objects, want 1: %s", len(got), out.String())
	}
	o := got[0]
	if o["profile"] != "desktop" || o["runs"] != 1.0 || o["cache_status"] != "edgevitals; hit" || o["inp_ms"] != nil {
		t.Errorf("object = %v", o)
	}
	if v, ok := o["lcp_ms"].(float64); !ok || v <= 0 {
		t.Errorf("lcp_ms = %v, want a positive number", o["lcp_ms"])
	}
	if _, present := o["inp_ms"]; !present {
		t.Error("inp_ms missing, want null")
	}
}
