package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	tail := " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
	tests := []struct {
		name, in string
		want     procStat
		wantErr  bool
	}{
		{"plain", "42 (varnishd) S 7 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 1 0 987" + tail, procStat{ppid: 7, ticks: 200, start: 987}, false},
		{"spaces and parens in name", "43 (cache (main) x) R 42 1 1 0 -1 0 0 0 0 0 3 4 0 0 20 0 9 0 5" + tail, procStat{ppid: 42, ticks: 7, start: 5}, false},
		{"zombie", "44 (nginx) Z 1 44 44 0 -1 0 0 0 0 0 2 1 0 0 20 0 1 0 8" + tail, procStat{ppid: 1, ticks: 3, start: 8, zombie: true}, false},
		{"no paren", "42 varnishd S 7", procStat{}, true},
		{"short", "42 (x) S 7 1 2", procStat{}, true},
		{"bad utime", "42 (x) S 7 42 42 0 -1 0 0 0 0 0 abc 50 0 0 20 0 1 0 9" + tail, procStat{}, true},
		{"bad ppid", "42 (x) S -x 42 42 0 -1 0 0 0 0 0 1 50 0 0 20 0 1 0 9" + tail, procStat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseProcStat(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseProcStat(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseVmHWM(t *testing.T) {
	tests := []struct {
		name, in string
		want     int64
		wantErr  bool
	}{
		{"present", "Name:\tnginx\nVmPeak:\t  9000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n", 1234 << 10, false},
		{"missing", "Name:\tkthreadd\n", 0, true},
		{"bad unit", "VmHWM:\t 12 MB\n", 0, true},
		{"bad number", "VmHWM:\t x kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmHWM([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseVmHWM(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseCPUTimes(t *testing.T) {
	in := "cpu  500 0 500 9000 100 0 0 0 0 0\n" +
		"cpu0 300 10 200 4000 50 5 5 0 7 0\n" +
		"cpu1 200 0 300 5000 50 0 0 0 0 0\n" +
		"intr 1 2 3\nctxt 99\n"
	got, err := parseCPUTimes([]byte(in))
	if err != nil {
		t.Fatalf("parseCPUTimes: %v", err)
	}
	want := cpuTimes{0: 520 * time.Second / clkTck, 1: 500 * time.Second / clkTck}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("parseCPUTimes = %v, want %v (guest time is inside user; idle and iowait are not busy)", got, want)
	}
	for _, bad := range []string{"", "cpu 1 2 3 4 5\n", "cpux 1 2 3 4 5 6\n", "cpu0 1 2 x 4 5 6\n"} {
		if _, err := parseCPUTimes([]byte(bad)); err == nil {
			t.Errorf("parseCPUTimes(%q) = nil error, want one", bad)
		}
	}
}

func TestStopEndsTheWholeTree(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "child")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	// A shell that starts a child and ignores SIGTERM, as a stuck server would: stop must
	// still end both and leave no orphan. The child's PID arrives through the FIFO once it
	// runs.
	p, err := startProc("stuck", filepath.Join(dir, "out.log"), -1,
		[]string{"sh", "-c", "trap '' TERM; sleep 300 & echo $! > " + fifo + "; wait"}, nil)
	if err != nil {
		t.Fatalf("startProc: %v", err)
	}
	b, err := os.ReadFile(fifo)
	if err != nil {
		p.stop(time.Second)
		t.Fatalf("read child PID: %v", err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		p.stop(time.Second)
		t.Fatalf("child PID %q: %v", b, err)
	}
	tree := procTree(p.pid())
	if !slices.Contains(tree, child) {
		t.Errorf("procTree(%d) = %v, want it to hold the child %d", p.pid(), tree, child)
	}
	p.stop(100 * time.Millisecond)
	for _, pid := range []int{p.pid(), child} {
		if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !strings.Contains(string(st), ") Z ") {
			t.Errorf("process %d still runs after stop: %s", pid, st)
		}
	}
}
