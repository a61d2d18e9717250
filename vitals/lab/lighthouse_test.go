//go:build unix

package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/vitals/store"
	"github.com/edgevitals/edgevitals/vitals/vitalstest"
)

// The lab sampler's figures feed release verdicts, so they are checked
// against a second, established lab tool on the same machine: Lighthouse,
// whose lab mode the sampler follows. Both load the same ground-truth pages
// (browser_test.go); each page has one designed value, and both tools must
// land within the tolerance of it and of each other.
//
// Lighthouse comes from npm; test.sh installs a pinned version outside the
// repository and sets EDGEVITALS_LIGHTHOUSE to its CLI. Page loads go through
// that CLI (navigation mode); INP, which needs an interaction, goes through
// Lighthouse's user-flow API in bench/lighthouse/inp-flow.mjs (timespan
// mode). bench/lighthouse/README.md tells how to run this by hand and what it
// found.

// lighthouseRunTimeout bounds one Lighthouse run: its Chromium's start, the
// load, the wait for a quiet page and the audits, about 20 s here. Most of
// it is Lighthouse's own waits: without simulated throttling it wants 5.25 s
// of network quiet and then 5.25 s of CPU quiet, and no setting shortens them.
const lighthouseRunTimeout = 90 * time.Second

// inpFlowTimeout bounds one run of inp-flow.mjs: Chromium's start, the load,
// one click and the audits, 4 to 6 s here. It has no quiet windows to wait
// out: the timespan ends once the page has reported the interaction.
const inpFlowTimeout = 60 * time.Second

// inpFlowScript is the user-flow script, from this package's directory.
const inpFlowScript = "../../bench/lighthouse/inp-flow.mjs"

// lighthouse is how to run the Lighthouse that EDGEVITALS_LIGHTHOUSE names.
type lighthouse struct {
	cmd  []string // runs the CLI: node and cli/index.js, or the CLI alone
	cli  string   // the path in EDGEVITALS_LIGHTHOUSE
	node string   // node, for inp-flow.mjs
}

// lighthouseForTest returns how to run Lighthouse: the CLI at the path in
// EDGEVITALS_LIGHTHOUSE, through node when it is a .js file. Without it the
// test skips loudly on a developer machine and fails in CI, where a skipped
// cross-check would let the sampler drift from Lighthouse unseen.
func lighthouseForTest(t *testing.T) lighthouse {
	t.Helper()
	cli := os.Getenv("EDGEVITALS_LIGHTHOUSE")
	if cli == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI needs Lighthouse for the cross-check of the lab sampler: EDGEVITALS_LIGHTHOUSE is not set (test.sh installs it with npm when node and npm exist)")
		}
		t.Skip("SKIPPED: NO LIGHTHOUSE, the lab sampler is NOT cross-checked: set EDGEVITALS_LIGHTHOUSE to Lighthouse's cli/index.js (./test.sh installs it)")
	}
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("EDGEVITALS_LIGHTHOUSE = %q: %v", cli, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("EDGEVITALS_LIGHTHOUSE = %q needs node: %v", cli, err)
	}
	lh := lighthouse{cmd: []string{cli}, cli: cli, node: node}
	if strings.HasSuffix(cli, ".js") {
		lh.cmd = []string{node, cli}
	}
	return lh
}

// lighthouseChromeFlags are the flags that lab.Browser starts Chromium
// with (chromedp's defaults and browser.go's own), so that the two tools
// measure the same browser.
func lighthouseChromeFlags() []string {
	flags := []string{
		// chromedp.DefaultExecAllocatorOptions
		"--no-first-run",
		"--no-default-browser-check",
		"--headless",
		"--hide-scrollbars",
		"--mute-audio",
		"--disable-background-networking",
		"--enable-features=NetworkService,NetworkServiceInProcess",
		"--disable-background-timer-throttling",
		"--disable-backgrounding-occluded-windows",
		"--disable-breakpad",
		"--disable-client-side-phishing-detection",
		"--disable-default-apps",
		"--disable-dev-shm-usage",
		"--disable-extensions",
		"--disable-features=Translate,BlinkGenPropertyTrees",
		"--disable-hang-monitor",
		"--disable-ipc-flooding-protection",
		"--disable-popup-blocking",
		"--disable-prompt-on-repost",
		"--disable-renderer-backgrounding",
		"--disable-sync",
		"--force-color-profile=srgb",
		"--metrics-recording-only",
		"--safebrowsing-disable-auto-update",
		"--enable-automation",
		"--password-store=basic",
		"--use-mock-keychain",
		// Browser.running in browser.go
		"--disable-gpu",
		"--enable-unsafe-swiftshader",
		"--window-size=1920,1080",
		"--disable-quic",
		"--disable-component-update",
		"--disable-domain-reliability",
		"--no-pings",
	}
	if os.Geteuid() == 0 {
		flags = append(flags, "--no-sandbox")
	}
	return flags
}

