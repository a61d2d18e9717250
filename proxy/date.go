package proxy

import (
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Date handling. A cache must send a stored response's own Date (with Age),
// not the time it serves it (RFC 9110 §6.6.1, RFC 9111 §4); fasthttp
// manages Date itself and ignores one set by hand. The server therefore runs
// with NoDefaultDate, and the proxy sets Date on every response it builds:
// the stored or origin Date when there is one, else the current time.

// setDate puts v in the Date field. fasthttp refuses Set("Date") except for
// fields declared as trailers, so Date is declared a trailer for the moment
// of the Set and undeclared again: the field stays, no Trailer is sent. It
// does not allocate.
func setDate(h *fasthttp.ResponseHeader, v []byte) {
	if err := h.SetTrailer("Date"); err != nil {
		return // cannot happen for a fixed, valid name
	}
	h.SetBytesV("Date", v)
	if err := h.SetTrailer(""); err != nil {
		return
	}
}

// nowDate is the current time as an HTTP date, formatted once a second.
type nowDate struct {
	sec atomic.Int64
	val atomic.Pointer[[]byte]
}

var currentDate nowDate

func (d *nowDate) get() []byte {
	now := time.Now()
	if s := now.Unix(); d.sec.Load() != s {
		b := fasthttp.AppendHTTPDate(nil, now)
		d.val.Store(&b)
		d.sec.Store(s)
	}
	return *d.val.Load()
}

// stampDate gives a response the current Date.
func stampDate(h *fasthttp.ResponseHeader) { setDate(h, currentDate.get()) }
