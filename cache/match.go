package cache

// Matches reports whether req carries, for each of e's Vary fields, the value
// e was stored for; the proxy checks it before serving a coalesced waiter
// another request's response. It does not allocate.
func (e *Entry) Matches(req Header) bool { return varyMatch(e, req) }
