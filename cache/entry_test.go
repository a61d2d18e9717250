package cache

import (
	"slices"
	"testing"
	"time"
)

func TestEntryState(t *testing.T) {
	type at struct {
		after time.Duration
		want  State
	}
	tests := []struct {
		name   string
		policy Policy
		purged bool
		steps  []at
	}{
		{"fresh, swr, sie, expired", Policy{Freshness: time.Minute, SWR: 10 * time.Second, SIE: time.Hour}, false, []at{
			{0, Fresh}, {59 * time.Second, Fresh}, {time.Minute, StaleRevalidate}, {69 * time.Second, StaleRevalidate},
			{70 * time.Second, StaleIfError}, {time.Hour + 59*time.Second, StaleIfError}, {time.Hour + time.Minute, Expired},
		}},
		{"initial age counts", Policy{Freshness: time.Minute, InitialAge: 50 * time.Second}, false, []at{
			{9 * time.Second, Fresh}, {10 * time.Second, Expired},
		}},
		{"no stale", Policy{Freshness: time.Minute, SWR: time.Hour, SIE: time.Hour, NoStale: true}, false, []at{
			{30 * time.Second, Fresh}, {time.Minute, Expired},
		}},
		{"no-cache is never fresh", Policy{Freshness: time.Minute, SWR: time.Hour, SIE: 2 * time.Minute, NoCache: true}, false, []at{
			{0, StaleIfError}, {time.Minute + time.Second, StaleIfError}, {3 * time.Minute, Expired},
		}},
		{"soft-purged while fresh", Policy{Freshness: time.Minute}, true, []at{
			{0, StaleRevalidate}, {30 * time.Second, StaleRevalidate}, {time.Minute, Expired},
		}},
		{"soft-purged keeps stale windows", Policy{Freshness: time.Minute, SWR: time.Minute, SIE: time.Hour}, true, []at{
			{0, StaleRevalidate}, {90 * time.Second, StaleRevalidate}, {3 * time.Minute, StaleIfError},
		}},
		{"soft-purged with no stale", Policy{Freshness: time.Minute, NoStale: true}, true, []at{
			{0, Expired},
		}},
		{"zero freshness with validators", Policy{SWR: 5 * time.Second}, false, []at{
			{0, StaleRevalidate}, {5 * time.Second, Expired},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Entry{ResponseTime: t0, Policy: tt.policy}
			e.purged.Store(tt.purged)
			for _, s := range tt.steps {
				if got := e.State(t0.Add(s.after)); got != s.want {
					t.Errorf("State(+%v) = %v, want %v", s.after, got, s.want)
				}
			}
		})
	}
}

func TestEntryAgeAndTTL(t *testing.T) {
	e := &Entry{ResponseTime: t0, Policy: Policy{Freshness: time.Minute, InitialAge: 5 * time.Second}}
	f := func(now time.Time, age, ttl time.Duration) {
		t.Helper()
		if got := e.Age(now); got != age {
			t.Errorf("Age(%v) = %v, want %v", now, got, age)
		}
		if got := e.TTL(now); got != ttl {
			t.Errorf("TTL(%v) = %v, want %v", now, got, ttl)
		}
	}
	f(t0, 5*time.Second, 55*time.Second)
	f(t0.Add(-time.Hour), 5*time.Second, 55*time.Second) // a clock step back never makes it younger
	f(t0.Add(time.Minute), 65*time.Second, -5*time.Second)
}

func fields(kv ...string) []Field {
	var fs []Field
	for i := 0; i+1 < len(kv); i += 2 {
		fs = append(fs, Field{Name: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return fs
}

func fieldStrings(fs []Field) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Name)+": "+string(f.Value))
	}
	return out
}

func TestEntryRevalidated(t *testing.T) {
	old := &Entry{
		Key: "http://a/", Site: "blog", Status: 200, Body: []byte("hello"),
		Header: fields("Content-Type", "text/html", "Cache-Control", "max-age=60", "Content-Length", "5",
			"Link", "</a.css>", "Link", "</b.css>", "ETag", `"v1"`),
		ETag: []byte(`"v1"`), Keys: []string{"post-1"},
		ResponseTime: t0, Policy: Policy{Store: true, Freshness: time.Minute},
	}
	old.purged.Store(true)
	h := fields("cache-control", "max-age=120", "Content-Length", "0", "Link", "</c.css>", "X-New", "1",
		"ETag", `"v2"`, "Content-Encoding", "gzip", "Surrogate-Key", "post-1 home")
	p := Policy{Store: true, Freshness: 2 * time.Minute, Hold: 2 * time.Minute}
	n := old.Revalidated(h, p, t0.Add(time.Hour), t0.Add(time.Hour+time.Second))
	// The caller may reuse its buffers.
	for _, f := range h {
		clear(f.Value)
	}

	want := []string{"Content-Type: text/html", "cache-control: max-age=120", "Content-Length: 5",
		"Link: </c.css>", "ETag: \"v1\"", "X-New: 1", "Surrogate-Key: post-1 home"}
	if got := fieldStrings(n.Header); !slices.Equal(got, want) {
		t.Errorf("Revalidated headers = %q, want %q", got, want)
	}
	if string(n.Body) != "hello" || n.Status != 200 || n.Key != old.Key || n.Site != "blog" {
		t.Errorf("Revalidated changed body, status, key or site: %+v", n)
	}
	// A 304 naming another strong validator does not describe the stored body: it keeps its own.
	if string(n.ETag) != `"v1"` {
		t.Errorf("Revalidated ETag = %q, want %q", n.ETag, `"v1"`)
	}
	if !slices.Equal(n.Keys, []string{"post-1", "home"}) {
		t.Errorf("Revalidated Keys = %q, want [post-1 home]", n.Keys)
	}
	if n.Policy != p || !n.ResponseTime.Equal(t0.Add(time.Hour+time.Second)) {
		t.Errorf("Revalidated policy/time = %+v %v", n.Policy, n.ResponseTime)
	}
	if n.Purged() {
		t.Errorf("Revalidated entry is soft-purged, want a clean one")
	}
	if got := n.State(t0.Add(time.Hour + time.Minute)); got != Fresh {
		t.Errorf("Revalidated State = %v, want fresh", got)
	}
	if len(old.Header) != 6 || string(old.ETag) != `"v1"` || old.Policy.Freshness != time.Minute {
		t.Errorf("Revalidated modified the old entry")
	}
	if n.Size() <= int64(len(n.Body)) {
		t.Errorf("Size() = %d, want more than the body", n.Size())
	}
}
