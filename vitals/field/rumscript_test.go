package field

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// node returns the path of Node.js, or skips the test without it (it fails
// under CI, where node is expected).
func node(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node is expected under CI: %v", err)
		}
		t.Skipf("no node to check rum.js with: %v", err)
	}
	return p
}

func TestRumScriptIsSmallAndParses(t *testing.T) {
	nodeBin := node(t)
	dir := t.TempDir()
	for _, rate := range []float64{0, 0.1, 1} {
		c, err := NewCollector(CollectorOptions{Sites: []string{"blog"}, SampleRate: rate})
		if err != nil {
			t.Fatal(err)
		}
		s := c.Script()
		if len(s) >= 6<<10 {
			t.Errorf("rate %v: script is %d bytes, want < 6 KB", rate, len(s))
		}
		if strings.Contains(string(s), "__SAMPLE_RATE__") || strings.Contains(string(s), "// ") {
			t.Errorf("rate %v: placeholder or comment left in the script", rate)
		}
		path := filepath.Join(dir, "rum.js")
		if err := os.WriteFile(path, s, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(nodeBin, "--check", path).CombinedOutput(); err != nil {
			t.Errorf("rate %v: node --check: %v\n%s", rate, err, out)
		}
	}
	for _, src := range []string{"rum.js"} { // measure.js: TestMeasureScriptParses in vitals/lab
		if out, err := exec.Command(nodeBin, "--check", src).CombinedOutput(); err != nil {
			t.Errorf("node --check %s: %v\n%s", src, err, out)
		}
	}
}

// rumHarness runs the served script in a Node vm whose global stands in for
// a browser window: performance entries, serverTiming, sessionStorage,
// sendBeacon and the page-hide event. It prints one JSON result per case.
const rumHarness = `
const vm = require('vm');
const fs = require('fs');
const src = fs.readFileSync(process.argv[2], 'utf8');
const cases = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const out = [];
for (const c of cases) {
  const listeners = {};
  const sent = [];
  const storage = Object.assign({}, c.storage || {});
  const entries = {
    'largest-contentful-paint': [{ startTime: c.lcp }],
    'paint': [{ name: 'first-contentful-paint', startTime: 900 }],
    'layout-shift': [{ startTime: 100, value: 0.0512345, hadRecentInput: false }],
    'event': [{ interactionId: 7, duration: 80 }],
    'first-input': [],
    'longtask': [],
  };
  class PO {
    constructor(cb) { this.cb = cb; }
    observe(o) { const l = entries[o.type] || []; this.cb({ getEntries: () => l }); }
  }
  PO.supportedEntryTypes = Object.keys(entries);
  const win = {
    navigator: Object.assign({ sendBeacon: (url, body) => { sent.push({ url, body }); return true; }, maxTouchPoints: 0 }, c.nav || {}),
    screen: c.screen || { width: 1280, height: 800 },
    location: { pathname: c.path || '/' },
    sessionStorage: { getItem: (k) => (k in storage ? storage[k] : null), setItem: (k, v) => { storage[k] = String(v); } },
    crypto: require('crypto').webcrypto,
    addEventListener: (t, fn) => { (listeners[t] = listeners[t] || []).push(fn); },
    matchMedia: () => ({ matches: !!c.fine }),
    document: { visibilityState: 'visible' },
    performance: {
      now: () => 5000,
      getEntriesByType: (t) => (t === 'navigation' ? [{ responseStart: 120, activationStart: 0, serverTiming: c.serverTiming || [] }] : []),
    },
    PerformanceObserver: PO,
    JSON, Math, String, Uint8Array, Object,
  };
  Object.assign(win, c.globals || {});
  win.window = win;
  vm.createContext(win);
  vm.runInContext(src, win);
  const hasConvert = typeof (win.edgevitals && win.edgevitals.convert) === 'function';
  for (const g of c.convert || []) win.edgevitals.convert(g);
  win.document.visibilityState = 'hidden';
  for (const fn of listeners.visibilitychange || []) fn();
  for (const fn of listeners.pagehide || []) fn();
  out.push({ sent, storage, hasConvert });
}
console.log(JSON.stringify(out));
`

type harnessCase struct {
	Name         string            `json:"name"`
	Path         string            `json:"path,omitempty"`
	LCP          float64           `json:"lcp"`
	Nav          map[string]any    `json:"nav,omitempty"`
	Screen       map[string]int    `json:"screen,omitempty"`
	Fine         bool              `json:"fine,omitempty"`
	Storage      map[string]string `json:"storage,omitempty"`
	Globals      map[string]any    `json:"globals,omitempty"`
	ServerTiming []map[string]any  `json:"serverTiming,omitempty"`
	Convert      []string          `json:"convert,omitempty"`
}

type harnessResult struct {
	Sent []struct {
		URL  string `json:"url"`
		Body string `json:"body"`
	} `json:"sent"`
	Storage    map[string]string `json:"storage"`
	HasConvert bool              `json:"hasConvert"`
}

func runHarness(t *testing.T, rate float64, cases []harnessCase) []harnessResult {
	t.Helper()
	nodeBin := node(t)
	c, err := NewCollector(CollectorOptions{Sites: []string{"blog"}, SampleRate: rate})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string][]byte{"harness.js": []byte(rumHarness), "rum.js": c.Script()}
	var err2 error
	if files["cases.json"], err2 = json.Marshal(cases); err2 != nil {
		t.Fatal(err2)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(nodeBin, filepath.Join(dir, "harness.js"), filepath.Join(dir, "rum.js"), filepath.Join(dir, "cases.json"))
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("node harness: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var res []harnessResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("harness output %q: %v", out, err)
	}
	if len(res) != len(cases) {
		t.Fatalf("harness ran %d cases, want %d", len(res), len(cases))
	}
	return res
}

// TestRumScriptBeacons runs the served script against a stand-in browser
// and hands what it sends to a real Collector: the script and the
// collector agree on the format, and the script stays silent when it must.
func TestRumScriptBeacons(t *testing.T) {
	hitV42 := []map[string]any{{"name": "edgevitals", "description": "hit"}, {"name": "edgevitals-release", "description": "v42"}}
	cases := []harnessCase{
		{Name: "page view", Path: "/2026/11/post/", LCP: 1500.4, ServerTiming: hitV42, Nav: map[string]any{"userAgentData": map[string]any{"mobile": true}}},
		{Name: "conversion and page view", Path: "/", LCP: 800, Convert: []string{"signup"}},
		{Name: "stale, tablet", LCP: 900, ServerTiming: []map[string]any{{"name": "edgevitals", "description": "stale"}},
			Nav: map[string]any{"maxTouchPoints": 5}, Screen: map[string]int{"width": 768, "height": 1024}},
		{Name: "unknown cache status", LCP: 900, ServerTiming: []map[string]any{{"name": "edgevitals", "description": "fwd=weird"}},
			Nav: map[string]any{"maxTouchPoints": 5}, Screen: map[string]int{"width": 390, "height": 844}},
		{Name: "touch laptop", LCP: 900, Nav: map[string]any{"maxTouchPoints": 10}, Fine: true},
		{Name: "LCP beyond a minute is left out", LCP: 70000},
		{Name: "same tab", LCP: 900, Storage: map[string]string{"edgevitals.sid": "abcdefghijklmnopqrstuv"}},
		{Name: "GPC", LCP: 900, Nav: map[string]any{"globalPrivacyControl": true}, Convert: []string{"signup"}},
		{Name: "Do Not Track", LCP: 900, Nav: map[string]any{"doNotTrack": "1"}},
		{Name: "lab sampler", LCP: 900, Globals: map[string]any{"__edgevitalsLab": true}},
		{Name: "tab not sampled", LCP: 900, Storage: map[string]string{"edgevitals.sid": "0"}},
	}
	res := runHarness(t, 1, cases)

	col := newTestCollector(t, func(o *CollectorOptions) { o.Goals = []Goal{{Site: "blog", Name: "signup"}} })
	type want struct {
		beacons int
		fields  map[string]any // of the last beacon
	}
	wants := []want{
		{1, map[string]any{"v": 1.0, "path": "/2026/11/post/", "lcp": 1500.0, "fcp": 900.0, "ttfb": 120.0, "inp": 80.0, "cls": 0.0512, "dev": "mobile", "cache": "hit", "rel": "v42"}},
		{2, map[string]any{"lcp": 800.0, "dev": "desktop", "cache": "unknown", "rel": nil}},
		{1, map[string]any{"dev": "tablet", "cache": "stale"}},
		{1, map[string]any{"dev": "mobile", "cache": "unknown"}},
		{1, map[string]any{"dev": "desktop"}},
		{1, map[string]any{"lcp": nil, "fcp": 900.0}},
		{1, map[string]any{"sid": "abcdefghijklmnopqrstuv"}},
		{0, nil}, {0, nil}, {0, nil}, {0, nil},
	}
	for i, r := range res {
		name := cases[i].Name
		if !r.HasConvert {
			t.Errorf("%s: window.edgevitals.convert is not defined", name)
		}
		if len(r.Sent) != wants[i].beacons {
			t.Errorf("%s: sent %d beacons, want %d: %v", name, len(r.Sent), wants[i].beacons, r.Sent)
			continue
		}
		for j, s := range r.Sent {
			if s.URL != "/__edgevitals/rum" {
				t.Errorf("%s: beacon to %q", name, s.URL)
			}
			if code := col.Beacon("blog", "203.0.113.1", false, []byte(s.Body)); code != 204 {
				_, err := parseBeacon([]byte(s.Body))
				t.Errorf("%s: Beacon(%s) = %d (%v), want 204", name, s.Body, code, err)
			}
			if j == 0 && len(r.Sent) == 2 && !strings.Contains(s.Body, `"conv":"signup"`) {
				t.Errorf("%s: first beacon %s, want the conversion", name, s.Body)
			}
		}
		if len(r.Sent) == 0 {
			continue
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(r.Sent[len(r.Sent)-1].Body), &got); err != nil {
			t.Fatal(err)
		}
		for k, v := range wants[i].fields {
			if g, ok := got[k]; v == nil && ok || v != nil && g != v {
				t.Errorf("%s: beacon field %s = %v, want %v (beacon %s)", name, k, g, v, r.Sent[len(r.Sent)-1].Body)
			}
		}
		if sid, _ := got["sid"].(string); !validSID(sid) || r.Storage["edgevitals.sid"] != sid {
			t.Errorf("%s: sid %q, stored %q: want one valid id kept for the tab", name, sid, r.Storage["edgevitals.sid"])
		}
	}
	if got := col.exposition()[`edgevitals_conversions_total{site="blog",goal="signup"}`]; got != 1 {
		t.Errorf("conversions from the script = %v, want 1", got)
	}

	// With a sample rate of 0 no tab reports, and the decision sticks.
	res = runHarness(t, 0, []harnessCase{{Name: "rate 0", LCP: 900, Convert: []string{"signup"}}})
	if len(res[0].Sent) != 0 || res[0].Storage["edgevitals.sid"] != "0" {
		t.Errorf("rate 0: sent %v, stored %q; want nothing sent and 0 stored", res[0].Sent, res[0].Storage["edgevitals.sid"])
	}
}

func TestCompactJS(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := compactJS(in); got != want {
			t.Errorf("compactJS(%q) = %q, want %q", in, got, want)
		}
	}
	f("var a = 1; // one\n", "var a=1;\n")
	f("var u = 'http://x/*y*/'; /* c */ var b = \"it's // fine\";\n", "var u='http://x/*y*/';var b=\"it's // fine\";\n")
	f("var s = 'a\\'b // c';\n", "var s='a\\'b // c';\n")
	f("a = b + +c;\nd = e - -f;\n", "a=b+ +c;d=e- -f;\n")
	f("if (x) {\n  y();\n}\nelse {\n}\n", "if(x){y();}\nelse{}\n")
	f("return x\n}\n", "return x}\n")
	f("var f = function () {\n}\n(g)\n", "var f=function(){}\n(g)\n")
	f("typeof v === 'number' && k in o\n", "typeof v==='number'&&k in o\n")
	f("a\n\n\n   \nb\n", "a\nb\n")
	f("/* unterminated", "\n")
}
