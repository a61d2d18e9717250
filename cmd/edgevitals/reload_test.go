package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/edgevitals/edgevitals/config"
)

// TestReloadKeepsRunningConfigOnError is SIGHUP's contract: a bad file
// changes nothing and says so in one log line; a good one swaps the sites in.
func TestReloadKeepsRunningConfigOnError(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Host)
	}))
	defer origin.Close()
	var logs lockedBuffer
	a := startTestAppLog(t, origin.URL, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	proxyURL := "http://" + a.proxyLn.Addr().String()
	status := func(host string) int {
		req, _ := http.NewRequest(http.MethodGet, proxyURL+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	path := filepath.Join(t.TempDir(), "edgevitals.toml")
	write := func(body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("[[site]]\nname = \"blog\"\nhosts = [\"www.example.com\"]\norigins = [\"ftp://nope\"]\npreset = \"bogus\"\n")
	if err := a.reload(path); err == nil {
		t.Fatal("a bad config was accepted")
	}
	if n := strings.Count(logs.String(), "config reload"); n != 1 || !strings.Contains(logs.String(), "config reload refused") {
		t.Errorf("want one clear log line, got %q", logs.String())
	}
	if got := status("anything.example"); got != 200 {
		t.Errorf("after a refused reload the catch-all site answers %d", got)
	}
	write(fmt.Sprintf("[[site]]\nname = \"blog\"\nhosts = [\"www.example.com\"]\norigins = [%q]\npreset = \"wordpress\"\n", origin.URL))
	if err := a.reload(path); err != nil {
		t.Fatal(err)
	}
	if got := status("www.example.com"); got != 200 {
		t.Errorf("reloaded host = %d", got)
	}
	if got := status("anything.example"); got != http.StatusMisdirectedRequest {
		t.Errorf("host dropped by the reload = %d, want 421", got)
	}
}

// lockedBuffer is a log destination safe for the app's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReloadNamesWhatNeedsARestart: a reload applies sites at once, but the
// field-data collector knows only the sites it started with, so adding one
// with field data on must say a restart is needed rather than let the new
// site's beacons be rejected unexplained.
func TestReloadNamesWhatNeedsARestart(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer origin.Close()
	var logs lockedBuffer
	a := startTestAppLog(t, origin.URL, func(c *config.Config) { c.RUM.Enabled = true }, slog.New(slog.NewTextHandler(&logs, nil)))
	path := filepath.Join(t.TempDir(), "edgevitals.toml")
	body := fmt.Sprintf("data_dir = %q\n[server]\nlisten = %q\nadmin_listen = %q\nadmin_token = \"e2e-token\"\n[rum]\nenabled = true\n", a.cfg.DataDir, a.cfg.Server.Listen, a.cfg.Server.AdminListen)
	for _, name := range []string{"blog", "shop"} {
		body += fmt.Sprintf("[[site]]\nname = %q\nhosts = [\"%s.example.com\"]\norigins = [%q]\npreset = \"wordpress\"\n", name, name, origin.URL)
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.reload(path); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "site names (field data)") {
		t.Errorf("adding a site with field data on: the log does not say it needs a restart:\n%s", logs.String())
	}
}
