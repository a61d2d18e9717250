package proxy

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/cache"
)

// A preset is what edgevitals knows of one CMS: which requests carry a
// visitor's private state and so must bypass the cache. A protected post or
// a commenter's page comes back with the same response headers as the
// public page but a personal body; only the request tells them apart.
type preset struct {
	// anyCookie bypasses on every Cookie header (preset "none", as Varnish's
	// built-in VCL does): without knowing the CMS, any cookie may matter.
	anyCookie bool
	cookies   []string // bypass cookie names; a trailing * is a prefix
	harmless  []string // cookies that never bypass, even when a pattern above matches
	paths     []string // see matchPath
	params    []string // query parameters whose presence bypasses
	headers   []string // request headers whose presence bypasses
	// authorization bypasses every request with Authorization (the CMS presets:
	// a logged-in REST or admin call). Without it the cache policy decides, as
	// RFC 9111 §3.5 says: the response is stored only when it is public,
	// s-maxage or must-revalidate (see cache.Evaluate).
	authorization bool
}

var presets = map[string]preset{
	"none": {anyCookie: true},
	"wordpress": {
		cookies: []string{
			"wordpress_*", "wp-postpass_*", "comment_author_*", "woocommerce_*",
			"wp_woocommerce_session_*", "NO_CACHE", "PHPSESSID",
		},
		harmless: []string{"wordpress_test_cookie", "wp-settings-*"},
		paths: []string{
			"/wp-admin/", "/wp-login.php", "/wp-comments-post.php", "/wp-cron.php",
			"/xmlrpc.php", "/wp-signup.php", "/wp-activate.php", "/wp-trackback.php",
			"/cart", "/checkout", "/my-account", "/wc-api/", "/addons",
		},
		params: []string{
			"preview", "preview_id", "preview_nonce", "_wpnonce", "unapproved",
			"moderation-hash", "replytocom", "add-to-cart", "wc-ajax", "remove_item",
		},
		headers:       []string{"X-WP-Nonce"},
		authorization: true,
	},
	"drupal": {
		cookies: []string{"SESS*", "SSESS*", "NO_CACHE", "PHPSESSID"},
		paths: []string{
			"/user", "/admin", "/batch", "/node/*/edit", "/node/add", "/cart", "/checkout",
			"/system/ajax", "/core/install.php", "/update.php", "/cron.php",
		},
		params:        []string{"destination", "_wrapper_format", "check_logged_in"},
		headers:       []string{"X-CSRF-Token"},
		authorization: true,
	},
}

// rules are a site's compiled bypass rules: its preset plus its own
// bypass_cookies and bypass_paths.
type rules struct {
	preset
}

func newRules(name string, extraCookies, extraPaths []string) (*rules, error) {
	p, ok := presets[name]
	if !ok {
		return nil, fmt.Errorf("unknown preset %q (want wordpress, drupal or none)", name)
	}
	r := &rules{preset: p}
	r.cookies = append(append([]string(nil), p.cookies...), extraCookies...)
	r.paths = append(append([]string(nil), p.paths...), extraPaths...)
	return r, nil
}

// bypassDetail names why a request bypassed, for Cache-Status detail=.
type bypassDetail uint8

const (
	bypassNone bypassDetail = iota
	bypassCookie
	bypassPath
	bypassParam
	bypassHeader
	bypassAuthorization
	bypassMethod
)

var bypassDetailNames = [...]string{"", "cookie", "path", "query", "header", "authorization", "method"}

func (d bypassDetail) String() string { return bypassDetailNames[d] }

// reason maps a bypass to the uncacheable reason it is counted under.
func (d bypassDetail) reason() cache.Reason {
	switch d {
	case bypassCookie:
		return cache.ReasonBypassCookie
	case bypassAuthorization:
		return cache.ReasonAuthorization
	case bypassMethod:
		return cache.ReasonMethod
	case bypassNone:
		return cache.ReasonNone
	}
	return cache.ReasonBypassPath
}

// check decides whether a request must bypass the cache. It does not allocate.
func (r *rules) check(req *fasthttp.Request, path []byte) bypassDetail {
	h := &req.Header
	if !h.IsGet() && !h.IsHead() {
		return bypassMethod
	}
	if r.authorization && len(h.Peek("Authorization")) > 0 {
		return bypassAuthorization
	}
	for _, k := range r.headers {
		if len(h.Peek(k)) > 0 {
			return bypassHeader
		}
	}
	if r.cookieBypass(h) {
		return bypassCookie
	}
	for _, p := range r.paths {
		if matchPath(p, path) {
			return bypassPath
		}
	}
	if len(r.params) > 0 {
		args := req.URI().QueryArgs()
		for _, p := range r.params {
			if args.Has(p) {
				return bypassParam
			}
		}
	}
	return bypassNone
}

func (r *rules) cookieBypass(h *fasthttp.RequestHeader) bool {
	if len(h.Peek("Cookie")) == 0 {
		return false
	}
	if r.anyCookie {
		return true
	}
	for name := range h.Cookies() {
		if r.isBypassCookie(name) {
			return true
		}
	}
	return false
}

func (r *rules) isBypassCookie(name []byte) bool {
	for _, p := range r.harmless {
		if matchName(p, name) {
			return false
		}
	}
	for _, p := range r.cookies {
		if matchName(p, name) {
			return true
		}
	}
	return false
}

// matchName matches a cookie name against a pattern: exact, or a prefix when
// the pattern ends in *.
func matchName(pattern string, name []byte) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return len(name) >= len(prefix) && string(name[:len(prefix)]) == prefix
	}
	return string(name) == pattern
}

// matchPath matches a request path against a bypass path pattern, ignoring
// case (a path that some origin treats case-insensitively must not slip by):
//   - "/wp-admin/" (ends in /): any path below it;
//   - "/user": "/user" itself and any path below it ("/user/1"), not "/users";
//   - "/node/*/edit": * stands for one path segment; what follows must match
//     to the end or continue below it;
//   - "/files/*" (ends in *): a plain prefix.
func matchPath(pattern string, path []byte) bool {
	for {
		star := strings.IndexByte(pattern, '*')
		if star < 0 {
			break
		}
		lit := pattern[:star]
		if len(path) < len(lit) || !bytes.EqualFold(path[:len(lit)], []byte(lit)) {
			return false
		}
		path = path[len(lit):]
		pattern = pattern[star+1:]
		if pattern == "" {
			return true
		}
		// Skip one non-empty segment.
		end := bytes.IndexByte(path, '/')
		if end <= 0 {
			return false
		}
		path = path[end:]
	}
	if len(path) < len(pattern) || !bytes.EqualFold(path[:len(pattern)], []byte(pattern)) {
		return false
	}
	if strings.HasSuffix(pattern, "/") || len(path) == len(pattern) {
		return true
	}
	return path[len(pattern)] == '/'
}
