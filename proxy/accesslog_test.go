package proxy

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// accessLines parses what an access log wrote to out, a line each.
func accessLines(t *testing.T, out *syncBuffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("access log line %q is not JSON: %v", line, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestAccessLog: one JSON line per request with the site, the real client,
// the status, the outcome as edgevitals_requests_total counts it, the
// Cache-Status the client got, the body's length, a duration and the
// release; unknown hosts and hostile paths give valid lines too.
// (Requests fasthttp refuses before the handler, malformed ones, are not
// logged.)
func TestAccessLog(t *testing.T) {
	var out syncBuffer
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/private" {
			w.Header().Set("Cache-Control", "private")
		}
		w.Write([]byte("hello"))
	}, func(o *Options) {
		o.AccessLog = NewAccessLog(&out)
		o.Sites[0].Hosts = []string{"www.example.com"}
	})
	h.get("/a?secret=1")
	h.get("/a?secret=1")
	h.get("/account", "Cookie: wordpress_logged_in_abc=admin")
	h.get("/private")
	h.get("/", "Host: other.example")
	h.raw(t, "GET /q\"\\\xc3\xa9\xff HTTP/1.1\r\nHost: www.example.com\r\n\r\n")

	lines := accessLines(t, &out)
	want := []struct {
		path, cache string
		status      float64
	}{
		{"/a", "miss", 200}, {"/a", "hit", 200}, {"/account", "bypass", 200}, {"/private", "miss", 200},
		{"/", "error", 421}, {"/q\"\\\u00e9\ufffd", "", 0},
	}
	if len(lines) != len(want) {
		t.Fatalf("access log has %d lines, want %d:\n%v", len(lines), len(want), lines)
	}
	for i, w := range want {
		l := lines[i]
		if w.status == 0 {
			if l["path"] != w.path {
				t.Errorf("line %d path = %q, want %q (escaped, invalid UTF-8 replaced)", i, l["path"], w.path)
			}
			continue
		}
		if l["path"] != w.path || l["cache"] != w.cache || l["status"] != w.status {
			t.Errorf("line %d = %v, want path %q cache %q status %v", i, l, w.path, w.cache, w.status)
		}
		for _, k := range []string{"time", "client", "method", "host", "cache_status", "bytes", "duration_s", "release"} {
			if _, ok := l[k]; !ok {
				t.Errorf("line %d has no %q: %v", i, k, l)
			}
		}
	}
	if l := lines[1]; l["site"] != "blog" || l["client"] != "127.0.0.1" || l["bytes"] != float64(5) ||
		!strings.Contains(l["cache_status"].(string), "hit") {
		t.Errorf("hit line = %v, want site blog, client 127.0.0.1, 5 bytes, the hit's Cache-Status", l)
	}
	if l := lines[4]; l["site"] != "" {
		t.Errorf("unknown host's line names site %q", l["site"])
	}
	if strings.Contains(out.String(), "secret") {
		t.Errorf("the access log carries a query string:\n%s", out.String())
	}
}

// TestAccessLogWriteFailure: a writer that fails drops its line, counted,
// and the visitor still gets the page.
func TestAccessLogWriteFailure(t *testing.T) {
	log := NewAccessLog(failingWriter{})
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("page")) },
		func(o *Options) { o.AccessLog = log })
	if r := h.get("/"); r.Status != 200 || r.Body != "page" {
		t.Fatalf("with a failing access log = %d %q", r.Status, r.Body)
	}
	if log.Dropped() != 1 {
		t.Errorf("Dropped() = %d, want 1", log.Dropped())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestAppendJSONString(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		got := appendJSONString(nil, []byte(in))
		if string(got) != want {
			t.Errorf("appendJSONString(%q) = %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("appendJSONString(%q) = %s: not JSON: %v", in, got, err)
		}
	}
	f("", `""`)
	f(`a"b\c`, `"a\"b\\c"`)
	f("\x00\n\x1f\x7f", `"\u0000\u000a\u001f\u007f"`)
	f("é\xff\xc3", `"é\ufffd\ufffd"`)
	f("\u2028", "\"\u2028\"")
}

func TestAccessOutcome(t *testing.T) {
	f := func(member string, status int, want string) {
		t.Helper()
		if got := accessOutcome([]byte(member), status); got != want {
			t.Errorf("accessOutcome(%q, %d) = %q, want %q", member, status, got, want)
		}
	}
	f("edgevitals; hit; ttl=118", 200, "hit")
	f("edgevitals; fwd=stale; fwd-status=503; detail=stale-if-error", 200, "stale")
	f("edgevitals; fwd=uri-miss; fwd-status=200; stored", 200, "miss")
	f("edgevitals; fwd=vary-miss; fwd-status=200", 200, "miss")
	f("edgevitals; fwd=bypass; fwd-status=200; detail=cookie", 200, "bypass")
	f("edgevitals; fwd=request; fwd-status=200; detail=private", 200, "pass")
	f("edgevitals; fwd=uri-miss; detail=origin-timeout", 504, "error")
	f("edgevitals; fwd=uri-miss; fwd-status=503", 503, "miss")
	f("", 421, "error")
}
