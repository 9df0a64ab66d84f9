package iden3auth

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/protocols/iden3auth/iden3test"
	"github.com/agentd/agentd/protocols/iden3auth/schemas"
	"github.com/agentd/agentd/store/bolt"
	"github.com/iden3/iden3comm/v2/protocol"
)

// The recorded Polygon ID vector (testdata/mtpv2_token.txt, see
// testdata/SOURCES.md): its chain values (iden3.md "Values for the
// recorded vector").
const (
	vecVerifier  = "did:polygonid:polygon:mumbai:2qJ689kpoJxcSzB5sAFJtPsSBSrHF5dq722BHMqURL"
	vecUser      = "did:polygonid:polygon:mumbai:2qPDLXDaU1xa1ERTb1XKBfPCB3o2wA46q49neiXWwY"
	vecThread    = "7f38a193-0918-4a48-9fac-36adfdb8b542"
	vecGISTRoot  = "8756060205086803335252319748748354761961814012725499873382988056418680628619"
	vecIssuerID  = "27752766823371471408248225708681313764866231655187366071881070918984471042"
	vecIssuerSt  = "21545768883509657340209171549441005603306012513932221371599501498534807719689"
	vecSchemaURL = "https://raw.githubusercontent.com/iden3/claim-schema-vocab/main/schemas/json-ld/kyc-v3.json-ld"
	// The recorded proofs are from 2023: the proof age limit of the tests.
	vecProofAge = 100000 * time.Hour
)

// vecScope is the scope the recorded response answers.
func vecScope() []protocol.ZeroKnowledgeProofRequest {
	opt := true
	return []protocol.ZeroKnowledgeProofRequest{{
		ID: 23, CircuitID: "credentialAtomicQueryMTPV2", Optional: &opt,
		Query: map[string]any{
			"allowedIssuers":    []any{"*"},
			"context":           vecSchemaURL,
			"credentialSubject": map[string]any{"countryCode": map[string]any{"$nin": []any{840, 120, 340, 509}}},
			"type":              "KYCCountryOfResidenceCredential",
		},
	}}
}

// The recorded V3 vector (go-iden3-auth TestVerifier_FullVerify_StableV3).
const (
	v3Verifier = "did:iden3:polygon:amoy:xCRp75DgAdS63W65fmXHz6p9DwdonuRU9e46DifhX"
	v3User     = "did:iden3:polygon:amoy:x7Z95VkUuyo6mqraJw2VGwCfqTzdqhM1RVjRHzcpK"
	v3Thread   = "dd47f0cb-c2ab-4bc9-a8a2-fae58a6b0a27"
	v3Ctx101   = "https://raw.githubusercontent.com/iden3/claim-schema-vocab/main/schemas/json-ld/kyc-v101.json-ld"
	v3CtxNonM  = "https://raw.githubusercontent.com/iden3/claim-schema-vocab/main/schemas/json-ld/kyc-nonmerklized.jsonld"
)

func v3Scope() []protocol.ZeroKnowledgeProofRequest {
	opt := false
	return []protocol.ZeroKnowledgeProofRequest{
		{ID: 1, CircuitID: "credentialAtomicQueryV3", Optional: &opt, Query: map[string]any{
			"proofType": "BJJSignature2021", "allowedIssuers": []any{"*"},
			"credentialSubject": map[string]any{"documentType": map[string]any{"$eq": 99}},
			"context":           v3CtxNonM, "type": "KYCAgeCredential"}},
		{ID: 2, CircuitID: "linkedMultiQuery", Optional: &opt, Query: map[string]any{
			"groupId": 1, "proofType": "Iden3SparseMerkleTreeProof", "allowedIssuers": []any{"*"},
			"credentialSubject": map[string]any{"documentType": map[string]any{"$eq": 1},
				"position": map[string]any{"$eq": "boss", "$ne": "employee"}},
			"context": v3Ctx101, "type": "KYCEmployee"}},
		{ID: 3, CircuitID: "credentialAtomicQueryV3", Optional: &opt, Params: map[string]any{"nullifierSessionId": "12345"},
			Query: map[string]any{
				"groupId": 1, "proofType": "BJJSignature2021", "allowedIssuers": []any{"*"},
				"credentialSubject": map[string]any{"hireDate": map[string]any{"$eq": "2023-12-11"}},
				"context":           v3Ctx101, "type": "KYCEmployee"}},
	}
}

// fixture is a Service on a bolt store, a chain double and a schema cache.
type fixture struct {
	svc   *Service
	db    *bolt.DB
	chain *iden3test.Chain
	docs  *schemas.Loader
	now   time.Time
	ids   []string
}

type fixtureOpt func(*Config)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newFixture builds the production service: the real ETHResolver
// (NewResolvers) over the chain double, the on-disk schema cache with the
// vectors' schemas preloaded and nothing allowed to be fetched.
func newFixture(t testing.TB, chain *iden3test.Chain, opts ...fixtureOpt) *fixture {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "agentd.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	docs, err := schemas.New(filepath.Join(t.TempDir(), "schemas"), nil, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	for url, file := range map[string]string{vecSchemaURL: "kyc-v3.json-ld", v3Ctx101: "kyc-v101.json-ld", v3CtxNonM: "kyc-nonmerklized.jsonld", jwsSchemaURL: "kyc-v4.json-ld"} {
		if err := docs.Store(url, readFile(t, file)); err != nil {
			t.Fatal(err)
		}
	}
	chains := []Chain{
		{Blockchain: "polygon", Network: "mumbai", RPCURL: chain.URL, StateContract: "0x134B1BE34911E39A8397ec6289782989729807a4", ChainID: 80001, VerifierDID: vecVerifier},
		{Blockchain: "polygon", Network: "amoy", RPCURL: chain.URL, StateContract: "0x1a4cC30f2aA0377b0c3bc9848766D90cb4404124", ChainID: 80002, VerifierDID: v3Verifier},
	}
	resolvers, err := NewResolvers(chains, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, chain: chain, docs: docs, now: time.Now().Truncate(time.Second)}
	cfg := Config{
		Store:  agent.Store{Records: db.Records(), Committer: db},
		Chains: chains, Resolvers: resolvers, Documents: docs,
		PublicBaseURL: "https://verifier.example", ProofAge: vecProofAge,
		Now:    func() time.Time { return f.now },
		NewID:  func() string { id := f.ids[0]; f.ids = f.ids[1:]; return id },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	if f.svc, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

// vectorChain is a chain double holding the recorded vector's GIST root
// and issuer state, both latest.
func vectorChain(t testing.TB) *iden3test.Chain {
	c := iden3test.Start(t)
	c.SetRoot(iden3test.Dec(vecGISTRoot), iden3test.Info{})
	c.SetState(iden3test.Dec(vecIssuerID), iden3test.Dec(vecIssuerSt), iden3test.Info{})
	return c
}

// create makes a session with id.
func (f *fixture) create(t testing.TB, id string, req CreateRequest) Session {
	t.Helper()
	f.ids = append(f.ids, id)
	s, err := f.svc.Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stored is the session record as stored (raw JSON), for asserting that a
// refusal changed nothing.
func (f *fixture) stored(t testing.TB, id string) string {
	t.Helper()
	b, err := f.db.Records().Get(context.Background(), KindSession, id)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
