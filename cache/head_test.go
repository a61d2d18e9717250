package cache

import (
	"testing"
	"time"
)

func TestHeadMatches(t *testing.T) {
	lm := "Tue, 01 Dec 2026 10:00:00 GMT"
	e := &Entry{ETag: []byte(`"v1"`), LastModified: []byte(lm), Body: []byte("0123456789")}
	noLM := &Entry{ETag: []byte(`"v1"`), Body: []byte("0123456789")}
	f := func(e *Entry, etag, lastModified string, cl int64, want bool) {
		t.Helper()
		b := func(s string) []byte {
			if s == "" {
				return nil
			}
			return []byte(s)
		}
		if got := e.HeadMatches(b(etag), b(lastModified), cl); got != want {
			t.Errorf("HeadMatches(%q, %q, %d) on ETag %q Last-Modified %q = %v, want %v", etag, lastModified, cl, e.ETag, e.LastModified, got, want)
		}
	}
	f(e, `"v1"`, lm, 10, true)
	f(e, `"v1"`, "", -1, true)
	f(e, "", lm, -1, true)
	f(e, `"v1"`, "", 10, true)
	f(e, `"v2"`, lm, 10, false)
	f(e, `"v1"`, "Tue, 01 Dec 2026 11:00:00 GMT", 10, false)
	f(e, `"v1"`, lm, 11, false) // another length: another body
	f(e, "", "", 10, false)     // no validator: nothing ties it to the stored body
	f(e, "", "", -1, false)
	f(noLM, `"v1"`, lm, 10, false) // a Last-Modified the stored response did not have
	f(noLM, `"v1"`, "", 10, true)
}

func TestMarkStale(t *testing.T) {
	now := time.Now()
	e := &Entry{ResponseTime: now, Policy: Policy{Freshness: time.Minute, SWR: time.Minute}}
	if s := e.State(now); s != Fresh {
		t.Fatalf("State = %v, want fresh", s)
	}
	e.MarkStale()
	if s := e.State(now); s != StaleRevalidate {
		t.Errorf("State after MarkStale = %v, want stale-revalidate", s)
	}
	e = &Entry{ResponseTime: now, Policy: Policy{Freshness: time.Minute, NoStale: true}}
	e.MarkStale()
	if s := e.State(now); s != Expired {
		t.Errorf("State after MarkStale with no stale use = %v, want expired", s)
	}
}
