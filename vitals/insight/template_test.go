package insight

import (
	"bytes"
	"testing"
)

func TestTemplate(t *testing.T) {
	f := func(path, want string) {
		t.Helper()
		if got := string(Template(nil, []byte(path))); got != want {
			t.Errorf("Template(%q) = %q, want %q", path, got, want)
		}
	}
	f("", "/")
	f("/", "/")
	f("//", "/")
	f("/about", "/about")
	f("/about/", "/about/")
	f("/About/", "/about/")
	f("/product/123", "/product/*")
	f("/product/blue-shirt", "/product/*")
	f("/product/", "/product/")
	f("/en/product/x", "/en/product/*")
	f("/en/product/x/y/z", "/en/product/*")
	f("/en/42/x", "/en/*")
	f("/2024/05/a-post", "/*")
	f("/a-long-post-slug/", "/*")
	f("/my-account/orders/17", "/my-account/orders/*")
	f("/node/550e8400-e29b-41d4-a716-446655440000/edit", "/node/*")
	f("/deadbeefcafe/x", "/*")
	f("/caf%C3%A9/x", "/*")
	f("/wp-content/uploads/2024/05/a.jpg", "/wp-content/uploads/*")
	f("product//123", "/product/*")
	f("/"+string(bytes.Repeat([]byte("a"), 33))+"/x", "/*")
}

func TestTemplateAllocs(t *testing.T) {
	var buf [MaxTemplateLen]byte
	path := []byte("/en/product/a-blue-shirt-42")
	if n := testing.AllocsPerRun(100, func() { Template(buf[:0], path) }); n != 0 {
		t.Errorf("Template allocs = %v, want 0", n)
	}
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"/", "/product/123", "/en/product/x/", "//a//b//c//", "/\x00/\xff", "/a%2F/b", "/*/*/*"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, path []byte) {
		got := Template(nil, path)
		if len(got) == 0 || got[0] != '/' || len(got) > MaxTemplateLen {
			t.Fatalf("Template(%q) = %q: want a leading '/' and at most %d bytes", path, got, MaxTemplateLen)
		}
		if bytes.ContainsAny(got, "%?#") {
			t.Fatalf("Template(%q) = %q: holds '%%', '?' or '#'", path, got)
		}
		for _, c := range got {
			if c <= ' ' || c >= 0x7f {
				t.Fatalf("Template(%q) = %q: holds byte %#x", path, got, c)
			}
		}
		if again := Template(nil, got); !bytes.Equal(again, got) {
			t.Fatalf("Template(Template(%q)) = %q, want %q", path, again, got)
		}
		if prefixed := Template([]byte("x"), path); !bytes.Equal(prefixed[1:], got) {
			t.Fatalf("Template appends %q after dst, want %q", prefixed[1:], got)
		}
	})
}

func TestAppendParams(t *testing.T) {
	f := func(query string, want ...string) {
		t.Helper()
		var got []string
		for _, p := range AppendParams(nil, []byte(query)) {
			got = append(got, string(p.Name)+"|"+string(p.Value))
		}
		if len(got) != len(want) {
			t.Fatalf("AppendParams(%q) = %q, want %q", query, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("AppendParams(%q)[%d] = %q, want %q", query, i, got[i], want[i])
			}
		}
	}
	f("")
	f("a=1&b&&c=", "a|1", "b|", "c|")
	f("=x&s=a%20b&s=c", "s|a%20b", "s|c")
}

func TestCookieStem(t *testing.T) {
	f := func(name, want string) {
		t.Helper()
		stem, star := cookieStem([]byte(name))
		got := string(stem)
		if star {
			got += "*"
		}
		if got != want {
			t.Errorf("cookieStem(%q) = %q, want %q", name, got, want)
		}
	}
	f("pmpro_visit", "pmpro_visit")
	f("wordpress_logged_in_5c1fa0b2c3d4e5f6a7b8", "wordpress_logged_in_*")
	f("SESS0123456789abcdef0123", "SESS*")
	f("session_12345", "session_12345")
}
