package config

import "testing"

func TestKeyLines(t *testing.T) {
	const doc = `# comment [not.a.table]
top = "a # not a comment"
"quoted.key" = 1
[server]   # trailing comment
listen = ":1"
[[site]]
name = 'literal'
origins = [ "http://a",
  "http://b" ]
[[site]]
notes = """
[fake]
x = 1
"""
hosts = ["h"]
[site.inner]
deep.er = { a = 1, b = [2, 3] }
[[vitals.page]]
[[vitals.page]]
url = "u"
`
	want := map[string]int{
		"top":                        2,
		"quoted.key":                 3,
		"server":                     4,
		"server.listen":              5,
		"site":                       6,
		"site[0]":                    6,
		"site[0].name":               7,
		"site[0].origins":            8,
		"site[0].origins[0]":         8,
		"site[0].origins[1]":         9,
		"site[1]":                    10,
		"site[1].notes":              11,
		"site[1].hosts":              15,
		"site[1].inner":              16,
		"site[1].inner.deep.er":      17,
		"site[1].inner.deep.er.b[1]": 17,
		"vitals.page":                18,
		"vitals.page[0]":             18,
		"vitals.page[1]":             19,
		"vitals.page[1].url":         20,
	}
	got := keyLines(doc)
	for key, line := range want {
		if got[key] != line {
			t.Errorf("keyLines()[%q] = %d, want %d", key, got[key], line)
		}
	}
	for _, key := range []string{"fake", "fake.x", "not.a.table", "site[1].x"} {
		if l, ok := got[key]; ok {
			t.Errorf("keyLines()[%q] = %d, want no such key (it is inside a string or comment)", key, l)
		}
	}
}
