// Package insight learns, per site, what fragments the cache and what the fix would be: query
// parameters that are in the key but do not change the page, cookies that make requests bypass,
// Vary fields with many values, and URL groups whose responses are uncacheable. It ranks the
// causes by the hit-ratio points they cost and writes the config line that would fix each one.
//
// # Feeding
//
// The request path hands out one Observation per request it chooses: every request, or a
// uniform sample (1 in N, decided before the outcome is known so hits and misses are sampled
// alike). Shares and points are ratios, so a uniform sample needs no scaling; distinct-value
// counts are those of the sample. Feed GET and HEAD requests only. Observe does not retain the
// Observation or any slice in it: the caller may pass slices borrowed from fasthttp and reuse
// them once Observe returns. Observe is O(1) per field read (at most MaxFields parameters,
// cookies and Vary fields are read), takes one per-site mutex, starts no goroutine and does not
// allocate, new names included (they are copied into fixed slots): only the first observation
// of a site allocates its tables.
//
// # What the numbers mean
//
// "Requests" are the observations fed for a site in a window, bypassed requests included, so a
// cookie that makes every page bypass shows its full cost. (edgevitals_cache_hit_ratio leaves
// bypass out; on a site without bypasses the two agree.) Share is the fraction of those requests
// that carry a cause (parameters and Vary fields are counted on requests that did not bypass:
// a bypassed request fragments nothing); Points is the estimated percentage points of them that did not come from
// the cache because of it: for parameters and Vary fields, the requests carrying it times the
// excess of their miss rate over the other cacheable requests'; for cookies, the requests they
// bypassed; for URL groups, the responses marked uncacheable for one reason.
//
// A parameter is suggested for cache.strip_query only when the origin's responses were seen to
// be identical for different values of it, on the same path with every other key part equal,
// at least Options.MinComparisons times, over at least Options.MinValues distinct values, and
// never different. Pages that change with it (?page=2, ?s=terms) differ and are never
// suggested; pages whose fingerprint changes on every fetch are never suggested either.
//
// # Bounds
//
// Everything is held in fixed-size tables allocated when a site is first seen: Space-Saving
// top-k tables of Options.Params parameters, Options.Cookies cookies, Options.Varys Vary fields
// and Options.Groups URL groups, each with Options.Buckets time buckets of counters, and 64-register
// HyperLogLog sketches for distinct values; names are cut at MaxNameLen bytes. A new name in a
// full table takes over the entry of least count, whose counts move to "other", so a million
// distinct URLs or an attacker inventing parameter names cost no more memory. With the default Options a site holds about
// 0.8 MiB; at most Options.MaxSites sites are tracked (observations of further sites are
// dropped and counted in Stats). The memory test holds one site fed a million distinct URLs and
// a hundred parameter names under 2 MiB of retained heap.
//
// # Time
//
// Observations are counted in buckets of Options.Bucket on their own Time, which must come
// from one clock (time.Now, or a test's injected clock): a time far ahead expires the history;
// Options.Buckets of them are kept. Insights, Top and AlertText describe the last Options.Window
// before now; Window and Compare take any window inside the kept history, for release reports.
// Observations older than the history are dropped.
//
// # Concurrency
//
// A Learner is safe for concurrent use. The zero Options are the defaults.
package insight
