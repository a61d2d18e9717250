package lab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// articleServer serves a typical article page with a button to click.
func articleServer(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, headHTML+`<h1>a typical article</h1><p>`+strings.Repeat("Lorem ipsum dolor sit amet. ", 200)+`</p><button>menu</button></body></html>`)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkSample reports what one sample costs: wall time per sample with a
// warm browser (ms/sample), the first sample with Chromium's start
// (cold-ms), and the peak memory of Chromium's processes during the cold
// sample (cold-chromium-MB) and during warm ones (chromium-MB): proportional
// set size, so pages shared between processes count once, read every 100 ms
// while samples run. Run it briefly:
//
//	go test ./vitals -run XXX -bench 'Sample$' -benchtime 10x
func BenchmarkSample(b *testing.B) {
	p, err := FindChromium(os.Getenv("EDGEVITALS_CHROMIUM"))
	if err != nil {
		b.Skipf("SKIPPED: no Chromium: %v", err)
	}
	srv := articleServer(b)
	for _, prof := range []Profile{Mobile, Desktop} {
		b.Run(prof.Name, func(b *testing.B) {
			br, err := NewBrowser(p, 30*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			start := time.Now()
			coldPeak := whilePeakPSS(br.PID, func() {
				if _, err := br.Measure(b.Context(), srv.URL+"/", prof, ""); err != nil {
					b.Fatal(err)
				}
			})
			cold := time.Since(start)
			b.ResetTimer()
			peak := whilePeakPSS(br.PID, func() {
				for b.Loop() {
					if _, err := br.Measure(b.Context(), srv.URL+"/", prof, ""); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(cold.Milliseconds()), "cold-ms")
			b.ReportMetric(float64(coldPeak)/1024, "cold-chromium-MB")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/sample")
			b.ReportMetric(float64(peak)/1024, "chromium-MB")
		})
	}
}

// BenchmarkSamplerRate measures how many samples a minute the sampler
// itself completes, schedule, store and all, when every page is always due:
// eight jobs (four pages, mobile and desktop), one or two samples at a
// time. Each b.N is one sample; the first of each run (Chromium's start)
// is not counted. Run it with a count of samples:
//
//	go test ./vitals -run XXX -bench SamplerRate -benchtime 40x
func BenchmarkSamplerRate(b *testing.B) {
	p, err := FindChromium(os.Getenv("EDGEVITALS_CHROMIUM"))
	if err != nil {
		b.Skipf("SKIPPED: no Chromium: %v", err)
	}
	srv := articleServer(b)
	for _, conc := range []int{1, 2} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			var pages []Page
			for i := range 4 {
				pages = append(pages, Page{Site: "bench", URL: fmt.Sprintf("%s/article-%d", srv.URL, i), Interval: time.Millisecond})
			}
			s, err := NewSampler(SamplerOptions{Chromium: p, Pages: pages, Concurrency: conc, Store: openBenchStore(b)})
			if err != nil {
				b.Fatal(err)
			}
			s.firstSpread = 0
			var done, failed atomic.Int64
			started := make(chan struct{})
			all := make(chan struct{})
			want := int64(b.N) + 1
			s.onSample = func(j *job, _ store.Sample, err error) {
				if err != nil {
					failed.Add(1)
				}
				switch n := done.Add(1); {
				case n == 1:
					close(started)
				case n == want:
					close(all)
				}
			}
			ctx, cancel := context.WithCancel(b.Context())
			defer cancel()
			ran := make(chan error, 1)
			go func() { ran <- s.Run(ctx) }()
			<-started
			b.ResetTimer()
			peak := whilePeakPSS(s.browser.PID, func() {
				select {
				case <-all:
				case err := <-ran:
					b.Fatalf("sampler stopped: %v", err)
				}
			})
			b.StopTimer()
			cancel()
			<-ran
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d samples failed", n, done.Load())
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Minutes(), "samples/min")
			b.ReportMetric(float64(peak)/1024, "chromium-MB")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func openBenchStore(b *testing.B) *store.Store {
	st, err := store.OpenStore(filepath.Join(b.TempDir(), "vitals.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// whilePeakPSS runs f and returns the peak proportional set size (KiB) of
// the process tree pid() names, read every 100 ms while f runs.
func whilePeakPSS(pid func() int, f func()) int64 {
	stop := make(chan struct{})
	peak := make(chan int64)
	go func() {
		var top int64
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			top = max(top, treePSS(pid()))
			select {
			case <-stop:
				peak <- max(top, treePSS(pid()))
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	return <-peak
}

// procChildren maps each pid in /proc to its children's pids; empty
// without /proc.
func procChildren() map[int][]int {
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
	return children
}

// treePSS sums the proportional set size (KiB) of pid and its descendants.
func treePSS(pid int) int64 {
	if pid == 0 {
		return 0
	}
	children := procChildren()
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
