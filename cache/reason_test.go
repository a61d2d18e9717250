package cache

import "testing"

// TestReasonsNamedAndExplained: every reason has a label and a meaning,
// and its label finds it again (the store keeps labels; the dashboard
// explains them).
func TestReasonsNamedAndExplained(t *testing.T) {
	for r := ReasonNone + 1; r < NumReasons; r++ {
		if r.String() == "" || r.Meaning() == "" {
			t.Errorf("reason %d: label %q, meaning %q; want both", r, r.String(), r.Meaning())
		}
		if got, ok := ReasonNamed(r.String()); !ok || got != r {
			t.Errorf("ReasonNamed(%q) = %d, %v; want %d", r.String(), got, ok, r)
		}
	}
	if _, ok := ReasonNamed("bogus"); ok {
		t.Error(`ReasonNamed("bogus") found a reason`)
	}
	if ReasonNone.Meaning() != "" || NumReasons.Meaning() != "" {
		t.Error("no reason, or one out of range, has a meaning")
	}
}
