package field

import (
	"strings"
	"testing"
)

func TestMatchPath(t *testing.T) {
	f := func(pattern, path string, want bool) {
		t.Helper()
		if got := matchPath(pattern, path); got != want {
			t.Errorf("matchPath(%q, %q) = %v, want %v", pattern, path, got, want)
		}
	}
	f("/", "/", true)
	f("/", "/x", false)
	f("/thanks", "/thanks", true)
	f("/thanks", "/thanks/", false)
	f("/thanks", "/Thanks", false)
	// a trailing * is a prefix match, across segments
	f("/cart*", "/cart", true)
	f("/cart*", "/cart/", true)
	f("/cart*", "/cartoon/x/y", true)
	f("/cart*", "/car", false)
	f("/checkout/order-received/*", "/checkout/order-received/42/", true)
	f("/checkout/order-received/*", "/checkout/order-received/", true)
	f("/checkout/order-received/*", "/checkout/order-received", false)
	f("/checkout/order-received/*", "/checkout/", false)
	f("/*", "/anything/at/all", true)
	// an inner * stays within one segment
	f("/*/", "/about/", true)
	f("/*/", "/a/b/", false)
	f("/*/", "/about", false)
	f("/*/*/", "/2026/post/", true)
	f("/*/*/*/", "/2026/11/post/", true)
	f("/*/*/*/", "/2026/post/", false)
	f("/node/*", "/node/12", true)
	f("/*.html", "/page.html", true)
	f("/*.html", "/dir/page.html", false)
	f("/a*b*c/", "/aXXbYYc/", true)
	f("/a*b*c/", "/aXXcYYb/", false)
	f("/p-*/x*", "/p-1/xyz/more", true)
	f("/p-*/x*", "/p-1/y", false)
	// hostile paths cost linear time: a long segment against many stars
	long := "/" + strings.Repeat("a", 1000) + "/"
	f("/*a*a*a*a*b/", long, false)
}

func TestPageGroups(t *testing.T) {
	def, err := newGrouper(nil)
	if err != nil {
		t.Fatal(err)
	}
	custom, err := newGrouper([]Group{
		{Name: "product", Paths: []string{"/product/*"}},
		{Name: "home", Paths: []string{"/", "/en/"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		g    grouper
		path string
		want string
	}{
		{def, "/", "home"},
		{def, "/index.php", "home"},
		{def, "/cart/", "cart"},
		{def, "/basket", "cart"},
		{def, "/checkout/", "checkout"},
		{def, "/checkout/order-received/42/", "checkout"},
		{def, "/category/news/", "listing"},
		{def, "/tag/go/page/2/", "listing"},
		{def, "/shop/", "listing"},
		{def, "/product-category/shoes/", "listing"},
		{def, "/taxonomy/term/3", "listing"},
		{def, "/blog/", "listing"},
		{def, "/blog/my-post", "article"},
		{def, "/node/12", "article"},
		{def, "/2026/11/02/hello-world/", "article"},
		{def, "/2026/11/hello-world/", "article"},
		{def, "/hello-world/", "article"},
		{def, "/wp-login.php", "other"},
		{def, "/user/login", "other"},
		{custom, "/", "home"},
		{custom, "/en/", "home"},
		{custom, "/product/shoe-1/", "product"},
		{custom, "/cart/", "other"}, // configured groups replace the defaults
	}
	for _, tc := range tests {
		if got := tc.g.group(tc.path); got != tc.want {
			t.Errorf("group(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
	first, _ := newGrouper([]Group{{Name: "a", Paths: []string{"/x*"}}, {Name: "b", Paths: []string{"/x/"}}})
	if got := first.group("/x/"); got != "a" {
		t.Errorf("overlapping groups: group(/x/) = %q, want the first, a", got)
	}
}

func TestGoalsReached(t *testing.T) {
	bySite, err := goalsBySite(testGoals, map[string]bool{"blog": true, "shop": true})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		site, path string
		want       uint64
	}{
		{"blog", "/checkout/order-received/1/", 1 << 1},
		{"blog", "/checkout/", 0},
		{"blog", "/thanks", 0}, // shop's goal page
		{"shop", "/thanks", 1 << 0},
		{"wiki", "/thanks", 0},
	}
	for _, tc := range tests {
		if got := bySite[tc.site].reached(tc.path); got != tc.want {
			t.Errorf("goals of %s reached(%q) = %b, want %b", tc.site, tc.path, got, tc.want)
		}
	}
	if i := bySite["blog"].index("signup"); i != 0 {
		t.Errorf("index(signup) = %d, want 0", i)
	}
	if i := bySite["blog"].index("refund"); i != -1 {
		t.Errorf("index(refund) = %d, want -1", i)
	}
}
