package proxy

import "fmt"

// registerOriginMetrics puts each origin's series on the Server's metrics
// Set: edgevitals_origin_up{site,origin} (1 while the origin gets requests)
// and edgevitals_origin_circuit_opens_total{site,origin}. The origin label is
// the configured URL, so it is bounded by config. Calling it again does
// nothing, so both New and RunHealthChecks may.
func (s *Server) registerOriginMetrics() {
	set := s.opt.Metrics
	for _, st := range s.sitesNow() {
		if st.pool.registered.Swap(true) {
			continue
		}
		for _, o := range st.pool.origins {
			set.NewGauge(fmt.Sprintf(`edgevitals_origin_up{site=%q,origin=%q}`, st.Name, o.url), func() float64 {
				if o.state().Up {
					return 1
				}
				return 0
			})
			o.opens.Store(set.NewCounter(fmt.Sprintf(`edgevitals_origin_circuit_opens_total{site=%q,origin=%q}`, st.Name, o.url)))
		}
	}
}
