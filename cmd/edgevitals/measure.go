package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/edgevitals/edgevitals/vitals/lab"
	"github.com/edgevitals/edgevitals/vitals/store"
)

func init() {
	commands["measure"] = command{run: runMeasure, usage: "measure [-profile mobile|desktop] [-runs N] [-json] URL..."}
}

// runMeasure measures the URLs once or more in headless Chromium and prints
// the median of each metric per URL and profile.
func runMeasure(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("measure", flag.ContinueOnError)
	fs.SetOutput(stderr)
	profiles := fs.String("profile", "mobile", "`mobile`, desktop, or both as mobile,desktop")
	runs := fs.Int("runs", 3, "runs per URL and profile; the table shows the median")
	asJSON := fs.Bool("json", false, "print a JSON array instead of a table")
	chromium := fs.String("chromium", "", "Chromium `path` (as vitals.chromium); empty searches PATH")
	timeout := fs.Duration("timeout", lab.DefaultTimeout, "limit of one run")
	selector := fs.String("click", "", "CSS `selector` the synthetic interaction clicks for INP; empty picks the first button or in-page link")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: edgevitals measure [-profile mobile|desktop] [-runs N] [-json] URL...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "edgevitals measure: "+format+"\n", a...)
		fs.Usage()
		return 2
	}
	if fs.NArg() == 0 {
		return usageErr("no URL to measure")
	}
	if *runs < 1 {
		return usageErr("-runs must be >= 1, got %d", *runs)
	}
	var profs []lab.Profile
	for _, name := range strings.Split(*profiles, ",") {
		p, err := lab.ProfileByName(name)
		if err != nil {
			return usageErr("-profile: %v", err)
		}
		profs = append(profs, p)
	}
	for _, u := range fs.Args() {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return usageErr("%q is not an absolute http(s) URL", u)
		}
	}

	b, err := lab.NewBrowser(*chromium, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "edgevitals measure: %v\n", err)
		return 1
	}
	defer b.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var sums []lab.Summary
	failed := false
	for _, u := range fs.Args() {
		for _, p := range profs {
			var samples []store.Sample
			for i := range *runs {
				fmt.Fprintf(stderr, "measuring %s (%s) run %d/%d ...", u, p.Name, i+1, *runs)
				start := time.Now()
				s, err := b.Measure(ctx, u, p, *selector)
				if err != nil {
					fmt.Fprintf(stderr, " failed: %v\n", err)
					if ctx.Err() != nil {
						return 1
					}
					continue
				}
				fmt.Fprintf(stderr, " %.1fs\n", time.Since(start).Seconds())
				samples = append(samples, s)
			}
			if len(samples) == 0 {
				failed = true
				continue
			}
			sums = append(sums, lab.Summarize(samples))
		}
	}
	if *asJSON {
		if sums == nil {
			sums = []lab.Summary{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sums); err != nil {
			fmt.Fprintf(stderr, "edgevitals measure: %v\n", err)
			return 1
		}
	} else if err := lab.WriteTable(stdout, sums); err != nil {
		fmt.Fprintf(stderr, "edgevitals measure: %v\n", err)
		return 1
	}
	if failed {
		return 1
	}
	return 0
}
