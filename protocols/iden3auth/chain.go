package iden3auth

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/iden3/go-iden3-auth/v2/pubsignals"
	"github.com/iden3/go-iden3-auth/v2/state"
	core "github.com/iden3/go-iden3-core/v2"
	"github.com/iden3/go-iden3-core/v2/w3c"
)

// Chain is one chain whose iden3 State contract the verifier reads: the
// resolver of the identities of "Blockchain:Network" and the verifier DID
// that sends requests for it.
type Chain struct {
	// Blockchain and Network name the chain as iden3 DIDs do ("polygon",
	// "amoy"): identities whose type bytes say so are resolved here.
	Blockchain, Network string
	// RPCURL is the JSON-RPC endpoint; StateContract the State contract's
	// address (0x...).
	RPCURL, StateContract string
	// ChainID is the EVM chain id (informational unless NetworkFlag is set).
	ChainID int
	// Method and NetworkFlag register a chain go-iden3-core does not know
	// (core.RegisterDIDMethodNetwork): the DID method ("polygonid", "iden3")
	// and the network byte of the identities' type. Zero NetworkFlag: the
	// chain must be one go-iden3-core knows.
	Method      string
	NetworkFlag byte
	// VerifierDID is the DID requests for this chain come from.
	VerifierDID string
}

// Key is "blockchain:network", the key go-iden3-auth resolves by.
func (c Chain) Key() string { return c.Blockchain + ":" + c.Network }

// ErrChainUnavailable is wrapped by the errors of a state read that did not
// reach a verdict (the RPC endpoint is down, slow or answers nonsense):
// the wallet may try again.
var ErrChainUnavailable = errors.New("iden3auth: chain unavailable")

// chainError is a state read that failed for want of the chain.
type chainError struct {
	chain string
	err   error
}

func (e *chainError) Error() string {
	return fmt.Sprintf("chain %s unavailable: %v", e.chain, e.err)
}

func (e *chainError) Unwrap() []error { return []error{ErrChainUnavailable, e.err} }

// unavailableMark is in the text of a chainError, so that it is still
// recognised when a library flattens the error to text.
const unavailableMark = "unavailable: "

// isChainUnavailable reports whether err (from FullVerify) came from a
// state read that reached no verdict.
func isChainUnavailable(err error) bool {
	return errors.Is(err, ErrChainUnavailable) || strings.Contains(err.Error(), "chain ") && strings.Contains(err.Error(), unavailableMark)
}

// verdicts are the texts of go-iden3-auth's state answers (state/state.go):
// the chain answered, and the answer is no.
var verdicts = []string{
	"state is not genesis and not registered in the smart contract",
	"state has been saved for a different ID",
	"gist state doesn't exist on smart contract",
	"gist info contains invalid state",
	"state was replaced, but replaced time unknown",
}

// timedResolver bounds every state read of an inner resolver by timeout
// (the library reads the GIST root with context.Background()), and marks
// the failures that are not the chain's answer as chain errors.
type timedResolver struct {
	chain   string
	rpcURL  string
	inner   pubsignals.StateResolver
	timeout time.Duration
}

// Resolve implements pubsignals.StateResolver.
func (r timedResolver) Resolve(ctx context.Context, id, st *big.Int) (*state.ResolvedState, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	res, err := r.inner.Resolve(ctx, id, st)
	return res, r.classify(err)
}

// ResolveGlobalRoot implements pubsignals.StateResolver.
func (r timedResolver) ResolveGlobalRoot(ctx context.Context, root *big.Int) (*state.ResolvedState, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	res, err := r.inner.ResolveGlobalRoot(ctx, root)
	return res, r.classify(err)
}

func (r timedResolver) classify(err error) error {
	if err == nil {
		return nil
	}
	for _, v := range verdicts {
		if strings.Contains(err.Error(), v) {
			return err
		}
	}
	return &chainError{chain: r.chain, err: redact(err, r.rpcURL)}
}

// redact removes the RPC URL from err's text: a provider's URL often holds
// an API key, and the error is logged.
func redact(err error, rpcURL string) error {
	msg := err.Error()
	if rpcURL == "" || !strings.Contains(msg, rpcURL) {
		return err
	}
	shown := "the RPC endpoint"
	if u, perr := url.Parse(rpcURL); perr == nil && u.Host != "" {
		shown = u.Scheme + "://" + u.Host + "/…"
	}
	return errors.New(strings.ReplaceAll(msg, rpcURL, shown))
}

// NewResolvers builds the state resolvers of chains, keyed
// "blockchain:network": go-iden3-auth's ETHResolver (with its caches) over
// each chain's RPC endpoint, every read bounded by timeout. Chains
// go-iden3-core does not know are registered first (Method, NetworkFlag).
func NewResolvers(chains []Chain, timeout time.Duration) (map[string]pubsignals.StateResolver, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	out := map[string]pubsignals.StateResolver{}
	for _, c := range chains {
		if err := RegisterChain(c); err != nil {
			return nil, err
		}
		if _, dup := out[c.Key()]; dup {
			return nil, fmt.Errorf("iden3: two resolvers for %s", c.Key())
		}
		r, err := state.NewETHResolverWithOpts(c.RPCURL, c.StateContract)
		if err != nil {
			return nil, fmt.Errorf("iden3: resolver %s: %w", c.Key(), err)
		}
		out[c.Key()] = timedResolver{chain: c.Key(), rpcURL: c.RPCURL, inner: r, timeout: timeout}
	}
	return out, nil
}

// RegisterChain makes c's DIDs known to go-iden3-core: with a NetworkFlag
// it registers the method, blockchain and network (and the chain id); else
// it checks that go-iden3-core knows the chain for the method (polygonid
// by default).
func RegisterChain(c Chain) error {
	method := core.DIDMethod(c.Method)
	if method == "" {
		method = core.DIDMethodPolygonID
	}
	if c.NetworkFlag != 0 {
		var opts []core.RegistrationOptions
		if c.ChainID != 0 {
			opts = append(opts, core.WithChainID(c.ChainID))
		}
		err := core.RegisterDIDMethodNetwork(core.DIDMethodNetworkParams{Method: method,
			Blockchain: core.Blockchain(c.Blockchain), Network: core.NetworkID(c.Network), NetworkFlag: c.NetworkFlag}, opts...)
		if err != nil {
			return fmt.Errorf("iden3: registering %s (method %s, network flag %#x, chain id %d): %w", c.Key(), method, c.NetworkFlag, c.ChainID, err)
		}
		return nil
	}
	if _, err := core.BuildDIDType(method, core.Blockchain(c.Blockchain), core.NetworkID(c.Network)); err != nil {
		return fmt.Errorf("iden3: %s is not a chain go-iden3-core knows for method %s (set method and network_flag to register it): %w", c.Key(), method, err)
	}
	return nil
}

// checkVerifierDID checks that did is an iden3 DID (the library parses the
// request's from as one).
func checkVerifierDID(chain, did string) error {
	d, err := w3c.ParseDID(did)
	if err != nil {
		return fmt.Errorf("iden3: verifier DID of %s: %q is not a DID: %w", chain, did, err)
	}
	if _, err := core.IDFromDID(*d); err != nil {
		return fmt.Errorf("iden3: verifier DID of %s: %q is not an iden3 DID: %w", chain, did, err)
	}
	return nil
}
