package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/edgevitals/edgevitals/cache"
)

// varyNames is X-V0 ... X-V(n-1).
func varyNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("X-V%d", i)
	}
	return out
}

// TestVaryBeyondTheKeyNotShared: two users who differ only in a Vary field the stored key
// could not hold (the 17th name, whether on one Vary line or split over several) each get
// their own page, and the refusal is counted.
func TestVaryBeyondTheKeyNotShared(t *testing.T) {
	names := varyNames(cache.MaxVaryNames + 1)
	last := names[len(names)-1]
	tests := []struct {
		name  string
		lines []string // Vary lines the origin sends
	}{
		{"one line", []string{strings.Join(names, ", ")}},
		{"several lines", []string{strings.Join(names[:9], ", "), strings.Join(names[9:], ",")}},
		{"a line per name", names},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=60")
				for _, l := range tt.lines {
					w.Header().Add("Vary", l)
				}
				fmt.Fprintf(w, "page of %s", r.Header.Get(last))
			})
			for i := range 2 {
				for j, user := range []string{"alice", "bob"} {
					r := h.get("/account/", last+": "+user)
					if r.Body != "page of "+user {
						t.Fatalf("%s got %q", user, r.Body)
					}
					if i+j == 0 {
						// Then the URL is remembered as uncacheable (hit-for-miss).
						wantCacheStatus(t, r, "fwd=uri-miss", "detail=vary-too-many")
					}
					if strings.Contains(r.Header.Get("Cache-Status"), "; hit") {
						t.Errorf("%s served from the cache: %q", user, r.Header.Get("Cache-Status"))
					}
				}
			}
			if n := h.originCount(); n != 4 {
				t.Errorf("origin saw %d requests, want 4 (nothing stored)", n)
			}
			want := `edgevitals_uncacheable_total{site="blog",reason="vary_too_many"} 1` + "\n"
			if text := h.metricsText(); !strings.Contains(text, want) {
				t.Errorf("metrics lack %q", want)
			}
		})
	}
}

// TestVaryRepeatedNamesKeepTheLastName: a Vary that repeats a name many times before the one
// that tells users apart is stored keyed on both; the repeats used to push the last name out
// of the key, and every user shared the first user's page.
func TestVaryRepeatedNamesKeepTheLastName(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		for range cache.MaxVaryNames {
			w.Header().Add("Vary", "Accept-Encoding")
		}
		w.Header().Add("Vary", "X-User")
		fmt.Fprintf(w, "page of %s", r.Header.Get("X-User"))
	})
	for range 2 {
		for _, user := range []string{"alice", "bob"} {
			if r := h.get("/account/", "X-User: "+user); r.Body != "page of "+user {
				t.Fatalf("%s got %q", user, r.Body)
			}
		}
	}
	if n := h.originCount(); n != 2 {
		t.Errorf("origin saw %d requests, want 2 (one stored variant per user)", n)
	}
}

// TestVaryFieldOnSeveralRequestLines: a request that sends a varied field on two lines gets a
// variant of its own; the first line alone used to key it, so a page built from both lines
// answered the next request that sent only the first.
func TestVaryFieldOnSeveralRequestLines(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "X-Lang")
		fmt.Fprintf(w, "lang=%s", strings.Join(r.Header.Values("X-Lang"), "|"))
	})
	for range 2 {
		if r := h.get("/l/", "X-Lang: en", "X-Lang: de"); r.Body != "lang=en|de" {
			t.Fatalf("two lines got %q", r.Body)
		}
		if r := h.get("/l/", "X-Lang: en"); r.Body != "lang=en" {
			t.Fatalf("one line got %q", r.Body)
		}
	}
	if n := h.originCount(); n != 2 {
		t.Errorf("origin saw %d requests, want 2 (one variant each)", n)
	}
}
