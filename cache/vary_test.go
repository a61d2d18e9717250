package cache

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// header is a Header over net/http's, for tests.
type header http.Header

func (h header) Peek(key string) []byte {
	if v := http.Header(h).Values(key); len(v) > 0 {
		return []byte(v[0])
	}
	return nil
}

func (h header) PeekAll(key string) [][]byte {
	var out [][]byte
	for _, v := range http.Header(h).Values(key) {
		out = append(out, []byte(v))
	}
	return out
}

func TestVaryNames(t *testing.T) {
	f := func(in string, want ...string) {
		t.Helper()
		if got, ok := VaryNames([]byte(in)); !ok || !slices.Equal(got, want) {
			t.Errorf("VaryNames(%q) = %q, %v, want %q, true", in, got, ok, want)
		}
	}
	f("")
	f("Accept-Encoding", "accept-encoding")
	f("User-Agent, accept-encoding, Accept-Encoding ,, Cookie", "accept-encoding", "cookie", "user-agent")
	long := strings.Repeat("x", 4096)
	f(long+", Accept", "accept", long)
}

func TestNormalized(t *testing.T) {
	f := func(raw, want string) {
		t.Helper()
		if got := string(appendNormalized(nil, []byte(raw))); got != want {
			t.Errorf("appendNormalized(%q) = %q, want %q", raw, got, want)
		}
		if !equalNormalized([]byte(want), []byte(raw)) {
			t.Errorf("equalNormalized(%q, %q) = false, want true", want, raw)
		}
		if equalNormalized([]byte(want+"x"), []byte(raw)) || len(want) > 0 && equalNormalized([]byte(want[:len(want)-1]), []byte(raw)) {
			t.Errorf("equalNormalized(%q) matches a longer or shorter value", raw)
		}
	}
	f("", "")
	f("   ", "")
	f("gzip", "gzip")
	f("  gzip,   br  ", "gzip,br")
	f("gzip , deflate,br", "gzip,deflate,br")
	f("text/html;  q=0.9 \t level=1", "text/html; q=0.9 level=1")
	f("a\t\tb", "a b")
}

func TestVaryMatch(t *testing.T) {
	req := header{"Accept-Encoding": {"gzip,  br"}, "Accept-Language": {"de"}}
	e := &Entry{Vary: []string{"accept-encoding", "accept-language"}}
	e.VaryValues = AppendVaryValues(nil, e.Vary, req)
	if string(e.VaryValues[0]) != "gzip,br" {
		t.Fatalf("AppendVaryValues = %q, want normalized", e.VaryValues)
	}
	tests := []struct {
		req  header
		want bool
	}{
		{req, true},
		{header{"Accept-Encoding": {" gzip, br "}, "Accept-Language": {"de"}}, true},
		{header{"Accept-Encoding": {"gzip"}, "Accept-Language": {"de"}}, false},
		{header{"Accept-Encoding": {"gzip, br"}}, false},
		{header{}, false},
	}
	for _, tt := range tests {
		if got := e.Matches(tt.req); got != tt.want {
			t.Errorf("Matches(%v) = %v, want %v", tt.req, got, tt.want)
		}
	}
	absent := &Entry{Vary: []string{"cookie"}, VaryValues: [][]byte{nil}}
	if !absent.Matches(header{}) || absent.Matches(header{"Cookie": {"a=1"}}) {
		t.Errorf("Matches on an absent header: want match only without the header")
	}
}

func FuzzVary(f *testing.F) {
	f.Add([]byte("Accept-Encoding, *, Cookie"), []byte("  gzip ,\tbr  "))
	f.Add([]byte(strings.Repeat("A, ", 20)+"B"), []byte("en| de |"))
	f.Fuzz(func(t *testing.T, vary, value []byte) {
		names, ok := VaryNames(vary)
		if !ok && names != nil || len(names) > MaxVaryNames {
			t.Fatalf("VaryNames(%q) = %q, %v: more than the key holds, or names with ok false", vary, names, ok)
		}
		for i, n := range names {
			if n == "" || n == "*" || n != strings.ToLower(n) || i > 0 && names[i-1] >= n {
				t.Fatalf("VaryNames(%q) = %q: not lowercased, sorted and unique", vary, names)
			}
		}
		norm := appendNormalized(nil, value)
		if !equalNormalized(norm, value) {
			t.Fatalf("equalNormalized(%q, %q) = false", norm, value)
		}
		if again := appendNormalized(nil, norm); string(again) != string(norm) {
			t.Fatalf("normalizing %q twice: %q then %q", value, norm, again)
		}
		// A value split into lines matches itself, and never the same bytes on one line.
		lines := strings.Split(string(value), "|")
		req := header{"X-F": lines}
		e := &Entry{Vary: []string{"x-f"}}
		e.VaryValues = AppendVaryValues(nil, e.Vary, req)
		if !e.Matches(req) {
			t.Fatalf("lines %q do not match what was stored for them: %q", lines, e.VaryValues[0])
		}
		if joined := (header{"X-F": {strings.Join(lines, ",")}}); len(lines) > 1 && e.Matches(joined) {
			t.Fatalf("lines %q match the same on one line", lines)
		}
	})
}

func TestEntryMatches(t *testing.T) {
	e := &Entry{Vary: []string{"accept-language"}, VaryValues: [][]byte{[]byte("de")}}
	tests := []struct {
		req  Header
		want bool
	}{
		{header{"Accept-Language": {"de"}}, true},
		{header{"Accept-Language": {"en"}}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := e.Matches(tt.req); got != tt.want {
			t.Errorf("Matches(%v) = %v, want %v", tt.req, got, tt.want)
		}
	}
	if plain := (&Entry{}); !plain.Matches(nil) {
		t.Errorf("an entry without Vary must match any request")
	}
}
