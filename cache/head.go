package cache

import "bytes"

// HeadMatches reports whether a 200 response to a HEAD describes the stored GET response e, so
// that its header fields may update e (RFC 9111 §4.3.5): it carries at least one validator,
// each validator it carries (etag, lastModified; nil when absent) equals the stored one, and
// its Content-Length, when given (contentLength >= 0), is the stored body's length. When it
// does not match, the stored response is to be considered stale (see MarkStale).
func (e *Entry) HeadMatches(etag, lastModified []byte, contentLength int64) bool {
	if len(etag) == 0 && len(lastModified) == 0 {
		return false // nothing says the HEAD saw the stored representation
	}
	if len(etag) > 0 && !bytes.Equal(etag, e.ETag) {
		return false
	}
	if len(lastModified) > 0 && !bytes.Equal(lastModified, e.LastModified) {
		return false
	}
	return contentLength < 0 || contentLength == int64(len(e.Body))
}

// MarkStale makes e stale from now on, as a soft purge does (see State): the next request
// revalidates it, and it may still stand in as its stale windows allow. It is safe for
// concurrent use with readers of e.
func (e *Entry) MarkStale() { e.purged.Store(true) }
