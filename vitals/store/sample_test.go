package store

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestSampleJSONNullForUnmeasured(t *testing.T) {
	s := Sample{URL: "http://a/", Profile: "mobile", At: time.Unix(1700000000, 0), LCP: dur(1500 * time.Millisecond), TBT: dur(0), CLS: flt(0)}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"lcp_ms":1500`, `"tbt_ms":0`, `"cls":0`, `"inp_ms":null`, `"fcp_ms":null`, `"ttfb_ms":null`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Marshal = %s, lacks %s", b, want)
		}
	}
	var back Sample
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.INP != nil || back.TBT == nil || *back.TBT != 0 || *back.LCP != 1500*time.Millisecond || !back.At.Equal(s.At) {
		t.Errorf("round trip = %+v, want %+v", back, s)
	}
}
func FuzzSampleJSON(f *testing.F) {
	good, _ := json.Marshal(Sample{URL: "http://a/", Profile: "desktop", At: time.Unix(1e9, 0), LCP: dur(time.Second), CLS: flt(0.2), Requests: 3})
	f.Add(good)
	f.Add([]byte(`{"lcp_ms":null,"cls":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Sample
		if err := json.Unmarshal(b, &s); err != nil {
			return
		}
		// What decodes must encode and decode to the same thing.
		again, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("Marshal of a decoded sample: %v", err)
		}
		var s2 Sample
		if err := json.Unmarshal(again, &s2); err != nil {
			t.Fatalf("re-decode %s: %v", again, err)
		}
		third, _ := json.Marshal(s2) // it encoded once already
		if !bytes.Equal(again, third) {
			t.Errorf("not stable:\n%s\n%s", again, third)
		}
	})
}
