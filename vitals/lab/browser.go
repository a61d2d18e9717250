package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// DefaultTimeout bounds one sample: a load, the wait for a quiet page, the
// synthetic click and the wait for its paint.
const DefaultTimeout = 45 * time.Second

// startTimeout bounds the start of Chromium; a start that takes longer is
// treated as a failure and the process is killed.
const startTimeout = 30 * time.Second

// ErrBrowserClosed is returned by Measure after Close.
var ErrBrowserClosed = errors.New("browser closed")

// Browser is one long-lived headless Chromium that measures pages. Each
// sample runs in a fresh browser context (its own cache and cookies, like a
// first visit) and tab. A browser that crashed, or that stopped answering
// after a sample timed out, is restarted on the next Measure.
//
// Measure may be called from several goroutines; each sample gets its own tab.
type Browser struct {
	path    string
	timeout time.Duration
	now     func() time.Time

	mu     sync.Mutex
	ctx    context.Context    // the chromedp browser context; nil when not running
	stop   context.CancelFunc // ends the browser and its allocator
	closed bool
	starts int
	lab    atomic.Bool // page loads are lab visits: the field script stays silent
}

// LabVisits marks this browser's page loads as lab visits, so the field
// beacon (when a site has it) does not count the sampler as a visitor.
func (b *Browser) LabVisits() { b.lab.Store(true) }

// NewBrowser prepares a Browser for the Chromium at chromium (see
// FindChromium for how an empty path is resolved). Chromium starts on the
// first Measure. timeout bounds each sample; 0 means DefaultTimeout.
func NewBrowser(chromium string, timeout time.Duration) (*Browser, error) {
	path, err := FindChromium(chromium)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Browser{path: path, timeout: timeout, now: time.Now}, nil
}

// Starts reports how many times Chromium was started, restarts included.
func (b *Browser) Starts() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.starts
}

// PID returns the process id of the running Chromium, or 0.
func (b *Browser) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx == nil || b.ctx.Err() != nil {
		return 0
	}
	if c := chromedp.FromContext(b.ctx); c != nil && c.Browser != nil {
		if p := c.Browser.Process(); p != nil {
			return p.Pid
		}
	}
	return 0
}

// Close stops Chromium. Measure fails with ErrBrowserClosed afterwards.
func (b *Browser) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.stopLocked()
	return nil
}

func (b *Browser) stopLocked() {
	if b.stop != nil {
		b.stop()
	}
	b.ctx, b.stop = nil, nil
}

// running returns the context of a live Chromium, starting one when there is
// none or when the last one died.
func (b *Browser) running() (context.Context, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrBrowserClosed
	}
	if b.ctx != nil && b.ctx.Err() == nil {
		return b.ctx, nil
	}
	b.stopLocked() // reap a crashed one
	// Input outside the window is dropped, and headless windows are 800x600
	// by default: make room for every profile's viewport.
	actx, acancel := chromedp.NewExecAllocator(context.Background(), AllocatorOptions(b.path, 1920, 1080)...)
	bctx, bcancel := chromedp.NewContext(actx)
	stop := func() { bcancel(); acancel() }

	// The first Do binds Chromium's life to bctx, so it cannot carry a
	// timeout; a timer kills a start that hangs instead.
	hung := time.AfterFunc(startTimeout, stop)
	err := chromedp.Do(bctx)
	if !hung.Stop() {
		err = fmt.Errorf("no answer within %v", startTimeout)
	}
	if err != nil {
		stop()
		return nil, fmt.Errorf("start chromium %s: %w", b.path, err)
	}
	b.ctx, b.stop = bctx, stop
	b.starts++
	return bctx, nil
}

// restartIfHung kills Chromium when it no longer answers a browser-level
// command: after a sample timed out, the renderer or the browser may hang.
func (b *Browser) restartIfHung(bctx context.Context) {
	if bctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(bctx, 5*time.Second)
	defer cancel()
	if _, err := chromedp.CallBrowser(ctx, browser.GetVersion, cdp.Empty{}); err == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx == bctx {
		b.stopLocked()
	}
}

// Measure loads url in a fresh tab with the profile p and returns the
// sample. selector is what the synthetic interaction clicks for INP; empty
// means the first button or in-page link, and a page with nothing to click
// has no INP. The sample is bounded by the browser's timeout and by ctx.
func (b *Browser) Measure(ctx context.Context, url string, p Profile, selector string) (store.Sample, error) {
	bctx, err := b.running()
	if err != nil {
		return store.Sample{}, err
	}
	s, err := b.measure(ctx, bctx, url, p, selector)
	if err != nil {
		if bctx.Err() != nil {
			err = fmt.Errorf("chromium died: %w", err)
		} else if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			b.restartIfHung(bctx)
		}
		return store.Sample{}, fmt.Errorf("measure %s (%s): %w", url, p.Name, err)
	}
	return s, nil
}

// AllocatorOptions are how edgevitals runs Chromium: headless, a window of
// width x height, nothing that reaches out to the network on its own (no
// QUIC, component updates, sync or pings: this also keeps lab samples free
// of background traffic), and no sandbox when running as root, which
// Chromium refuses otherwise. Every browser edgevitals or its tests start
// uses these.
func AllocatorOptions(chromium string, width, height int) []chromedp.ExecAllocatorOption {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.DisableGPU,
		chromedp.WindowSize(width, height),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("mute-audio", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	return opts
}
