//go:build unix

package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/config"
)

// TestServeSignals runs `serve` as an operator does and drives it with
// signals: SIGHUP re-reads the file (a host added to a site answers, a
// changed section that needs a restart is named in the log), SIGTERM drains
// and exits 0.
func TestServeSignals(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "page of "+r.Host)
	}))
	defer origin.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "edgevitals.toml")
	conf := func(hosts, retention string) {
		body := fmt.Sprintf(`data_dir = %q
retention = %q
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[vitals]
chromium = "/nonexistent/chromium"
[[site]]
name = "blog"
hosts = [%s]
origins = [%q]
preset = "wordpress"
`, filepath.Join(dir, "data"), retention, hosts, origin.URL)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf(`"www.example.com"`, "720h")

	var logs lockedBuffer
	exit := make(chan int, 1)
	go func() { exit <- runServe([]string{"-config", path}, &logs, &logs) }()
	var proxyAddr string
	waitFor(t, &logs, "edgevitals serving", exit)
	if m := regexp.MustCompile(`proxy=(\S+)`).FindStringSubmatch(logs.String()); m != nil {
		proxyAddr = m[1]
	} else {
		t.Fatalf("no proxy address in the log:\n%s", logs.String())
	}
	get := func(host string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+proxyAddr+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get("shop.example.com"); got != http.StatusMisdirectedRequest {
		t.Fatalf("a host no site serves = %d, want 421", got)
	}

	conf(`"www.example.com", "shop.example.com"`, "240h")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &logs, "config reloaded", exit)
	if got := get("shop.example.com"); got != http.StatusOK {
		t.Errorf("after SIGHUP the added host = %d, want 200", got)
	}
	if !strings.Contains(logs.String(), "retention") {
		t.Errorf("the reload log does not name retention, which needs a restart:\n%s", logs.String())
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("serve exited %d after SIGTERM, want 0:\n%s", code, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s of SIGTERM")
	}
	if !strings.Contains(logs.String(), "edgevitals stopped") {
		t.Errorf("no orderly stop in the log:\n%s", logs.String())
	}
}

// waitFor polls the log until it holds want, failing when serve exits
// first or after 30 s.
func waitFor(t *testing.T, logs *lockedBuffer, want string, exit <-chan int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), want) {
		select {
		case code := <-exit:
			t.Fatalf("serve exited %d before %q:\n%s", code, want, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log within 30 s:\n%s", want, logs.String())
		}
	}
}

// TestServeRefusesOpenAdminWithoutToken: an admin listener off loopback
// would let anyone purge or switch releases; serve will not start it
// without a token, and says which setting to give.
func TestServeRefusesOpenAdminWithoutToken(t *testing.T) {
	t.Setenv(config.TokenEnv, "")
	dir := t.TempDir()
	path := filepath.Join(dir, "edgevitals.toml")
	body := fmt.Sprintf(`data_dir = %q
[server]
listen = "127.0.0.1:0"
admin_listen = "0.0.0.0:0"
[[site]]
name = "blog"
hosts = ["*"]
origins = ["http://127.0.0.1:9"]
`, filepath.Join(dir, "data"))
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	if code := runServe([]string{"-config", path}, &out, &out); code != 1 {
		t.Fatalf("serve exited %d, want 1:\n%s", code, out.String())
	}
	for _, want := range []string{"server.admin_token", "0.0.0.0:0", config.TokenEnv} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("refusal does not name %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("serve created its data directory before refusing")
	}
}
