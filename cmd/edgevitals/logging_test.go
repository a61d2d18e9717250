package main

import (
	"bytes"
	"encoding/json"
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
)

// TestServeLogs: with log.format = "json" every line on stderr is JSON; with
// log.access set every request is one JSON line in that file, and SIGUSR1
// reopens it by its path, as logrotate expects: lines before the rotation
// are in the moved file, lines after it in the new one, none lost.
func TestServeLogs(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "page")
	}))
	defer origin.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "edgevitals.toml")
	access := filepath.Join(dir, "access.log")
	conf := fmt.Sprintf(`data_dir = %q
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[vitals]
chromium = "/nonexistent/chromium"
[log]
format = "json"
access = %q
[[site]]
name = "blog"
hosts = ["www.example.com"]
origins = [%q]
`, filepath.Join(dir, "data"), access, origin.URL)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	exit := make(chan int, 1)
	go func() { exit <- runServe([]string{"-config", path}, &logs, &logs) }()
	waitFor(t, &logs, "edgevitals serving", exit)
	m := regexp.MustCompile(`"proxy":"([^"]+)"`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no proxy address in the JSON log:\n%s", logs.String())
	}
	get := func(p string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+m[1]+p, nil)
		req.Host = "www.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// The line is written before the response: read right after.
	get("/one")
	get("/one")
	if err := os.Rename(access, access+".1"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &logs, "access log reopened", exit)
	get("/two")

	lines := func(file string) []map[string]any {
		t.Helper()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var out []map[string]any
		for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var v map[string]any
			if err := json.Unmarshal(l, &v); err != nil {
				t.Fatalf("%s: line %q is not JSON: %v", file, l, err)
			}
			out = append(out, v)
		}
		return out
	}
	before, after := lines(access+".1"), lines(access)
	if len(before) != 2 || before[0]["cache"] != "miss" || before[1]["cache"] != "hit" || before[1]["path"] != "/one" {
		t.Errorf("rotated access log = %v, want a miss and a hit of /one", before)
	}
	if len(after) != 1 || after[0]["path"] != "/two" || after[0]["site"] != "blog" {
		t.Errorf("reopened access log = %v, want /two", after)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exit:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s of SIGTERM")
	}
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Errorf("process log line %q is not JSON (log.format = \"json\")", l)
		}
	}
}
