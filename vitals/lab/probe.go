package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// Waits of one sample, after Lighthouse's defaults: a page is done loading
// when neither the network nor the main thread has been busy for
// quietWindow after the load event.
const (
	quietWindow = time.Second
	pollEvery   = 50 * time.Millisecond
	inpWait     = 3 * time.Second // for the paint after the synthetic click
)

// clickTarget marks the element the default interaction clicks.
const clickTarget = "data-edgevitals-target"

// pickDefaultTarget marks the first visible button or in-page link, the
// kind of element a visitor taps without leaving the page. Submit buttons
// of forms are skipped: they navigate.
const pickDefaultTarget = `(function () {
  var c = document.querySelectorAll('button, [role=button], a[href^="#"], input[type=button], summary');
  for (var i = 0; i < c.length; i++) {
    var e = c[i];
    if (e.disabled || !e.getClientRects().length) continue;
    if (e.tagName === 'BUTTON' && e.form && (e.getAttribute('type') || 'submit') === 'submit') continue;
    e.setAttribute('` + clickTarget + `', '');
    return true;
  }
  return false;
})()`

const collectExpr = `JSON.stringify(window.__edgevitals ? window.__edgevitals.collect() : null)`

// netLog follows the network of one tab: requests, bytes, what is in
// flight, and the main document's response. Chromedp calls listen on the
// tab's read loop, so it only records.
type netLog struct {
	mu           sync.Mutex
	now          func() time.Time
	mainFrame    cdp.FrameID
	docID        network.RequestID
	docStatus    int64
	cacheStatus  string
	requests     int64
	bytes        int64
	inflight     map[network.RequestID]bool
	lastActivity time.Time
}

func newNetLog(now func() time.Time) *netLog {
	return &netLog{now: now, inflight: map[network.RequestID]bool{}, lastActivity: now()}
}

func (n *netLog) listen(ev any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if ev.Request == nil || strings.HasPrefix(ev.Request.URL, "data:") {
			return
		}
		n.lastActivity = n.now()
		if ev.RedirectResponse == nil {
			n.requests++
		}
		n.inflight[ev.RequestID] = true
		if n.docID == "" && ev.Type == network.ResourceTypeDocument && (n.mainFrame == "" || ev.FrameID == n.mainFrame) {
			n.docID = ev.RequestID
		}
	case *network.EventResponseReceived:
		n.lastActivity = n.now()
		if ev.RequestID == n.docID && ev.Response != nil {
			n.docStatus = ev.Response.Status
			n.cacheStatus = headerValue(ev.Response.Headers, "Cache-Status")
		}
	case *network.EventLoadingFinished:
		n.lastActivity = n.now()
		if n.inflight[ev.RequestID] {
			delete(n.inflight, ev.RequestID)
			n.bytes += int64(ev.EncodedDataLength)
		}
	case *network.EventLoadingFailed:
		n.lastActivity = n.now()
		delete(n.inflight, ev.RequestID)
	}
}

// quietFor is how long the network has been idle, 0 while a request is in flight.
func (n *netLog) quietFor() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.inflight) > 0 {
		return 0
	}
	return n.now().Sub(n.lastActivity)
}

// headerValue reads a header case-insensitively; CDP keeps the server's case
// and joins repeated headers with newlines.
func headerValue(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			if s, ok := v.(string); ok {
				return strings.ReplaceAll(s, "\n", ", ")
			}
		}
	}
	return ""
}

// emulate applies the profile to the tab and adds the measurement script.
func emulate(p Profile, lab bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := p.Emulate()(ctx, t); err != nil {
			return err
		}
		src := Script
		if lab {
			// The field script stays silent in lab visits: they are not visitors.
			src = "window.__edgevitalsLab=1;" + src
		}
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src})
		if err != nil {
			return fmt.Errorf("inject measurement script: %w", err)
		}
		return nil
	})
}

// Emulate makes a tab the device of the profile (viewport, touch, user
// agent, CPU and, when set, network), as lab samples see it. Tests that
// play a real visitor on the same device use it too.
func (p Profile) Emulate() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if p.Width > 0 && p.Height > 0 {
			if _, err := cdp.Call(ctx, t, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
				Width: p.Width, Height: p.Height, DeviceScaleFactor: p.DeviceScaleFactor, Mobile: p.Mobile,
			}); err != nil {
				return fmt.Errorf("emulate viewport: %w", err)
			}
		}
		if p.Touch {
			if _, err := cdp.Call(ctx, t, emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{Enabled: true, MaxTouchPoints: 5}); err != nil {
				return fmt.Errorf("emulate touch: %w", err)
			}
		}
		if p.UserAgent != "" {
			if _, err := cdp.Call(ctx, t, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: p.UserAgent}); err != nil {
				return fmt.Errorf("emulate user agent: %w", err)
			}
		}
		if p.CPUSlowdown > 1 {
			if _, err := cdp.Call(ctx, t, emulation.SetCPUThrottlingRate, emulation.SetCPUThrottlingRateParams{Rate: p.CPUSlowdown}); err != nil {
				return fmt.Errorf("emulate cpu: %w", err)
			}
		}
		if n := p.Network; n != nil {
			// cdproto v0.159 lacks Network.emulateNetworkConditions, and
			// its ByRule successor needs matching patterns; send it raw.
			rate := func(v int64) float64 {
				if v <= 0 {
					return -1
				}
				return float64(v)
			}
			params := map[string]any{
				"offline":            false,
				"latency":            float64(n.Latency) / float64(time.Millisecond),
				"downloadThroughput": rate(n.DownloadBytes),
				"uploadThroughput":   rate(n.UploadBytes),
			}
			if err := t.Call(ctx, "Network.emulateNetworkConditions", params, nil); err != nil {
				return fmt.Errorf("emulate network: %w", err)
			}
		}
		return nil
	})
}

