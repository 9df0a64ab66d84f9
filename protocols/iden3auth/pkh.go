package iden3auth

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/iden3/go-schema-processor/v2/verifiable"
	"github.com/iden3/iden3comm/v2/packers"
)

// JWS-packed authorization responses (application/iden3comm-signed-json)
// are signed by the wallet's Ethereum account (ES256K-R) and name it with a
// did:pkh. Such a DID is resolved here, without any network: its document
// is a function of the DID. Its one verification method is the account's
// recovery method (EcdsaSecp256k1RecoveryMethod2020 with the account as
// blockchainAccountId): iden3comm's JWS packer recovers the signer's key
// from the signature and compares its address with the account. Every
// other DID method is refused, since resolving it would need a resolver
// over a network the operator did not configure.

// pkhAccount matches a did:pkh method-specific id: a CAIP-10 account id on
// an EVM chain (eip155:<chain id>:<address>), or the older short forms
// did:pkh:eth:<address> and did:pkh:poly:<address> wallets still send.
var pkhAccount = regexp.MustCompile(`^(?:eip155:([0-9]{1,32})|(eth|poly)):(0x[0-9a-fA-F]{40})$`)

// pkhLegacyChains are the chain ids of the short forms.
var pkhLegacyChains = map[string]string{"eth": "1", "poly": "137"}

// pkhDocument is the DID document of a did:pkh on an EVM chain.
func pkhDocument(did string) (*verifiable.DIDDocument, error) {
	rest, ok := strings.CutPrefix(did, "did:pkh:")
	if !ok {
		return nil, fmt.Errorf("JWS-packed responses are accepted from did:pkh signers only (agentd resolves no other DID method): %s", clip(did, 100))
	}
	m := pkhAccount.FindStringSubmatch(rest)
	if m == nil {
		return nil, fmt.Errorf("%s is not a did:pkh of an Ethereum account (did:pkh:eip155:<chain id>:<0x address>)", clip(did, 100))
	}
	chain := m[1]
	if chain == "" {
		chain = pkhLegacyChains[m[2]]
	}
	vm := did + "#Recovery2020"
	doc := map[string]any{
		"@context": []any{"https://www.w3.org/ns/did/v1", map[string]string{
			"EcdsaSecp256k1RecoveryMethod2020": "https://identity.foundation/EcdsaSecp256k1RecoverySignature2020#EcdsaSecp256k1RecoveryMethod2020",
			"blockchainAccountId":              "https://w3id.org/security#blockchainAccountId",
		}},
		"id": did,
		"verificationMethod": []map[string]string{{
			"id": vm, "type": "EcdsaSecp256k1RecoveryMethod2020", "controller": did,
			"blockchainAccountId": "eip155:" + chain + ":" + m[3],
		}},
		"authentication":  []string{vm},
		"assertionMethod": []string{vm},
	}
	// Through JSON: the document's references to its methods are set by
	// its decoder only.
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	var out verifiable.DIDDocument
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// pkhResolver is the DID resolver of the verifier's JWS packer.
var pkhResolver = packers.DIDResolverHandlerFunc(pkhDocument)
