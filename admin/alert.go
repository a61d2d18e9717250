package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/edgevitals/edgevitals/proxy"
	"github.com/edgevitals/edgevitals/vitals/report"
)

// AlertOptions configure the built-in hit-ratio alert, for users who run
// edgevitals without Prometheus and Alertmanager.
type AlertOptions struct {
	Webhook  string        // Alertmanager- or Slack-compatible URL; "" disables the alert
	Below    float64       // fire when a site's 5-minute hit ratio stays under this
	For      time.Duration // ... for this long
	MinRPS   float64       // ... while it has at least this many cacheable requests per second
	Interval time.Duration // how often to evaluate; default 15s
	Clock    func() time.Time
	Client   *http.Client
	Logger   *slog.Logger
}

// Alerter evaluates the hit ratio of every site and calls the webhook when an
// alert starts firing and when it resolves, like a Prometheus alert rule with
// `for:` and a traffic floor (so a quiet night does not page anyone).
type Alerter struct {
	o     AlertOptions
	proxy *proxy.Server
	mu    sync.Mutex
	state map[string]*alertState
}

type alertState struct {
	pendingSince time.Time // zero when the condition does not hold
	firing       bool
	firedAt      time.Time
}

// NewAlerter watches the sites of p; it returns nil when no webhook is
// configured.
func NewAlerter(p *proxy.Server, o AlertOptions) *Alerter {
	if o.Webhook == "" {
		return nil
	}
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Alerter{o: o, proxy: p, state: map[string]*alertState{}}
}

// Run evaluates every Interval until ctx ends.
func (a *Alerter) Run(ctx context.Context) {
	every(ctx, a.o.Interval, func() { a.Evaluate(ctx) })
}

// every calls f every d, on the caller's goroutine, until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// Evaluate runs one evaluation and sends what changed. Errors reaching the
// webhook are logged; the alert state still moves (the next change is sent).
func (a *Alerter) Evaluate(ctx context.Context) {
	now := a.o.Clock()
	for _, name := range a.proxy.Sites() {
		c, ok := a.proxy.Snapshot(name)
		if !ok {
			continue // removed by a reload since Sites
		}
		hits, total := c.RecentHits, c.RecentCacheable
		window := c.RecentWindow.Seconds()
		rps := float64(total) / window
		ratio := 0.0
		if total > 0 {
			ratio = float64(hits) / float64(total)
		}
		breach := total > 0 && rps >= a.o.MinRPS && ratio < a.o.Below

		a.mu.Lock()
		s := a.state[name]
		if s == nil {
			s = &alertState{}
			a.state[name] = s
		}
		var send string
		switch {
		case breach && s.pendingSince.IsZero():
			s.pendingSince = now
			if a.o.For <= 0 {
				s.firing, s.firedAt, send = true, now, "firing"
			}
		case breach && !s.firing && now.Sub(s.pendingSince) >= a.o.For:
			s.firing, s.firedAt, send = true, now, "firing"
		case !breach && s.firing:
			s.firing, send = false, "resolved"
			s.pendingSince = time.Time{}
		case !breach:
			s.pendingSince = time.Time{}
		}
		firedAt := s.firedAt
		a.mu.Unlock()
		if send != "" {
			a.send(ctx, name, send, ratio, rps, firedAt, now)
		}
	}
}

// Firing reports whether a site's alert is firing.
func (a *Alerter) Firing(site string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.state[site]
	return s != nil && s.firing
}

// alertPayload is Alertmanager's webhook format (what Alertmanager itself
// sends to receivers, so tools that take those take this), with Slack's
// "text" beside it: Slack reads "text" and ignores the rest.
type alertPayload struct {
	Version  string            `json:"version"`
	Status   string            `json:"status"`
	Receiver string            `json:"receiver"`
	Alerts   []alertItem       `json:"alerts"`
	Common   map[string]string `json:"commonLabels"`
	Text     string            `json:"text"`
}

type alertItem struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

func (a *Alerter) send(ctx context.Context, site, status string, ratio, rps float64, startsAt, now time.Time) {
	labels := map[string]string{"alertname": "EdgevitalsHitRatioLow", "site": site, "severity": "warning"}
	summary := fmt.Sprintf("Cache hit ratio of %s is %.0f%% (below %.0f%% for %s)", site, ratio*100, a.o.Below*100, a.o.For)
	if status == "resolved" {
		summary = fmt.Sprintf("Cache hit ratio of %s recovered: %.0f%%", site, ratio*100)
	}
	item := alertItem{
		Status: status, Labels: labels, StartsAt: startsAt.UTC(),
		Annotations: map[string]string{
			"summary": summary,
			"description": fmt.Sprintf("%.1f cacheable requests/s over 5 minutes. Check edgevitals_uncacheable_total{site=%q} "+
				"for the reason (set_cookie, private, no_store...) and whether a release just shipped.", rps, site),
		},
	}
	if status == "resolved" {
		item.EndsAt = now.UTC()
	}
	a.post(ctx, item)
}

// post sends one alert to the webhook: its labels are the common labels,
// its summary is Slack's text.
func (a *Alerter) post(ctx context.Context, item alertItem) {
	site, status := item.Labels["site"], item.Status
	body, err := json.Marshal(alertPayload{
		Version: "4", Status: status, Receiver: "edgevitals", Alerts: []alertItem{item}, Common: item.Labels,
		Text: fmt.Sprintf("[%s] %s", status, item.Annotations["summary"]),
	})
	if err != nil {
		a.o.Logger.Error("encode alert", "err", err)
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.o.Webhook, bytes.NewReader(body))
	if err != nil {
		a.o.Logger.Error("alert webhook", "err", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.o.Client.Do(req)
	if err != nil {
		a.o.Logger.Error("alert webhook", "site", site, "status", status, "err", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		a.o.Logger.Error("alert webhook refused", "site", site, "status", status, "code", resp.StatusCode)
	}
}

// Send posts one notification in the webhook format of the hit-ratio alert:
// for other alerts (a regressed release).
func (a *Alerter) Send(ctx context.Context, labels map[string]string, status, summary, description string) {
	a.post(ctx, alertItem{Status: status, Labels: labels, StartsAt: a.o.Clock().UTC(),
		Annotations: map[string]string{"summary": summary, "description": description}})
}

// NotifyRegressed sends the notice of a release whose report turned
// regressed: the regressed metrics in the summary, their "because" lines
// in the description. It is the release check's Notify.
func (a *Alerter) NotifyRegressed(site string, rep report.Report) {
	var metrics, why []string
	for _, l := range rep.Lines {
		if l.Verdict == report.Regressed {
			metrics = append(metrics, l.Metric)
			why = append(why, l.Why)
		}
	}
	a.Send(context.Background(),
		map[string]string{"alertname": "EdgevitalsReleaseRegressed", "site": site, "release": rep.Release.ID, "severity": "warning"},
		"firing",
		fmt.Sprintf("Release %s of %s regressed: %s", rep.Release.ID, site, strings.Join(metrics, ", ")),
		strings.Join(why, "\n"))
}
