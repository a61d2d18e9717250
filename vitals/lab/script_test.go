package lab

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/vitals/store"
)

func TestParseFigures(t *testing.T) {
	f := func(in string, wantErr bool, check func(figures) bool) {
		t.Helper()
		got, err := parseFigures([]byte(in))
		if (err != nil) != wantErr {
			t.Errorf("parseFigures(%s) error = %v, want error %v", in, err, wantErr)
			return
		}
		if err == nil && check != nil && !check(got) {
			t.Errorf("parseFigures(%s) = %+v", in, got)
		}
	}
	f(`{"lcp":1200.5,"fcp":800,"ttfb":50,"cls":0.12,"tbt":0,"inp":null,"interactions":0,"sinceLongTask":3000}`, false, func(g figures) bool {
		return *g.LCP == 1200500*time.Microsecond && g.INP == nil && *g.TBT == 0 && *g.CLS == 0.12 && g.SinceLongTask == 3*time.Second
	})
	f(`{}`, false, func(g figures) bool { return g.LCP == nil && g.CLS == nil })
	f(`{"lcp":-1}`, true, nil)
	f(`{"lcp":1e300}`, true, nil)
	f(`{"cls":-0.1}`, true, nil)
	f(`{"interactions":-3}`, true, nil)
	f(`{"sinceLongTask":-5}`, false, func(g figures) bool { return g.SinceLongTask == 0 })
	f(`{"lcp":"fast"}`, true, nil)
	f(`not json`, true, nil)
}

func FuzzParseFigures(f *testing.F) {
	f.Add([]byte(`{"lcp":1200,"fcp":800,"ttfb":50,"cls":0.1,"tbt":10,"inp":200,"interactions":1,"input":true,"now":5000,"sinceLongTask":1000}`))
	f.Add([]byte(`{"lcp":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseFigures(b)
		if err != nil {
			return
		}
		for _, d := range []*time.Duration{got.LCP, got.FCP, got.TTFB, got.TBT, got.INP} {
			if d != nil && (*d < 0 || *d > time.Hour) {
				t.Errorf("parseFigures(%q) accepted %v", b, *d)
			}
		}
		if got.CLS != nil && (*got.CLS < 0 || *got.CLS > 1000) {
			t.Errorf("parseFigures(%q) accepted cls %v", b, *got.CLS)
		}
	})
}

func TestBandOf(t *testing.T) {
	tests := []struct {
		metric string
		v      float64
		want   Band
	}{
		{"lcp", 2500, Good}, {"lcp", 2501, NeedsImprovement}, {"lcp", 4001, Poor},
		{"inp", 200, Good}, {"inp", 350, NeedsImprovement}, {"inp", 600, Poor},
		{"cls", 0.1, Good}, {"cls", 0.2, NeedsImprovement}, {"cls", 0.3, Poor},
		{"tbt", 150, Good}, {"ttfb", 900, NeedsImprovement}, {"fcp", 3500, Poor},
		{"speed", 1, ""},
	}
	for _, tt := range tests {
		if got := BandOf(tt.metric, tt.v); got != tt.want {
			t.Errorf("BandOf(%q, %v) = %q, want %q", tt.metric, tt.v, got, tt.want)
		}
	}
}

func TestSummarizeMedians(t *testing.T) {
	runs := []store.Sample{
		{URL: "u", Profile: "mobile", LCP: dur(3 * time.Second), CLS: flt(0.3), TransferBytes: 300, Requests: 3, CacheStatus: "miss"},
		{URL: "u", Profile: "mobile", LCP: dur(1 * time.Second), TransferBytes: 100, Requests: 1, CacheStatus: "hit"},
		{URL: "u", Profile: "mobile", LCP: dur(2 * time.Second), CLS: flt(0.1), TransferBytes: 200, Requests: 2, CacheStatus: "hit"},
	}
	s := Summarize(runs)
	if s.Runs != 3 || *s.LCP != 2*time.Second || *s.CLS != 0.2 || s.INP != nil || s.TransferBytes != 200 || s.Requests != 2 || s.CacheStatus != "hit" {
		t.Errorf("Summarize = %+v", s)
	}
	b, _ := json.Marshal([]Summary{s}) // a Summary always encodes
	want := `[{"url":"u","profile":"mobile","runs":3,"lcp_ms":2000,"fcp_ms":null,"ttfb_ms":null,"tbt_ms":null,"inp_ms":null,"cls":0.2,"transfer_bytes":200,"requests":2,"cache_status":"hit"}]`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant   %s", b, want)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, []Summary{s}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"2000 ms good", "0.200 needs improvement", "n/a", "hit"} {
		if !strings.Contains(table.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, table.String())
		}
	}
}

// TestMeasureScriptParses: the measurement script, shared with the field
// beacon, is valid JavaScript (node --check), so neither a lab sample nor a
// visitor's page gets a syntax error. It skips without Node.js, and fails
// under CI, where node is expected.
func TestMeasureScriptParses(t *testing.T) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node is expected under CI: %v", err)
		}
		t.Skipf("no node to check measure.js with: %v", err)
	}
	if out, err := exec.Command(nodeBin, "--check", "measure.js").CombinedOutput(); err != nil {
		t.Errorf("node --check measure.js: %v\n%s", err, out)
	}
}