// lighthouseFigures are the metrics read from one Lighthouse report. A
// metric Lighthouse could not measure is nil, and Missing says why.
type lighthouseFigures struct {
	Version                  string
	LCP, TTFB, TBT, FCP, INP *time.Duration
	CLS                      *float64
	Missing                  map[string]string // audit id: Lighthouse's reason
}

// Audits of a Lighthouse report that hold the figures, by their ids. TTFB
// is the server response time of the main document (request sent to first
// header byte), which on loopback is the server's delay. A navigation
// report has no INP, and a timespan report no LCP, FCP or TTFB: those are
// missing, not errors.
const (
	auditLCP  = "largest-contentful-paint"
	auditFCP  = "first-contentful-paint"
	auditTBT  = "total-blocking-time"
	auditCLS  = "cumulative-layout-shift"
	auditTTFB = "server-response-time"
	auditINP  = "interaction-to-next-paint"
)

var errLighthouseRun = errors.New("lighthouse run failed")

// parseLighthouse reads the figures from a Lighthouse JSON report (the
// "LHR"). A report whose run failed as a whole is an error wrapping
// errLighthouseRun; a single audit that failed leaves its figure nil.
func parseLighthouse(data []byte) (lighthouseFigures, error) {
	var r struct {
		Version      string `json:"lighthouseVersion"`
		RuntimeError *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"runtimeError"`
		Audits map[string]struct {
			NumericValue     *float64 `json:"numericValue"`
			ErrorMessage     string   `json:"errorMessage"`
			ScoreDisplayMode string   `json:"scoreDisplayMode"`
		} `json:"audits"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return lighthouseFigures{}, fmt.Errorf("read lighthouse report: %w", err)
	}
	if r.RuntimeError != nil {
		return lighthouseFigures{}, fmt.Errorf("%w: %s: %s", errLighthouseRun, r.RuntimeError.Code, r.RuntimeError.Message)
	}
	if r.Version == "" || r.Audits == nil {
		return lighthouseFigures{}, errors.New("read lighthouse report: no lighthouseVersion or audits: not a Lighthouse JSON report")
	}
	f := lighthouseFigures{Version: r.Version, Missing: map[string]string{}}
	value := func(id string) *float64 {
		a, ok := r.Audits[id]
		switch {
		case !ok:
			f.Missing[id] = "audit not in the report"
		case a.NumericValue == nil:
			// INP without an interaction in the trace is "notApplicable".
			f.Missing[id] = orElse(a.ErrorMessage, "no numericValue, scoreDisplayMode "+strconv.Quote(a.ScoreDisplayMode))
		}
		return a.NumericValue
	}
	millis := func(id string) (*time.Duration, error) {
		d, err := store.DurOf(value(id))
		if err != nil {
			return nil, fmt.Errorf("read lighthouse report: %s: %w", id, err)
		}
		return d, nil
	}
	var err error
	if f.LCP, err = millis(auditLCP); err != nil {
		return lighthouseFigures{}, err
	}
	if f.FCP, err = millis(auditFCP); err != nil {
		return lighthouseFigures{}, err
	}
	if f.TBT, err = millis(auditTBT); err != nil {
		return lighthouseFigures{}, err
	}
	if f.TTFB, err = millis(auditTTFB); err != nil {
		return lighthouseFigures{}, err
	}
	if f.INP, err = millis(auditINP); err != nil {
		return lighthouseFigures{}, err
	}
	if f.CLS = value(auditCLS); f.CLS != nil {
		if err := store.CheckCLS(*f.CLS); err != nil {
			return lighthouseFigures{}, fmt.Errorf("read lighthouse report: %s: %w", auditCLS, err)
		}
	}
	return f, nil
}

