package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"github.com/edgevitals/edgevitals/config"
	"github.com/edgevitals/edgevitals/proxy"
)

// openAccessLog opens log.access, when set, and hands the proxy its
// access log; lines that failed to be written are counted on /metrics.
func (a *app) openAccessLog(po *proxy.Options) error {
	if a.cfg.Log.Access == "" {
		return nil
	}
	f, err := openAccessLog(a.cfg.Log.Access)
	if err != nil {
		return err
	}
	a.access = f
	po.AccessLog = proxy.NewAccessLog(f)
	dropped := po.AccessLog.Dropped
	a.set.RegisterMetricsWriter(func(w io.Writer) {
		metrics.WriteCounterUint64(w, "edgevitals_access_log_dropped_total", dropped())
	})
	return nil
}

// reopenAccessLog opens the access log file anew (SIGUSR1, for logrotate).
func (a *app) reopenAccessLog() {
	if a.access == nil {
		return
	}
	if err := a.access.Reopen(); err != nil {
		a.log.Error("reopen the access log; lines go to the old file", "err", err)
		return
	}
	a.log.Info("access log reopened", "path", a.access.path)
}

// processLogger is the process log on w, as log.format says.
func processLogger(c config.Log, w io.Writer) *slog.Logger {
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// accessFile is the access log's destination: stdout, or a file that
// Reopen opens anew (after logrotate has moved it) without losing a line:
// writes wait for the swap under the same lock.
type accessFile struct {
	path string // "" for stdout

	mu sync.Mutex
	w  io.Writer
	f  *os.File // nil for stdout
}

// openAccessLog opens dest ("stdout" or a path, created 0640 and appended to).
func openAccessLog(dest string) (*accessFile, error) {
	if dest == "stdout" {
		return &accessFile{w: os.Stdout}, nil
	}
	a := &accessFile{path: dest}
	if err := a.Reopen(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *accessFile) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.w.Write(p)
}

// Reopen opens the file again by its path (SIGUSR1, after logrotate moved
// it) and closes the old one. On failure the old file stays in use.
func (a *accessFile) Reopen() error {
	if a.path == "" {
		return nil
	}
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("log.access: %w", err)
	}
	a.mu.Lock()
	old := a.f
	a.f, a.w = f, f
	a.mu.Unlock()
	if old != nil {
		if err := old.Close(); err != nil {
			return fmt.Errorf("log.access: close the old file: %w", err)
		}
	}
	return nil
}

// Close closes the file (stdout stays open).
func (a *accessFile) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f, a.w = nil, io.Discard
	return err
}
