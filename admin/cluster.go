package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/edgevitals/edgevitals/proxy"
)

// forwardedHeader marks a purge that one node forwards to its peers, so a
// peer applies it locally and does not forward it again (no loops).
const forwardedHeader = "X-Edgevitals-Forwarded"

// Peers fans purges out to the other nodes of a fleet, through their admin
// API, so that one purge leaves every node consistent.
type Peers struct {
	urls     []string // admin base URLs
	token    string
	client   *http.Client
	attempts int
	backoff  time.Duration
}

// PeersOptions configure purge fan-out.
type PeersOptions struct {
	URLs     []string      // admin base URLs of the other nodes, e.g. http://10.0.0.2:9145
	Token    string        // the fleet's admin token (every node shares it)
	Timeout  time.Duration // per attempt; default 2s
	Attempts int           // default 3
	Backoff  time.Duration // before the second attempt, doubled each time; default 100ms
}

// NewPeers returns nil when there are no peers.
func NewPeers(o PeersOptions) *Peers {
	if len(o.URLs) == 0 {
		return nil
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = 100 * time.Millisecond
	}
	return &Peers{
		urls: o.URLs, token: o.Token, attempts: o.Attempts, backoff: o.Backoff,
		client: &http.Client{Timeout: o.Timeout},
	}
}

// Fanout sends req to every peer at once and returns the peers that did not
// take it after every attempt (bounded: attempts × timeout plus backoff).
func (p *Peers) Fanout(ctx context.Context, req proxy.PurgeRequest) []string {
	failed := []string{}
	if p == nil {
		return failed
	}
	body, err := json.Marshal(req)
	if err != nil {
		return append(failed, p.urls...)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, u := range p.urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !p.send(ctx, u, body) {
				mu.Lock()
				failed = append(failed, u)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

func (p *Peers) send(ctx context.Context, base string, body []byte) bool {
	wait := p.backoff
	for i := 0; i < p.attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(wait):
			}
			wait *= 2
		}
		if p.try(ctx, base, body) == nil {
			return true
		}
	}
	return false
}

func (p *Peers) try(ctx context.Context, base string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/purge", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set(forwardedHeader, "1")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("peer %s answered %s", base, resp.Status)
	}
	return nil
}