func orElse(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

// runLighthouse measures url once in navigation mode, emulating the
// profile p in the Chromium at chromium started with the sampler's flags.
// The Desktop profile runs with Lighthouse's desktop preset and no
// throttling; a profile that slows the CPU runs with DevTools throttling
// of the CPU alone, as the sampler throttles it (see lighthouseArgs).
func runLighthouse(ctx context.Context, lh lighthouse, chromium, url string, p Profile) (lighthouseFigures, error) {
	args := append(lh.cmd[1:len(lh.cmd):len(lh.cmd)], url)
	args = append(args, lighthouseArgs(p)...)
	args = append(args,
		"--only-categories=performance",
		"--disable-full-page-screenshot", // a second per run, for no figure
		"--output=json",
		"--output-path=stdout",
		"--quiet",
		"--chrome-flags="+strings.Join(lighthouseChromeFlags(), " "),
	)
	return runReport(ctx, lighthouseRunTimeout, "lighthouse "+url+" ("+p.Name+")", chromium, lh.cmd[0], args...)
}

// lighthouseArgs are the CLI flags that emulate p as the sampler does.
//
// Both tools emulate the profile's screen in a larger window. Without
// emulation (--screenEmulation.disabled) the viewport is what headless
// Chromium's window leaves after its own frame: 1350x797 in a 1350x940
// window here, which moves the shift page's CLS from 0.0946 to 0.1115.
//
// A profile that slows the CPU (Mobile) gets Lighthouse's mobile form
// factor and DevTools throttling with the profile's CPU slowdown and a
// network left alone (latency and throughputs 0, which DevTools reads as
// no throttling): the sampler's Mobile profile measures without network
// emulation. Lighthouse's default, simulated throttling, would compute
// the figures of a slow-4G phone from a fast load instead of measuring
// them, which is not what the sampler does.
func lighthouseArgs(p Profile) []string {
	screen := []string{
		"--screenEmulation.mobile=" + strconv.FormatBool(p.Mobile),
		"--screenEmulation.width=" + strconv.FormatInt(p.Width, 10),
		"--screenEmulation.height=" + strconv.FormatInt(p.Height, 10),
		"--screenEmulation.deviceScaleFactor=" + strconv.FormatFloat(p.DeviceScaleFactor, 'f', -1, 64),
	}
	if p.CPUSlowdown <= 1 && !p.Mobile {
		return append([]string{"--preset=desktop", "--throttling-method=provided"}, screen...)
	}
	args := append([]string{
		"--form-factor=mobile",
		"--throttling-method=devtools",
		"--throttling.cpuSlowdownMultiplier=" + strconv.FormatFloat(p.CPUSlowdown, 'f', -1, 64),
		"--throttling.requestLatencyMs=0",
		"--throttling.downloadThroughputKbps=0",
		"--throttling.uploadThroughputKbps=0",
	}, screen...)
	if p.UserAgent != "" {
		args = append(args, "--emulatedUserAgent="+p.UserAgent)
	}
	return args
}

// runINPFlow loads url in the profile p, clicks (on a touch profile taps)
// selector inside a Lighthouse timespan, and returns that timespan's
// figures: INP, and TBT and CLS of the interaction (no LCP, FCP or TTFB).
// It runs bench/lighthouse/inp-flow.mjs with the same Chromium and flags as
// runLighthouse, and DevTools throttling of the CPU by p's slowdown.
func runINPFlow(ctx context.Context, lh lighthouse, chromium, url string, p Profile, selector string) (lighthouseFigures, error) {
	script, err := filepath.Abs(inpFlowScript)
	if err != nil {
		return lighthouseFigures{}, fmt.Errorf("find %s: %w", inpFlowScript, err)
	}
	formFactor := "desktop"
	if p.Mobile {
		formFactor = "mobile"
	}
	if p.Touch != p.Mobile {
		return lighthouseFigures{}, fmt.Errorf("profile %s: Lighthouse emulates touch exactly when mobile", p.Name)
	}
	args := []string{script,
		"--lighthouse", lh.cli,
		"--chrome-flags=" + strings.Join(lighthouseChromeFlags(), " "),
		"--form-factor", formFactor,
		"--width", strconv.FormatInt(p.Width, 10),
		"--height", strconv.FormatInt(p.Height, 10),
		"--scale", strconv.FormatFloat(p.DeviceScaleFactor, 'f', -1, 64),
		"--cpu-slowdown", strconv.FormatFloat(max(p.CPUSlowdown, 1), 'f', -1, 64),
		"--selector", selector,
	}
	if p.UserAgent != "" {
		args = append(args, "--user-agent", p.UserAgent)
	}
	args = append(args, url)
	return runReport(ctx, inpFlowTimeout, "lighthouse flow "+url+" ("+p.Name+")", chromium, lh.node, args...)
}

// runReport runs a command that prints one Lighthouse JSON report on
// stdout, within timeout, and reads its figures.
func runReport(ctx context.Context, timeout time.Duration, what, chromium, name string, args ...string) (lighthouseFigures, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "CHROME_PATH="+chromium)
	// Lighthouse launches Chromium with chrome-launcher, which starts it
	// detached, as the leader of its own process group: a run that hangs
	// is ended with its children's groups and its own (killRun), so no
	// browser outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killRun(cmd.Process.Pid) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return lighthouseFigures{}, fmt.Errorf("%w: %s: %w: %s", errLighthouseRun, what, err, lastLines(stderr.String(), 10))
	}
	f, err := parseLighthouse(stdout.Bytes())
	if err != nil {
		return lighthouseFigures{}, fmt.Errorf("%s: %w (stderr: %s)", what, err, lastLines(stderr.String(), 10))
	}
	return f, nil
}

