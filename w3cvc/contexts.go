package w3cvc

import (
	"embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/piprate/json-gold/ld"
)

//go:embed contexts/*.jsonld
var contextFiles embed.FS

// Context URLs of the embedded contexts.
const (
	ContextExamplesV1       = "https://www.w3.org/2018/credentials/examples/v1"
	ContextEd25519Suite2020 = "https://w3id.org/security/suites/ed25519-2020/v1"
	ContextDataIntegrityV1  = "https://w3id.org/security/data-integrity/v1"
	ContextDataIntegrityV2  = "https://w3id.org/security/data-integrity/v2"
	ContextStatusList2021   = "https://w3id.org/vc/status-list/2021/v1"
	ContextSubmission       = "https://identity.foundation/presentation-exchange/submission/v1"
	contextODRL             = "https://www.w3.org/ns/odrl.jsonld"
	// ContextUndefinedTermsV2 maps terms no other context defines into
	// https://www.w3.org/ns/credentials/undefined-term# (VCDM 2.0).
	ContextUndefinedTermsV2 = "https://www.w3.org/ns/credentials/undefined-terms/v2"
)

var embeddedContexts = map[string]string{
	ContextV1:               "credentials_v1.jsonld",
	ContextV2:               "credentials_v2.jsonld",
	ContextExamplesV1:       "credentials-examples_v1.jsonld",
	ContextEd25519Suite2020: "ed25519-signature-2020-v1.jsonld",
	ContextDataIntegrityV1:  "data-integrity-v1.jsonld",
	ContextDataIntegrityV2:  "data-integrity-v2.jsonld",
	ContextStatusList2021:   "revocationList2021.jsonld",
	ContextSubmission:       "presentation-submission_v1.jsonld",
	contextODRL:             "odrl.jsonld", // imported by the examples context
	ContextUndefinedTermsV2: "undefined-terms-v2.jsonld",
}

// contextLoader is the JSON-LD document loader: embedded and registered
// contexts only, parsed once; never the network.
type contextLoader struct {
	mu   sync.RWMutex
	docs map[string]any
}

var loader = newContextLoader()

func newContextLoader() *contextLoader {
	l := &contextLoader{docs: map[string]any{}}
	for url, file := range embeddedContexts {
		b, err := contextFiles.ReadFile("contexts/" + file)
		if err != nil {
			panic("w3cvc: embedded context " + file + ": " + err.Error())
		}
		if err := l.add(url, b); err != nil {
			panic("w3cvc: embedded context " + file + ": " + err.Error())
		}
	}
	return l
}

func (l *contextLoader) add(url string, doc []byte) error {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return fmt.Errorf("context %s is not JSON: %w", url, err)
	}
	if m, ok := v.(map[string]any); !ok || m["@context"] == nil {
		return fmt.Errorf("context %s has no @context member", url)
	}
	l.mu.Lock()
	l.docs[url] = v
	l.mu.Unlock()
	return nil
}

// LoadDocument implements ld.DocumentLoader.
func (l *contextLoader) LoadDocument(url string) (*ld.RemoteDocument, error) {
	l.mu.RLock()
	doc, ok := l.docs[url]
	l.mu.RUnlock()
	if !ok {
		return nil, ld.NewJsonLdError(ld.LoadingDocumentFailed,
			fmt.Sprintf("JSON-LD context %.200q is not known (contexts are not fetched; see w3cvc.RegisterContext)", url))
	}
	return &ld.RemoteDocument{DocumentURL: url, Document: doc}, nil
}

// RegisterContext makes a JSON-LD context document available to
// canonicalisation under url, for credentials using contexts beyond the
// embedded ones. It is safe for concurrent use; a later registration of the
// same url replaces the earlier.
func RegisterContext(url string, doc []byte) error {
	if url == "" {
		return fmt.Errorf("context url is empty")
	}
	return loader.add(url, doc)
}
