package deploy

import (
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/edgevitals/edgevitals/deploy/promtest"
)

var runbooksFile = "runbooks.md"

// runbookBase is where each alert's runbook_url points, plus "#" and the section's anchor.
const runbookBase = "https://github.com/edgevitals/edgevitals/blob/main/deploy/runbooks.md"

var headingRe = regexp.MustCompile(`(?m)^(#{1,6}) +(.+?) *$`)

// anchor is the id GitHub gives a Markdown heading: lower case, punctuation other than
// - and _ dropped, spaces as -.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// sections returns the ## sections of a Markdown text by anchor, with their bodies.
func sections(md string) map[string]string {
	out := map[string]string{}
	locs := headingRe.FindAllStringSubmatchIndex(md, -1)
	for i, l := range locs {
		if md[l[2]:l[3]] != "##" {
			continue
		}
		end := len(md)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		out[anchor(md[l[4]:l[5]])] = md[l[1]:end]
	}
	return out
}

func TestAnchor(t *testing.T) {
	t.Parallel()
	f := func(in, want string) {
		t.Helper()
		if got := anchor(in); got != want {
			t.Errorf("anchor(%q) = %q, want %q", in, got, want)
		}
	}
	f("EdgevitalsHitRatioLow", "edgevitalshitratiolow")
	f("What it means, and why", "what-it-means-and-why")
	f("`edgevitals health` exit codes", "edgevitals-health-exit-codes")
	f("snake_case and-dash", "snake_case-and-dash")
}

// TestAlertRunbooks: every alert, as Prometheus loads it, has a summary, a description
// and a runbook_url whose anchor is a section of runbooks.md saying what it means, what
// to look at and what to do; and runbooks.md has no section for an alert that is gone.
func TestAlertRunbooks(t *testing.T) {
	t.Parallel()
	md := read(t, runbooksFile)
	secs := sections(md)
	s := promtest.Start(t, nil, []string{rulesFile})
	rules, err := s.Rules()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rules {
		if r.Type != "alerting" {
			continue
		}
		names = append(names, r.Name)
		for _, k := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[k]) == "" {
				t.Errorf("alert %s has no %s annotation", r.Name, k)
			}
		}
		u, err := url.Parse(r.Annotations["runbook_url"])
		if err != nil {
			t.Errorf("alert %s: runbook_url: %v", r.Name, err)
			continue
		}
		frag := u.Fragment
		u.Fragment = ""
		if u.String() != runbookBase {
			t.Errorf("alert %s: runbook_url %s, want %s#ANCHOR", r.Name, r.Annotations["runbook_url"], runbookBase)
		}
		if frag != anchor(r.Name) {
			t.Errorf("alert %s: runbook_url anchor #%s, want #%s (its own section)", r.Name, frag, anchor(r.Name))
		}
		body, ok := secs[frag]
		if !ok {
			t.Errorf("alert %s: runbook_url anchor #%s is no section of %s", r.Name, frag, runbooksFile)
			continue
		}
		for _, part := range []string{"**What it means.**", "**What to look at.**", "**What to do.**"} {
			if !strings.Contains(body, part) {
				t.Errorf("%s#%s has no %s", runbooksFile, frag, part)
			}
		}
	}
	slices.Sort(names)
	want := slices.Clone(alerts)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("Prometheus loaded alerts %q, want %q", names, want)
	}
	for a := range secs {
		if strings.HasPrefix(a, "edgevitals") && !slices.ContainsFunc(names, func(n string) bool { return anchor(n) == a }) {
			t.Errorf("%s#%s: a runbook for no alert of %s", runbooksFile, a, filepath.Base(rulesFile))
		}
	}
}