// killRun kills the process group of pid and, first, the process group of
// each of its children that leads one (the Chromium chrome-launcher
// started). Children are found in /proc; where there is none, only pid's
// group is killed.
func killRun(pid int) error {
	for _, child := range procChildren()[pid] { // no /proc: kill what we know
		if pgid, err := syscall.Getpgid(child); err == nil && pgid == child {
			syscall.Kill(-child, syscall.SIGKILL) // gone already is fine
		}
	}
	return syscall.Kill(-pid, syscall.SIGKILL)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

func TestParseLighthouse(t *testing.T) {
	d := func(ms int) *time.Duration { v := time.Duration(ms) * time.Millisecond; return &v }
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name    string
		in      string
		want    lighthouseFigures
		missing []string
		wantErr string
	}{
		{
			name: "every figure",
			in: `{"lighthouseVersion":"12.8.2","audits":{
				"largest-contentful-paint":{"numericValue":2059},
				"first-contentful-paint":{"numericValue":61},
				"total-blocking-time":{"numericValue":251},
				"cumulative-layout-shift":{"numericValue":0.0946},
				"server-response-time":{"numericValue":397}}}`,
			want:    lighthouseFigures{Version: "12.8.2", LCP: d(2059), FCP: d(61), TBT: d(251), TTFB: d(397), CLS: f(0.0946)},
			missing: []string{auditINP},
		},
		{
			name: "a timespan with a click: INP, no load figures",
			in: `{"lighthouseVersion":"12.8.2","gatherMode":"timespan","audits":{
				"interaction-to-next-paint":{"numericValue":214.285,"numericUnit":"millisecond"},
				"total-blocking-time":{"numericValue":151.985},
				"cumulative-layout-shift":{"numericValue":0}}}`,
			want:    lighthouseFigures{Version: "12.8.2", INP: d(214), TBT: d(152), CLS: f(0)},
			missing: []string{auditLCP, auditFCP, auditTTFB},
		},
		{
			name: "a timespan without an interaction has no INP",
			in: `{"lighthouseVersion":"12.8.2","gatherMode":"timespan","audits":{
				"interaction-to-next-paint":{"score":null,"scoreDisplayMode":"notApplicable"},
				"total-blocking-time":{"numericValue":0},
				"cumulative-layout-shift":{"numericValue":0}}}`,
			want:    lighthouseFigures{Version: "12.8.2", TBT: d(0), CLS: f(0)},
			missing: []string{auditLCP, auditFCP, auditTTFB, auditINP},
		},
		{
			name: "an audit that failed leaves its figure unmeasured, not zero",
			in: `{"lighthouseVersion":"12.8.2","audits":{
				"largest-contentful-paint":{"scoreDisplayMode":"error","errorMessage":"The page did not display content that qualifies as a Largest Contentful Paint (LCP). (NO_LCP)"},
				"first-contentful-paint":{"numericValue":61},
				"total-blocking-time":{"numericValue":0},
				"cumulative-layout-shift":{"numericValue":0}}}`,
			want:    lighthouseFigures{Version: "12.8.2", FCP: d(61), TBT: d(0), CLS: f(0)},
			missing: []string{auditLCP, auditTTFB, auditINP},
		},
		{
			name:    "a run that failed as a whole",
			in:      `{"lighthouseVersion":"12.8.2","runtimeError":{"code":"FAILED_DOCUMENT_REQUEST","message":"Lighthouse was unable to reliably load the page you requested."},"audits":{}}`,
			wantErr: "FAILED_DOCUMENT_REQUEST",
		},
		{name: "not JSON", in: `Runtime error encountered`, wantErr: "read lighthouse report"},
		{name: "not a report", in: `{"audits":null}`, wantErr: "not a Lighthouse JSON report"},
		{name: "a time out of range", in: `{"lighthouseVersion":"12.8.2","audits":{"largest-contentful-paint":{"numericValue":-5}}}`, wantErr: "largest-contentful-paint"},
		{name: "a shift out of range", in: `{"lighthouseVersion":"12.8.2","audits":{"cumulative-layout-shift":{"numericValue":1e9}}}`, wantErr: "cumulative-layout-shift"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLighthouse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseLighthouse() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseLighthouse() error = %v", err)
			}
			if g, w := figuresLine(got), figuresLine(tt.want); g != w {
				t.Errorf("parseLighthouse() = %s, want %s", g, w)
			}
			for _, id := range tt.missing {
				if got.Missing[id] == "" {
					t.Errorf("Missing[%q] is empty, want the reason it was not measured", id)
				}
			}
			if len(got.Missing) != len(tt.missing) {
				t.Errorf("Missing = %v, want only %v", got.Missing, tt.missing)
			}
		})
	}
}

