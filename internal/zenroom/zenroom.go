// Package zenroom runs Zenroom (npm zenroom, pinned in interop/zenroom) to
// make a keyring and its public keys the way Zenflows' front end does, for
// the tests of the user accounts: the keys the agent is given in a test
// are the ones Zenroom really writes.
package zenroom

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"time"

	"github.com/agentd/agentd/internal/nodepeer"
)

// Version is the Zenroom release the harness pins.
const Version = "5.38.1"

// Requirement is what Keygen needs: node and npm zenroom in interop/zenroom.
var Requirement = nodepeer.Requirement{
	Driver: "zenroom", Package: "zenroom", Version: Version, NodeVersion: ">= 20",
	InstallHint: "run make deps (npm ci --prefix interop/zenroom)",
}

// Output is what keygen.mjs prints: Zenroom's JSON, unchanged.
type Output struct {
	// Keyring holds the secret keys (they stay with the test).
	Keyring map[string]string `json:"keyring"`
	// Pubkeys is the "pubkeys" base64 dictionary.
	Pubkeys map[string]string `json:"pubkeys"`
	// EthereumAddress is the address Zenroom derived.
	EthereumAddress string `json:"ethereum_address"`
	// Raw is the whole output.
	Raw json.RawMessage `json:"-"`
}

// Keygen runs interop/zenroom/keygen.mjs once. An error names the fix when
// node or the package is missing.
func Keygen(ctx context.Context) (*Output, error) {
	dir, err := Requirement.Check()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "keygen.mjs")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("zenroom keygen: %v: %s", err, stderr.String())
	}
	var out Output
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("zenroom keygen printed no JSON: %v: %q", err, stdout.String())
	}
	out.Raw = bytes.Clone(stdout.Bytes())
	return &out, nil
}