func collect(ctx context.Context) (figures, error) {
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](collectExpr))
	if err != nil {
		return figures{}, fmt.Errorf("collect: %w", err)
	}
	if raw == "null" {
		return figures{}, errors.New("collect: the measurement script did not run in the page")
	}
	return parseFigures([]byte(raw))
}

// measure runs one sample in a new browser context of the running Chromium bctx.
func (b *Browser) measure(ctx, bctx context.Context, url string, p Profile, selector string) (store.Sample, error) {
	start := b.now()
	nl := newNetLog(time.Now)
	tctx, closeTab := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(nl.listen))
	defer closeTab()
	sctx, cancel := context.WithTimeout(tctx, b.timeout)
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()

	if err := chromedp.Do(sctx, emulate(p, b.lab.Load())); err != nil {
		return store.Sample{}, fmt.Errorf("prepare tab: %w", err)
	}
	nl.mu.Lock()
	nl.mainFrame = cdp.FrameID(chromedp.FromContext(sctx).Target.TargetID)
	nl.mu.Unlock()

	s := store.Sample{URL: url, Profile: p.Name, At: b.now()}
	if err := chromedp.Do(sctx, chromedp.Navigate(url)); err != nil {
		return store.Sample{}, fmt.Errorf("load: %w", err)
	}
	nl.mu.Lock()
	status := nl.docStatus
	nl.mu.Unlock()
	if status >= 400 {
		return store.Sample{}, fmt.Errorf("load: the page answered HTTP %d", status)
	}

	f, err := waitQuiet(sctx, nl)
	if err != nil {
		return store.Sample{}, err
	}
	s.LCP, s.FCP, s.TTFB, s.TBT, s.CLS = f.LCP, f.FCP, f.TTFB, f.TBT, f.CLS
	nl.mu.Lock()
	s.Requests, s.TransferBytes, s.CacheStatus = nl.requests, nl.bytes, nl.cacheStatus
	nl.mu.Unlock()

	inp, err := interact(sctx, p, selector)
	if err != nil {
		return store.Sample{}, err
	}
	s.INP = inp
	s.Took = b.now().Sub(start)
	return s, nil
}

// waitQuiet waits until the network and the main thread have been idle for
// quietWindow, and returns the load figures of that moment (before any
// input, which would stop LCP).
func waitQuiet(ctx context.Context, nl *netLog) (figures, error) {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		f, err := collect(ctx)
		if err != nil {
			return figures{}, err
		}
		if nl.quietFor() >= quietWindow && f.SinceLongTask >= quietWindow {
			return f, nil
		}
		select {
		case <-ctx.Done():
			return figures{}, fmt.Errorf("wait for a quiet page: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// interact clicks (or, on touch profiles, taps) the selector's first
// element and returns the INP that follows, nil when there is nothing to
// click.
func interact(ctx context.Context, p Profile, selector string) (*time.Duration, error) {
	sel := selector
	if sel == "" {
		found, err := chromedp.Run(ctx, chromedp.Evaluate[bool](pickDefaultTarget))
		if err != nil {
			return nil, fmt.Errorf("find an element to click: %w", err)
		}
		if !found {
			return nil, nil
		}
		sel = "[" + clickTarget + "]"
	} else {
		q, _ := json.Marshal(sel) // a string always encodes
		found, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("document.querySelector("+string(q)+") !== null"))
		if err != nil {
			return nil, fmt.Errorf("selector %q: %w", selector, err)
		}
		if !found {
			return nil, nil
		}
	}
	// Chromedp's own scroll before a click can leave the pointer outside the
	// element on long pages (no event reaches the page), so centre it first.
	q, _ := json.Marshal(sel) // a string always encodes
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void]("document.querySelector("+string(q)+").scrollIntoView({block: 'center'})")); err != nil {
		return nil, fmt.Errorf("scroll to %q: %w", sel, err)
	}
	click := chromedp.Click(chromedp.CSS(sel))
	if p.Touch {
		click = chromedp.Tap(chromedp.CSS(sel))
	}
	if err := chromedp.Do(ctx, click); err != nil {
		return nil, fmt.Errorf("click %q: %w", sel, err)
	}
	wait, cancel := context.WithTimeout(ctx, inpWait)
	defer cancel()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var last *time.Duration
	for {
		f, err := collect(wait)
		switch {
		case err != nil && wait.Err() != nil && ctx.Err() == nil:
			return last, nil // the paint never came: keep what we saw
		case err != nil:
			return nil, err
		case f.INP != nil && last != nil && *f.INP == *last:
			return last, nil // stable across two polls
		}
		last = f.INP
		select {
		case <-wait.Done():
			if ctx.Err() != nil {
				return nil, fmt.Errorf("wait for the interaction: %w", ctx.Err())
			}
			return last, nil
		case <-tick.C:
		}
	}
}
