package insight

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

const defaultStrip = `"utm_*", "gclid", "fbclid", "msclkid"`

func clickID(s *sim) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 24)
	for i := range b {
		b[i] = hex[s.rng.IntN(16)]
	}
	return string(b)
}

type topWant struct {
	kind         Kind
	name, reason string
	share        float64
	verdict      Verdict
	configKey    string
	config       string
	suggestion   string // a part of it
}

type topCase struct {
	name string
	opt  Options
	add  func(s *sim, r *req)
	want topWant
}

// TestInsightsTopParamCookie feeds each real-life cause alone over ordinary traffic: the top
// insight names it, with its share and the line that fixes it.
func TestInsightsTopParamCookie(t *testing.T) {
	runTopCases(t, []topCase{{
		name: "click id on 30% of requests, same page for every value",
		add: func(s *sim, r *req) {
			if s.rng.IntN(10) < 3 {
				r.params = append(r.params, "srsltid="+clickID(s))
			}
		},
		want: topWant{kind: KindParam, name: "srsltid", share: 0.3, verdict: Identical,
			configKey: "cache.strip_query", config: `strip_query = [` + defaultStrip + `, "srsltid"]`,
			suggestion: "add `srsltid` to `cache.strip_query`: on 30% of requests"},
	}, {
		name: "click id beside a parameter the page depends on",
		add: func(s *sim, r *req) {
			if s.rng.IntN(2) == 0 {
				n := strconv.Itoa(1 + s.rng.IntN(5))
				r.params, r.page = append(r.params, "page="+n), r.page+"?page="+n
			}
			if s.rng.IntN(10) < 4 {
				r.params = append(r.params, "ttclid="+clickID(s))
			}
		},
		want: topWant{kind: KindParam, name: "ttclid", share: 0.4, verdict: Identical,
			configKey: "cache.strip_query", config: `strip_query = [` + defaultStrip + `, "ttclid"]`},
	}, {
		name: "a plugin's visit cookie on 80% of requests, matched by the bypass list",
		opt:  Options{IgnoreCookies: map[string][]string{"blog": {"cookielawinfo-*"}}},
		add: func(s *sim, r *req) {
			if s.rng.IntN(10) < 8 {
				r.cookies = append(r.cookies, "pmpro_visit")
				r.bypassCookie = "pmpro_visit"
			}
		},
		want: topWant{kind: KindCookie, name: "pmpro_visit", share: 0.8, verdict: Identical,
			configKey: "site.ignore_cookies", config: `ignore_cookies = ["cookielawinfo-*", "pmpro_visit"]`,
			suggestion: "cookie `pmpro_visit` causes bypass on 80% of requests: list it in `site.ignore_cookies`"},
	}, {
		name: "a session cookie with a hashed name and personal pages",
		add: func(s *sim, r *req) {
			if s.rng.IntN(10) < 3 {
				c := "wordpress_logged_in_" + clickID(s)
				r.cookies, r.bypassCookie, r.page = append(r.cookies, c), c, r.page+"#"+c
			}
		},
		want: topWant{kind: KindCookie, name: "wordpress_logged_in_*", share: 0.3, verdict: Different,
			suggestion: "the page depends on it, keep it"},
	}})
}

// TestInsightsTopVaryPath: the same for Vary fields and sections turning uncacheable.
func TestInsightsTopVaryPath(t *testing.T) {
	runTopCases(t, []topCase{{
		name: "Vary: User-Agent on the product pages",
		add: func(s *sim, r *req) {
			if strings.HasPrefix(r.path, "/product/") {
				ua := "Mozilla/5.0 build " + strconv.Itoa(s.rng.IntN(3000))
				r.vary = [][2]string{{"user-agent", ua}}
			}
		},
		want: topWant{kind: KindVary, name: "User-Agent", share: 0.5,
			suggestion: "`Vary: User-Agent` on `/product/*`:"},
	}, {
		name: "Vary: Cookie on the blog",
		add: func(s *sim, r *req) {
			if strings.HasPrefix(r.path, "/blog/") {
				r.vary = [][2]string{{"accept-encoding", "gzip"}, {"cookie", "_ga=" + clickID(s)}}
			}
		},
		want: topWant{kind: KindVary, name: "Cookie", share: 0.5, suggestion: "`Vary: Cookie` on `/blog/*`:"},
	}, {
		name: "one section turns private",
		add: func(s *sim, r *req) {
			if s.rng.IntN(10) == 0 {
				r.path = "/account/orders/" + strconv.Itoa(s.rng.IntN(50))
				r.page, r.reason = r.path, "private"
			}
		},
		want: topWant{kind: KindPath, name: "/account/orders/*", reason: "private", share: 0.1,
			suggestion: "`/account/orders/*` is marked `private` on 100% of its responses ("},
	}, {
		name: "a shop section sets a cookie on half its responses",
		add: func(s *sim, r *req) {
			if s.rng.IntN(5) == 0 {
				r.path = "/shop/" + strconv.Itoa(s.rng.IntN(50))
				if r.page = r.path; s.rng.IntN(2) == 0 {
					r.reason = "set_cookie"
				}
			}
		},
		want: topWant{kind: KindPath, name: "/shop/*", reason: "set_cookie", share: 0.2,
			suggestion: "`/shop/*` is marked `set_cookie` on "},
	}})
}

