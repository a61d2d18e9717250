package cache

// Bounds on surrogate keys, so that an origin cannot make the purge index grow without limit.
const (
	MaxKeys     = 256  // surrogate keys kept per entry
	MaxKeyBytes = 1024 // longer keys are dropped
)

// AppendKeys appends to dst the surrogate keys of a Surrogate-Key or Cache-Tag value: space-,
// tab- or comma-separated, trimmed, without duplicates (also against what dst holds), at most
// MaxKeys in dst, keys longer than MaxKeyBytes dropped. The strings are copies: v may be reused
// after the call.
func AppendKeys(dst []string, v []byte) []string {
	i := 0
	for i < len(v) && len(dst) < MaxKeys {
		for i < len(v) && (isSpace(v[i]) || v[i] == ',') {
			i++
		}
		start := i
		for i < len(v) && !isSpace(v[i]) && v[i] != ',' {
			i++
		}
		k := v[start:i]
		if len(k) == 0 || len(k) > MaxKeyBytes || containsKey(dst, k) {
			continue
		}
		dst = append(dst, string(k))
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
