package cache

import (
	"bytes"
	"strings"
	"testing"
)

var defaultStrip = []string{"utm_*", "gclid", "fbclid", "msclkid"}

func mustKeyer(t testing.TB, strip []string) *Keyer {
	t.Helper()
	k, err := NewKeyer(strip)
	if err != nil {
		t.Fatalf("NewKeyer(%q): %v", strip, err)
	}
	return k
}

func TestAppendKey(t *testing.T) {
	k := mustKeyer(t, defaultStrip)
	tests := []struct {
		scheme, host, path, query string
		want                      string
	}{
		{"http", "example.com", "/", "", "http://example.com/"},
		{"https", "WWW.Example.COM", "/Blog/", "", "https://www.example.com/Blog/"},
		{"HTTP", "example.com:80", "/a", "", "http://example.com/a"},
		{"https", "example.com:443", "/a", "", "https://example.com/a"},
		{"http", "example.com:443", "/a", "", "http://example.com:443/a"},
		{"https", "example.com:8443", "/a", "", "https://example.com:8443/a"},
		{"http", "[::1]:80", "/", "", "http://[::1]/"},
		{"http", "::1:80", "/", "", "http://::1:80/"},
		{"http", "example.com", "", "", "http://example.com/"},
		{"http", "example.com", "a", "", "http://example.com/a"},
		{"http", "example.com", "/", "b=2&a=1", "http://example.com/?a=1&b=2"},
		// A "?" after the query delimiter belongs to the first parameter's name.
		{"http", "example.com", "/", "?b=2&a=1", "http://example.com/??b=2&a=1"},
		{"http", "example.com", "/", "a=2&b=1&a=1", "http://example.com/?a=2&a=1&b=1"}, // a repeated name keeps its order
		{"http", "example.com", "/", "utm_source=x&utm_medium=y&gclid=z", "http://example.com/"},
		{"http", "example.com", "/", "p=1&utm_source=x&fbclid=1&msclkid=2", "http://example.com/?p=1"},
		{"http", "example.com", "/", "UTM_source=x", "http://example.com/?UTM_source=x"},
		{"http", "example.com", "/", "gclidx=1", "http://example.com/?gclidx=1"},
		{"http", "example.com", "/", "&&a=1&&", "http://example.com/?a=1"},
		{"http", "example.com", "/", "a=1#frag", "http://example.com/?a=1"},
		{"http", "example.com", "/", "a&a=&a=1", "http://example.com/?a&a=&a=1"},
		{"http", "example.com/x", "/y", "", "http://example.com%2Fx/y"},
		{"http", "example.com", "/a?b", "c=1", "http://example.com/a%3Fb?c=1"},
		{"http", "example.com", "/caf\xc3\xa9 x%", "", "http://example.com/caf%C3%A9%20x%25"},
	}
	for _, tt := range tests {
		got := k.AppendKey(nil, []byte(tt.scheme), []byte(tt.host), []byte(tt.path), []byte(tt.query))
		if string(got) != tt.want {
			t.Errorf("AppendKey(%q, %q, %q, %q) = %q, want %q", tt.scheme, tt.host, tt.path, tt.query, got, tt.want)
		}
	}
	// Appends to what dst holds.
	if got := k.AppendKey([]byte("x|"), []byte("http"), []byte("h"), []byte("/"), nil); string(got) != "x|http://h/" {
		t.Errorf("AppendKey(dst=x|) = %q", got)
	}
}

func TestAppendQuery(t *testing.T) {
	k := mustKeyer(t, defaultStrip)
	f := func(in, want string) {
		t.Helper()
		if got := k.AppendQuery(nil, []byte(in)); string(got) != want {
			t.Errorf("AppendQuery(%q) = %q, want %q", in, got, want)
		}
	}
	f("", "")
	f("utm_campaign=1", "")
	f("z=1&utm_campaign=1&a=2", "a=2&z=1")
	f("q=hello%20world&page=2", "page=2&q=hello%20world")
	// More parameters than the stack buffer holds still sort.
	var in, want []string
	for i := 40; i > 0; i-- {
		in = append(in, "p"+string(rune('A'+i%26))+"="+string(rune('a'+i%7)))
	}
	got := string(k.AppendQuery(nil, []byte(strings.Join(in, "&"))))
	want = strings.Split(got, "&")
	if len(want) != 40 || string(k.AppendQuery(nil, []byte(got))) != got {
		t.Errorf("AppendQuery of 40 parameters = %q: not stable", got)
	}
}

func TestNewKeyerErrors(t *testing.T) {
	tests := []struct {
		strip []string
		want  string // substring of the error, "" = no error
	}{
		{nil, ""},
		{defaultStrip, ""},
		{[]string{""}, "strip[0]: empty"},
		{[]string{"ok", "*"}, "strip[1]"},
		{[]string{"a*b"}, "only allowed at the end"},
		{[]string{"a=b", "c&"}, "strip[1]"},
	}
	for _, tt := range tests {
		_, err := NewKeyer(tt.strip)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("NewKeyer(%q) = %v, want no error", tt.strip, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("NewKeyer(%q) = %v, want an error with %q", tt.strip, err, tt.want)
		}
	}
}

func TestKeyAllocs(t *testing.T) {
	k := mustKeyer(t, defaultStrip)
	dst := make([]byte, 0, 256)
	scheme, host, path := []byte("https"), []byte("WWW.example.com:443"), []byte("/blog/post/")
	query := []byte("utm_source=news&b=2&a=1&gclid=x&c=3")
	if n := testing.AllocsPerRun(100, func() { dst = k.AppendKey(dst[:0], scheme, host, path, query) }); n != 0 {
		t.Errorf("AppendKey allocs = %v, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { dst = k.AppendQuery(dst[:0], query) }); n != 0 {
		t.Errorf("AppendQuery allocs = %v, want 0", n)
	}
}

func FuzzAppendKey(f *testing.F) {
	f.Add([]byte("http"), []byte("Example.com:80"), []byte("/a"), []byte("b=1&utm_x=2&a=3"))
	f.Add([]byte("https"), []byte("[::1]:443"), []byte(""), []byte("?&&gclid&=&a#x"))
	k := mustKeyer(f, defaultStrip)
	f.Fuzz(func(t *testing.T, scheme, host, path, query []byte) {
		key := k.AppendKey(nil, scheme, host, path, query)
		q := k.AppendQuery(nil, query)
		if again := k.AppendQuery(nil, q); !bytes.Equal(again, q) {
			t.Fatalf("AppendQuery not idempotent: %q -> %q -> %q", query, q, again)
		}
		for _, p := range bytes.Split(q, []byte("&")) {
			name, _, _ := bytes.Cut(p, []byte("="))
			if len(p) == 0 && len(q) > 0 || k.stripped(name) {
				t.Fatalf("AppendQuery(%q) = %q keeps %q", query, q, p)
			}
		}
		if len(q) > 0 && !bytes.HasSuffix(key, append([]byte("?"), q...)) {
			t.Fatalf("AppendKey(...%q) = %q does not end with the cleaned query %q", query, key, q)
		}
		if i := bytes.Index(key, []byte("://")); i < 0 || bytes.IndexByte(key[i+3:], '?') >= 0 && bytes.IndexByte(key[i+3:], '?') < bytes.IndexByte(key[i+3:], '/') {
			t.Fatalf("AppendKey = %q: host part not escaped", key)
		}
	})
}