func runTopCases(t *testing.T, tests []topCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, tt.opt, 20000)
			s.run(func() req {
				r := s.baseline()
				tt.add(s, &r)
				return r
			})
			in := s.l.Insights("blog", s.now())
			if len(in) == 0 {
				t.Fatalf("Insights: none")
			}
			top := in[0]
			w := tt.want
			if top.Kind != w.kind || top.Name != w.name || top.Reason != w.reason {
				t.Fatalf("top insight = %s %q %q, want %s %q %q; all: %+v", top.Kind, top.Name, top.Reason, w.kind, w.name, w.reason, in)
			}
			if !near(top.Share, w.share, 0.03) {
				t.Errorf("Share = %.3f, want %.2f ± 0.03", top.Share, w.share)
			}
			if top.Verdict != w.verdict || top.ConfigKey != w.configKey || top.Config != w.config {
				t.Errorf("Verdict, ConfigKey, Config = %s, %q, %q, want %s, %q, %q (evidence %q)",
					top.Verdict, top.ConfigKey, top.Config, w.verdict, w.configKey, w.config, top.Evidence)
			}
			if !strings.Contains(top.Suggestion, w.suggestion) {
				t.Errorf("Suggestion = %q, want it to contain %q", top.Suggestion, w.suggestion)
			}
			if top.Kind == KindCookie && top.Seen < top.Share-0.01 {
				t.Errorf("Seen = %.3f, want at least Share %.3f", top.Seen, top.Share)
			}
			if top.Points <= 0 || top.Points > 100*top.Share+1e-9 {
				t.Errorf("Points = %.2f, want in (0, %.2f]", top.Points, 100*top.Share)
			}
			for _, x := range in {
				if x.Name == "utm_source" || x.Name == "Accept-Encoding" {
					t.Errorf("listed, though it cannot fragment (dropped from the key, or few values): %+v", x)
				}
			}
		})
	}
}

// TestInsightsNeverStripPageParams: parameters the page depends on are never suggested for
// cache.strip_query, however many requests carry them.
func TestInsightsNeverStripPageParams(t *testing.T) {
	tests := []struct {
		name, param string
		add         func(s *sim, r *req)
	}{{
		name: "pagination", param: "page",
		add: func(s *sim, r *req) {
			n := strconv.Itoa(1 + s.rng.IntN(40))
			r.params, r.page = append(r.params, "page="+n), r.page+"?page="+n
		},
	}, {
		name: "search terms", param: "s",
		add: func(s *sim, r *req) {
			if s.rng.IntN(10) < 7 {
				q := clickID(s)[:6]
				r.path, r.params, r.page = "/", append(r.params, "s="+q), "/?s="+q
			}
		},
	}, {
		name: "two views of a list", param: "view",
		add: func(s *sim, r *req) {
			v := [...]string{"grid", "list"}[s.rng.IntN(2)]
			r.params, r.page = append(r.params, "view="+v), r.page+"?view="+v
		},
	}, {
		name: "a few values, same page, too little evidence", param: "ref",
		add: func(s *sim, r *req) {
			if s.rng.IntN(2) == 0 {
				r.params = append(r.params, "ref="+[...]string{"home", "menu"}[s.rng.IntN(2)])
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, Options{}, 20000)
			s.run(func() req {
				r := s.baseline()
				tt.add(s, &r)
				return r
			})
			found := false
			for _, in := range s.l.Insights("blog", s.now()) {
				if in.Kind != KindParam || in.Name != tt.param {
					continue
				}
				found = true
				if in.Verdict == Identical || in.ConfigKey != "" || strings.Contains(in.Suggestion, "add `") {
					t.Errorf("Insight(%q) = %+v, want no strip suggestion", tt.param, in)
				}
			}
			if !found && tt.param == "s" {
				t.Errorf("Insights: no entry for %q, which costs many misses", tt.param)
			}
		})
	}
}