func figuresLine(f lighthouseFigures) string {
	dur := func(d *time.Duration) string {
		if d == nil {
			return "-"
		}
		return strconv.FormatFloat(float64(*d)/float64(time.Millisecond), 'f', 0, 64) + "ms"
	}
	cls := "-"
	if f.CLS != nil {
		cls = strconv.FormatFloat(*f.CLS, 'f', 4, 64)
	}
	return fmt.Sprintf("v%s LCP %s FCP %s TTFB %s TBT %s INP %s CLS %s", f.Version, dur(f.LCP), dur(f.FCP), dur(f.TTFB), dur(f.TBT), dur(f.INP), cls)
}

// TestLighthouseAgrees measures ground-truth pages once with Lighthouse
// (navigation mode) and once with the sampler, in the same profile, and
// checks the page's designed value in both, and that the two tools agree,
// within the tolerances of issue 5, on TTFB, TBT and CLS of every page and
// on LCP where the page designs it. Desktop runs without throttling on
// either side; Mobile slows the CPU 4x on both (DevTools throttling in
// Lighthouse, the same CDP call in the sampler) and throttles no network.
//
// Mobile measures LCP, TBT and CLS, the figures the slower CPU or the
// phone's viewport move; each Lighthouse run costs about 20 s.
func TestLighthouseAgrees(t *testing.T) {
	install := lighthouseForTest(t)
	chromium := chromiumForTest(t)
	b := newTestBrowser(t)
	srv := groundTruthServer(t)
	ctx := t.Context()

	tbtWant := longTask - 50*time.Millisecond
	lcpTol := func(want time.Duration) time.Duration { return tolerance(want, 0.10, 50*time.Millisecond) }
	tbtTol := func(want time.Duration) time.Duration { return tolerance(want, 0.15, 30*time.Millisecond) }
	const ttfbTol = 30 * time.Millisecond

	type design struct {
		metric string
		dur    time.Duration // for times
		cls    float64       // for CLS
	}
	tests := []struct {
		name    string
		path    string
		profile Profile
		want    design
	}{
		{"lcp image delayed", "/lcp", Desktop, design{metric: "LCP", dur: lcpImageDelay}},
		{"ttfb server delay", "/ttfb", Desktop, design{metric: "TTFB", dur: ttfbDelay}},
		{"tbt one long task", "/tbt", Desktop, design{metric: "TBT", dur: tbtWant}},
		{"cls", "/cls", Desktop, design{metric: "CLS", cls: shiftScore(Desktop)}},
		{"lcp image delayed", "/lcp", Mobile, design{metric: "LCP", dur: lcpImageDelay}},
		{"tbt one long task", "/tbt", Mobile, design{metric: "TBT", dur: tbtWant}},
		// Chromium flags this page's shift had_recent_input under mobile
		// emulation. The sampler counts such shifts when no real input came
		// before them; Lighthouse only within 500 ms of the trace's first
		// viewport event. The shift lands about 295 ms after that event
		// here; with both cores busy it landed past 500 ms and Lighthouse
		// read CLS 0 (twice in three loaded runs).
		{"cls", "/cls", Mobile, design{metric: "CLS", cls: shiftScore(Mobile)}},
	}
	for _, tt := range tests {
		t.Run(tt.profile.Name+"/"+tt.name, func(t *testing.T) {
			url := srv.URL + tt.path
			s, err := b.Measure(ctx, url, tt.profile, "")
			if err != nil {
				t.Fatal(err)
			}
			lh, err := runLighthouse(ctx, install, chromium, url, tt.profile)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s %s edgevitals: %s", tt.path, tt.profile.Name, sampleLine(s))
			t.Logf("%s %s lighthouse: %s", tt.path, tt.profile.Name, figuresLine(lh))

			// Each figure: the sampler's, Lighthouse's, and the tolerance
			// for a value near what Lighthouse saw.
			type pair struct {
				metric string
				audit  string
				ev, lh *time.Duration
				tol    func(time.Duration) time.Duration
			}
			fixed := func(d time.Duration) func(time.Duration) time.Duration {
				return func(time.Duration) time.Duration { return d }
			}
			pairs := []pair{
				{metric: "LCP", audit: auditLCP, ev: s.LCP, lh: lh.LCP, tol: lcpTol},
				{metric: "TTFB", audit: auditTTFB, ev: s.TTFB, lh: lh.TTFB, tol: fixed(ttfbTol)},
				{metric: "TBT", audit: auditTBT, ev: s.TBT, lh: lh.TBT, tol: tbtTol},
			}
			for _, p := range pairs {
				if p.metric == tt.want.metric {
					checkDesigned(t, "edgevitals", p.metric, p.ev, tt.want.dur, p.tol(tt.want.dur))
					checkDesigned(t, "lighthouse", p.metric, p.lh, tt.want.dur, p.tol(tt.want.dur))
					if p.lh == nil {
						t.Errorf("lighthouse %s: %s", p.metric, lh.Missing[p.audit])
					}
				}
				if p.ev == nil || p.lh == nil {
					continue // not measured: fails above when it is the page's design
				}
				// LCP of the other pages is the first paint of a few words
				// once the document is in, 40 to 110 ms later in either
				// tool: when a fresh tab paints is noise of the machine, not
				// a figure to agree on (52 vs 105 ms with a busy core).
				// TTFB, TBT and CLS are compared on every page, so a
				// phantom long task or layout shift in either tool fails.
				if p.metric == "LCP" && tt.want.metric != "LCP" {
					continue
				}
				if tol := p.tol(*p.lh); !within(*p.ev, *p.lh, tol) {
					t.Errorf("%s: edgevitals %v, lighthouse %v: differ by more than %v", p.metric, *p.ev, *p.lh, tol)
				}
			}
			if tt.want.metric == "CLS" {
				checkDesignedCLS(t, "edgevitals", s.CLS, tt.want.cls, clsTol)
				checkDesignedCLS(t, "lighthouse", lh.CLS, tt.want.cls, clsTol)
			}
			checkAgreeCLS(t, s.CLS, lh.CLS)
		})
	}
}

