package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a length of time written in TOML as a string: "750ms", "5m", "6h" (Go's
// time.ParseDuration), whole days as "90d", or "0". A bare integer 0 is accepted too.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d the way time.Duration does ("5m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalText parses a duration. Negative values parse; validation rejects them with the
// key they belong to.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := parseDuration(string(text))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes d so that UnmarshalText reads it back.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf(`must be a duration like "750ms", "5m", "6h" or "90d", got %q`, s)
	if s == "" {
		return 0, bad
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil {
			return 0, bad
		}
		const maxDays = int64(math.MaxInt64 / int64(24*time.Hour))
		if n > maxDays || n < -maxDays {
			return 0, fmt.Errorf("must be a duration of at most %d days, got %q", maxDays, s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, bad
	}
	return v, nil
}

// Size is a number of bytes written in TOML as "512MiB", "8MiB", "64KiB", "1GB" (units B,
// KB, MB, GB, TB in powers of 1000 and KiB, MiB, GiB, TiB in powers of 1024, any case) or as
// a plain integer of bytes, quoted or not.
type Size int64

// String formats s in the largest binary unit that holds it exactly ("512MiB", "1000").
func (s Size) String() string {
	if s == 0 {
		return "0"
	}
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// UnmarshalText parses a size. Negative values parse; validation rejects them with the key
// they belong to.
func (s *Size) UnmarshalText(text []byte) error {
	v, err := parseSize(string(text))
	if err != nil {
		return err
	}
	*s = Size(v)
	return nil
}

// MarshalText writes s so that UnmarshalText reads it back.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf(`must be a size like "512MiB", "64KiB", "1GB" or a number of bytes, got %q`, s)
	end := 0
	if end < len(s) && (s[end] == '-' || s[end] == '+') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, err := strconv.ParseInt(s[:end], 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("must be a size below 8EiB, got %q", s)
		}
		return 0, bad
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(s[end:]))]
	if !ok {
		return 0, bad
	}
	if n > math.MaxInt64/mult || n < math.MinInt64/mult {
		return 0, fmt.Errorf("must be a size below 8EiB, got %q", s)
	}
	return n * mult, nil
}

// Secret is a string that must not reach logs: String, LogValue and MarshalText give
// "[redacted]" when it is set, and "" when it is not. Reveal gives the value itself.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value, for the one place that compares or sends it.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]", or "" when the secret is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// LogValue keeps the secret out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps the secret out of JSON and TOML output.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// GoString keeps the secret out of %#v output.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }
