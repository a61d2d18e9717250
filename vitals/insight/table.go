package insight

// table is a Space-Saving top-k of names with windowed counters: k entries, each with nc
// counters and ns HyperLogLog sketches per time bucket. Counter 0 ranks the entries. When the
// table is full, a new name takes over the entry of least score and inherits that score as its
// error (so a heavy hitter arriving late still climbs in, as Space-Saving guarantees); the
// evicted entry's counts move to other. Every array is allocated by newTable.
type table struct {
	k, nb, nc, ns int
	used          int
	meta          []entry
	index         map[uint64]int32
	cnt           []uint32 // [entry][bucket][counter]
	reg           []uint8  // [entry][bucket][sketch][hllM]
	other         []uint32 // [bucket][counter]: counts of evicted entries
}

type entry struct {
	key   uint64
	name  [MaxNameLen]byte // held in place: taking a name over does not allocate
	nlen  uint8
	score uint64 // counter 0 over the kept buckets, plus err
	err   uint64 // inherited at takeover
	errAt int64  // absolute bucket of the takeover
}

func newTable(k, nb, nc, ns int) *table {
	return &table{
		k: k, nb: nb, nc: nc, ns: ns,
		meta:  make([]entry, k),
		index: make(map[uint64]int32, k),
		cnt:   make([]uint32, k*nb*nc),
		reg:   make([]uint8, k*nb*ns*hllM),
		other: make([]uint32, nb*nc),
	}
}

func (t *table) find(key uint64) (int, bool) {
	i, ok := t.index[key]
	return int(i), ok
}

// acquire returns the entry of key, taking one over when key is new: its name is name (cut
// at MaxNameLen) followed by "*" when star. fresh is true when the entry was (re)assigned, so
// the caller resets what it keeps beside the table.
func (t *table) acquire(key uint64, name []byte, star bool, abs int64) (i int, fresh bool) {
	if i, ok := t.index[key]; ok {
		return int(i), false
	}
	var inherit uint64
	if t.used < t.k {
		i = t.used
		t.used++
	} else {
		i = t.leastScore()
		inherit = t.meta[i].score
		t.evict(i)
	}
	m := &t.meta[i]
	*m = entry{key: key, score: inherit, err: inherit, errAt: abs}
	n := copy(m.name[:MaxNameLen-1], name)
	if star {
		m.name[n] = '*'
		n++
	}
	m.nlen = uint8(n)
	t.index[key] = int32(i)
	return i, true
}

// name returns the name of entry i.
func (t *table) name(i int) string { return string(t.meta[i].name[:t.meta[i].nlen]) }

func (t *table) leastScore() int {
	least := 0
	for i := 1; i < t.used; i++ {
		if t.meta[i].score < t.meta[least].score {
			least = i
		}
	}
	return least
}

// evict moves entry i's counts to other and clears it.
func (t *table) evict(i int) {
	for b := range t.nb {
		row := t.cnt[(i*t.nb+b)*t.nc:][:t.nc]
		for c, v := range row {
			t.other[b*t.nc+c] += v
			row[c] = 0
		}
	}
	clear(t.reg[i*t.nb*t.ns*hllM:][:t.nb*t.ns*hllM])
	delete(t.index, t.meta[i].key)
}

func (t *table) add(i, slot, c int, n uint32) {
	t.cnt[(i*t.nb+slot)*t.nc+c] += n
	if c == 0 {
		t.meta[i].score += uint64(n)
	}
}

func (t *table) sketch(i, slot, s int) []uint8 {
	return t.reg[((i*t.nb+slot)*t.ns+s)*hllM:][:hllM]
}

// expire clears bucket slot, about to count absolute bucket abs.
func (t *table) expire(slot int, abs int64) {
	for i := range t.used {
		row := t.cnt[(i*t.nb+slot)*t.nc:][:t.nc]
		m := &t.meta[i]
		m.score -= uint64(row[0])
		clear(row)
		for s := range t.ns {
			clear(t.sketch(i, slot, s))
		}
		if m.err > 0 && m.errAt <= abs-int64(t.nb) {
			m.score -= m.err
			m.err = 0
		}
	}
	clear(t.other[slot*t.nc:][:t.nc])
}

// sum adds counter c of entry i (i < 0: other) over slots.
func (t *table) sum(i int, slots []int, c int) uint64 {
	var n uint64
	for _, b := range slots {
		if i < 0 {
			n += uint64(t.other[b*t.nc+c])
		} else {
			n += uint64(t.cnt[(i*t.nb+b)*t.nc+c])
		}
	}
	return n
}

// distinct estimates the distinct hashes added to sketch s of entry i over slots.
func (t *table) distinct(i int, slots []int, s int) uint64 {
	var reg [hllM]uint8
	for _, b := range slots {
		hllMerge(&reg, t.sketch(i, b, s))
	}
	return hllEstimate(&reg)
}
