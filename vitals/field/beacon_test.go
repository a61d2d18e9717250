package field

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgevitals/edgevitals/vitals/store"
)

const goodSID = "abcdefghABCDEFGH0123-_"

// beaconJSON is a valid page-view beacon with fields replaced or removed
// (a value of "" removes the field).
func beaconJSON(t *testing.T, change map[string]string) string {
	t.Helper()
	fields := [][2]string{
		{"v", "1"}, {"sid", `"` + goodSID + `"`}, {"path", `"/2026/11/post/"`}, {"lcp", "1234"}, {"cls", "0.01"},
		{"inp", "80"}, {"fcp", "900"}, {"ttfb", "120"}, {"dev", `"mobile"`}, {"cache", `"hit"`}, {"rel", `"v42"`},
	}
	var parts []string
	for _, f := range fields {
		v, ok := change[f[0]]
		if !ok {
			v = f[1]
		}
		if v != "" {
			parts = append(parts, `"`+f[0]+`":`+v)
		}
	}
	for k, v := range change {
		if _, ok := beaconFields[k]; !ok || k == "conv" {
			parts = append(parts, `"`+k+`":`+v)
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestParseBeacon(t *testing.T) {
	long := strings.Repeat("a", 33)
	tests := []struct {
		name   string
		body   string
		reason string // "" = valid
	}{
		{"valid", beaconJSON(t, nil), ""},
		{"only the required fields", `{"v":1,"sid":"` + goodSID + `","path":"/","dev":"desktop"}`, ""},
		{"nulls are unmeasured", beaconJSON(t, map[string]string{"lcp": "null", "cls": "null", "inp": "null", "fcp": "null", "ttfb": "null", "cache": "null", "rel": "null"}), ""},
		{"version 1.0", beaconJSON(t, map[string]string{"v": "1.0"}), ""},
		{"zero values", beaconJSON(t, map[string]string{"lcp": "0", "cls": "0", "inp": "-0", "ttfb": "0.0"}), ""},
		{"upper bounds", beaconJSON(t, map[string]string{"lcp": "60000", "cls": "10", "inp": "6e4", "fcp": "60000", "ttfb": "60000"}), ""},
		{"every device", beaconJSON(t, map[string]string{"dev": `"tablet"`}), ""},
		{"every cache status", beaconJSON(t, map[string]string{"cache": `"bypass"`}), ""},
		{"conversion", beaconJSON(t, map[string]string{"lcp": "", "cls": "", "inp": "", "fcp": "", "ttfb": "", "conv": `"order"`}), ""},
		{"whitespace around", " \n" + beaconJSON(t, nil) + "\n ", ""},
		{"escaped path", beaconJSON(t, map[string]string{"path": `"\/a%20b"`}), ""},

		{"empty", ``, "malformed"},
		{"not an object", `[1]`, "malformed"},
		{"a string", `"x"`, "malformed"},
		{"truncated", beaconJSON(t, nil)[:40], "malformed"},
		{"two objects", beaconJSON(t, nil) + beaconJSON(t, nil), "malformed"},
		{"trailing garbage", beaconJSON(t, nil) + "x", "malformed"},
		{"unknown field", beaconJSON(t, map[string]string{"ua": `"Mozilla"`}), "malformed"},
		{"field in another case", beaconJSON(t, map[string]string{"lcp": "", "LCP": "1"}), "malformed"},
		{"duplicate field", beaconJSON(t, map[string]string{"lcp": `1,"lcp":2`}), "malformed"},
		{"nested object", beaconJSON(t, map[string]string{"lcp": `{"a":1}`}), "malformed"},
		{"nested array", beaconJSON(t, map[string]string{"path": `["/"]`}), "malformed"},
		{"number as string", beaconJSON(t, map[string]string{"lcp": `"1234"`}), "malformed"},
		{"bool metric", beaconJSON(t, map[string]string{"cls": `true`}), "malformed"},
		{"number sid", beaconJSON(t, map[string]string{"sid": `1234567890123456789`}), "malformed"},
		{"null sid", beaconJSON(t, map[string]string{"sid": `null`}), "malformed"},

		{"no version", beaconJSON(t, map[string]string{"v": ""}), "version"},
		{"version 2", beaconJSON(t, map[string]string{"v": "2"}), "version"},
		{"version 2 with new fields", beaconJSON(t, map[string]string{"v": "2", "ttfb2": "1"}), "version"},
		{"version as string", beaconJSON(t, map[string]string{"v": `"1"`}), "version"},

		{"no sid", beaconJSON(t, map[string]string{"sid": ""}), "invalid"},
		{"short sid", beaconJSON(t, map[string]string{"sid": `"abc"`}), "invalid"},
		{"long sid", beaconJSON(t, map[string]string{"sid": `"` + long + `"`}), "invalid"},
		{"sid with a dot", beaconJSON(t, map[string]string{"sid": `"abcdefghABCDEFGH.123"`}), "invalid"},
		{"no path", beaconJSON(t, map[string]string{"path": ""}), "invalid"},
		{"relative path", beaconJSON(t, map[string]string{"path": `"x/y"`}), "invalid"},
		{"empty path", beaconJSON(t, map[string]string{"path": `""`}), "invalid"},
		{"path with a space", beaconJSON(t, map[string]string{"path": `"/a b"`}), "invalid"},
		{"path with a newline", beaconJSON(t, map[string]string{"path": `"/a\nb"`}), "invalid"},
		{"path not ASCII", beaconJSON(t, map[string]string{"path": `"/caf\u00e9"`}), "invalid"},
		{"path too long", beaconJSON(t, map[string]string{"path": `"/` + strings.Repeat("p", maxPathBytes) + `"`}), "invalid"},
		{"no device", beaconJSON(t, map[string]string{"dev": ""}), "invalid"},
		{"unknown device", beaconJSON(t, map[string]string{"dev": `"watch"`}), "invalid"},
		{"unknown cache status", beaconJSON(t, map[string]string{"cache": `"error"`}), "invalid"},
		{"release with a space", beaconJSON(t, map[string]string{"rel": `"v 42"`}), "invalid"},
		{"release too long", beaconJSON(t, map[string]string{"rel": `"` + strings.Repeat("r", maxReleaseBytes+1) + `"`}), "invalid"},
		{"goal name with capitals", beaconJSON(t, map[string]string{"lcp": "", "cls": "", "inp": "", "fcp": "", "ttfb": "", "conv": `"Order"`}), "invalid"},
		{"conversion with measurements", beaconJSON(t, map[string]string{"conv": `"order"`}), "invalid"},

		{"negative lcp", beaconJSON(t, map[string]string{"lcp": "-1"}), "out_of_range"},
		{"lcp over a minute", beaconJSON(t, map[string]string{"lcp": "60000.5"}), "out_of_range"},
		{"huge fcp", beaconJSON(t, map[string]string{"fcp": "1e400"}), "out_of_range"},
		{"negative ttfb", beaconJSON(t, map[string]string{"ttfb": "-0.1"}), "out_of_range"},
		{"inp over a minute", beaconJSON(t, map[string]string{"inp": "61000"}), "out_of_range"},
		{"cls over 10", beaconJSON(t, map[string]string{"cls": "10.01"}), "out_of_range"},
		{"negative cls", beaconJSON(t, map[string]string{"cls": "-0.01"}), "out_of_range"},

		{"too large", `{"v":1,"path":"/` + strings.Repeat("x", MaxBeaconBytes) + `"}`, "too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := parseBeacon([]byte(tc.body))
			got := ""
			if err != nil {
				got = reasonOf(err).String()
			}
			if got != tc.reason {
				t.Errorf("parseBeacon(%.120s) reason = %q (%v), want %q", tc.body, got, err, tc.reason)
			}
			if err == nil && (b.sid == "" || b.path == "") {
				t.Errorf("parseBeacon(%.120s) = %+v: sid or path empty", tc.body, b)
			}
		})
	}
}

func TestParseBeaconValues(t *testing.T) {
	b, err := parseBeacon([]byte(beaconJSON(t, map[string]string{"cache": "", "inp": "null"})))
	if err != nil {
		t.Fatal(err)
	}
	want := beacon{sid: goodSID, path: "/2026/11/post/", rel: "v42", dev: 0, cache: cacheUnknown,
		lcp: reading{1234, true}, fcp: reading{900, true}, ttfb: reading{120, true}, cls: reading{0.01, true}}
	if b != want {
		t.Errorf("parseBeacon = %+v, want %+v", b, want)
	}
}

func FuzzBeacon(f *testing.F) {
	f.Add([]byte(`{"v":1,"sid":"abcdefghABCDEFGH0123","path":"/","lcp":1234,"cls":0.01,"inp":80,"fcp":900,"ttfb":120,"dev":"mobile","cache":"hit","rel":"v42"}`))
	f.Add([]byte(`{"v":1,"sid":"abcdefghABCDEFGH0123","path":"/checkout/order-received/7","dev":"desktop"}`))
	f.Add([]byte(`{"v":1,"sid":"abcdefghABCDEFGH0123","path":"/","dev":"tablet","conv":"signup"}`))
	f.Add([]byte(`{"v":1,"sid":"abcdefghABCDEFGH0123","path":"/","dev":"mobile","lcp":1e999}`))
	f.Add([]byte(`{"v":1,"v":1}`))
	store, err := store.OpenStore(filepath.Join(f.TempDir(), "edgevitals.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	f.Fuzz(func(t *testing.T, body []byte) {
		c := newTestCollector(t, func(o *CollectorOptions) { o.Store = store }) // pending counts, never flushed
		before := c.snapshot()
		code := c.Beacon("blog", "fuzz", false, body)
		after := c.snapshot()
		switch code {
		case 204:
			if after.beacons != before.beacons+1 {
				t.Errorf("Beacon(%q) = 204 but counted %d beacons", body, after.beacons-before.beacons)
			}
			if _, err := parseBeacon(body); err != nil {
				t.Errorf("Beacon(%q) = 204, but parseBeacon says %v", body, err)
			}
		case 400, 413:
			if after.beacons != before.beacons || after.sessions != before.sessions || after.pending != before.pending || after.observed != before.observed {
				t.Errorf("Beacon(%q) = %d but counted something: %+v -> %+v", body, code, before, after)
			}
			if after.rejected != before.rejected+1 {
				t.Errorf("Beacon(%q) = %d, rejections counted %d, want 1", body, code, after.rejected-before.rejected)
			}
		default:
			t.Errorf("Beacon(%q) = %d, want 204, 400 or 413", body, code)
		}
	})
}
