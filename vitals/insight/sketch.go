package insight

import (
	"math"
	"math/bits"
)

// The distinct-value estimator is a HyperLogLog with hllM one-byte registers (a standard
// error of 1.04/sqrt(64), 13%), kept per time bucket; the union over a window is the
// register-wise maximum.
const (
	hllP = 6
	hllM = 1 << hllP
)

func hllAdd(reg []uint8, h uint64) {
	i := h >> (64 - hllP)
	r := uint8(bits.LeadingZeros64(h<<hllP|1<<(hllP-1)) + 1)
	if r > reg[i] {
		reg[i] = r
	}
}

func hllMerge(dst *[hllM]uint8, reg []uint8) {
	for i, r := range reg[:hllM] {
		if r > dst[i] {
			dst[i] = r
		}
	}
}

func hllEstimate(reg *[hllM]uint8) uint64 {
	sum, zeros := 0.0, 0
	for _, r := range reg {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	const m = float64(hllM)
	e := 0.709 * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros))
	}
	return uint64(math.Round(e))
}

// fmix is the splitmix64 finalizer.
func fmix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// mix combines two hashes, order mattering.
func mix(a, b uint64) uint64 { return fmix(a ^ fmix(b+0x9e3779b97f4a7c15)) }
