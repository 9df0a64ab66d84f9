package w3cvc

// Input bounds.
const (
	// MaxCredentialSize bounds one credential (JWT or JSON-LD), in bytes.
	MaxCredentialSize = 256 << 10
	// MaxPresentationSize bounds one presentation, in bytes.
	MaxPresentationSize = 1 << 20
	// MaxCredentialsPerPresentation bounds verifiableCredential.
	MaxCredentialsPerPresentation = 32
	// MaxDefinitionSize bounds a presentation definition, in bytes.
	MaxDefinitionSize = 256 << 10
	// MaxStatusListSize bounds a fetched status list credential, in bytes.
	MaxStatusListSize = 1 << 20
	// MaxStatusListBits bounds a decompressed status list, in bytes.
	MaxStatusListBits = 4 << 20
	// maxNesting bounds from_nested and filter nesting depth.
	maxNesting = 8
)
