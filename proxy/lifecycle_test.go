package proxy

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestShutdownDrainsInFlight: a request in flight when shutdown begins is
// answered in full; shutdown returns once it is.
func TestShutdownDrainsInFlight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		w.Write([]byte("finished"))
	})
	got := make(chan response, 1)
	go func() { got <- h.get("/slow/") }()
	<-arrived
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- h.proxy.Shutdown(ctx)
	}()
	select {
	case err := <-done:
		t.Fatalf("shutdown returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond): // shutdown must still be waiting
	}
	close(release)
	if r := <-got; r.Status != 200 || r.Body != "finished" {
		t.Errorf("in-flight request = %d %q, want it answered in full", r.Status, r.Body)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}
