package cache

import (
	"bytes"
	"testing"
	"time"
)

// TestEncodedCopiesCount: coded copies of a body cost what they hold, so
// the store's budget covers them, and a revalidated entry keeps them.
func TestEncodedCopiesCount(t *testing.T) {
	plain := &Entry{Key: "k", Body: bytes.Repeat([]byte("x"), 1000), ETag: []byte(`"e"`)}
	coded := &Entry{Key: "k", Body: plain.Body, ETag: plain.ETag, Encoded: []Encoded{
		{Coding: []byte("br"), Body: make([]byte, 40), ETag: []byte(`"e-br"`)},
		{Coding: []byte("gzip"), Body: make([]byte, 50), ETag: []byte(`"e-gzip"`)},
	}}
	want := plain.Size() + int64(6*sliceOverhead+len("br")+40+len(`"e-br"`)+len("gzip")+50+len(`"e-gzip"`))
	if got := coded.Size(); got != want {
		t.Errorf("Size() with two coded copies = %d, want %d (plain %d)", got, want, plain.Size())
	}
	n := coded.Revalidated([]Field{{Name: []byte("Cache-Control"), Value: []byte("max-age=60")}}, Policy{Freshness: time.Minute}, time.Now(), time.Now())
	if len(n.Encoded) != 2 || &n.Encoded[0] != &coded.Encoded[0] {
		t.Errorf("Revalidated kept %d coded copies, want the 2 of the stored entry", len(n.Encoded))
	}
	if n.Size() <= plain.Size()+90 {
		t.Errorf("revalidated Size() = %d, does not count the coded copies", n.Size())
	}
}
