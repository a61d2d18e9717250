package cache

import "time"

// ParseHTTPDate parses an HTTP-date (RFC 9110 §5.6.7) and reports whether v is one. It is the
// one date parser of the cache policy: Date, Expires and Last-Modified all go through it.
//
// A recipient "MUST accept all three HTTP-date formats": IMF-fixdate
// ("Sun, 06 Nov 1994 08:49:37 GMT"), and the obsolete RFC 850 ("Sunday, 06-Nov-94 08:49:37
// GMT") and asctime ("Sun Nov  6 08:49:37 1994") forms. Each must match its grammar exactly:
// one space where the grammar has SP, two-digit day, hour, minute and second (asctime's day
// may be a space and one digit), GMT and nothing after it. Only day names, month names and
// "GMT" are matched without regard to case, as RFC 9111 §4.2 asks of a cache ("Although all
// date formats are specified to be case-sensitive, a cache recipient SHOULD match the field
// value case-insensitively"). Leading and trailing spaces and tabs are ignored; anything else
// (several field lines joined with ", ", another time zone, a two-digit year in IMF-fixdate)
// is not an HTTP-date.
//
// now resolves the two-digit year of the RFC 850 form: "Recipients of a timestamp value in
// rfc850-date format, which uses a two-digit year, MUST interpret a timestamp that appears to
// be more than 50 years in the future as representing the most recent year in the past that
// had the same last two digits." It does not allocate; v is only read during the call.
func ParseHTTPDate(v []byte, now time.Time) (time.Time, bool) {
	v = trimSpace(v)
	switch {
	case len(v) == len("Sun, 06 Nov 1994 08:49:37 GMT") && v[3] == ',':
		return parseIMFFixdate(v)
	case len(v) == len("Sun Nov  6 08:49:37 1994") && v[3] == ' ':
		return parseAsctime(v)
	}
	return parseRFC850(v, now)
}

// parseIMFFixdate: day-name "," SP 2DIGIT SP month SP 4DIGIT SP time-of-day SP "GMT".
func parseIMFFixdate(v []byte) (time.Time, bool) {
	if dayName(v[0:3]) < 0 || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' || v[25] != ' ' || !equalFold(v[26:29], "gmt") {
		return time.Time{}, false
	}
	day, ok1 := digits(v[5:7])
	month := monthName(v[8:11])
	year, ok2 := digits(v[12:16])
	if !ok1 || !ok2 {
		return time.Time{}, false
	}
	return build(year, month, day, v[17:25])
}

// parseAsctime: day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time-of-day SP 4DIGIT.
func parseAsctime(v []byte) (time.Time, bool) {
	if dayName(v[0:3]) < 0 || v[7] != ' ' || v[10] != ' ' || v[19] != ' ' {
		return time.Time{}, false
	}
	month := monthName(v[4:7])
	d := v[8:10]
	if d[0] == ' ' {
		d = d[1:]
	}
	day, ok1 := digits(d)
	year, ok2 := digits(v[20:24])
	if !ok1 || !ok2 {
		return time.Time{}, false
	}
	return build(year, month, day, v[11:19])
}

// parseRFC850: day-name-l "," SP 2DIGIT "-" month "-" 2DIGIT SP time-of-day SP "GMT".
func parseRFC850(v []byte, now time.Time) (time.Time, bool) {
	comma := -1
	for i := 0; i < len(v) && i < 10; i++ {
		if v[i] == ',' {
			comma = i
			break
		}
	}
	if comma < 0 || longDayName(v[:comma]) < 0 {
		return time.Time{}, false
	}
	r := v[comma+1:]
	// SP 2DIGIT "-" month "-" 2DIGIT SP time-of-day SP "GMT"
	if len(r) != len(" 06-Nov-94 08:49:37 GMT") || r[0] != ' ' || r[3] != '-' || r[7] != '-' || r[10] != ' ' || r[19] != ' ' || !equalFold(r[20:23], "gmt") {
		return time.Time{}, false
	}
	day, ok1 := digits(r[1:3])
	month := monthName(r[4:7])
	yy, ok2 := digits(r[8:10])
	if !ok1 || !ok2 {
		return time.Time{}, false
	}
	year := now.UTC().Year()/100*100 + yy
	if year > now.UTC().Year()+50 {
		year -= 100
	}
	return build(year, month, day, r[11:19])
}

// build checks the calendar date and time-of-day (2DIGIT ":" 2DIGIT ":" 2DIGIT; second may be
// 60, a leap second) and makes the UTC time.
func build(year, month, day int, hms []byte) (time.Time, bool) {
	if month < 1 || hms[2] != ':' || hms[5] != ':' {
		return time.Time{}, false
	}
	h, ok1 := digits(hms[0:2])
	m, ok2 := digits(hms[3:5])
	s, ok3 := digits(hms[6:8])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || s > 60 || day < 1 || day > daysIn(month, year) {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, h, m, s, 0, time.UTC), true
}

func daysIn(month, year int) int {
	// The day before the first of the next month.
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// digits parses one or more ASCII digits (at most 4 here).
func digits(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

var (
	dayNames     = [...]string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	longDayNames = [...]string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
	monthNames   = [...]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
)

func dayName(b []byte) int     { return indexFold(dayNames[:], b) }
func longDayName(b []byte) int { return indexFold(longDayNames[:], b) }

// monthName returns 1 to 12, or 0 when b is no month name.
func monthName(b []byte) int { return indexFold(monthNames[:], b) + 1 }

func indexFold(names []string, b []byte) int {
	for i, s := range names {
		if equalFold(b, s) {
			return i
		}
	}
	return -1
}
