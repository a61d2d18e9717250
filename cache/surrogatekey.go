package cache

// Bounds on what the purge index holds for one object. An object with more surrogate keys, or
// a longer one, is still stored and still purged by each of its keys: the index does not hold
// its keys, and purges by key scan such objects. Every key is in the object's cost, so the
// budget bounds them all.
const (
	MaxKeys     = 1024 // surrogate keys indexed per object (Drupal sends hundreds)
	MaxKeyBytes = 1024 // longest surrogate key indexed
)

// linearKeys is how many keys AppendKeys deduplicates by a linear search; it builds a set
// past that, so that a header of thousands of keys costs linear time.
const linearKeys = 32

// AppendKeys appends to dst the surrogate keys of a Surrogate-Key or Cache-Tag value: space-,
// tab- or comma-separated, trimmed, without duplicates (also against what dst holds). No key is
// dropped: a key the purge index cannot hold must still purge (see MaxKeys). The strings are
// copies: v may be reused after the call.
func AppendKeys(dst []string, v []byte) []string {
	var seen map[string]struct{}
	i := 0
	for i < len(v) {
		for i < len(v) && (isSpace(v[i]) || v[i] == ',') {
			i++
		}
		start := i
		for i < len(v) && !isSpace(v[i]) && v[i] != ',' {
			i++
		}
		k := v[start:i]
		if len(k) == 0 {
			continue
		}
		if seen == nil && len(dst) >= linearKeys {
			seen = make(map[string]struct{}, 2*len(dst))
			for _, s := range dst {
				seen[s] = struct{}{}
			}
		}
		if seen != nil {
			if _, dup := seen[string(k)]; dup {
				continue
			}
		} else if containsKey(dst, k) {
			continue
		}
		s := string(k)
		dst = append(dst, s)
		if seen != nil {
			seen[s] = struct{}{}
		}
	}
	return dst
}

func containsKey(keys []string, k []byte) bool {
	for _, s := range keys {
		if s == string(k) {
			return true
		}
	}
	return false
}
