package anoncreds

import "strings"

// LegacyIdentifier is a parsed unqualified Indy identifier:
//
//	schema:          <did>:2:<name>:<version>
//	cred def:        <did>:3:CL:<schema seq no or schema id>:<tag>
//	revocation reg.: <did>:4:<cred def id>:CL_ACCUM:<tag>
//
// A "did:sov:" prefix on the issuer DID is accepted and removed.
type LegacyIdentifier struct {
	// Kind is "schema", "cred_def" or "rev_reg".
	Kind string
	// IssuerDID is the unqualified DID of the issuer.
	IssuerDID string
	// Name and Version are set for a schema.
	Name, Version string
	// SchemaRef is the schema seq no or schema id of a credential definition.
	SchemaRef string
	// CredDefID is the credential definition of a revocation registry.
	CredDefID string
	// Tag is the tag of a credential definition or revocation registry.
	Tag string
}

// ParseLegacyIdentifier parses an unqualified Indy identifier; ok is false
// for anything else (for example a did:web or did:indy one).
func ParseLegacyIdentifier(id string) (LegacyIdentifier, bool) {
	s := strings.TrimPrefix(id, "did:sov:")
	if strings.HasPrefix(s, "did:") {
		return LegacyIdentifier{}, false
	}
	parts := strings.Split(s, ":")
	if len(parts) < 4 || parts[0] == "" {
		return LegacyIdentifier{}, false
	}
	switch parts[1] {
	case "2":
		if len(parts) != 4 {
			return LegacyIdentifier{}, false
		}
		return LegacyIdentifier{Kind: "schema", IssuerDID: parts[0], Name: parts[2], Version: parts[3]}, true
	case "3":
		if parts[2] != "CL" || len(parts) < 5 {
			return LegacyIdentifier{}, false
		}
		return LegacyIdentifier{Kind: "cred_def", IssuerDID: parts[0], SchemaRef: strings.Join(parts[3:len(parts)-1], ":"), Tag: parts[len(parts)-1]}, true
	case "4":
		// <did>:4:<cred def id (which contains colons)>:CL_ACCUM:<tag>
		if len(parts) < 7 || parts[len(parts)-2] != "CL_ACCUM" {
			return LegacyIdentifier{}, false
		}
		return LegacyIdentifier{Kind: "rev_reg", IssuerDID: parts[0], CredDefID: strings.Join(parts[2:len(parts)-2], ":"), Tag: parts[len(parts)-1]}, true
	}
	return LegacyIdentifier{}, false
}

// sameIssuer compares issuer identifiers, treating an unqualified Indy DID
// and its did:sov: form as the same.
func sameIssuer(a, b string) bool {
	return strings.TrimPrefix(a, "did:sov:") == strings.TrimPrefix(b, "did:sov:")
}
