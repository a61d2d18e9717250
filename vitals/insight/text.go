package insight

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

func (o *Options) explainParam(in Insight) Insight {
	head := fmt.Sprintf("on %s of requests, %s distinct values", percent(in.Share), count(in.Distinct))
	switch in.Verdict {
	case Identical:
		in.Evidence = fmt.Sprintf("responses identical for every value (%s comparisons, none different)", count(in.Compared))
		in.Suggestion = fmt.Sprintf("add `%s` to `cache.strip_query`: %s, responses identical for every value", in.Name, head)
		if configSafe(in.Name) {
			in.ConfigKey = "cache.strip_query"
			in.Config = "strip_query = " + tomlList(o.StripQuery, in.Name)
		}
	case Different:
		in.Evidence = fmt.Sprintf("responses differ between values (%s of %s comparisons)", count(in.Differed), count(in.Compared))
		in.Suggestion = fmt.Sprintf("`%s` is in the cache key %s, and the page depends on it: keep it", in.Name, head)
	default:
		in.Evidence = fmt.Sprintf("not enough page comparisons yet (%s of %d needed, over %d distinct values)",
			count(in.Compared), o.MinComparisons, o.MinValues)
		in.Suggestion = fmt.Sprintf("`%s` is in the cache key %s: if the page does not depend on it, add it to `cache.strip_query`",
			in.Name, head)
	}
	return in
}

func (o *Options) explainCookie(in Insight, site string) Insight {
	head := fmt.Sprintf("cookie `%s` causes bypass on %s of requests", in.Name, percent(in.Share))
	switch in.Verdict {
	case Different:
		in.Evidence = fmt.Sprintf("pages with it differ from the cached page (%s of %s comparisons): it carries a visitor's state",
			count(in.Differed), count(in.Compared))
		in.Suggestion = head + ": the page depends on it, keep it; if the plugin sets it for every visitor, make it set it only when needed"
		return in
	case Identical:
		in.Evidence = fmt.Sprintf("pages with it identical to the cached page (%s comparisons, none different)", count(in.Compared))
	default:
		in.Evidence = "not compared with the cached page yet"
	}
	in.Suggestion = head + ": list it in `site.ignore_cookies` if it does not change the page"
	if configSafe(strings.TrimSuffix(in.Name, "*")) {
		in.ConfigKey = "site.ignore_cookies"
		in.Config = "ignore_cookies = " + tomlList(o.IgnoreCookies[site], in.Name)
	}
	return in
}

func explainVary(in Insight) Insight {
	where := ""
	if in.Group != "" {
		where = fmt.Sprintf(" on `%s`", in.Group)
	}
	in.Evidence = fmt.Sprintf("%s distinct values of %s on %s of requests", count(in.Distinct), in.Name, percent(in.Share))
	in.Suggestion = fmt.Sprintf("`Vary: %s`%s: %s variants for %s URLs: remove %s from Vary at the origin "+
		"(edgevitals has no setting to ignore a Vary field)", in.Name, where, count(in.Variants), count(in.URLs), in.Name)
	return in
}

func explainPath(in Insight) Insight {
	in.Evidence = fmt.Sprintf("%s of its responses uncacheable as %s", percent(in.Of), in.Reason)
	in.Suggestion = fmt.Sprintf("`%s` is marked `%s` on %s of its responses (%s of requests): "+
		"if its pages are the same for every visitor, fix it at the origin", in.Name, in.Reason, percent(in.Of), percent(in.Share))
	if p, ok := strings.CutSuffix(in.Name, "*"); ok && p != "/" {
		in.Suggestion += fmt.Sprintf("; if they are personal, list %q in `site.bypass_paths`", p)
	}
	return in
}

// AlertText is one line naming the top cause of the last Options.Window before now, for the
// hit-ratio alert; "" when there is none. A parameter or cookie the page was seen to depend on
// (Verdict Different) is named only when nothing else is: it is the site's own content, not
// what broke.
func (l *Learner) AlertText(site string, now time.Time) string {
	in := l.Insights(site, now)
	if len(in) == 0 {
		return ""
	}
	top := in[0]
	for _, x := range in {
		if x.Verdict != Different {
			top = x
			break
		}
	}
	return fmt.Sprintf("top cause (%s hit-ratio points): %s", points(top.Points), top.Suggestion)
}

// configSafe reports whether a name can go into a config list as it is: no glob, quote,
// separator or byte that config validation or TOML would read otherwise, and not cut short.
func configSafe(name string) bool {
	if name == "" || len(name) >= MaxNameLen-1 {
		return false
	}
	for _, c := range []byte(name) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '-' || c == '.' || c == '[' || c == ']'
		if !ok {
			return false
		}
	}
	return true
}

// tomlList writes list plus name as a TOML array of strings.
func tomlList(list []string, name string) string {
	var b strings.Builder
	b.WriteByte('[')
	for _, s := range append(list[:len(list):len(list)], name) {
		if b.Len() > 1 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(s))
	}
	b.WriteByte(']')
	return b.String()
}

// percent writes a share: "31%", "0.4%".
func percent(f float64) string {
	if p := 100 * f; p < 9.95 && math.Round(p) != p {
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(100*f, 'f', 0, 64) + "%"
}

func points(p float64) string { return strconv.FormatFloat(p, 'f', 1, 64) }

// count writes a count, estimates over 1,000 rounded to two significant digits: "9,800".
func count(n uint64) string {
	if n >= 1000 {
		scale := uint64(math.Pow10(int(math.Log10(float64(n))) - 1))
		n = (n + scale/2) / scale * scale
	}
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
