package cache

import (
	"bytes"
	"testing"
)

// TestAppendQueryKeepsRepeatedOrder: parameters are sorted by name only, so
// a repeated name keeps the order the client sent. PHP reads the last
// "page", so "?page=5&page=1" (page 1) and "?page=1&page=5" (page 5) are
// different pages and must not share a key, and the origin gets the order
// that was keyed.
func TestAppendQueryKeepsRepeatedOrder(t *testing.T) {
	k := mustKeyer(t, defaultStrip)
	f := func(in, want string) {
		t.Helper()
		if got := k.AppendQuery(nil, []byte(in)); string(got) != want {
			t.Errorf("AppendQuery(%q) = %q, want %q", in, got, want)
		}
	}
	f("page=5&page=1", "page=5&page=1")
	f("page=1&page=5", "page=1&page=5")
	// Other names still sort around them, and the repeats stay in order.
	f("z=1&page=5&a=2&page=1", "a=2&page=5&page=1&z=1")
	// A second shape of the class: array parameters, where the order is the
	// array's order (PHP's ids[]), with a stripped one in between.
	f("ids[]=3&utm_source=x&ids[]=1&ids[]=2", "ids[]=3&ids[]=1&ids[]=2")
	// A name without a value beside the same name with one.
	f("flag=1&flag&a=1", "a=1&flag=1&flag")

	key := func(q string) []byte {
		return k.AppendKey(nil, []byte("http"), []byte("example.com"), []byte("/list/"), []byte(q))
	}
	if a, b := key("page=5&page=1"), key("page=1&page=5"); bytes.Equal(a, b) {
		t.Errorf("?page=5&page=1 and ?page=1&page=5 share the key %q", a)
	}
	if a, b := key("sort=asc&page=2"), key("page=2&sort=asc"); !bytes.Equal(a, b) {
		t.Errorf("different names in another order got keys %q and %q, want one", a, b)
	}
}

// FuzzAppendQueryOrder: for every name, the cleaned query holds the same
// parameters in the same order as the input (less stripped and empty ones).
func FuzzAppendQueryOrder(f *testing.F) {
	f.Add([]byte("page=5&page=1"))
	f.Add([]byte("b=2&a=1&b=1&utm_x=2&b=0#frag"))
	f.Add([]byte("a&a=&a=1&&=x&=y"))
	k := mustKeyer(f, defaultStrip)
	perName := func(q []byte) map[string][]string {
		m := map[string][]string{}
		for _, p := range bytes.Split(q, []byte("&")) {
			if len(p) == 0 {
				continue
			}
			name, _, _ := bytes.Cut(p, []byte("="))
			if k.stripped(name) {
				continue
			}
			m[string(name)] = append(m[string(name)], string(p))
		}
		return m
	}
	f.Fuzz(func(t *testing.T, query []byte) {
		in := query
		if i := bytes.IndexByte(in, '#'); i >= 0 {
			in = in[:i]
		}
		want, got := perName(in), perName(k.AppendQuery(nil, query))
		if len(want) != len(got) {
			t.Fatalf("AppendQuery(%q): names %v, want %v", query, got, want)
		}
		for name, ps := range want {
			g := got[name]
			if len(g) != len(ps) {
				t.Fatalf("AppendQuery(%q): %q has %q, want %q", query, name, g, ps)
			}
			for i := range ps {
				if g[i] != ps[i] {
					t.Fatalf("AppendQuery(%q): %q has %q, want %q in that order", query, name, g, ps)
				}
			}
		}
	})
}
