package iden3auth

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	core "github.com/iden3/go-iden3-core/v2"
)

// TestCustomChain: a local chain (anvil, chain id 31337) is either read as
// a chain go-iden3-core knows (polygon:amoy, whatever its chain id), or
// registered with a DID method and network flag of its own.
func TestCustomChain(t *testing.T) {
	const contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
	// A known chain needs no registration, whatever the chain id.
	if _, err := NewResolvers([]Chain{{Blockchain: "polygon", Network: "amoy", RPCURL: "http://127.0.0.1:8545", StateContract: contract, ChainID: 31337}}, time.Second); err != nil {
		t.Fatal(err)
	}
	// An unknown one without a network flag is refused with advice.
	_, err := NewResolvers([]Chain{{Blockchain: "anvil", Network: "local", RPCURL: "http://127.0.0.1:8545", StateContract: contract, ChainID: 31337}}, time.Second)
	if err == nil || !strings.Contains(err.Error(), "network_flag") {
		t.Fatalf("unknown chain: %v", err)
	}
	// Registered, its DIDs parse and resolve to its resolver key.
	c := Chain{Blockchain: "anvil", Network: "local", RPCURL: "http://127.0.0.1:8545", StateContract: contract,
		ChainID: 31337, Method: "polygonid", NetworkFlag: 0b1111_0001}
	rs, err := NewResolvers([]Chain{c}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rs["anvil:local"]; !ok {
		t.Fatalf("resolvers %v", rs)
	}
	typ, err := core.BuildDIDType(core.DIDMethodPolygonID, "anvil", "local")
	if err != nil {
		t.Fatal(err)
	}
	id, err := core.NewIDFromIdenState(typ, big1())
	if err != nil {
		t.Fatal(err)
	}
	did, err := core.ParseDIDFromID(*id)
	if err != nil || !strings.HasPrefix(did.String(), "did:polygonid:anvil:local:") {
		t.Fatalf("DID %v %v", did, err)
	}
	if err := checkVerifierDID(c.Key(), did.String()); err != nil {
		t.Fatal(err)
	}
	if chainID, err := core.GetChainID("anvil", "local"); err != nil || chainID != 31337 {
		t.Fatalf("chain id %d %v", chainID, err)
	}
	// Registering it again is fine; another chain with the same flag is not.
	if err := RegisterChain(c); err != nil {
		t.Fatal(err)
	}
	c2 := c
	c2.Network = "other"
	if err := RegisterChain(c2); err == nil {
		t.Fatal("a second network took the same flag")
	}
}

func big1() *big.Int { return big.NewInt(1) }

// TestChainErrorHidesRPCURL: the RPC URL (which may hold a provider's API
// key) is not in the error that is logged.
func TestChainErrorHidesRPCURL(t *testing.T) {
	rpc := "http://127.0.0.1:1/v3/secret-api-key" // nothing listens: the dial error names the URL
	rs, err := NewResolvers([]Chain{{Blockchain: "polygon", Network: "amoy", RPCURL: rpc, StateContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3"}}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rs["polygon:amoy"].ResolveGlobalRoot(context.Background(), big.NewInt(1))
	if !errors.Is(err, ErrChainUnavailable) || strings.Contains(err.Error(), "secret-api-key") || !strings.Contains(err.Error(), "http://127.0.0.1:1/…") {
		t.Fatalf("error %v", err)
	}
}
