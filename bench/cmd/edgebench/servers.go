package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// server is one HTTP server under test, started by the harness on a loopback port.
type server struct {
	name  string
	port  int
	admin int    // edgevitals' admin port
	token string // edgevitals' admin token
	proc  *proc
	cache bool // false for the bare server: it has no origin, no hits and no purge
	// isHit tells from a response's headers that it came from the cache.
	isHit func(h http.Header) bool
	// collapsed tells that a response waited for another request's origin fetch, when the
	// server says so apart from hits (edgevitals does, per RFC 9211); nil otherwise.
	collapsed func(h http.Header) bool
	// purge empties the whole cache; nil when the server has no purge.
	purge func(ctx context.Context, c *http.Client) error
	note  string // said under the tables, e.g. why there is no purge
}

func (s *server) url(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", s.port, path) }

// env is what every server's start needs.
type env struct {
	dir        string // the run's temp dir
	root       string // the module root, for bench/varnish and bench/nginx
	cpu        int    // the server core
	origin     *origin
	cacheBytes int64
	bareSize   int
	maxAge     time.Duration
	edgeBin    string
	baseBin    string // edgevitals-base: another build, for before/after pairs
}

var serverNames = []string{"edgevitals", "varnish", "nginx", "bare"}

// extraServers can be asked for by name but are not in the default set:
// edgevitals-rum is edgevitals with field data on (the beacon script injected
// into every stored page, a Server-Timing header on every hit), to measure
// what field data costs the hit path against plain edgevitals;
// edgevitals-base is the binary given by -base (a build of an earlier
// commit) with the same config, so a change is measured as paired rounds of
// before against after in one run.
var extraServers = []string{"edgevitals-rum", "edgevitals-base"}

func startServer(ctx context.Context, name string, e env) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, port: port, cache: true}
	var argv []string
	switch name {
	case "edgevitals":
		argv, err = edgevitalsArgs(s, dir, e, false)
	case "edgevitals-rum":
		argv, err = edgevitalsArgs(s, dir, e, true)
	case "edgevitals-base":
		argv, err = edgevitalsArgs(s, dir, e, false)
		if err == nil {
			argv[0] = e.baseBin
		}
	case "varnish":
		argv, err = varnishArgs(s, dir, e)
	case "nginx":
		argv, err = nginxArgs(s, dir, e)
	case "bare":
		s.cache = false
		self, err2 := os.Executable()
		if err2 != nil {
			return nil, fmt.Errorf("start bare: %w", err2)
		}
		argv = []string{self, "-bare-listen", fmt.Sprintf("127.0.0.1:%d", port),
			"-bare-size", strconv.Itoa(e.bareSize), "-max-age", e.maxAge.String()}
	default:
		return nil, fmt.Errorf("unknown server %q (want %s)", name, strings.Join(knownServers(), ", "))
	}
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		return nil, fmt.Errorf("start %s: %w (install it: apt-get install -y wrk varnish nginx, or leave it out with -servers)", name, err)
	}
	s.proc, err = startProc(name, filepath.Join(dir, "output.log"), e.cpu, argv, nil)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, s); err != nil {
		s.proc.stop(5 * time.Second)
		return nil, err
	}
	return s, nil
}

func knownServers() []string { return append(slices.Clone(serverNames), extraServers...) }

func edgevitalsArgs(s *server, dir string, e env, rum bool) ([]string, error) {
	admin, err := freePort()
	if err != nil {
		return nil, err
	}
	s.admin = admin
	s.token = fmt.Sprintf("edgebench-%d-%d", os.Getpid(), time.Now().UnixNano())
	cfg := fmt.Sprintf(`# written by edgebench
data_dir = %q

[server]
listen = "127.0.0.1:%d"
admin_listen = "127.0.0.1:%d"
admin_token = %q

[cache]
max_bytes = "%dB"

[[site]]
name = "bench"
hosts = ["*"]
origins = ["http://%s"]
preset = "none"
`, filepath.Join(dir, "data"), s.port, admin, s.token, e.cacheBytes, e.origin.addr())
	if rum {
		cfg += `
[rum]
enabled = true
sample_rate = 1.0
`
	}
	path := filepath.Join(dir, "edgevitals.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("write edgevitals config: %w", err)
	}
	s.isHit = func(h http.Header) bool {
		v := strings.ToLower(h.Get("Cache-Status"))
		hit := strings.Contains(v, "; hit") && !strings.Contains(v, "fwd=")
		// With field data on, a hit that lacks the header the beacon reads
		// would measure less work than field data costs: not a hit here.
		return hit && (!rum || strings.Contains(h.Get("Server-Timing"), `edgevitals;desc="hit"`))
	}
	s.collapsed = func(h http.Header) bool {
		return strings.Contains(strings.ToLower(h.Get("Cache-Status")), "collapsed")
	}
	s.purge = func(ctx context.Context, c *http.Client) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost,
			fmt.Sprintf("http://127.0.0.1:%d/api/purge", s.admin),
			strings.NewReader(`{"all": true, "soft": false}`))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+s.token)
		req.Header.Set("Content-Type", "application/json")
		return doOK(c, req)
	}
	s.note = "edgevitals purges with POST /api/purge {\"all\": true, \"soft\": false} (a hard purge, like a Varnish ban)."
	return []string{e.edgeBin, "serve", "-config", path}, nil
}

