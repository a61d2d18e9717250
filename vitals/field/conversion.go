package field

import (
	"errors"
	"fmt"
	"strings"

	"github.com/edgevitals/edgevitals/internal/label"
)

// Goal is a conversion of a site: reached when a session loads a page whose
// path matches Path, or when the page calls edgevitals.convert(Name). A goal
// with an empty Path is reached only by the call.
type Goal struct {
	Site string
	Name string // metric label: ^[a-z0-9][a-z0-9_-]*$, at most 64 bytes
	Path string // exact, or a pattern (see Group); e.g. "/checkout/order-received/*"
}

// Group is a page group: the few kinds of page (home, article, listing,
// cart, checkout, ...) that field data is split by, so that it stays bounded
// however many pages a site has. A path belongs to the first group with a
// matching pattern, and to "other" when none matches.
//
// A pattern is a path where a trailing * matches any rest (a prefix match:
// "/cart*" matches "/cart" and "/cart/x") and a * elsewhere matches any run
// of characters within one path segment ("/*/*/" matches "/2026/post/").
type Group struct {
	Name  string
	Paths []string
}

// OtherGroup is the group of paths that match no configured group.
const OtherGroup = "other"

// DefaultGroups are the page groups used when none are configured. They
// follow the permalink shapes of WordPress (and WooCommerce) and Drupal.
var DefaultGroups = []Group{
	{Name: "home", Paths: []string{"/", "/index.php"}},
	{Name: "cart", Paths: []string{"/cart*", "/basket*"}},
	{Name: "checkout", Paths: []string{"/checkout*"}},
	{Name: "listing", Paths: []string{"/category/*", "/tag/*", "/page/*", "/shop", "/shop/*", "/product-category/*",
		"/taxonomy/term/*", "/search*", "/blog", "/blog/"}},
	{Name: "article", Paths: []string{"/node/*", "/blog/*", "/news/*", "/article*", "/*/*/*/*/", "/*/*/*/", "/*/*/", "/*/"}},
}

// validName reports whether s can name a goal or page group (a metric
// label): label.Valid.
func validName(s string) bool { return label.Valid(s) }

func checkPattern(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("must start with /, got %q", p)
	}
	if !printable(p) {
		return fmt.Errorf("%q holds a space, control or non-ASCII byte (write it percent-encoded, as browsers send it)", p)
	}
	return nil
}

// matchPath reports whether path matches pattern (see Group). It compares
// segment by segment, so its work is linear in the path for the patterns
// people write and at worst the product of the two segments' lengths.
func matchPath(pattern, path string) bool {
	open := strings.HasSuffix(pattern, "*") // a trailing * matches any rest
	if open {
		pattern = pattern[:len(pattern)-1]
	}
	for {
		ps, prest, pmore := strings.Cut(pattern, "/")
		ss, srest, smore := strings.Cut(path, "/")
		if !pmore && open {
			return globSegment(ps, ss, true)
		}
		if !globSegment(ps, ss, false) {
			return false
		}
		if !pmore || !smore {
			return pmore == smore
		}
		pattern, path = prest, srest
	}
}

// globSegment matches one path segment s against pattern p, where * matches
// any run of bytes. With open, p only has to match a prefix of s.
func globSegment(p, s string, open bool) bool {
	px, sx := 0, 0
	nextPx, nextSx := 0, 0
	for px < len(p) || sx < len(s) {
		if open && px == len(p) {
			return true
		}
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if 0 < nextSx && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

// grouper maps paths to page groups.
type grouper []Group

func newGrouper(groups []Group) (grouper, error) {
	if len(groups) == 0 {
		return grouper(DefaultGroups), nil
	}
	var errs []error
	seen := map[string]bool{}
	out := make(grouper, 0, len(groups))
	for i, g := range groups {
		where := fmt.Sprintf("rum group[%d]", i)
		switch {
		case !validName(g.Name):
			errs = append(errs, fmt.Errorf("%s.name: must match %s (at most %d bytes), got %q", where, label.Pattern, label.MaxBytes, g.Name))
		case seen[g.Name]:
			errs = append(errs, fmt.Errorf("%s.name: %q is already a group", where, g.Name))
		}
		seen[g.Name] = true
		if len(g.Paths) == 0 {
			errs = append(errs, fmt.Errorf("%s.paths: must not be empty", where))
		}
		for _, p := range g.Paths {
			if err := checkPattern(p); err != nil {
				errs = append(errs, fmt.Errorf("%s.paths: %w", where, err))
			}
		}
		out = append(out, Group{Name: g.Name, Paths: append([]string(nil), g.Paths...)})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// group returns the name of the page group of path.
func (gs grouper) group(path string) string {
	for _, g := range gs {
		for _, p := range g.Paths {
			if matchPath(p, path) {
				return g.Name
			}
		}
	}
	return OtherGroup
}

// maxGoals bounds the goals of one site: a session keeps the goals it
// reached as bits of one word.
const maxGoals = 64

// siteGoals are the goals of one site, in config order.
type siteGoals []Goal

// index returns the position of the goal called name, or -1.
func (gs siteGoals) index(name string) int {
	for i, g := range gs {
		if g.Name == name {
			return i
		}
	}
	return -1
}

// reached returns the goals whose page is path, as bits.
func (gs siteGoals) reached(path string) uint64 {
	var bits uint64
	for i, g := range gs {
		if g.Path != "" && matchPath(g.Path, path) {
			bits |= 1 << i
		}
	}
	return bits
}

// goalsBySite checks goals against the known sites and splits them by site.
func goalsBySite(goals []Goal, sites map[string]bool) (map[string]siteGoals, error) {
	var errs []error
	out := map[string]siteGoals{}
	for i, g := range goals {
		where := fmt.Sprintf("conversion[%d]", i)
		if !sites[g.Site] {
			errs = append(errs, fmt.Errorf("%s.site: %q is not a known site", where, g.Site))
		}
		switch {
		case !validName(g.Name):
			errs = append(errs, fmt.Errorf("%s.name: must match %s (at most %d bytes), got %q", where, label.Pattern, label.MaxBytes, g.Name))
		case out[g.Site].index(g.Name) >= 0:
			errs = append(errs, fmt.Errorf("%s.name: site %q already has a goal %q", where, g.Site, g.Name))
		}
		if g.Path != "" {
			if err := checkPattern(g.Path); err != nil {
				errs = append(errs, fmt.Errorf("%s.path: %w", where, err))
			}
		}
		if len(out[g.Site]) == maxGoals {
			errs = append(errs, fmt.Errorf("%s: site %q has more than %d goals", where, g.Site, maxGoals))
			continue
		}
		out[g.Site] = append(out[g.Site], g)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
