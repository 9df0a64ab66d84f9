package credstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/anoncreds"
	"github.com/agentd/agentd/protocols/internal/listing"
)

// SchemaID is the id the agent gives a schema it creates (see the package doc).
func SchemaID(issuerDID, name, version string) string {
	return issuerDID + "/anoncreds/v0/SCHEMA/" + url.PathEscape(name) + "/" + url.PathEscape(version)
}

// CredDefID is the id the agent gives a credential definition it creates.
func CredDefID(issuerDID, schemaID, tag string) string {
	h := sha256.Sum256([]byte(schemaID))
	return issuerDID + "/anoncreds/v0/CLAIM_DEF/" + hex.EncodeToString(h[:8]) + "/" + url.PathEscape(tag)
}

// ErrRevocationUnsupported is the error for a revocable credential
// definition: revocation is not supported.
var ErrRevocationUnsupported = agent.Errorf(agent.CodeMsg, "isRevocable: revocation is not supported; create the credential definition with isRevocable false")

// CreateAnoncredsSchema creates a schema issued by the agent's DID. A schema
// of the same name and version exists already: e.p.req.conflict.
func (s *Service) CreateAnoncredsSchema(ctx context.Context, name, version string, attributeNames []string) (*aip.AnoncredsSchema, error) {
	if strings.TrimSpace(name) == "" || strings.TrimSpace(version) == "" {
		return nil, agent.Errorf(agent.CodeMsg, "name and version are required")
	}
	if len(name) > 256 || len(version) > 64 {
		return nil, agent.Errorf(agent.CodeMsg, "name (256) or version (64 bytes) too long")
	}
	issuer := s.cfg.IssuerDID()
	sc, err := anoncreds.NewSchema(issuer, name, version, attributeNames)
	if err != nil {
		return nil, agent.Wrap(agent.CodeMsg, err, "attributeNames: "+err.Error())
	}
	id := SchemaID(issuer, name, version)
	rec, err := s.putSchema(ctx, id, sc, SourceCreated)
	if err != nil {
		return nil, err
	}
	return &rec.AnoncredsSchema, nil
}

// putSchema stores a new schema record with its index entries.
func (s *Service) putSchema(ctx context.Context, id string, sc *anoncreds.Schema, source string) (*schemaRecord, error) {
	js, err := json.Marshal(sc)
	if err != nil {
		return nil, err
	}
	rec := &schemaRecord{AnoncredsSchema: aip.AnoncredsSchema{ID: id, IssuerID: sc.IssuerID, Name: sc.Name, Version: sc.Version,
		AttributeNames: sc.AttrNames}, JSON: js, Source: source, Created: s.cfg.Now().UTC()}
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		switch _, err := w.Get(ctx, KindSchema, id); {
		case err == nil:
			return agent.Errorf(agent.CodeConflict, "schema %s exists already", clip(id, 200))
		case !isNotFound(err):
			return err
		}
		key := listing.Key(rec.Created, id)
		w.Put(KindSchemaNewest, key, nil)
		w.Put(KindSchemaByName, listing.Prefix(sc.Name)+key, nil)
		w.Put(KindSchemaByNameVer, listing.Prefix(sc.Name)+listing.Prefix(sc.Version)+key, nil)
		return w.PutJSON(KindSchema, id, rec)
	})
	return rec, err
}

// AnoncredsSchema returns a schema the agent created or imported.
func (s *Service) AnoncredsSchema(ctx context.Context, id string) (*aip.AnoncredsSchema, error) {
	var rec schemaRecord
	if err := readJSON(ctx, s.cfg.Store.Records, KindSchema, id, &rec); err != nil {
		if isNotFound(err) {
			return nil, notFound("schema", id)
		}
		return nil, err
	}
	return &rec.AnoncredsSchema, nil
}

