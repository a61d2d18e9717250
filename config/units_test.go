package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestSizeUnmarshalText(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr bool
	}{
		{"512MiB", 512 << 20, false},
		{"8MiB", 8 << 20, false},
		{"64KiB", 64 << 10, false},
		{"1GB", 1_000_000_000, false},
		{"1gib", 1 << 30, false},
		{"2 TiB", 2 << 40, false},
		{"10kb", 10_000, false},
		{"100B", 100, false},
		{"1048576", 1 << 20, false},
		{" 42 ", 42, false},
		{"0", 0, false},
		{"-1", -1, false}, // parses; validation says "must be > 0"
		{"", 0, true},
		{"MiB", 0, true},
		{"12XB", 0, true},
		{"64KB2", 0, true},
		{"1.5GiB", 0, true},
		{"5M", 0, true}, // ambiguous: MB or MiB?
		{"-", 0, true},
		{"9223372036854775807", 1<<63 - 1, false},
		{"9223372036854775808", 0, true},
		{"8388608TiB", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got Size
			err := got.UnmarshalText([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Size.UnmarshalText(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Size.UnmarshalText(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestSizeRoundTrip(t *testing.T) {
	for _, s := range []Size{0, 1, 1000, 1024, 64 << 10, 512 << 20, 3 << 30, 5 << 40, 1<<20 + 1, -2048} {
		text, err := s.MarshalText()
		if err != nil {
			t.Fatalf("Size(%d).MarshalText() error = %v", s, err)
		}
		var back Size
		if err := back.UnmarshalText(text); err != nil || back != s {
			t.Errorf("Size(%d) -> %q -> %d, %v; want it back", s, text, back, err)
		}
	}
}

func TestDurationUnmarshalText(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"750ms", 750 * time.Millisecond, false},
		{"5m", 5 * time.Minute, false},
		{"6h", 6 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"0", 0, false},
		{"90d", 90 * 24 * time.Hour, false},
		{"-1s", -time.Second, false}, // parses; validation says "must be >= 0"
		{"", 0, true},
		{"5", 0, true},
		{"10 seconds", 0, true},
		{"1.5d", 0, true},
		{"d", 0, true},
		{"999999999d", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got Duration
			err := got.UnmarshalText([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Duration.UnmarshalText(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got.D() != tt.want {
				t.Errorf("Duration.UnmarshalText(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestDurationRoundTrip(t *testing.T) {
	for _, d := range []Duration{0, Duration(time.Millisecond), Duration(90 * time.Minute), Duration(2160 * time.Hour)} {
		text, err := d.MarshalText()
		if err != nil {
			t.Fatalf("Duration(%s).MarshalText() error = %v", d, err)
		}
		var back Duration
		if err := back.UnmarshalText(text); err != nil || back != d {
			t.Errorf("Duration(%s) -> %q -> %s, %v; want it back", d, text, back, err)
		}
	}
}

// TestSecretRedacted prints a secret every way a log line or a debug dump might, and
// checks that the value never shows.
func TestSecretRedacted(t *testing.T) {
	const token = "s3cr3t-token"
	c := Default()
	c.Server.AdminToken = token

	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "config", c, "server", c.Server)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "config", c, "token", c.Server.AdminToken)
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("json.Marshal(config) error = %v", err)
	}
	outputs := map[string]string{
		"slog":       logs.String(),
		"json":       string(js),
		"%v":         fmt.Sprintf("%v", *c),
		"%+v":        fmt.Sprintf("%+v", c.Server),
		"%#v":        fmt.Sprintf("%#v", c.Server),
		"%s":         fmt.Sprintf("%s", c.Server.AdminToken), //lint:ignore S1025 what the %s verb prints is the point
		"String()":   c.Server.AdminToken.String(),
		"LogValue()": c.Server.AdminToken.LogValue().String(),
	}
	for how, out := range outputs {
		if strings.Contains(out, token) {
			t.Errorf("%s shows the token: %s", how, out)
		}
		if !strings.Contains(out, redacted) {
			t.Errorf("%s = %s, want it to say %s", how, out, redacted)
		}
	}
	if got := c.Server.AdminToken.Reveal(); got != token {
		t.Errorf("Reveal() = %q, want %q", got, token)
	}
	if got := Secret("").String(); got != "" {
		t.Errorf(`Secret("").String() = %q, want ""`, got)
	}
}
