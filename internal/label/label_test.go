package label

import (
	"strings"
	"testing"
)

func TestLabel(t *testing.T) {
	f := func(s string, match, valid bool) {
		t.Helper()
		if got := Match(s); got != match {
			t.Errorf("Match(%q) = %v, want %v", s, got, match)
		}
		if got := Valid(s); got != valid {
			t.Errorf("Valid(%q) = %v, want %v", s, got, valid)
		}
	}
	f("blog", true, true)
	f("shop-2_eu", true, true)
	f("9lives", true, true)
	f("", false, false)
	f("-blog", false, false)
	f("Blog", false, false)
	f("blog site", false, false)
	f(`blog"}`, false, false)
	f(strings.Repeat("a", MaxBytes), true, true)
	f(strings.Repeat("a", MaxBytes+1), true, false)
	if Pattern != pattern.String() {
		t.Errorf("Pattern = %q, the compiled pattern is %q", Pattern, pattern)
	}
}