// AnoncredsSchemas lists the schemas the agent created or imported, newest
// first; name and version ("" for any) select through the by-name index
// (a version without a name filters the full listing).
func (s *Service) AnoncredsSchemas(ctx context.Context, p aip.Page, name, version string) ([]*aip.AnoncredsSchema, string, error) {
	kind, prefixes := KindSchemaNewest, []string(nil)
	switch {
	case name != "" && version != "":
		kind, prefixes = KindSchemaByNameVer, []string{listing.Prefix(name) + listing.Prefix(version)}
	case name != "":
		kind, prefixes = KindSchemaByName, []string{listing.Prefix(name)}
	}
	out := []*aip.AnoncredsSchema{}
	token := p.NextToken
	for {
		ids, next, err := listing.Page(ctx, s.cfg.Store.Records, kind, prefixes, token, p.Clamp()-len(out))
		if err != nil {
			return nil, "", err
		}
		for _, id := range ids {
			sc, err := s.AnoncredsSchema(ctx, id)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return nil, "", err
			}
			if version != "" && sc.Version != version {
				continue // a version without a name: the full listing, filtered
			}
			out = append(out, sc)
		}
		if next == "" || len(out) >= p.Clamp() {
			return out, next, nil
		}
		token = next
	}
}

// CreateAnoncredsCredDef creates a credential definition for a schema (one
// the agent created, imported or can resolve), issued by the agent's DID.
// Its private key is sealed at rest; its key correctness proof is kept for
// offers. revocable is refused: revocation is not supported.
func (s *Service) CreateAnoncredsCredDef(ctx context.Context, schemaID, tag string, revocable bool) (*aip.AnoncredsCredDef, error) {
	if revocable {
		return nil, ErrRevocationUnsupported
	}
	if tag == "" {
		tag = "default"
	}
	if len(tag) > 64 {
		return nil, agent.Errorf(agent.CodeMsg, "tag: at most 64 bytes")
	}
	sc, err := s.ResolveSchema(ctx, schemaID)
	if err != nil {
		return nil, err
	}
	issuer := s.cfg.IssuerDID()
	id := CredDefID(issuer, schemaID, tag)
	if _, err := s.cfg.Store.Records.Get(ctx, KindCredDef, id); err == nil {
		return nil, agent.Errorf(agent.CodeConflict, "credential definition %s exists already", clip(id, 200))
	}
	cd, priv, kcp, err := anoncreds.NewCredentialDefinitionContext(ctx, issuer, schemaID, sc, tag, s.cfg.CredDefOptions)
	if err != nil {
		return nil, agent.Wrap(agent.CodeMe, err, "could not create the credential definition")
	}
	privJSON, err := json.Marshal(priv)
	if err != nil {
		return nil, err
	}
	sealed, err := s.cfg.Sealer.Seal(privJSON, privateAAD(id))
	clear(privJSON)
	if err != nil {
		return nil, fmt.Errorf("credstore: sealing the credential definition's private key: %w", err)
	}
	kcpJSON, err := json.Marshal(kcp)
	if err != nil {
		return nil, err
	}
	rec, err := s.putCredDef(ctx, id, cd, kcpJSON, sealed, SourceCreated)
	if err != nil {
		return nil, err
	}
	return &rec.AnoncredsCredDef, nil
}

// putCredDef stores a new credential definition record with its index entries.
func (s *Service) putCredDef(ctx context.Context, id string, cd *anoncreds.CredentialDefinition, kcp json.RawMessage, sealed []byte, source string) (*credDefRecord, error) {
	js, err := json.Marshal(cd)
	if err != nil {
		return nil, err
	}
	rec := &credDefRecord{AnoncredsCredDef: aip.AnoncredsCredDef{ID: id, SchemaID: cd.SchemaID, Tag: cd.Tag,
		IsRevocable: cd.Value.SupportsRevocation()}, JSON: js, KCP: kcp, SealedPrivate: sealed, Source: source, Created: s.cfg.Now().UTC()}
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		switch _, err := w.Get(ctx, KindCredDef, id); {
		case err == nil:
			return agent.Errorf(agent.CodeConflict, "credential definition %s exists already", clip(id, 200))
		case !isNotFound(err):
			return err
		}
		key := listing.Key(rec.Created, id)
		w.Put(KindCredDefNew, key, nil)
		w.Put(KindCredDefBySch, listing.Prefix(cd.SchemaID)+key, nil)
		return w.PutJSON(KindCredDef, id, rec)
	})
	return rec, err
}

