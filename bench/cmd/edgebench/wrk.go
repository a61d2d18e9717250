package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// wrkScript cycles through the URL set from a table built once per thread, so that wrk
// spends as little as possible in Lua per request. With missEvery > 0 every missEvery-th
// request carries a query parameter unique to the run, thread and request: a miss in every
// cache (none of them strips "r"). done() prints one machine-readable line.
const wrkScript = `-- written by edgebench
local n = %d
local miss_every = %d
local prefix = "%s"
local reqs = {}
local i = 0
local c = 0
local nonce = "x"
local threads = 0

setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

init = function(args)
  nonce = args[1] or "x"
  for k = 1, n do
    reqs[k] = wrk.format("GET", prefix .. k)
  end
end

request = function()
  c = c + 1
  if miss_every > 0 and c %% miss_every == 0 then
    return wrk.format("GET", prefix .. (c %% n + 1) .. "?r=" .. nonce .. "-" .. tostring(tid) .. "-" .. c)
  end
  i = i %% n + 1
  return reqs[i]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("EDGEBENCH requests=%%d duration_us=%%d bytes=%%d p50_us=%%d p90_us=%%d p99_us=%%d max_us=%%d connect=%%d read=%%d write=%%d status=%%d timeout=%%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
`

// writeWrkScript writes the Lua script of a load to dir and returns its path.
func writeWrkScript(dir string, urls, missEvery int) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("load-%d-%d.lua", urls, missEvery))
	body := fmt.Sprintf(wrkScript, urls, missEvery, pagePrefix)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		return "", fmt.Errorf("write wrk script: %w", err)
	}
	return path, nil
}

// pagePrefix is the path of the URL set: /p/1 ... /p/N.
const pagePrefix = "/p/"

// wrkResult is what one wrk run measured.
type wrkResult struct {
	Requests             int64
	Duration             time.Duration
	Bytes                int64
	P50, P90, P99, Max   time.Duration
	Connect, Read, Write int64 // socket errors
	Status               int64 // responses not 2xx or 3xx
	Timeout              int64
	CPU                  time.Duration // wrk's own CPU time
}

func (r wrkResult) rps() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Duration.Seconds()
}

func (r wrkResult) errors() int64 { return r.Connect + r.Read + r.Write + r.Status + r.Timeout }

// parseWrk finds the EDGEBENCH line the script's done() prints in wrk's output.
func parseWrk(out string) (wrkResult, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "EDGEBENCH ")
		if !ok {
			continue
		}
		var r wrkResult
		seen := map[string]bool{}
		for _, kv := range strings.Fields(rest) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return wrkResult{}, fmt.Errorf("wrk output: field %q is not key=value", kv)
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return wrkResult{}, fmt.Errorf("wrk output: %s=%q is not a count", k, v)
			}
			us := time.Duration(n) * time.Microsecond
			switch k {
			case "requests":
				r.Requests = n
			case "duration_us":
				r.Duration = us
			case "bytes":
				r.Bytes = n
			case "p50_us":
				r.P50 = us
			case "p90_us":
				r.P90 = us
			case "p99_us":
				r.P99 = us
			case "max_us":
				r.Max = us
			case "connect":
				r.Connect = n
			case "read":
				r.Read = n
			case "write":
				r.Write = n
			case "status":
				r.Status = n
			case "timeout":
				r.Timeout = n
			default:
				continue // a newer script may say more
			}
			seen[k] = true
		}
		for _, k := range []string{"requests", "duration_us", "p50_us", "p99_us"} {
			if !seen[k] {
				return wrkResult{}, fmt.Errorf("wrk output: no %s in %q", k, rest)
			}
		}
		return r, nil
	}
	return wrkResult{}, fmt.Errorf("wrk output: no EDGEBENCH line (did the Lua script run?): %q", lastLines(out, 5))
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// load is how wrk drives a server.
type load struct {
	script     string
	conns      int
	threads    int
	cpu        int
	duration   time.Duration
	nonce      string
	baseURL    string
	wrkTimeout time.Duration
}

// runWrk runs wrk pinned to the load core and returns what it measured.
func runWrk(ctx context.Context, l load) (wrkResult, error) {
	args := []string{"-c", strconv.Itoa(l.cpu), "wrk",
		"-t", strconv.Itoa(l.threads), "-c", strconv.Itoa(l.conns),
		"-d", fmt.Sprintf("%ds", max(1, int(l.duration.Round(time.Second).Seconds()))),
		"--timeout", fmt.Sprintf("%ds", max(1, int(l.wrkTimeout.Seconds()))),
		"-s", l.script, l.baseURL, "--", l.nonce}
	cmd := exec.CommandContext(ctx, "taskset", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w", l.baseURL, context.Cause(ctx))
	}
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w: %s", l.baseURL, err, lastLines(string(out), 5))
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return wrkResult{}, err
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return r, nil
}
