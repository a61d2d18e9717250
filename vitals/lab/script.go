package lab

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// Script is the measurement script shared by the lab sampler and the field
// beacon. It defines window.__edgevitals with collect(), which returns the
// current figures, and report(send), which calls send once with them when the
// page is hidden or unloaded. It is safe to include more than once.
//
//go:embed measure.js
var Script string

// pageFigures is what collect() returns. The values come from the page, so a
// hostile or broken page can send anything: parseFigures checks them.
type pageFigures struct {
	LCP           *float64 `json:"lcp"`
	FCP           *float64 `json:"fcp"`
	TTFB          *float64 `json:"ttfb"`
	CLS           *float64 `json:"cls"`
	TBT           *float64 `json:"tbt"`
	INP           *float64 `json:"inp"`
	Interactions  int64    `json:"interactions"`
	Input         bool     `json:"input"`
	Now           float64  `json:"now"`
	SinceLongTask float64  `json:"sinceLongTask"`
}

// figures is a checked pageFigures.
type figures struct {
	LCP, FCP, TTFB, TBT, INP *time.Duration
	CLS                      *float64
	Interactions             int64
	Input                    bool
	SinceLongTask            time.Duration
}

// parseFigures decodes and checks the JSON text that collect() produced.
func parseFigures(b []byte) (figures, error) {
	var p pageFigures
	if err := json.Unmarshal(b, &p); err != nil {
		return figures{}, fmt.Errorf("decode page figures: %w", err)
	}
	var f figures
	cls, err := store.ClsOf(p.CLS)
	f.CLS = cls
	errs := []error{store.Durations([]store.MsField{{Key: "lcp", In: p.LCP, Out: &f.LCP}, {Key: "fcp", In: p.FCP, Out: &f.FCP},
		{Key: "ttfb", In: p.TTFB, Out: &f.TTFB}, {Key: "tbt", In: p.TBT, Out: &f.TBT}, {Key: "inp", In: p.INP, Out: &f.INP}}), err}
	if p.Interactions < 0 {
		errs = append(errs, fmt.Errorf("interactions %d < 0", p.Interactions))
	}
	f.Interactions, f.Input = p.Interactions, p.Input
	// sinceLongTask only steers the wait for a quiet page: clamp, never fail.
	switch s := p.SinceLongTask; {
	case s != s || s < 0: // NaN or negative
		f.SinceLongTask = 0
	case s > store.MaxMillis:
		f.SinceLongTask = time.Duration(store.MaxMillis) * time.Millisecond
	default:
		f.SinceLongTask = time.Duration(s * float64(time.Millisecond))
	}
	if err := errors.Join(errs...); err != nil {
		return figures{}, fmt.Errorf("page figures: %w", err)
	}
	return f, nil
}
