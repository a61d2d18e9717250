package insight

import "net/textproto"

func (s *site) verdict(same, differ uint64, distinct uint64) Verdict {
	switch {
	case differ > 0:
		return Different
	case same >= uint64(s.opt.MinComparisons) && distinct >= uint64(s.opt.MinValues):
		return Identical
	}
	return NotCompared
}

func (s *site) paramInsights(out []Insight, slots []int, t totals) []Insight {
	tb := s.params
	for e := range tb.used {
		req := tb.sum(e, slots, cntReq)
		if req == 0 {
			continue
		}
		same, differ := tb.sum(e, slots, cntSame), tb.sum(e, slots, cntDiffer)
		in := Insight{
			Kind:     KindParam,
			Name:     tb.name(e),
			Share:    float64(req) / float64(t.req),
			Points:   t.excess(req, tb.sum(e, slots, cntNonHit)),
			Distinct: tb.distinct(e, slots, sketchValues),
			Compared: same + differ,
			Differed: differ,
		}
		in.Verdict = s.verdict(same, differ, in.Distinct)
		out = append(out, s.opt.explainParam(in))
	}
	return out
}

func (s *site) cookieInsights(out []Insight, slots []int, t totals) []Insight {
	tb := s.cookies
	for e := range tb.used {
		bypassed := tb.sum(e, slots, cntReq)
		if bypassed == 0 {
			continue
		}
		same, differ := tb.sum(e, slots, cntSame), tb.sum(e, slots, cntDiffer)
		in := Insight{
			Kind:     KindCookie,
			Name:     tb.name(e),
			Share:    float64(bypassed) / float64(t.req),
			Points:   100 * float64(bypassed) / float64(t.req),
			Seen:     float64(tb.sum(e, slots, cntSeen)) / float64(t.req),
			Compared: same + differ,
			Differed: differ,
		}
		// A cookie is one value per visitor: comparing it with the cached page needs no
		// distinct values, only comparisons.
		in.Verdict = s.verdict(same, differ, uint64(s.opt.MinValues))
		out = append(out, s.opt.explainCookie(in, s.name))
	}
	return out
}

func (s *site) varyInsights(out []Insight, slots []int, t totals) []Insight {
	tb := s.varys
	for e := range tb.used {
		req := tb.sum(e, slots, cntReq)
		if req == 0 {
			continue
		}
		in := Insight{
			Kind:     KindVary,
			Name:     textproto.CanonicalMIMEHeaderKey(tb.name(e)),
			Share:    float64(req) / float64(t.req),
			Points:   t.excess(req, tb.sum(e, slots, cntNonHit)),
			Distinct: tb.distinct(e, slots, sketchValues),
			Variants: tb.distinct(e, slots, sketchVariants),
			URLs:     tb.distinct(e, slots, sketchURLs),
			Group:    s.varyGroupName(e),
		}
		// Content negotiation over a few values (Accept-Encoding, Accept-Language) is what
		// Vary is for; many values are what fragments.
		if in.Distinct < uint64(s.opt.MinValues) {
			continue
		}
		out = append(out, explainVary(in))
	}
	return out
}

func (s *site) varyGroupName(e int) string {
	best := s.varyGroup[e][0]
	for _, t := range s.varyGroup[e][1:] {
		if t.n > best.n {
			best = t
		}
	}
	if g, ok := s.groups.find(best.key); ok && best.n > 0 {
		return s.groups.name(g)
	}
	return ""
}

func (s *site) pathInsights(out []Insight, slots []int, t totals) []Insight {
	tb := s.groups
	for e := range tb.used {
		req := tb.sum(e, slots, cntReq)
		if req == 0 {
			continue
		}
		for r := range maxReasons {
			n := tb.sum(e, slots, cntReason+r)
			if n == 0 {
				continue
			}
			reason := "other" // the reasons that found no counter of their own
			if r < maxReasons-1 {
				reason = s.reasons[e][r]
			}
			in := Insight{
				Kind:   KindPath,
				Name:   tb.name(e),
				Reason: reason,
				Share:  float64(req) / float64(t.req),
				Points: 100 * float64(n) / float64(t.req),
				Of:     float64(n) / float64(req),
			}
			out = append(out, explainPath(in))
		}
	}
	return out
}
