package main

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// origin is the CMS stand-in every cache fetches from: pages of a fixed size, an optional
// delay, and Cache-Control max-age so that every cache may store them. It counts the
// requests it answers, in total and per path for the miss storm.
type origin struct {
	page   page
	delay  atomic.Int64 // nanoseconds; changed between scenarios' phases
	total  atomic.Int64
	mu     sync.Mutex
	byPath map[string]int
	srv    *fasthttp.Server
	ln     net.Listener
}

// newOrigin listens on a free loopback port.
func newOrigin(size int, maxAge time.Duration) (*origin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("origin listen: %w", err)
	}
	o := &origin{page: newPage(size, maxAge), byPath: map[string]int{}, ln: ln}
	o.srv = newServer("edgebench-origin", o.handle)
	go func() {
		// Serve returns when Close shuts the listener; there is nobody to tell otherwise.
		_ = o.srv.Serve(ln)
	}()
	return o, nil
}

func (o *origin) addr() string { return o.ln.Addr().String() }

func (o *origin) port() int { return o.ln.Addr().(*net.TCPAddr).Port }

func (o *origin) close() error { return o.srv.Shutdown() }

func (o *origin) setDelay(d time.Duration) { o.delay.Store(int64(d)) }

func (o *origin) handle(ctx *fasthttp.RequestCtx) {
	o.total.Add(1)
	if bytes.HasPrefix(ctx.Path(), []byte("/storm/")) {
		o.mu.Lock()
		o.byPath[string(ctx.Path())]++
		o.mu.Unlock()
	}
	if d := time.Duration(o.delay.Load()); d > 0 {
		time.Sleep(d)
	}
	o.page.write(ctx)
}

// count returns how many requests the origin answered for path.
func (o *origin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.byPath[path]
}

// page is the answer of the origin and of the bare server alike: a fixed HTML body that
// caches may keep for max-age.
type page struct {
	body []byte
	cc   string
}

func newPage(size int, maxAge time.Duration) page {
	return page{body: pageBody(size), cc: fmt.Sprintf("public, max-age=%d", int(maxAge.Seconds()))}
}

func (p page) write(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", p.cc)
	ctx.SetBody(p.body)
}

// newServer is the HTTP server of the origin and of the bare server.
func newServer(name string, h fasthttp.RequestHandler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:      h,
		Name:         name,
		ReadTimeout:  30 * time.Second,
		WriteTimeout: 30 * time.Second,
		IdleTimeout:  60 * time.Second,
		Concurrency:  64 << 10,
	}
}

// pageBody returns an HTML page of exactly size bytes (at least the skeleton's length).
func pageBody(size int) []byte {
	const head = "<!doctype html><html><head><title>edgebench</title></head><body>"
	const tail = "</body></html>\n"
	var b strings.Builder
	b.WriteString(head)
	para := "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.</p>\n"
	for b.Len()+len(tail) < size {
		n := min(len(para), size-len(tail)-b.Len())
		b.WriteString(para[:n])
	}
	b.WriteString(tail)
	return []byte(b.String())
}

// serveBare is the bare server's process: a fixed in-memory body for every request, the
// most this hardware serves over HTTP/1.1. It runs until the harness stops it.
func serveBare(addr string, size int, maxAge time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("bare listen: %w", err)
	}
	return newServer("edgebench-bare", newPage(size, maxAge).write).Serve(ln)
}
