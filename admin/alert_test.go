package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/proxy/proxytest"
)

func TestHitRatioAlertFiresAndResolves(t *testing.T) {
	got := make(chan alertPayload, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p alertPayload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		got <- p
	}))
	defer recv.Close()
	h := proxytest.New(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		if strings.HasPrefix(r.URL.Path, "/article/") {
			w.Header().Set("Set-Cookie", "ab=1") // the bad release
		}
		w.Write([]byte("page"))
	})
	a := NewAlerter(h.Proxy, AlertOptions{Webhook: recv.URL, Below: 0.8, For: 10 * time.Minute, MinRPS: 0.01, Clock: h.Clock.Now})
	ctx := context.Background()
	step := func(path string, n int) {
		t.Helper()
		for range n {
			h.Get(path)
		}
		a.Evaluate(ctx)
		h.Clock.Advance(time.Minute)
	}
	// Ten minutes of uncacheable articles: pending, then firing once.
	for range 10 {
		step("/article/1/", 5)
		select {
		case p := <-got:
			t.Fatalf("sent %q before the 10 minutes were up", p.Status)
		default:
		}
	}
	step("/article/1/", 5)
	p := <-got
	if p.Status != "firing" || p.Alerts[0].Labels["site"] != "blog" || !strings.Contains(p.Text, "blog") {
		t.Fatalf("payload = %+v, want firing for blog", p)
	}
	if !a.Firing("blog") {
		t.Error("Firing(blog) = false")
	}
	step("/article/1/", 5) // still firing: nothing new is sent
	// Recovery: hits only, until the 5-minute window no longer holds the passes.
	for range 6 {
		step("/", 20)
	}
	select {
	case p := <-got:
		if p.Status != "resolved" || p.Alerts[0].EndsAt.IsZero() {
			t.Errorf("payload = %+v, want resolved with endsAt", p)
		}
	default:
		t.Fatal("no resolved notification after recovery")
	}
	if len(got) != 0 {
		t.Errorf("%d extra notifications", len(got))
	}
}

func TestHitRatioAlertTrafficFloor(t *testing.T) {
	sent := make(chan struct{}, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sent <- struct{}{} }))
	defer recv.Close()
	h := proxytest.New(t, proxytest.Page("x", "Set-Cookie: a=1"))
	// At night: 1 request a minute is under the 1 req/s floor; a 0% hit ratio must not page.
	a := NewAlerter(h.Proxy, AlertOptions{Webhook: recv.URL, Below: 0.8, For: time.Minute, MinRPS: 1, Clock: h.Clock.Now})
	for range 15 {
		h.Get("/quiet/")
		a.Evaluate(context.Background())
		h.Clock.Advance(time.Minute)
	}
	if len(sent) != 0 || a.Firing("blog") {
		t.Error("alert fired under the traffic floor")
	}
}
