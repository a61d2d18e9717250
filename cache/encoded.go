package cache

// Encoded is one content-coded copy of an entry's body that the edge made when it stored the
// entry (Entry.Body is the identity body it was made from). Like the rest of an Entry it is
// immutable and shared by all readers.
type Encoded struct {
	Coding []byte // the content-coding token sent as Content-Encoding: "br", "gzip"
	Body   []byte // Entry.Body in that coding
	// ETag is the entry's ETag for this representation: a strong entity-tag must differ
	// between content codings (RFC 9110 §8.8.3), so it is marked per coding. Nil when the
	// entry has no usable ETag.
	ETag []byte
}

// size is what the copy costs in the store beyond the Entry: its three slices and their bytes.
func (c *Encoded) size() int64 {
	return int64(3*sliceOverhead + len(c.Coding) + len(c.Body) + len(c.ETag))
}
