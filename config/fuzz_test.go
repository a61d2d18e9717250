package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParse feeds Parse arbitrary documents: it must never panic, a config it accepts must
// pass Validate with every default filled in, and a config it refuses must come with at
// least one problem that says what is wrong. Seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/example.toml", "testdata/bad.toml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(minimal))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := strings.Count(string(data), "\n") + 1
		keyLines(string(data)) // must not panic on input the TOML parser would refuse either

		c, err := Parse("fuzz.toml", data)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config that Validate refuses: %v", verr)
			}
			for i, s := range c.Sites {
				if s.DefaultTTL == nil {
					t.Fatalf("site[%d].default_ttl is nil in a loaded config", i)
				}
			}
			return
		}
		var e *Errors
		if !errors.As(err, &e) || len(e.Problems) == 0 {
			t.Fatalf("Parse error %v (%T) is not an *Errors with problems", err, err)
		}
		for _, p := range e.Problems {
			if p.Msg == "" || p.Line < 0 || p.Line > lines {
				t.Fatalf("bad problem %+v in a %d-line document", p, lines)
			}
		}
	})
}
