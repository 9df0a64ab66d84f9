package w3cvc

import (
	"encoding/json"
	"sync"

	"github.com/piprate/json-gold/ld"
)

// maxCachedContexts bounds the parsed-context cache; the embedded loader
// serves a handful of contexts, so real documents use a few combinations.
const maxCachedContexts = 64

// contexts caches the active contexts parsed from top-level @context
// values (context URLs, which the offline loader serves from the embedded
// set, and small inline definitions): parsing them is most of the cost of canonicalising a
// credential (the VC 1.1 context alone defines ~100 protected terms), and
// expansion only reads an active context (a scoped or embedded @context
// makes a new one), so one parsed context serves concurrent expansions.
var contexts = struct {
	sync.Mutex
	m map[string]*ld.Context
}{m: map[string]*ld.Context{}}

// expandOptions are the options contexts are parsed and documents expanded
// with: JSON-LD 1.1, the offline loader, safe mode (a term the contexts do
// not define is an error, not silently left unsigned).
func expandOptions() *ld.JsonLdOptions {
	opts := ld.NewJsonLdOptions("")
	opts.ProcessingMode = ld.JsonLd_1_1
	opts.DocumentLoader = loader
	opts.SafeMode = true
	return opts
}

// expand is the JSON-LD expansion of doc (json-gold's
// JsonLdProcessor.Expand with expandOptions), with the top-level @context
// taken from the cache: processing that @context
// first and expanding the rest of doc in the resulting active context is
// what the expansion algorithm does with it anyway.
func expand(doc map[string]any) ([]any, error) {
	key, ok := contextKey(doc["@context"])
	if !ok {
		return ld.NewJsonLdProcessor().Expand(doc, expandOptions())
	}
	active, err := cachedContext(key, doc["@context"])
	if err != nil {
		return nil, err
	}
	rest := make(map[string]any, len(doc))
	for k, v := range doc {
		if k != "@context" {
			rest[k] = v
		}
	}
	out, err := ld.NewJsonLdApi().Expand(active, "", rest, expandOptions(), false, nil)
	if err != nil {
		return nil, err
	}
	// The final steps of json-gold's JsonLdProcessor.expand.
	m, isMap := out.(map[string]any)
	if isMap && len(m) == 0 {
		out = nil
	}
	if g, ok := m["@graph"]; isMap && ok && len(m) == 1 {
		out = g
	} else if out == nil {
		out = []any{}
	}
	if list, ok := out.([]any); ok {
		return list, nil
	}
	return []any{out}, nil
}

// maxContextKey bounds the @context values that are cached: URLs and
// small inline term definitions, as credentials carry them.
const maxContextKey = 4 << 10

// contextKey is the cache key of a top-level @context (its JSON, map keys
// sorted), and false when it is absent or too large to cache.
func contextKey(v any) (string, bool) {
	if v == nil {
		return "", false
	}
	b, err := json.Marshal(v)
	if err != nil || len(b) > maxContextKey {
		return "", false
	}
	return string(b), true
}

// cachedContext returns the active context for the @context value v whose
// key is key, parsing and caching it the first time. A context that fails
// to parse is not cached.
func cachedContext(key string, v any) (*ld.Context, error) {
	contexts.Lock()
	c, ok := contexts.m[key]
	contexts.Unlock()
	if ok {
		return c, nil
	}
	c, err := ld.NewContext(nil, expandOptions()).Parse(v)
	if err != nil {
		return nil, err
	}
	contexts.Lock()
	if len(contexts.m) >= maxCachedContexts {
		for k := range contexts.m {
			delete(contexts.m, k)
			break
		}
	}
	contexts.m[key] = c
	contexts.Unlock()
	return c, nil
}
