package email

import (
	"errors"

	"github.com/agentd/agentd/agent"
)

// PackedMessages returns the DIDComm messages of a whole mail (.eml), taken
// out as the SMTP listener does (Extract). A mail that holds none or that
// cannot be read is an *agent.Error with code e.p.msg.
func PackedMessages(mail []byte) ([][]byte, error) {
	parts, err := Extract(mail)
	if err != nil {
		var ce *ContentError
		if errors.As(err, &ce) || errors.Is(err, ErrNoDIDComm) {
			return nil, agent.Wrap(agent.CodeMsg, err, err.Error())
		}
		return nil, err
	}
	out := make([][]byte, 0, len(parts))
	for _, p := range parts {
		out = append(out, p.Data)
	}
	return out, nil
}
