package cache

import (
	"testing"
	"time"
)

// RFC 9110 §5.6.7: "A recipient that parses a timestamp value in an HTTP field MUST accept all
// three HTTP-date formats." RFC 9111 §4.2: "Although all date formats are specified to be
// case-sensitive, a cache recipient SHOULD match the field value case-insensitively."
func TestParseHTTPDate(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	f := func(in string, want time.Time) {
		t.Helper()
		got, ok := ParseHTTPDate([]byte(in), now)
		if want.IsZero() {
			if ok {
				t.Errorf("ParseHTTPDate(%q) = %v, want invalid", in, got)
			}
			return
		}
		if !ok || !got.Equal(want) {
			t.Errorf("ParseHTTPDate(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	at := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	var invalid time.Time

	// The three forms of RFC 9110 §5.6.7.
	f("Sun, 06 Nov 1994 08:49:37 GMT", at(1994, 11, 6, 8, 49, 37))
	f("Sunday, 06-Nov-94 08:49:37 GMT", at(1994, 11, 6, 8, 49, 37))
	f("Sun Nov  6 08:49:37 1994", at(1994, 11, 6, 8, 49, 37))
	f("Thu Aug  8 02:01:18 2050", at(2050, 8, 8, 2, 1, 18))
	f("Thu Aug 18 02:01:18 2050", at(2050, 8, 18, 2, 1, 18))
	f("Tue, 19 Jan 2038 14:14:08 GMT", at(2038, 1, 19, 14, 14, 8))
	f("Sun, 21 Nov 2286 04:46:39 GMT", at(2286, 11, 21, 4, 46, 39))
	f(" \tSun, 06 Nov 1994 08:49:37 GMT\t ", at(1994, 11, 6, 8, 49, 37)) // OWS around a field value
	f("Sat, 31 Dec 2016 23:59:60 GMT", at(2017, 1, 1, 0, 0, 0))          // a leap second
	// Case: names are matched case-insensitively.
	f("THU, 18 Aug 2050 02:01:18 GMT", at(2050, 8, 18, 2, 1, 18))
	f("Thu, 18 AUG 2050 02:01:18 GMT", at(2050, 8, 18, 2, 1, 18))
	f("Thu, 18 Aug 2050 02:01:18 gMT", at(2050, 8, 18, 2, 1, 18))
	f("THURSDAY, 18-aug-50 02:01:18 gmt", at(2050, 8, 18, 2, 1, 18))
	// RFC 850 two-digit years: more than 50 years ahead means the century before.
	f("Thursday, 18-Aug-50 02:01:18 GMT", at(2050, 8, 18, 2, 1, 18))
	f("Friday, 18-Aug-76 02:01:18 GMT", at(2076, 8, 18, 2, 1, 18))
	f("Sunday, 18-Aug-77 02:01:18 GMT", at(1977, 8, 18, 2, 1, 18))

	// Invalid: each breaks the grammar in one place.
	f("", invalid)
	f("0", invalid)
	f("-1", invalid)
	f("Thu, 18 Aug 2050 02:01:18 UTC", invalid)
	f("Thu, 18 Aug 2050 02:01:18 AEST", invalid)
	f("Thu, 18 Aug 50 02:01:18 GMT", invalid)
	f("Thu 18 Aug 2050 02:01:18 GMT", invalid)
	f("Thu, 18  Aug  2050 02:01:18 GMT", invalid)
	f("Thu,  18 Aug 2050 02:01:18 GMT", invalid)
	f("Thu, 18-Aug-2050 02:01:18 GMT", invalid)
	f("Thu, 18 Aug 2050 02.01.18 GMT", invalid)
	f("Thu, 18 Aug 2050 2:01:18 GMT", invalid)
	f("Thu, 18 Aug 2050 2:01:18 GMT, Thu, 18 Aug 2050 2:01:19 GMT", invalid)
	f("Thu, 18 Aug 2050 02:01:18 GMT, Thu, 18 Aug 2050 02:01:19 GMT", invalid) // two lines joined
	f("Thu, 18 Aug 2050 02:01:18 GMTx", invalid)
	f("Thu, 18 Aug 2050 24:00:00 GMT", invalid)
	f("Thu, 18 Aug 2050 23:60:00 GMT", invalid)
	f("Thu, 18 Aug 2050 23:59:61 GMT", invalid)
	f("Thu, 31 Apr 2050 02:01:18 GMT", invalid)
	f("Thu, 29 Feb 2049 02:01:18 GMT", invalid)
	f("Thu, 00 Aug 2050 02:01:18 GMT", invalid)
	f("Xyz, 18 Aug 2050 02:01:18 GMT", invalid)
	f("Thu, 18 Foo 2050 02:01:18 GMT", invalid)
	f("Thu, +8 Aug 2050 02:01:18 GMT", invalid)
	f("Thursday, 18-Aug-2050 02:01:18 GMT", invalid)
	f("Thursday, 18 Aug 50 02:01:18 GMT", invalid)
	f("Thurs, 18-Aug-50 02:01:18 GMT", invalid)
	f("Thu Aug 8 02:01:18 2050", invalid)
	f("Thu Aug  8 02:01:18 2050 GMT", invalid)
	f("Thu  Aug 8 02:01:18 2050", invalid)
	f("2050-08-18T02:01:18Z", invalid)
}

func TestParseHTTPDateAllocs(t *testing.T) {
	now := time.Now()
	vs := [][]byte{[]byte("Sun, 06 Nov 1994 08:49:37 GMT"), []byte("Sunday, 06-Nov-94 08:49:37 GMT"), []byte("Sun Nov  6 08:49:37 1994")}
	if n := testing.AllocsPerRun(100, func() {
		for _, v := range vs {
			ParseHTTPDate(v, now)
		}
	}); n != 0 {
		t.Errorf("ParseHTTPDate allocs = %v, want 0", n)
	}
}

func FuzzParseHTTPDate(f *testing.F) {
	f.Add([]byte("Sun, 06 Nov 1994 08:49:37 GMT"))
	f.Add([]byte("Sunday, 06-Nov-94 08:49:37 GMT"))
	f.Add([]byte("Sun Nov  6 08:49:37 1994"))
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v []byte) {
		d, ok := ParseHTTPDate(v, now)
		if !ok {
			return
		}
		// What parses is a real instant of its form, and prints back in IMF-fixdate the
		// same (second 60 aside, which rolls over).
		if d.Location() != time.UTC || d.Year() < 0 || d.Year() > 9999 {
			t.Fatalf("ParseHTTPDate(%q) = %v", v, d)
		}
		imf := []byte(d.Format("Mon, 02 Jan 2006 15:04:05 GMT"))
		if back, ok := ParseHTTPDate(imf, now); !ok || !back.Equal(d) {
			t.Fatalf("ParseHTTPDate(%q) = %v; its IMF-fixdate %q gives %v, %v", v, d, imf, back, ok)
		}
	})
}
