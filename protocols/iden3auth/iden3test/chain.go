// Package iden3test is a test double of an iden3 State contract behind a
// JSON-RPC endpoint: it answers the two eth_calls the verifier makes
// (getGISTRootInfo, getStateInfoByIdAndState) with the values a test sets,
// so that go-iden3-auth's real ETHResolver can be pointed at it.
package iden3test

import (
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Function selectors of the State contract (contracts-abi state v1.1.0).
const (
	SelectorGetGISTRootInfo          = "7c1a66de"
	SelectorGetStateInfoByIDAndState = "53c87312"
)

// Info is what the contract knows of a GIST root or an identity state:
// replaced by another (ReplacedBy != 0) at ReplacedAt (Unix seconds), or
// the latest.
type Info struct {
	ReplacedBy *big.Int
	ReplacedAt int64
}

// Chain is the double. Unknown roots and states revert as the contract
// does ("Root does not exist", "State does not exist"), unless Permissive:
// then everything is the latest. Down makes every call fail with HTTP 503.
type Chain struct {
	URL string

	mu         sync.Mutex
	roots      map[string]Info
	states     map[string]Info
	permissive bool
	down       bool
	calls      map[string]int
}

// Start serves a double for the test's duration.
func Start(t testing.TB) *Chain {
	c := &Chain{roots: map[string]Info{}, states: map[string]Info{}, calls: map[string]int{}}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// SetRoot records a GIST root.
func (c *Chain) SetRoot(root *big.Int, info Info) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.roots[root.String()] = info
}

// SetState records an identity state of id.
func (c *Chain) SetState(id, state *big.Int, info Info) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.states[id.String()+":"+state.String()] = info
}

// SetPermissive makes unknown roots and states the latest.
func (c *Chain) SetPermissive(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.permissive = on
}

// SetDown makes the endpoint fail (or work again).
func (c *Chain) SetDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
}

// Calls returns how many eth_calls of selector were answered.
func (c *Chain) Calls(selector string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[selector]
}

// Dec parses a decimal integer (for the tests' constants).
func Dec(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic("iden3test: not a decimal integer: " + s)
	}
	return n
}

type rpcRequest struct {
	ID     json.RawMessage   `json:"id"`
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// ServeHTTP answers JSON-RPC (single or batched).
func (c *Chain) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	down := c.down
	c.mu.Unlock()
	if down {
		http.Error(w, "chain down", http.StatusServiceUnavailable)
		return
	}
	var raw json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if strings.HasPrefix(strings.TrimSpace(string(raw)), "[") {
		var reqs []rpcRequest
		json.Unmarshal(raw, &reqs)
		out := make([]any, len(reqs))
		for i, q := range reqs {
			out[i] = c.answer(q)
		}
		json.NewEncoder(w).Encode(out)
		return
	}
	var q rpcRequest
	json.Unmarshal(raw, &q)
	json.NewEncoder(w).Encode(c.answer(q))
}

func (c *Chain) answer(q rpcRequest) map[string]any {
	out := map[string]any{"jsonrpc": "2.0", "id": q.ID}
	fail := func(code int, msg string) map[string]any {
		out["error"] = rpcError{Code: code, Message: msg}
		return out
	}
	switch q.Method {
	case "eth_chainId":
		out["result"] = "0x13881"
		return out
	case "eth_call":
	default:
		return fail(-32601, "method not found")
	}
	if len(q.Params) == 0 {
		return fail(-32602, "missing params")
	}
	var call struct {
		Input string `json:"input"`
		Data  string `json:"data"`
	}
	json.Unmarshal(q.Params[0], &call)
	in := call.Input
	if in == "" {
		in = call.Data
	}
	b, err := hex.DecodeString(strings.TrimPrefix(in, "0x"))
	if err != nil || len(b) < 4 {
		return fail(-32602, "bad call data")
	}
	sel, args := hex.EncodeToString(b[:4]), b[4:]
	word := func(i int) *big.Int { return new(big.Int).SetBytes(args[32*i : 32*i+32]) }
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[sel]++
	switch {
	case sel == SelectorGetGISTRootInfo && len(args) >= 32:
		root := word(0)
		info, ok := c.roots[root.String()]
		if !ok && !c.permissive {
			return fail(3, "execution reverted: Root does not exist")
		}
		out["result"] = encode(root, orZero(info.ReplacedBy), big.NewInt(0), big.NewInt(info.ReplacedAt), big.NewInt(0), big.NewInt(0))
	case sel == SelectorGetStateInfoByIDAndState && len(args) >= 64:
		id, st := word(0), word(1)
		info, ok := c.states[id.String()+":"+st.String()]
		if !ok && !c.permissive {
			return fail(3, "execution reverted: State does not exist")
		}
		out["result"] = encode(id, st, orZero(info.ReplacedBy), big.NewInt(0), big.NewInt(info.ReplacedAt), big.NewInt(0), big.NewInt(0))
	default:
		return fail(3, "execution reverted")
	}
	return out
}

func orZero(n *big.Int) *big.Int {
	if n == nil {
		return big.NewInt(0)
	}
	return n
}

// encode is the ABI encoding of a static tuple of uint256.
func encode(words ...*big.Int) string {
	b := make([]byte, 32*len(words))
	for i, w := range words {
		w.FillBytes(b[32*i : 32*i+32])
	}
	return "0x" + hex.EncodeToString(b)
}
