// Package listing pages records newest first through index records, with
// an opaque nextToken that stays good while records are added.
//
// An index entry is an empty record whose id is a prefix (what it
// selects: "" for all, a format, a credential definition id, ...) followed
// by Key(created, id): the inverted creation time in fixed-width hex, so
// that the store's id order is newest first, then the record's id. A page
// over several prefixes (a filter's "any of") merges their index streams,
// reading at most limit+1 entries of each: a filtered page costs what it
// returns, not a scan of every record. The token is the last key returned,
// base64url-encoded: a record added later sorts before it (it is newer),
// so the pages after a token never change under concurrent inserts.
package listing

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"sort"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
)

// keyTimeLen is the length of the time part of a Key.
const keyTimeLen = 16

// Key is the newest-first index key of a record created at t with id.
func Key(t time.Time, id string) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], ^uint64(t.UnixNano()))
	return hex.EncodeToString(b[:]) + id
}

// ID returns the record id of a Key, or "" when key is not one.
func ID(key string) string {
	if len(key) <= keyTimeLen {
		return ""
	}
	return key[keyTimeLen:]
}

// Prefix escapes a filter value for use as an index prefix: the value, then
// a separator that cannot occur in the escaped value.
func Prefix(v string) string {
	return strings.NewReplacer("%", "%25", "/", "%2F").Replace(v) + "/"
}

// ErrToken is the error for a nextToken this package did not make.
var ErrToken = agent.Errorf(agent.CodeMsg, "nextToken: not a token from a previous page")

// Page returns up to limit record ids from the index kind under any of
// prefixes (nil means the one prefix ""), newest first, after token ("" for
// the first page), and the token of the next page ("" when there is none).
func Page(ctx context.Context, rec agent.Records, kind string, prefixes []string, token string, limit int) (ids []string, next string, err error) {
	after := ""
	if token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || ID(string(b)) == "" {
			return nil, "", ErrToken
		}
		after = string(b)
	}
	if len(prefixes) == 0 {
		prefixes = []string{""}
	}
	type entry struct{ key, id string }
	var all []entry
	seen := map[string]bool{}
	for _, p := range prefixes {
		if seen[p] {
			continue
		}
		seen[p] = true
		start := p
		if after != "" {
			start = p + after
		}
		n := 0
		for n <= limit {
			recs, err := rec.List(ctx, kind, start, limit+1-n)
			if err != nil {
				return nil, "", err
			}
			for _, r := range recs {
				if !strings.HasPrefix(r.ID, p) {
					n = limit + 1
					break
				}
				k := r.ID[len(p):]
				if id := ID(k); id != "" {
					all = append(all, entry{k, id})
					n++
				}
				start = r.ID
			}
			if len(recs) == 0 {
				break
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].key < all[j].key })
	// The same record under two prefixes (it cannot be, with disjoint
	// filter values, but a caller may repeat one) counts once.
	out := all[:0]
	for i, e := range all {
		if i > 0 && all[i-1].key == e.key {
			continue
		}
		out = append(out, e)
	}
	if len(out) > limit {
		out = out[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(out[limit-1].key))
	}
	for _, e := range out {
		ids = append(ids, e.id)
	}
	return ids, next, nil
}