// TestCompare: a cause that appears in the later window is reported as new; a window before
// the kept history is an error, not a partial answer.
func TestCompare(t *testing.T) {
	s := newSim(t, Options{Buckets: 30}, 40000)
	s.spread = 20 * time.Minute
	s.run(func() req {
		r := s.baseline()
		if s.n > s.total/2 && s.rng.IntN(10) < 3 {
			r.params = append(r.params, "srsltid="+clickID(s))
		}
		return r
	})
	mid := t0.Add(10 * time.Minute)
	ch, err := s.l.Compare("blog", Span{t0, mid}, Span{mid, s.now()})
	if err != nil {
		t.Fatalf("Compare: %v", err)
	}
	if len(ch) == 0 || ch[0].Name != "srsltid" || !ch[0].New || ch[0].Before != 0 {
		t.Fatalf("Compare = %+v, want srsltid first, new", ch)
	}
	if ch, err := s.l.Compare("blog", Span{mid, s.now()}, Span{mid, s.now()}); err != nil || len(ch) != 0 {
		t.Errorf("Compare(same window) = %+v, %v, want nothing grown", ch, err)
	}
	// Move the history on by 25 minutes: the first 15 minutes fall out of it.
	s.start, s.n, s.total = s.now().Add(25*time.Minute), 0, 100
	s.run(s.baseline)
	if _, err := s.l.Window("blog", t0, mid); !errors.Is(err, ErrBeyondHistory) {
		t.Errorf("Window(before the history) error = %v, want ErrBeyondHistory", err)
	}
	if _, err := s.l.Window("blog", mid, mid); err == nil {
		t.Errorf("Window(empty) error = nil, want one")
	}
	if in, err := s.l.Window("nosuch", t0, mid); in != nil || err != nil {
		t.Errorf("Window(unknown site) = %v, %v, want nil, nil", in, err)
	}
}

// TestTopAndAlert: the metric's series have a top k plus other per kind, and the alert names
// the top cause.
func TestTopAndAlert(t *testing.T) {
	s := newSim(t, Options{}, 20000)
	s.run(func() req {
		r := s.baseline()
		if s.rng.IntN(10) < 3 {
			r.params = append(r.params, "srsltid="+clickID(s))
		}
		if s.rng.IntN(10) == 0 {
			r.params = append(r.params, "lang=de", "x"+strconv.Itoa(s.rng.IntN(500))+"=1")
		}
		return r
	})
	top := s.l.Top("blog", s.now(), 1)
	var params, paths []Share
	for _, sh := range top {
		switch sh.Kind {
		case KindParam:
			params = append(params, sh)
		case KindPath:
			paths = append(paths, sh)
		}
	}
	if len(params) != 2 || params[0].Name != "srsltid" || !near(params[0].Value, 0.3, 0.03) || params[1].Name != "other" {
		t.Errorf("Top params = %+v, want srsltid ≈ 0.3 then other", params)
	}
	if sum := paths[0].Value + paths[1].Value; len(paths) != 2 || !near(sum, 1, 1e-9) {
		t.Errorf("Top paths = %+v, want a group and other summing to 1", paths)
	}
	alert := s.l.AlertText("blog", s.now())
	if !strings.Contains(alert, "`srsltid`") || !strings.Contains(alert, "hit-ratio points") {
		t.Errorf("AlertText = %q, want the top cause named", alert)
	}
	if got := s.l.AlertText("nosuch", s.now()); got != "" {
		t.Errorf("AlertText(unknown site) = %q, want empty", got)
	}
	if got := s.l.Top("blog", s.now().Add(time.Hour), 3); got != nil {
		t.Errorf("Top an hour later = %+v, want nothing", got)
	}
}

// TestInsightsFingerprintsOnMisses: with fingerprints only where the origin answered a
// cacheable request, a click id is still proven harmless and pagination still is not.
func TestInsightsFingerprintsOnMisses(t *testing.T) {
	s := newSim(t, Options{}, 20000)
	s.missFP = true
	s.run(func() req {
		r := s.baseline()
		if s.rng.IntN(10) < 3 {
			r.params = append(r.params, "srsltid="+clickID(s))
		}
		if s.rng.IntN(2) == 0 {
			n := strconv.Itoa(1 + s.rng.IntN(40))
			r.params, r.page = append(r.params, "page="+n), r.page+"?page="+n
		}
		return r
	})
	verdicts := map[string]Verdict{}
	for _, in := range s.l.Insights("blog", s.now()) {
		verdicts[in.Name] = in.Verdict
	}
	if verdicts["srsltid"] != Identical || verdicts["page"] != Different {
		t.Errorf("verdicts = %v, want srsltid identical, page different", verdicts)
	}
}
