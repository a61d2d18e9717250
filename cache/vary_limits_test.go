package cache

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// varyList is "X-V0, X-V1, ..." for n names.
func varyList(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("X-V%d", i)
	}
	return strings.Join(names, ", ")
}

// TestVaryNamesTheKeyCannotHold: a Vary the stored key could only hold in part is refused as
// a whole, never cut short, whatever its framing.
func TestVaryNamesTheKeyCannotHold(t *testing.T) {
	f := func(in string, wantOK bool, wantLen int) {
		t.Helper()
		names, ok := VaryNames([]byte(in))
		if ok != wantOK || len(names) != wantLen {
			t.Errorf("VaryNames(%.60q...) = %d names, %v; want %d, %v", in, len(names), ok, wantLen, wantOK)
		}
	}
	f(varyList(MaxVaryNames), true, MaxVaryNames)
	f(varyList(MaxVaryNames+1), false, 0)
	// Repeated Vary lines arrive joined with ", ".
	f(varyList(9)+", "+strings.ReplaceAll(varyList(8), "X-V", "X-W"), false, 0)
	f("*", false, 0)
	f("Accept, *", false, 0)
	// Duplicates and empty members take no room in the key.
	f(strings.Repeat("x-v0, X-V0 ,, ,", 40)+varyList(MaxVaryNames), true, MaxVaryNames)
}

// TestVaryDuplicatesDoNotHideAName: names repeated before the one that matters used to
// fill the 16 places, and the name after them was dropped.
func TestVaryDuplicatesDoNotHideAName(t *testing.T) {
	names, ok := VaryNames([]byte(strings.Repeat("Accept-Encoding, ", MaxVaryNames) + "Cookie"))
	if !ok || !slices.Equal(names, []string{"accept-encoding", "cookie"}) {
		t.Errorf("VaryNames(16 × Accept-Encoding, Cookie) = %q, %v; want [accept-encoding cookie], true", names, ok)
	}
}

// tooManyVary is an entry varying on one more name than the key holds, stored for req.
func tooManyVary(req Header) *Entry {
	e := entry("blog", "http://a/many", "page of the first user")
	for i := range MaxVaryNames + 1 {
		e.Vary = append(e.Vary, fmt.Sprintf("x-v%d", i))
	}
	e.VaryValues = AppendVaryValues(nil, e.Vary, req)
	return e
}

// TestStoreRefusesVaryBeyondTheKey: the store does not take an entry that varies on more
// names than it keys variants on, and matching an entry (a coalesced waiter) checks every name.
func TestStoreRefusesVaryBeyondTheKey(t *testing.T) {
	s := newStore(t, Options{Clock: newClock().Now})
	first := header{fmt.Sprintf("X-V%d", MaxVaryNames): {"alice"}}
	other := header{fmt.Sprintf("X-V%d", MaxVaryNames): {"bob"}}
	e := tooManyVary(first)
	if s.Set(e) {
		t.Errorf("Set of an entry with %d Vary names = true, want refused", len(e.Vary))
	}
	if got := s.Get([]byte(e.Key), other); got != nil {
		t.Errorf("Get for another user = %q, want nil", got.Body)
	}
	if s.Objects() != 0 {
		t.Errorf("Objects() = %d, want 0", s.Objects())
	}
	if !e.Matches(first) || e.Matches(other) {
		t.Errorf("Matches on the %dth name: first %v, other %v; want true, false", MaxVaryNames+1, e.Matches(first), e.Matches(other))
	}
}

// TestVaryRequestFieldOnSeveralLines: a request field sent on several lines is varied on
// whole, line by line; the first line alone used to stand for it, so a page the origin built
// from both lines answered requests that sent only the first.
func TestVaryRequestFieldOnSeveralLines(t *testing.T) {
	s := newStore(t, Options{Clock: newClock().Now})
	two := header{"Accept-Language": {"en", "de"}}
	e := entry("blog", "http://a/lang", "en+de")
	e.Vary = []string{"accept-language"}
	e.VaryValues = AppendVaryValues(nil, e.Vary, two)
	mustSet(t, s, e)
	tests := []struct {
		req  header
		want string
	}{
		{two, "en+de"},
		{header{"Accept-Language": {" en ", "de\t"}}, "en+de"},
		{header{"Accept-Language": {"en"}}, "<nil>"},
		{header{"Accept-Language": {"en, de"}}, "<nil>"},
		{header{"Accept-Language": {"en,de"}}, "<nil>"},
		{header{"Accept-Language": {"de", "en"}}, "<nil>"},
		{header{"Accept-Language": {"en", "de", ""}}, "<nil>"},
		{header{"Accept-Language": {"en\nde"}}, "<nil>"},
		{header{}, "<nil>"},
	}
	for _, tt := range tests {
		if got := s.Get([]byte(e.Key), tt.req); body(got) != tt.want {
			t.Errorf("Get(%q) = %s, want %s", tt.req, body(got), tt.want)
		}
	}
	// And the other way: stored for one line, asked with two.
	one := entry("blog", "http://a/one", "en")
	one.Vary = []string{"accept-language"}
	one.VaryValues = AppendVaryValues(nil, one.Vary, header{"Accept-Language": {"en"}})
	mustSet(t, s, one)
	if got := s.Get([]byte(one.Key), two); got != nil {
		t.Errorf("Get with two lines of an entry stored for one = %q, want nil", got.Body)
	}
}
