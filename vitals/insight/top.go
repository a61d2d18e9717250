package insight

import (
	"cmp"
	"net/textproto"
	"slices"
	"time"
)

// Share is one series of edgevitals_fragmentation_share: the share of requests (0..1) that
// carry a parameter in the key, that a cookie bypassed, whose response varies on a field, or
// that fall in a URL group.
type Share struct {
	Kind  Kind
	Name  string // "other" for everything outside the top k of its kind
	Value float64
}

// Top returns, for each kind, the k names of largest share over the last Options.Window
// before now, then an "other" series with the summed shares of the rest, including names the
// top-k tables no longer hold (so "other" can pass 1 where one request carries several).
// Kinds come in order param, cookie, vary, path. Names are bounded by the top-k sizes, so the
// label values are too.
func (l *Learner) Top(site string, now time.Time, k int) []Share {
	s := l.site(site, false)
	if s == nil || k < 1 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	slots, err := s.view(now.Add(-l.opt.Window), now)
	if err != nil {
		return nil // New bounds Window by the history: a site that saw nothing since
	}
	t := s.totals(slots)
	if t.req == 0 {
		return nil
	}
	var out []Share
	for _, kt := range []struct {
		kind Kind
		tb   *table
	}{{KindParam, s.params}, {KindCookie, s.cookies}, {KindVary, s.varys}, {KindPath, s.groups}} {
		out = append(out, topOf(kt.kind, kt.tb, slots, t.req, k)...)
	}
	return out
}

func topOf(kind Kind, tb *table, slots []int, total uint64, k int) []Share {
	var all []Share
	for e := range tb.used {
		if n := tb.sum(e, slots, cntReq); n > 0 {
			name := tb.name(e)
			if kind == KindVary {
				name = textproto.CanonicalMIMEHeaderKey(name)
			}
			all = append(all, Share{Kind: kind, Name: name, Value: float64(n) / float64(total)})
		}
	}
	slices.SortFunc(all, func(a, b Share) int {
		return cmp.Or(cmp.Compare(b.Value, a.Value), cmp.Compare(a.Name, b.Name))
	})
	other := float64(tb.sum(-1, slots, cntReq)) / float64(total)
	for _, s := range all[min(k, len(all)):] {
		other += s.Value
	}
	all = all[:min(k, len(all))]
	if other > 0 {
		all = append(all, Share{Kind: kind, Name: "other", Value: other})
	}
	return all
}
