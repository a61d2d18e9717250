package vitals

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkSample reports what one sample costs: wall time per sample
// (ms/sample), with the first sample's cold start apart (cold-ms), and the
// memory of Chromium's processes while sampling (chromium-MB, proportional
// set size so shared pages count once). Run it briefly:
//
//	go test ./vitals -run XXX -bench Sample -benchtime 10x
func BenchmarkSample(b *testing.B) {
	p, err := FindChromium(os.Getenv("EDGEVITALS_CHROMIUM"))
	if err != nil {
		b.Skipf("SKIPPED: no Chromium: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, headHTML+`<h1>a typical article</h1><p>`+strings.Repeat("Lorem ipsum dolor sit amet. ", 200)+`</p><button>menu</button></body></html>`)
	}))
	defer srv.Close()
	for _, prof := range []Profile{Mobile, Desktop} {
		b.Run(prof.Name, func(b *testing.B) {
			br, err := NewBrowser(p, 30*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			start := time.Now()
			if _, err := br.Measure(b.Context(), srv.URL+"/", prof, ""); err != nil {
				b.Fatal(err)
			}
			cold := time.Since(start)
			var peak int64
			b.ResetTimer()
			for b.Loop() {
				if _, err := br.Measure(b.Context(), srv.URL+"/", prof, ""); err != nil {
					b.Fatal(err)
				}
				peak = max(peak, treePSS(br.PID()))
			}
			b.ReportMetric(float64(cold.Milliseconds()), "cold-ms")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/sample")
			b.ReportMetric(float64(peak)/1024, "chromium-MB")
		})
	}
}

// treePSS sums the proportional set size (KiB) of pid and its descendants.
func treePSS(pid int) int64 {
	if pid == 0 {
		return 0
	}
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so cut at the last ')'.
		i := bytes.LastIndexByte(raw, ')')
		fields := strings.Fields(string(raw[i+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		me, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		children[ppid] = append(children[ppid], me)
	}
	var total int64
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = append(queue[1:], children[p]...)
		f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				total += kb
				break
			}
		}
		f.Close()
	}
	return total
}
