package cache

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// variants is what the store keeps under one primary key: the responses for each set of Vary
// values. It is immutable: a change builds a new one (copy-on-write), so readers need no lock.
type variants struct {
	key     string
	site    string
	entries []*Entry
	cost    int64
}

// tags returns every surrogate key of the variants, each once.
func (v *variants) tags(dst []string) []string {
	for _, e := range v.entries {
		for _, k := range e.Keys {
			if !slices.Contains(dst, k) {
				dst = append(dst, k)
			}
		}
	}
	return dst
}

// index knows what the store holds, per site: ristretto keeps only hashes and cannot be
// enumerated, and purges by prefix or surrogate key need the keys. It is kept in step with the
// store through ristretto's exit callback, so it holds only what is cached.
type index struct {
	mu      sync.Mutex
	sites   map[string]*siteIndex
	objects atomic.Int64 // entries (variants counted one by one)
}

type siteIndex struct {
	keys map[string]*variants           // primary key → what the store holds for it
	tags map[string]map[string]struct{} // surrogate key → primary keys
}

func newIndex() *index { return &index{sites: make(map[string]*siteIndex)} }

// put records v as what the store holds (or is about to hold) for v.key, replacing whatever
// was recorded.
func (x *index) put(v *variants) {
	x.mu.Lock()
	defer x.mu.Unlock()
	si := x.sites[v.site]
	if si == nil {
		si = &siteIndex{keys: make(map[string]*variants), tags: make(map[string]map[string]struct{})}
		x.sites[v.site] = si
	}
	var oldTags []string
	if old := si.keys[v.key]; old != nil {
		x.objects.Add(-int64(len(old.entries)))
		oldTags = old.tags(nil)
	}
	si.keys[v.key] = v
	x.objects.Add(int64(len(v.entries)))
	newTags := v.tags(nil)
	for _, t := range oldTags {
		if !slices.Contains(newTags, t) {
			si.untag(t, v.key)
		}
	}
	for _, t := range newTags {
		set := si.tags[t]
		if set == nil {
			set = make(map[string]struct{})
			si.tags[t] = set
		}
		set[v.key] = struct{}{}
	}
}

// remove forgets v if it is still what is recorded for its key (a newer set may have replaced
// it already), and reports whether it did.
func (x *index) remove(v *variants) bool {
	if v == nil {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	si := x.sites[v.site]
	if si == nil || si.keys[v.key] != v {
		return false
	}
	delete(si.keys, v.key)
	x.objects.Add(-int64(len(v.entries)))
	for _, t := range v.tags(nil) {
		si.untag(t, v.key)
	}
	if len(si.keys) == 0 {
		delete(x.sites, v.site)
	}
	return true
}

func (si *siteIndex) untag(tag, key string) {
	set := si.tags[tag]
	delete(set, key)
	if len(set) == 0 {
		delete(si.tags, tag)
	}
}

// current returns what is recorded for key in site, or nil.
func (x *index) current(site, key string) *variants {
	x.mu.Lock()
	defer x.mu.Unlock()
	if si := x.sites[site]; si != nil {
		return si.keys[key]
	}
	return nil
}

// byTags returns the variants of site tagged with any of tags.
func (x *index) byTags(site string, tags []string) []*variants {
	x.mu.Lock()
	defer x.mu.Unlock()
	si := x.sites[site]
	if si == nil {
		return nil
	}
	var out []*variants
	seen := make(map[string]struct{})
	for _, t := range tags {
		for k := range si.tags[t] {
			if _, ok := seen[k]; ok {
				continue
			}
			seen[k] = struct{}{}
			out = append(out, si.keys[k])
		}
	}
	return out
}

// matching returns the variants of site ("" = every site) whose key match accepts. match runs
// outside the lock, so a slow one (a regular expression) does not stall the store.
func (x *index) matching(site string, match func(key string) bool) []*variants {
	var all []*variants
	x.mu.Lock()
	for name, si := range x.sites {
		if site != "" && name != site {
			continue
		}
		for _, v := range si.keys {
			all = append(all, v)
		}
	}
	x.mu.Unlock()
	if match == nil {
		return all
	}
	out := all[:0]
	for _, v := range all {
		if match(v.key) {
			out = append(out, v)
		}
	}
	return out
}

// KeyPath returns the part of a key built by AppendKey that starts at the path: the path and
// the query, as escaped in the key. Purges match prefixes and patterns against it.
func KeyPath(key string) string {
	if i := strings.Index(key, "://"); i >= 0 {
		rest := key[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return rest[j:]
		}
		return ""
	}
	return key
}
