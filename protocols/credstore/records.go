package credstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
)

// Record kinds (agent.Records).
const (
	KindCredential = "credstore-credential" // heldRecord, by credential id
	// Held credential indexes (listing keys): all, by format, by
	// credential definition.
	KindCredNewest   = "credstore-cred-newest"
	KindCredByFormat = "credstore-cred-by-format"
	KindCredByDef    = "credstore-cred-by-creddef"

	KindLinkSecret = "credstore-link-secret" // linkSecretRecord, id "default"

	KindSchema          = "credstore-schema"                 // schemaRecord, by schema id
	KindSchemaNewest    = "credstore-schema-newest"          // listing keys
	KindSchemaByName    = "credstore-schema-by-name"         // name/listing key
	KindSchemaByNameVer = "credstore-schema-by-name-version" // name/version/listing key
	KindCredDef         = "credstore-creddef"                // credDefRecord, by cred def id
	KindCredDefNew      = "credstore-creddef-newest"
	KindCredDefBySch    = "credstore-creddef-by-schema"
)

// Sources of an AnonCreds object record.
const (
	SourceCreated  = "created"
	SourceImported = "imported"
)

// heldRecord is a held credential as stored.
type heldRecord struct {
	aip.Credential
	// Issuer and Types describe a W3C credential (from w3cvc.ParseCredential).
	Issuer string   `json:"issuer,omitempty"`
	Types  []string `json:"types,omitempty"`
	// Raw is the AnonCreds credential JSON (processed, as anoncreds.Credential).
	Raw json.RawMessage `json:"raw,omitempty"`
}

// linkSecretRecord is the holder's link secret, sealed.
type linkSecretRecord struct {
	Sealed  []byte    `json:"sealed"`
	Created time.Time `json:"created"`
}

// schemaRecord is an AnonCreds schema the agent created or imported.
type schemaRecord struct {
	aip.AnoncredsSchema
	JSON    json.RawMessage `json:"json"` // anoncreds.Schema
	Source  string          `json:"source"`
	Created time.Time       `json:"created"`
}

// credDefRecord is an AnonCreds credential definition the agent created
// (with its sealed private part and key correctness proof) or imported.
type credDefRecord struct {
	aip.AnoncredsCredDef
	JSON json.RawMessage `json:"json"` // anoncreds.CredentialDefinition
	// KCP is the key correctness proof, which offers carry.
	KCP json.RawMessage `json:"kcp,omitempty"`
	// SealedPrivate is the private key (anoncreds.CredentialDefinitionPrivate
	// as JSON), sealed with additional data privateAAD(id).
	SealedPrivate []byte    `json:"sealedPrivate,omitempty"`
	Source        string    `json:"source"`
	Created       time.Time `json:"created"`
}

func privateAAD(credDefID string) []byte { return []byte("credstore-creddef:" + credDefID) }

var linkSecretAAD = []byte("credstore-link-secret:default")

// getJSON reads a record through w into v.
func getJSON(ctx context.Context, w *agent.Work, kind, id string, v any) error {
	b, err := w.Get(ctx, kind, id)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("record %s/%s is corrupt: %w", kind, id, err)
	}
	return nil
}

// readJSON reads a committed record into v.
func readJSON(ctx context.Context, r agent.Records, kind, id string, v any) error {
	b, err := r.Get(ctx, kind, id)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("record %s/%s is corrupt: %w", kind, id, err)
	}
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, agent.ErrNotFound) }

// notFound is the error for a missing thing, wrapping agent.ErrNotFound.
func notFound(what, id string) error {
	return &agent.Error{Code: agent.CodeNotFound, Comment: fmt.Sprintf("%s %s: not found", what, clip(id, 200)), Err: agent.ErrNotFound}
}

// clip shortens s for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
