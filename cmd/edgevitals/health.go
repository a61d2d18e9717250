package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

func init() {
	commands["health"] = command{run: runHealth, usage: "health [-admin URL] [-timeout DUR]  exit 0 when ready, 1 when not (Docker HEALTHCHECK, probes)"}
}

const (
	// adminEnv names the admin API URL `health` asks when -admin is not
	// given, as deploy/ci/release.sh reads it: a container whose admin
	// listener is not on the default address sets it once in its image or
	// unit instead of in every probe.
	adminEnv = "EDGEVITALS_ADMIN"
	// defaultAdmin is server.admin_listen's default, as a URL.
	defaultAdmin = "http://127.0.0.1:9145"
	// healthBodyLimit bounds what is read of /readyz: a few lines.
	healthBodyLimit = 64 << 10
	// healthReasonLimit bounds the reason printed, so a probe log stays one
	// short line whatever answered on the port.
	healthReasonLimit = 300
)

// runHealth asks the admin listener's /readyz once: exit 0 when it answers
// 200, 1 when it answers anything else or not at all within -timeout, 2 on
// usage errors. It prints one line either way: Docker keeps the output of
// the last health checks (docker inspect), and a kubelet or systemd log
// shows it.
func runHealth(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := defaultAdmin
	if v := os.Getenv(adminEnv); v != "" {
		def = v
	}
	admin := fs.String("admin", def, "admin API `URL` (default $"+adminEnv+", else "+defaultAdmin+")")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after `DUR`: connect, answer and body")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	const usageLine = "usage: edgevitals health [-admin URL] [-timeout DUR]"
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, usageLine)
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "edgevitals health: -timeout must be > 0, got %s\n%s\n", *timeout, usageLine)
		return 2
	}
	u, err := url.Parse(*admin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "edgevitals health: -admin must be an http(s) URL such as %s, got %q\n%s\n", defaultAdmin, *admin, usageLine)
		return 2
	}
	status, reason, err := readyz(strings.TrimRight(*admin, "/"), *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "edgevitals health: %v\n", err)
		return 1
	}
	if status != http.StatusOK {
		fmt.Fprintf(stderr, "edgevitals health: not ready (%d %s): %s\n", status, http.StatusText(status), reason)
		return 1
	}
	fmt.Fprintf(stdout, "edgevitals health: %s\n", reason)
	return 0
}

// readyz GETs base/readyz within timeout and returns the status and the
// body folded into one line ("proxy: not ready; off: lab sampler off").
func readyz(base string, timeout time.Duration) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return 0, "", fmt.Errorf("build request: %w", err)
	}
	client := &http.Client{
		// A redirect is not an answer of edgevitals' /readyz: report it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, "", fmt.Errorf("admin API at %s did not answer within %s: %w", base, timeout, err)
		}
		return 0, "", fmt.Errorf("admin API at %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, healthBodyLimit))
	if err != nil {
		return 0, "", fmt.Errorf("read %s/readyz: %w", base, err)
	}
	return resp.StatusCode, oneLine(string(body)), nil
}

// oneLine joins the non-empty lines of s with "; ", bounded to
// healthReasonLimit bytes.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	out := strings.Join(parts, "; ")
	if out == "" {
		return "(empty answer)"
	}
	if len(out) > healthReasonLimit {
		out = strings.ToValidUTF8(out[:healthReasonLimit], "") + "..."
	}
	return out
}
