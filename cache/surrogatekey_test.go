package cache

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestAppendKeys(t *testing.T) {
	f := func(dst []string, in string, want ...string) {
		t.Helper()
		got := AppendKeys(dst, []byte(in))
		if !slices.Equal(got, want) {
			t.Errorf("AppendKeys(%q, %q) = %q, want %q", dst, in, got, want)
		}
	}
	f(nil, "")
	f(nil, " , ,\t")
	f(nil, "post-1 home", "post-1", "home")
	f(nil, "post-1,home, post-1 ,\tcat-3", "post-1", "home", "cat-3")
	f([]string{"home"}, "home post-2", "home", "post-2")
	f(nil, "Home home", "Home", "home")
	// Keys the index does not hold are kept: the store must still purge by them.
	f(nil, strings.Repeat("x", MaxKeyBytes+1)+" ok", strings.Repeat("x", MaxKeyBytes+1), "ok")
	f(nil, strings.Repeat("x", MaxKeyBytes), strings.Repeat("x", MaxKeyBytes))

	// Past linearKeys the duplicates are found by a set, across calls too.
	var many strings.Builder
	var want []string
	for i := range 2 * MaxKeys {
		k := fmt.Sprintf("k%d", i)
		want = append(want, k)
		fmt.Fprintf(&many, "%s %s,", k, k)
	}
	got := AppendKeys(nil, []byte(many.String()))
	got = AppendKeys(got, []byte(many.String()))
	if !slices.Equal(got, want) {
		t.Errorf("AppendKeys of %d keys, each twice and the header twice, kept %d, want %d", 2*MaxKeys, len(got), len(want))
	}
}

func TestAppendKeysCopies(t *testing.T) {
	v := []byte("a b")
	got := AppendKeys(nil, v)
	copy(v, "x y")
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("AppendKeys kept the caller's buffer: %q", got)
	}
}

func FuzzAppendKeys(f *testing.F) {
	f.Add([]byte("post-1 home,cat-2"))
	f.Add([]byte(" ,\t, a,,a "))
	f.Fuzz(func(t *testing.T, v []byte) {
		got := AppendKeys(nil, v)
		got = AppendKeys(got, v)
		seen := map[string]bool{}
		for _, k := range got {
			if k == "" || strings.ContainsAny(k, " \t,") || seen[k] {
				t.Fatalf("AppendKeys(%q) = %q: bad or repeated key %q", v, got, k)
			}
			seen[k] = true
		}
	})
}
