package report

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// TestPruneKeepsWhatReportsCompareAgainst: retention goes by the end of a
// release's window (the next release's start), not by its start, so the
// release a new report compares against stays while its window is within
// retention. The clock is the bound handed to Prune and the report's Now.
// A release whose predecessor retention did delete cannot be compared, and
// says so: it is not the site's first release.
func TestPruneKeepsWhatReportsCompareAgainst(t *testing.T) {
	// blog: v1 at reportStart, v2 at +2h, v3 (regressed: Set-Cookie on
	// most pages) at +4h, each with two hours of samples and traffic.
	st := reportStore(t)
	now := reportStart.Add(6 * time.Hour)
	o := ReportOptions{Now: now}

	// Retention reaches into v2's window: v1's window (ended at +2h) goes,
	// v2 (started before the bound, replaced after it) stays.
	if _, err := st.Prune(reportStart.Add(3 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	rep, err := Build(st, "blog", "v3", o)
	if err != nil {
		t.Fatalf("report of v3 after retention cut into v2's window: %v, want a comparison with v2", err)
	}
	if rep.Previous.ID != "v2" || rep.Verdict != Regressed {
		t.Errorf("report of v3 = previous %q, verdict %q; want v2 and regressed", rep.Previous.ID, rep.Verdict)
	}
	// v2 is now the oldest release held, but not the site's first.
	_, err = Build(st, "blog", "v2", o)
	if !errors.Is(err, store.ErrPredecessorGone) || errors.Is(err, store.ErrNoPredecessor) || !strings.Contains(err.Error(), `"v1"`) {
		t.Errorf("report of v2 with v1 pruned = %v, want ErrPredecessorGone naming v1", err)
	}

	// Retention passes v3's start: v2's window is over and goes; v3, the
	// latest, stays whatever its age, and cannot be compared any more.
	if _, err := st.Prune(reportStart.Add(5 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	rels, err := st.Releases("blog")
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(rels); len(got) != 1 || got[0] != "blog/v3" {
		t.Errorf("releases after the second prune = %v, want [blog/v3]", got)
	}
	_, err = Build(st, "blog", "", o)
	if !errors.Is(err, store.ErrPredecessorGone) || !strings.Contains(err.Error(), `"v2"`) {
		t.Errorf("report of v3 with v2 pruned = %v, want ErrPredecessorGone naming v2", err)
	}

	// A site whose only release is old is still at its first release.
	if err := st.AddRelease(store.Release{Site: "shop", ID: "s1", At: reportStart.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Prune(now); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(st, "shop", "", o); !errors.Is(err, store.ErrNoPredecessor) {
		t.Errorf("report of the shop's only release = %v, want ErrNoPredecessor", err)
	}
	// The note of what was pruned survives another prune with nothing to do.
	if _, err := Build(st, "blog", "", o); !errors.Is(err, store.ErrPredecessorGone) {
		t.Errorf("report of v3 after a prune with nothing to delete = %v, want ErrPredecessorGone", err)
	}
}
