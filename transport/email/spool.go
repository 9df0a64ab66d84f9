package email

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/agentd/agentd/agent"
)

// SpoolKind is the agent.Records kind under which accepted mails wait to be
// processed; SpoolQuarantineKind keeps the ones that could not be read back.
const (
	SpoolKind           = "smtp-spool"
	SpoolQuarantineKind = "smtp-spool-unreadable"
)

// spooled is one accepted mail: the DIDComm messages taken from it and the
// envelope it came with (for logs).
type spooled struct {
	ID        string    `json:"id"`
	Received  time.Time `json:"received"`
	Client    string    `json:"client"`
	Helo      string    `json:"helo,omitempty"`
	From      string    `json:"from"`
	To        []string  `json:"to"`
	Parts     []Part    `json:"parts"`
	Attempts  int       `json:"attempts,omitempty"`
	LastTry   time.Time `json:"lastTry,omitzero"`
	LastError string    `json:"lastError,omitempty"`
}

// spool keeps accepted mails in an agent.Records until they are processed.
// Records.Put is durable on return, which is what lets the server answer 250.
type spool struct{ rec agent.Records }

// newSpoolID returns an id that sorts in arrival order.
func newSpoolID(now time.Time) string {
	return fmt.Sprintf("%016x-%s", now.UnixNano(), agent.NewID()[:8])
}

func (s spool) put(ctx context.Context, m *spooled) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return s.rec.Put(ctx, SpoolKind, m.ID, b)
}

func (s spool) delete(ctx context.Context, id string) error {
	return s.rec.Delete(ctx, SpoolKind, id)
}

// next returns up to limit spooled mails after the id after, oldest first.
// Records that can't be decoded are moved to SpoolQuarantineKind and
// reported in bad.
func (s spool) next(ctx context.Context, after string, limit int) (out []*spooled, bad []string, err error) {
	recs, err := s.rec.List(ctx, SpoolKind, after, limit)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range recs {
		var m spooled
		if err := json.Unmarshal(r.Value, &m); err != nil || m.ID != r.ID {
			if perr := s.rec.Put(ctx, SpoolQuarantineKind, r.ID, r.Value); perr == nil {
				s.rec.Delete(ctx, SpoolKind, r.ID)
			}
			bad = append(bad, r.ID)
			continue
		}
		out = append(out, &m)
	}
	return out, bad, nil
}

// count returns the number of mails waiting.
func (s spool) count(ctx context.Context) (int, error) {
	n, after := 0, ""
	for {
		recs, err := s.rec.List(ctx, SpoolKind, after, 500)
		if err != nil {
			return 0, err
		}
		n += len(recs)
		if len(recs) < 500 {
			return n, nil
		}
		after = recs[len(recs)-1].ID
	}
}
