package provecontrol

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/agentd/agentd/agent"
)

// One-time links carry a challenge where an encrypted message does not fit:
// an SMS, a Discord message, a printed letter. The link LinkBaseURL +
// "/c/" + token serves the encrypted challenge exactly once. Only the
// SHA-256 of the token is stored, so the database does not hold usable links.

// LinkPath is the path prefix of one-time links.
const LinkPath = "/c/"

// tokenBytes is the size of a link token: 256 random bits (43 base64url characters).
const tokenBytes = 32

// Errors of FetchLink.
var (
	// ErrLinkUnknown: no such link (never issued, or deleted after the
	// retention). Its code, agent.CodeNotFound, makes the link answer 404.
	ErrLinkUnknown = agent.Errorf(agent.CodeNotFound, "no such link")
	// ErrLinkGone: the link was used already, or its challenge expired or
	// ended. Its code, agent.CodeGone, makes the link answer 410.
	ErrLinkGone = agent.Errorf(agent.CodeGone, "the link was used already or has expired")
)

// link is a one-time link record, stored under the hex SHA-256 of its token.
type link struct {
	ChallengeID string    `json:"challenge_id"`
	Payload     []byte    `json:"payload,omitempty"` // the encrypted challenge, until fetched
	MediaType   string    `json:"media_type"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires"`
	Fetched     time.Time `json:"fetched,omitzero"`
}

func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// newLink stages the packed challenge behind a fresh token in w and returns
// the link URL.
func (s *Service) newLink(w *agent.Work, ch *Challenge, packed []byte) (string, error) {
	token := randomString(tokenBytes)
	l := link{ChallengeID: ch.ID, Payload: packed, MediaType: agent.MediaTypeEncrypted, Created: s.now(), Expires: ch.Expires}
	if err := w.PutJSON(KindLink, tokenKey(token), &l); err != nil {
		return "", err
	}
	return s.cfg.Verifier.LinkBaseURL + LinkPath + token, nil
}

// validToken reports whether token looks like one newLink makes.
func validToken(token string) bool {
	if len(token) != 43 {
		return false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// FetchLink returns the encrypted challenge behind a one-time link token and
// its media type, once: afterwards, or after the challenge expired or
// ended, it returns ErrLinkGone; for a token it never issued, ErrLinkUnknown.
func (s *Service) FetchLink(ctx context.Context, token string) ([]byte, string, error) {
	if !validToken(token) {
		return nil, "", ErrLinkUnknown
	}
	key := tokenKey(token)
	var payload []byte
	var mt, challenge string
	// The link is read through the work: of two fetches at the same time,
	// the second one's commit conflicts, and it then finds the link used.
	err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		var l link
		if err := getIn(ctx, w, KindLink, key, &l); err != nil {
			if isNotFound(err) {
				return ErrLinkUnknown
			}
			return err
		}
		now := s.now()
		if !l.Fetched.IsZero() || len(l.Payload) == 0 || !now.Before(l.Expires) {
			return ErrLinkGone
		}
		var ch Challenge
		if err := getIn(ctx, w, KindChallenge, l.ChallengeID, &ch); err != nil || ch.State != StatePending {
			return ErrLinkGone
		}
		payload, mt, challenge = l.Payload, l.MediaType, l.ChallengeID
		l.Payload, l.Fetched = nil, now
		return w.PutJSON(KindLink, key, &l)
	})
	if err != nil {
		return nil, "", err
	}
	s.log.InfoContext(ctx, "one-time link used", "challenge", challenge)
	return payload, mt, nil
}

// sweepLinks drops the payload of expired links and deletes links older
// than the retention.
func (s *Service) sweepLinks(ctx context.Context, now time.Time) (int, error) {
	var expired, old []string
	err := each(ctx, s.st, KindLink, "", func(id string, l *link) (bool, error) {
		switch {
		case now.Sub(l.Expires) > s.cfg.Verifier.Retention:
			old = append(old, id)
		case len(l.Payload) > 0 && !now.Before(l.Expires):
			expired = append(expired, id)
		}
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range old {
		if s.cfg.Store.Update(ctx, func(w *agent.Work) error { w.Delete(KindLink, id); return nil }) == nil {
			n++
		}
	}
	for _, id := range expired {
		dropped := false
		err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
			var l link
			dropped = false
			if getIn(ctx, w, KindLink, id, &l) != nil || len(l.Payload) == 0 {
				return nil
			}
			l.Payload, dropped = nil, true
			return w.PutJSON(KindLink, id, &l)
		})
		if err == nil && dropped {
			n++
		}
	}
	return n, nil
}