// AnoncredsCredDef returns a credential definition the agent created or imported.
func (s *Service) AnoncredsCredDef(ctx context.Context, id string) (*aip.AnoncredsCredDef, error) {
	rec, err := s.credDefRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	return &rec.AnoncredsCredDef, nil
}

func (s *Service) credDefRecord(ctx context.Context, id string) (*credDefRecord, error) {
	var rec credDefRecord
	if err := readJSON(ctx, s.cfg.Store.Records, KindCredDef, id, &rec); err != nil {
		if isNotFound(err) {
			return nil, notFound("credential definition", id)
		}
		return nil, err
	}
	return &rec, nil
}

// AnoncredsCredDefs lists the credential definitions the agent created or
// imported, newest first, those of schemaID only when it is not "".
func (s *Service) AnoncredsCredDefs(ctx context.Context, p aip.Page, schemaID string) ([]*aip.AnoncredsCredDef, string, error) {
	kind, prefixes := KindCredDefNew, []string(nil)
	if schemaID != "" {
		kind, prefixes = KindCredDefBySch, []string{listing.Prefix(schemaID)}
	}
	ids, next, err := listing.Page(ctx, s.cfg.Store.Records, kind, prefixes, p.NextToken, p.Clamp())
	if err != nil {
		return nil, "", err
	}
	out := make([]*aip.AnoncredsCredDef, 0, len(ids))
	for _, id := range ids {
		cd, err := s.AnoncredsCredDef(ctx, id)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, cd)
	}
	return out, next, nil
}

// IssuerKeys are what an issuer needs of a credential definition it created.
type IssuerKeys struct {
	SchemaID            string
	CredDef             *anoncreds.CredentialDefinition
	Private             *anoncreds.CredentialDefinitionPrivate
	KeyCorrectnessProof *anoncreds.KeyCorrectnessProof
}

// IssuerKeys unseals the private key of a credential definition the agent
// created. One it only imported or resolved: e.p.req.not-found.
func (s *Service) IssuerKeys(ctx context.Context, credDefID string) (*IssuerKeys, error) {
	rec, err := s.credDefRecord(ctx, credDefID)
	if err != nil {
		return nil, err
	}
	if len(rec.SealedPrivate) == 0 {
		return nil, agent.Errorf(agent.CodeNotFound, "credential definition %s was not created by this agent: it cannot issue with it", clip(credDefID, 200))
	}
	cd, err := anoncreds.ParseCredentialDefinition(rec.JSON)
	if err != nil {
		return nil, err
	}
	plain, err := s.cfg.Sealer.Open(rec.SealedPrivate, privateAAD(credDefID))
	if err != nil {
		return nil, fmt.Errorf("credstore: the credential definition's private key cannot be unsealed (wrong master key?)")
	}
	defer clear(plain)
	var priv anoncreds.CredentialDefinitionPrivate
	if err := json.Unmarshal(plain, &priv); err != nil {
		return nil, fmt.Errorf("credstore: the credential definition's private key record is corrupt")
	}
	var kcp anoncreds.KeyCorrectnessProof
	if err := json.Unmarshal(rec.KCP, &kcp); err != nil {
		return nil, fmt.Errorf("credstore: the key correctness proof record is corrupt")
	}
	return &IssuerKeys{SchemaID: rec.SchemaID, CredDef: cd, Private: &priv, KeyCorrectnessProof: &kcp}, nil
}
