package proxy

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkStoreCompress is what compressing one 30 KB CMS page costs when
// it is stored: each coding alone at the level the edge uses (and brotli's
// neighbours, for choosing it), and encodeBody, which makes both. ratio is
// the coded size over the identity size.
func BenchmarkStoreCompress(b *testing.B) {
	body := []byte(cmsPage(30 << 10))
	run := func(name string, enc func(dst []byte) []byte) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			var out []byte
			for b.Loop() {
				out = enc(out[:0])
			}
			b.ReportMetric(float64(len(out))/float64(len(body)), "ratio")
			b.ReportMetric(float64(len(out)), "out_bytes")
		})
	}
	run("gzip-6", func(dst []byte) []byte { return fasthttp.AppendGzipBytesLevel(dst, body, gzipLevel) })
	for _, lvl := range []int{4, brotliLevel, 6} {
		run("br-"+string(rune('0'+lvl)), func(dst []byte) []byte { return fasthttp.AppendBrotliBytesLevel(dst, body, lvl) })
	}
	b.Run("encodeBody", func(b *testing.B) {
		var h fasthttp.ResponseHeader
		h.SetContentType("text/html; charset=utf-8")
		h.Set("ETag", `"v1"`)
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if len(encodeBody(&h, fasthttp.StatusOK, body)) != 2 {
				b.Fatal("want two coded copies")
			}
		}
	})
}