// TestLighthouseINP clicks the /inp page's button (whose handler blocks
// clickBlock) inside a Lighthouse timespan (bench/lighthouse/inp-flow.mjs)
// and with the sampler, on desktop (a click) and on mobile (a tap, the CPU
// 4x slower), and checks that the two INPs agree within inpTolerance and
// that the sampler's meets the design. Lighthouse's INP is held to the
// design on desktop; on mobile it is logged against it, not held (see
// below). The timespan's CLS must agree with the sampler's (none here).
func TestLighthouseINP(t *testing.T) {
	install := lighthouseForTest(t)
	chromium := chromiumForTest(t)
	b := newTestBrowser(t)
	srv := groundTruthServer(t)
	ctx := t.Context()

	tests := []struct {
		profile Profile
		// lighthouseDesign holds Lighthouse's INP to the design. On the 4x
		// slower CPU, dispatching the tap's events and painting the frame
		// after the handler add 23 to 49 ms to its 200 ms: Lighthouse read
		// 223 to 242 ms in nine runs of this test (5 over the 238 ms bound)
		// and 223 to 249 ms in 41 runs of the script alone (17 over); the
		// page's own Event Timing read 224 to 240 ms without Lighthouse's
		// trace. Held to the design, it would fail on noise about half the
		// time. The sampler's mobile INP (216 to 232 ms in the same runs)
		// is held to the design, and Lighthouse's to the sampler's.
		lighthouseDesign bool
	}{
		{Desktop, true},
		{Mobile, false},
	}
	for _, tt := range tests {
		p := tt.profile
		t.Run(p.Name, func(t *testing.T) {
			url := srv.URL + vitalstest.INPPage
			s, err := b.Measure(ctx, url, p, "#b")
			if err != nil {
				t.Fatal(err)
			}
			lh, err := runINPFlow(ctx, install, chromium, url, p, "#b")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s %s edgevitals: %s", vitalstest.INPPage, p.Name, sampleLine(s))
			t.Logf("%s %s lighthouse timespan: %s", vitalstest.INPPage, p.Name, figuresLine(lh))
			if lh.INP == nil {
				t.Fatalf("lighthouse INP not measured: %s", lh.Missing[auditINP])
			}

			designTol := inpTolerance
			if p.Name == Mobile.Name {
				designTol = mobileINPTolerance
			}
			checkDesigned(t, "edgevitals", "INP", s.INP, clickBlock, designTol)
			if tt.lighthouseDesign {
				checkDesigned(t, "lighthouse", "INP", lh.INP, clickBlock, inpTolerance)
			} else {
				t.Logf("lighthouse INP %v is %v from the design %v (± %v, not held on %s)", *lh.INP, *lh.INP-clickBlock, clickBlock, inpTolerance, p.Name)
			}
			if s.INP != nil && !within(*s.INP, *lh.INP, inpTolerance) {
				t.Errorf("INP: edgevitals %v, lighthouse %v: differ by more than %v", *s.INP, *lh.INP, inpTolerance)
			}
			checkAgreeCLS(t, s.CLS, lh.CLS)
		})
	}
}

func checkDesigned(t *testing.T, tool, metric string, got *time.Duration, want, tol time.Duration) {
	t.Helper()
	if got == nil {
		t.Errorf("%s %s not measured, want %v ± %v", tool, metric, want, tol)
		return
	}
	if !within(*got, want, tol) {
		t.Errorf("%s %s = %v, want %v ± %v", tool, metric, *got, want, tol)
	}
}

// clsTol is issue 5's tolerance for CLS, against the design and between
// the two tools.
const clsTol = 0.01

func checkDesignedCLS(t *testing.T, tool string, got *float64, want, tol float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s CLS not measured, want %.4f ± %v", tool, want, tol)
		return
	}
	if !near(*got, want, tol) {
		t.Errorf("%s CLS = %.4f, want %.4f ± %v", tool, *got, want, tol)
	}
}

// checkAgreeCLS: when both tools measured CLS, they agree within clsTol.
func checkAgreeCLS(t *testing.T, ev, lh *float64) {
	t.Helper()
	if ev != nil && lh != nil && !near(*ev, *lh, clsTol) {
		t.Errorf("CLS: edgevitals %.4f, lighthouse %.4f: differ by more than %v", *ev, *lh, clsTol)
	}
}