func varnishArgs(s *server, dir string, e env) ([]string, error) {
	vcl := filepath.Join(dir, "edgebench.vcl")
	if err := renderTemplate(filepath.Join(e.root, "bench", "varnish", "edgebench.vcl"), vcl,
		map[string]any{"OriginPort": e.origin.port()}); err != nil {
		return nil, err
	}
	s.isHit = func(h http.Header) bool { return h.Get("X-Cache") == "HIT" }
	s.purge = func(ctx context.Context, c *http.Client) error {
		req, err := http.NewRequestWithContext(ctx, "BAN", s.url("/"), nil)
		if err != nil {
			return err
		}
		return doOK(c, req)
	}
	s.note = "Varnish purges with a ban of every object (BAN / from loopback, bench/varnish/edgebench.vcl)."
	argv := []string{"varnishd", "-F",
		"-n", filepath.Join(dir, "work"),
		"-a", fmt.Sprintf("127.0.0.1:%d", s.port),
		"-f", vcl,
		"-s", fmt.Sprintf("malloc,%dk", e.cacheBytes>>10),
		"-T", "none",
		"-p", "listen_depth=4096",
	}
	if os.Geteuid() == 0 {
		// As root varnishd would switch to its own user, which cannot read our 0700 temp dir.
		argv = append(argv, "-j", "none")
	}
	return argv, nil
}

func nginxArgs(s *server, dir string, e env) ([]string, error) {
	conf := filepath.Join(dir, "nginx.conf")
	if err := renderTemplate(filepath.Join(e.root, "bench", "nginx", "edgebench.conf"), conf, map[string]any{
		"Root":       os.Geteuid() == 0,
		"Dir":        dir,
		"Port":       s.port,
		"OriginPort": e.origin.port(),
		"CacheBytes": fmt.Sprintf("%dk", e.cacheBytes>>10),
	}); err != nil {
		return nil, err
	}
	s.isHit = func(h http.Header) bool { return h.Get("X-Cache") == "HIT" }
	s.note = "nginx: the free version has no purge; in purgeall it serves the same load unpurged."
	return []string{"nginx", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf}, nil
}

func renderTemplate(src, dst string, data any) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read config template: %w (run from the module, or set -root)", err)
	}
	t, err := template.New(filepath.Base(src)).Option("missingkey=error").Parse(string(b))
	if err != nil {
		return fmt.Errorf("parse %s: %w", src, err)
	}
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("render %s: %w", src, err)
	}
	if err := t.Execute(f, data); err != nil {
		f.Close()
		return fmt.Errorf("render %s: %w", src, err)
	}
	return f.Close()
}

// waitReady polls until the server answers a request through to the origin, or fails
// early when the process exits.
func waitReady(ctx context.Context, s *server) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url("/ready-probe"), nil)
		if err != nil {
			return err
		}
		if err := doOK(c, req); err == nil {
			return nil
		}
		if s.proc.exited() {
			return fmt.Errorf("%s exited at start (%v):\n%s", s.name, s.proc.err, s.proc.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not answering on 127.0.0.1:%d after 30s:\n%s", s.name, s.port, s.proc.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// doOK sends req and wants a 2xx.
func doOK(c *http.Client, req *http.Request) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: status %d", req.Method, req.URL, resp.StatusCode)
	}
	return nil
}

// freePort asks the kernel for a free loopback port. Another process may take it before
// the server binds; the server then fails to start with a clear error.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}
