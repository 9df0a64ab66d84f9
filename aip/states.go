package aip

// ConnExRole is the agent's role in a connection exchange.
type ConnExRole string

// Connection exchange roles.
const (
	ConnExInviter ConnExRole = "INVITER"
	ConnExInvitee ConnExRole = "INVITEE"
)

// ConnExState is the state of a connection exchange.
type ConnExState string

// Connection exchange states: INVITATION → REQUEST → RESPONSE → DONE, or
// ABANDONED.
const (
	ConnExInvitation ConnExState = "INVITATION"
	ConnExRequest    ConnExState = "REQUEST"
	ConnExResponse   ConnExState = "RESPONSE"
	ConnExDone       ConnExState = "DONE"
	ConnExAbandoned  ConnExState = "ABANDONED"
)

// CredExRole is the agent's role in a credential exchange.
type CredExRole string

// Credential exchange roles.
const (
	CredExIssuer CredExRole = "ISSUER"
	CredExHolder CredExRole = "HOLDER"
)

// CredExState is the state of a credential exchange.
type CredExState string

// Credential exchange states: PROPOSAL → OFFER → REQUEST → ISSUED → DONE,
// or ABANDONED.
const (
	CredExProposal  CredExState = "PROPOSAL"
	CredExOffer     CredExState = "OFFER"
	CredExRequest   CredExState = "REQUEST"
	CredExIssued    CredExState = "ISSUED"
	CredExDone      CredExState = "DONE"
	CredExAbandoned CredExState = "ABANDONED"
)

// ProofExRole is the agent's role in a proof exchange; it is fixed for the
// exchange's lifetime.
type ProofExRole string

// Proof exchange roles.
const (
	ProofExVerifier ProofExRole = "VERIFIER"
	ProofExProver   ProofExRole = "PROVER"
)

// ProofExState is the state of a proof exchange.
type ProofExState string

// Proof exchange states: (PROPOSAL →) REQUEST → PRESENTED → DONE, or
// ABANDONED. A verifier's DONE means the presentation was verified (the
// result is on the presentation); a prover's DONE means it has nothing left
// to do.
const (
	ProofExProposal  ProofExState = "PROPOSAL"
	ProofExRequest   ProofExState = "REQUEST"
	ProofExPresented ProofExState = "PRESENTED"
	ProofExDone      ProofExState = "DONE"
	ProofExAbandoned ProofExState = "ABANDONED"
)

// order ranks the states of each kind of exchange: a transition is allowed
// only to a higher rank, and never out of a terminal state.
var order = map[string]int{
	string(ConnExInvitation): 1, string(ConnExRequest): 2, string(ConnExResponse): 3,
	string(CredExProposal): 1, string(CredExOffer): 2, string(CredExIssued): 4,
	string(ProofExPresented): 3,
	// REQUEST is 2 for connection exchanges and proof exchanges, 3 for
	// credential exchanges: see rank.
	"DONE": 10, "ABANDONED": 10,
}

// rank is the order of state s within its kind of exchange.
func rank[S ~string](s S) int {
	if _, cred := any(s).(CredExState); cred && string(s) == "REQUEST" {
		return 3
	}
	if string(s) == "REQUEST" {
		return 2
	}
	return order[string(s)]
}

// Terminal reports whether s is DONE or ABANDONED.
func Terminal[S ~string](s S) bool { return s == "DONE" || s == "ABANDONED" }

// CanMove reports whether an exchange may go from state from to state to:
// only forward, never out of DONE or ABANDONED, and ABANDONED from any
// state that is not terminal.
func CanMove[S ConnExState | CredExState | ProofExState](from, to S) bool {
	if Terminal(from) || rank(from) == 0 || rank(to) == 0 {
		return false
	}
	if to == "ABANDONED" {
		return true
	}
	return rank(to) > rank(from)
}
