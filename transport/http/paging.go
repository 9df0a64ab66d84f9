package http

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"

	"github.com/agentd/agentd/agent"
)

// Paging limits of every list route.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

// PageRequest is the paging of a list request: ?after=CURSOR&limit=N.
type PageRequest struct {
	// After is the cursor: the id (or DID) of the last item of the previous
	// page; empty for the first page.
	After string
	// Limit is the largest number of items to return (1..1000, default 100).
	Limit int
}

// pageQuery documents the paging query parameters.
var pageQuery = []Param{
	{Name: "after", Description: "cursor: the next value of the previous page"},
	{Name: "limit", Type: "integer", Description: "largest number of items (1..1000, default 100)"},
}

// parsePage reads ?after= and ?limit=; an invalid limit is an e.p.msg error.
func parsePage(r *http.Request) (PageRequest, error) {
	p := PageRequest{After: r.URL.Query().Get("after"), Limit: defaultLimit}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return p, agent.Errorf(agent.CodeMsg, "limit must be between 1 and %d", maxLimit)
		}
		p.Limit = n
	}
	return p, nil
}

// Page is one page of a list answer. Its JSON form is
// {"<Key>": [items...], "next": "cursor"}: the items under the name the
// list always had ("grants", "deadLetters", ...), and next, the value to
// pass as ?after= for the following page, absent on the last page.
type Page[T any] struct {
	// Key is the JSON name of the items.
	Key string
	// Items are the page's items, never null in JSON.
	Items []T
	// Next is the cursor of the following page; empty on the last one.
	Next string
}

// newPage makes the page of items for req; id gives the cursor of an item.
// A full page has a next cursor (the following page may be empty).
func newPage[T any](key string, items []T, req PageRequest, id func(T) string) Page[T] {
	p := Page[T]{Key: key, Items: items}
	if p.Items == nil {
		p.Items = []T{}
	}
	if len(items) > 0 && len(items) >= req.Limit {
		p.Next = id(items[len(items)-1])
	}
	return p
}

// MarshalJSON writes {"<Key>": Items, "next": Next}.
func (p Page[T]) MarshalJSON() ([]byte, error) {
	items := p.Items
	if items == nil {
		items = []T{}
	}
	key, err := json.Marshal(p.Key)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(items)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	buf.Write(key)
	buf.WriteByte(':')
	buf.Write(b)
	if p.Next != "" {
		n, _ := json.Marshal(p.Next)
		buf.WriteString(`,"next":`)
		buf.Write(n)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON reads a page: "next" is the cursor, the other member the
// items (its name becomes Key).
func (p *Page[T]) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*p = Page[T]{}
	for k, v := range m {
		if k == "next" {
			if err := json.Unmarshal(v, &p.Next); err != nil {
				return err
			}
			continue
		}
		p.Key = k
		if err := json.Unmarshal(v, &p.Items); err != nil {
			return err
		}
	}
	return nil
}

// pageKey and pageItem let the OpenAPI generator describe a Page.
func (p Page[T]) pageKey() string        { return p.Key }
func (p Page[T]) pageItem() reflect.Type { return reflect.TypeFor[T]() }
