package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Sample is one lab measurement of one URL with one profile. A metric that
// could not be measured is nil, never zero: a page without an interactive
// element has no INP, and a zero would read as "instant".
type Sample struct {
	URL     string
	Profile string
	At      time.Time // when the navigation started

	LCP, FCP, TTFB, TBT, INP *time.Duration
	CLS                      *float64

	TransferBytes int64  // bytes on the wire, headers included, for every request of the load
	Requests      int64  // network requests of the load
	CacheStatus   string // the document's Cache-Status response header, as sent by the edge
	Took          time.Duration
}

// LabJSON is the wire form of the figures a Sample and a Summary share:
// milliseconds as numbers, null for what was not measured. Both embed it,
// so a stored sample and `edgevitals measure -json` use the same keys.
type LabJSON struct {
	LCP           *float64 `json:"lcp_ms"`
	FCP           *float64 `json:"fcp_ms"`
	TTFB          *float64 `json:"ttfb_ms"`
	TBT           *float64 `json:"tbt_ms"`
	INP           *float64 `json:"inp_ms"`
	CLS           *float64 `json:"cls"`
	TransferBytes int64    `json:"transfer_bytes"`
	Requests      int64    `json:"requests"`
	CacheStatus   string   `json:"cache_status"`
}

// sampleJSON is the wire form of a Sample.
type sampleJSON struct {
	URL     string `json:"url"`
	Profile string `json:"profile"`
	At      string `json:"at"`
	LabJSON
	Took float64 `json:"took_ms"`
}

func MsOf(d *time.Duration) *float64 {
	if d == nil {
		return nil
	}
	v := float64(*d) / float64(time.Millisecond)
	return &v
}

func DurOf(ms *float64) (*time.Duration, error) {
	if ms == nil {
		return nil, nil
	}
	if err := checkMillis(*ms); err != nil {
		return nil, err
	}
	d := time.Duration(*ms * float64(time.Millisecond))
	return &d, nil
}

// maxMillis bounds any time a sample may hold: one hour is far beyond any
// page load, and keeps the conversion to time.Duration exact and safe.
const MaxMillis = 3600e3

func checkMillis(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > MaxMillis {
		return fmt.Errorf("time %v ms out of range [0, %v]", v, MaxMillis)
	}
	return nil
}

func CheckCLS(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1000 {
		return fmt.Errorf("cls %v out of range [0, 1000]", v)
	}
	return nil
}

// clsOf checks a CLS read from JSON; nil stays nil.
func ClsOf(v *float64) (*float64, error) {
	if v == nil {
		return nil, nil
	}
	if err := CheckCLS(*v); err != nil {
		return nil, err
	}
	c := *v
	return &c, nil
}

// msField is a time in milliseconds read from JSON, named by its key.
type MsField struct {
	Key string
	In  *float64
	Out **time.Duration
}

// durations converts each field's time (nil stays nil) and returns an
// error naming every one out of range.
func Durations(fs []MsField) error {
	var errs []error
	for _, f := range fs {
		d, err := DurOf(f.In)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Key, err))
		}
		*f.Out = d
	}
	return errors.Join(errs...)
}

// MarshalJSON encodes times as milliseconds and unmeasured metrics as null.
func (s Sample) MarshalJSON() ([]byte, error) {
	w := sampleJSON{
		URL: s.URL, Profile: s.Profile,
		LabJSON: LabJSON{
			LCP: MsOf(s.LCP), FCP: MsOf(s.FCP), TTFB: MsOf(s.TTFB), TBT: MsOf(s.TBT), INP: MsOf(s.INP), CLS: s.CLS,
			TransferBytes: s.TransferBytes, Requests: s.Requests, CacheStatus: s.CacheStatus,
		},
		Took: float64(s.Took) / float64(time.Millisecond),
	}
	if !s.At.IsZero() {
		w.At = s.At.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes what MarshalJSON wrote and rejects values no browser
// can produce (negative or non-finite times, absurd counts).
func (s *Sample) UnmarshalJSON(b []byte) error {
	var w sampleJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	var out Sample
	out.URL, out.Profile, out.CacheStatus = w.URL, w.Profile, w.CacheStatus
	if w.At != "" {
		t, err := time.Parse(time.RFC3339Nano, w.At)
		if err != nil {
			return fmt.Errorf("sample at: %w", err)
		}
		out.At = t
	}
	cls, err := ClsOf(w.CLS)
	out.CLS = cls
	errs := []error{Durations([]MsField{{"lcp_ms", w.LCP, &out.LCP}, {"fcp_ms", w.FCP, &out.FCP},
		{"ttfb_ms", w.TTFB, &out.TTFB}, {"tbt_ms", w.TBT, &out.TBT}, {"inp_ms", w.INP, &out.INP}}), err}
	if w.TransferBytes < 0 || w.Requests < 0 {
		errs = append(errs, errors.New("negative transfer_bytes or requests"))
	}
	if err := checkMillis(w.Took); err != nil {
		errs = append(errs, fmt.Errorf("took_ms: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("decode sample: %w", err)
	}
	out.TransferBytes, out.Requests = w.TransferBytes, w.Requests
	out.Took = time.Duration(w.Took * float64(time.Millisecond))
	*s = out
	return nil
}

// LabMetric is one measure of a Sample: edgevitals_ + Metric is its gauge
// and Metric a report line's metric; Name is how sentences call it.
type LabMetric struct {
	Metric string
	Name   string
	Score  bool // unitless (CLS); the others are in seconds
	Get    func(Sample) (float64, bool)
}

func seconds(get func(Sample) *time.Duration) func(Sample) (float64, bool) {
	return func(s Sample) (float64, bool) {
		if d := get(s); d != nil {
			return d.Seconds(), true
		}
		return 0, false
	}
}

// LabMetrics are the measures of a Sample in the order of a report: the
// Core Web Vitals, then the diagnostics behind them.
func LabMetrics() []LabMetric {
	return []LabMetric{
		{"lab_lcp_seconds", "LCP", false, seconds(func(s Sample) *time.Duration { return s.LCP })},
		{"lab_cls", "CLS", true, func(s Sample) (float64, bool) {
			if s.CLS == nil {
				return 0, false
			}
			return *s.CLS, true
		}},
		{"lab_inp_seconds", "INP", false, seconds(func(s Sample) *time.Duration { return s.INP })},
		{"lab_tbt_seconds", "TBT", false, seconds(func(s Sample) *time.Duration { return s.TBT })},
		{"lab_fcp_seconds", "FCP", false, seconds(func(s Sample) *time.Duration { return s.FCP })},
		{"lab_ttfb_seconds", "TTFB", false, seconds(func(s Sample) *time.Duration { return s.TTFB })},
	}
}
