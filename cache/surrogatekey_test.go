package cache

import (
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
	f(nil, strings.Repeat("x", MaxKeyBytes+1)+" ok", "ok")
	f(nil, strings.Repeat("x", MaxKeyBytes), strings.Repeat("x", MaxKeyBytes))

	var many strings.Builder
	for i := range 2 * MaxKeys {
		many.WriteString("k")
		many.WriteString(strings.Repeat("x", i%5))
		many.WriteString(string(rune('a'+i%26)) + string(rune('a'+i/26)) + " ")
	}
	if got := AppendKeys(nil, []byte(many.String())); len(got) != MaxKeys {
		t.Errorf("AppendKeys of %d keys kept %d, want %d", 2*MaxKeys, len(got), MaxKeys)
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
		if len(got) > MaxKeys {
			t.Fatalf("AppendKeys(%q) gave %d keys", v, len(got))
		}
		seen := map[string]bool{}
		for _, k := range got {
			if k == "" || len(k) > MaxKeyBytes || strings.ContainsAny(k, " \t,") || seen[k] {
				t.Fatalf("AppendKeys(%q) = %q: bad or repeated key %q", v, got, k)
			}
			seen[k] = true
		}
	})
}
