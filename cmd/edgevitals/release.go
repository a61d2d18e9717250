package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	adminapi "github.com/edgevitals/edgevitals/admin"
	"github.com/edgevitals/edgevitals/config"
	"github.com/edgevitals/edgevitals/vitals/report"
	"github.com/edgevitals/edgevitals/vitals/store"
)

func init() {
	commands["release"] = command{run: runRelease, usage: "release -site S -id ID [-note TEXT] [-admin URL]  record a release (CI/CD)"}
	commands["report"] = command{run: runReport, usage: "report [-site S] [-release ID] [-json] [-wait DUR -fail-on regressed] [-admin URL]  what a release changed"}
}

// adminClient talks to a running edgevitals' admin API.
type adminClient struct {
	base, token string
	http        *http.Client
}

func newAdminClient(base, token string) *adminClient {
	if token == "" {
		token = os.Getenv(config.TokenEnv)
	}
	return &adminClient{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}
}

// apiError is a non-2xx answer of the admin API: its message, and the
// reason a report could not be built (adminapi.ReportError), if any.
type apiError struct {
	Status  int
	Message string
	Reason  string
}

func (e *apiError) Error() string { return e.Message }

// do sends a request and decodes a JSON answer into out. A non-2xx answer
// is an *apiError carrying the API's message.
func (c *adminClient) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("admin API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		var e adminapi.ReportError
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return resp.StatusCode, &apiError{Status: resp.StatusCode, Message: e.Error, Reason: e.Reason}
		}
		return resp.StatusCode, &apiError{Status: resp.StatusCode, Message: "admin API answered " + resp.Status}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("admin API answer: %w", err)
		}
	}
	return resp.StatusCode, nil
}

func runRelease(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	fs.SetOutput(stderr)
	site := fs.String("site", "", "site `name` (as in the config)")
	id := fs.String("id", "", "release `id`: a version, tag or commit")
	note := fs.String("note", "", "what the release changed")
	at := fs.String("at", "", "start time, RFC 3339 (default: now)")
	admin := fs.String("admin", "http://127.0.0.1:9145", "admin API `URL`")
	token := fs.String("token", "", "admin token (default $"+config.TokenEnv+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *site == "" || *id == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: edgevitals release -site S -id ID [-note TEXT] [-at TIME] [-admin URL]")
		return 2
	}
	c := newAdminClient(*admin, *token)
	var rel store.Release
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.do(ctx, http.MethodPost, "/api/releases?source=cli", map[string]string{"site": *site, "id": *id, "note": *note, "at": *at}, &rel); err != nil {
		fmt.Fprintf(stderr, "edgevitals release: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "release %s of %s recorded at %s\n", rel.ID, rel.Site, rel.At.Format(time.RFC3339))
	return 0
}

func runReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	site := fs.String("site", "", "site `name` (default: the only site)")
	release := fs.String("release", "", "release `id` (default: the latest)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	wait := fs.Duration("wait", 0, "wait up to `DUR` until every verdict is in")
	failOn := fs.String("fail-on", "", "exit 1 when the verdict is `regressed` (a pipeline guardrail)")
	admin := fs.String("admin", "http://127.0.0.1:9145", "admin API `URL`")
	token := fs.String("token", "", "admin token (default $"+config.TokenEnv+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || (*failOn != "" && *failOn != string(report.Regressed)) {
		fmt.Fprintln(stderr, "usage: edgevitals report [-site S] [-release ID] [-json] [-wait DUR -fail-on regressed] [-admin URL]")
		return 2
	}
	c := newAdminClient(*admin, *token)
	q := url.Values{}
	if *site != "" {
		q.Set("site", *site)
	}
	if *release != "" {
		q.Set("release", *release)
	}
	deadline := time.Now().Add(*wait)
	var rep report.Report
	var raw json.RawMessage
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := c.do(ctx, http.MethodGet, "/api/report?"+q.Encode(), nil, &raw)
		cancel()
		var ae *apiError
		if errors.As(err, &ae) && ae.Reason == adminapi.ReasonFirstRelease && *failOn != "" {
			// A site's very first release: nothing it could have
			// regressed against, so a pipeline's first deploy goes
			// through. Any other report that cannot compare (its
			// predecessor is gone) stops the pipeline.
			fmt.Fprintf(stderr, "edgevitals report: %v; not a regression\n", err)
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "edgevitals report: %v\n", err)
			return 1
		}
		if err := json.Unmarshal(raw, &rep); err != nil {
			fmt.Fprintf(stderr, "edgevitals report: %v\n", err)
			return 1
		}
		// Stop early on a regression: a guardrail need not wait for the rest.
		if rep.Complete || rep.Verdict == report.Regressed || !time.Now().Before(deadline) {
			break
		}
		fmt.Fprintf(stderr, "edgevitals report: verdicts not all in yet (%s so far); checking again in 30s\n", rep.Verdict)
		time.Sleep(min(30*time.Second, time.Until(deadline)))
	}
	if *asJSON {
		stdout.Write(raw)
		fmt.Fprintln(stdout)
	} else if err := rep.WriteTable(stdout); err != nil {
		fmt.Fprintf(stderr, "edgevitals report: %v\n", err)
		return 1
	}
	if *failOn != "" && rep.Verdict == report.Regressed {
		fmt.Fprintf(stderr, "edgevitals report: release %s of %s regressed\n", rep.Release.ID, rep.Site)
		return 1
	}
	if *failOn != "" && rep.Verdict == report.NotEnoughData {
		// No line could compare the two windows: a guardrail that
		// passes here would pass whatever the release did.
		fmt.Fprintf(stderr, "edgevitals report: cannot compare release %s of %s with %s: not enough data in the windows yet (wait longer with -wait)\n",
			rep.Release.ID, rep.Site, rep.Previous.ID)
		return 1
	}
	return 0
}
