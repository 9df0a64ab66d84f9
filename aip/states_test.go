package aip

import "testing"

func TestCanMoveProof(t *testing.T) {
	ok := [][2]ProofExState{
		{ProofExProposal, ProofExRequest}, {ProofExRequest, ProofExPresented},
		{ProofExPresented, ProofExDone}, {ProofExRequest, ProofExDone},
		{ProofExProposal, ProofExAbandoned}, {ProofExPresented, ProofExAbandoned},
	}
	for _, c := range ok {
		if !CanMove(c[0], c[1]) {
			t.Errorf("%s -> %s refused", c[0], c[1])
		}
	}
	bad := [][2]ProofExState{
		{ProofExRequest, ProofExProposal}, {ProofExPresented, ProofExRequest},
		{ProofExDone, ProofExAbandoned}, {ProofExAbandoned, ProofExRequest},
		{ProofExDone, ProofExPresented}, {ProofExRequest, ProofExRequest}, {"", ProofExRequest},
		{ProofExRequest, "BOGUS"},
	}
	for _, c := range bad {
		if CanMove(c[0], c[1]) {
			t.Errorf("%s -> %s allowed", c[0], c[1])
		}
	}
}

func TestCanMoveCredential(t *testing.T) {
	path := []CredExState{CredExProposal, CredExOffer, CredExRequest, CredExIssued, CredExDone}
	for i := range path {
		for j := range path {
			if got := CanMove(path[i], path[j]); got != (j > i && i < len(path)-1) {
				t.Errorf("%s -> %s: %v", path[i], path[j], got)
			}
		}
	}
	if CanMove(CredExDone, CredExAbandoned) || !CanMove(CredExIssued, CredExAbandoned) {
		t.Error("abandon rules")
	}
}

func TestCanMoveConnection(t *testing.T) {
	if !CanMove(ConnExInvitation, ConnExDone) || !CanMove(ConnExRequest, ConnExResponse) || CanMove(ConnExResponse, ConnExRequest) {
		t.Error("connection transitions")
	}
}
