package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// signalHandler closes ready when a record with message msg is logged:
// the app logs "edgevitals serving" right after it turns /readyz on.
type signalHandler struct {
	slog.Handler
	msg   string
	once  *sync.Once
	ready chan struct{}
}

func (h signalHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.ready) })
	}
	return h.Handler.Handle(ctx, r)
}

func (h signalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.Handler = h.Handler.WithAttrs(as)
	return h
}

func (h signalHandler) WithGroup(name string) slog.Handler {
	h.Handler = h.Handler.WithGroup(name)
	return h
}

// startReadyApp starts edgevitals in front of a loopback origin and
// returns once its /readyz says ready.
func startReadyApp(t *testing.T) *app {
	t.Helper()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html><body>ok</body></html>")
	}))
	t.Cleanup(origin.Close)
	h := signalHandler{Handler: slog.NewTextHandler(io.Discard, nil), msg: "edgevitals serving", once: &sync.Once{}, ready: make(chan struct{})}
	a := startTestAppLog(t, origin.URL, nil, slog.New(h))
	select {
	case <-h.ready:
	case <-time.After(30 * time.Second):
		t.Fatal("edgevitals did not log \"edgevitals serving\" within 30 s")
	}
	return a
}

func runHealthCmd(args ...string) (code int, stdout, stderr string) {
	var out, errs bytes.Buffer
	code = run(append([]string{"health"}, args...), &out, &errs)
	return code, out.String(), errs.String()
}

// oneLineOut fails unless s is exactly one line holding want.
func oneLineOut(t *testing.T, name, s, want string) {
	t.Helper()
	if !strings.Contains(s, want) || strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("%s = %q, want one line holding %q", name, s, want)
	}
}

// TestHealth asks a running edgevitals, as Docker's HEALTHCHECK and a
// kubelet's exec probe do: ready is 0, not ready (shutdown flips /readyz
// first) is 1 with the reason /readyz gives, and -admin falls back to
// $EDGEVITALS_ADMIN.
func TestHealth(t *testing.T) {
	a := startReadyApp(t)
	admin := "http://" + a.adminLn.Addr().String()

	code, out, errs := runHealthCmd("-admin", admin)
	if code != 0 {
		t.Fatalf("health on a ready edgevitals = %d, stderr %q, want 0", code, errs)
	}
	oneLineOut(t, "stdout", out, "proxy: ready")

	// A trailing slash, as people paste URLs, is the same admin API.
	if code, _, errs := runHealthCmd("-admin", admin+"/"); code != 0 {
		t.Errorf("health -admin %s/ = %d %q, want 0", admin, code, errs)
	}

	t.Setenv(adminEnv, admin)
	if code, _, errs := runHealthCmd(); code != 0 {
		t.Errorf("health with %s=%s = %d %q, want 0", adminEnv, admin, code, errs)
	}

	a.admin.SetReady(false) // what shutdown does before it drains
	code, out, errs = runHealthCmd("-admin", admin)
	if code != 1 || out != "" {
		t.Errorf("health on a draining edgevitals = %d, stdout %q, want 1 and nothing on stdout", code, out)
	}
	oneLineOut(t, "stderr", errs, "not ready (503 Service Unavailable): proxy: not ready")

	// -admin wins over the environment.
	t.Setenv(adminEnv, "http://127.0.0.1:1")
	if code, _, errs := runHealthCmd("-admin", admin); code != 1 || !strings.Contains(errs, "proxy: not ready") {
		t.Errorf("health -admin with %s set = %d %q, want 1 from %s", adminEnv, code, errs, admin)
	}
}

// TestHealthUnreachable: nothing listening, and a listener that accepts
// but never answers (a wedged process), are both "not healthy", within the
// timeout, in one line.
func TestHealthUnreachable(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + closed.Addr().String()
	closed.Close()

	wedged, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	release := make(chan struct{})
	held.Go(func() {
		for {
			c, err := wedged.Accept()
			if err != nil {
				return // closed by the deferred Close
			}
			held.Go(func() {
				<-release // hold the connection open, read nothing, answer nothing
				c.Close()
			})
		}
	})
	defer held.Wait()
	defer wedged.Close()
	defer close(release)

	tests := []struct {
		name, admin, want string
	}{
		{"refused", refused, "connection refused"},
		{"no answer", "http://" + wedged.Addr().String(), "did not answer within 200ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			var code int
			var out, errs string
			go func() {
				defer close(done)
				code, out, errs = runHealthCmd("-admin", tt.admin, "-timeout", "200ms")
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("health did not return within 30 s: -timeout is not honoured")
			}
			if code != 1 || out != "" {
				t.Errorf("health -admin %s = %d, stdout %q, want 1", tt.admin, code, out)
			}
			oneLineOut(t, "stderr", errs, tt.want)
		})
	}
}

func TestHealthUsage(t *testing.T) {
	f := func(want string, args ...string) {
		t.Helper()
		code, _, errs := runHealthCmd(args...)
		if code != 2 || !strings.Contains(errs, want) {
			t.Errorf("health %q = %d %q, want 2 and %q", args, code, errs, want)
		}
	}
	f("usage: edgevitals health", "extra")
	f("-timeout must be > 0, got 0s", "-timeout", "0")
	f("-timeout must be > 0, got -1s", "-timeout", "-1s")
	f("-admin must be an http(s) URL", "-admin", "127.0.0.1:9145")
	f("-admin must be an http(s) URL", "-admin", "ftp://127.0.0.1:9145")
	f("flag provided but not defined", "-nope")
}

func TestOneLine(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
	f("proxy: not ready\noff: lab sampler off\n", "proxy: not ready; off: lab sampler off")
	f("\n\n", "(empty answer)")
	f("  a  \r\n\r\nb", "a; b")
	long := "a" + strings.Repeat("é", healthReasonLimit) // the cut falls inside an é
	if got := oneLine(long); len(got) > healthReasonLimit+3 || !strings.HasSuffix(got, "...") || !strings.HasPrefix(long, strings.TrimSuffix(got, "...")) {
		t.Errorf("oneLine(%d bytes) = %d bytes %q..., want at most %d valid bytes and ...", len(long), len(got), got[:10], healthReasonLimit+3)
	}
}
