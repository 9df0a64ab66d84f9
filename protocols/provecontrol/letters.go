package provecontrol

import (
	"context"
	"time"

	"github.com/agentd/agentd/agent"
)

// Letter is a printable letter for an Address challenge, queued for the
// operator to print and mail. Its PDF holds the one-time link (as text and
// as a QR code), which is why listings leave the PDF out.
type Letter struct {
	ID      string    `json:"id"` // the challenge id
	User    string    `json:"user"`
	Address string    `json:"address"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// Sent is when the operator marked it as mailed.
	Sent time.Time `json:"sent,omitzero"`
	PDF  []byte    `json:"pdf"`
}

// LetterView is what the admin API lists of a letter.
type LetterView struct {
	ID      string    `json:"id"`
	User    string    `json:"user"`
	Address string    `json:"address"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Sent    time.Time `json:"sent,omitzero"`
	Bytes   int       `json:"bytes"`
	// ChallengeState is the state of the letter's challenge.
	ChallengeState ChallengeState `json:"challenge_state"`
}

// newLetter renders the letter for an Address challenge and stages it in w.
func (s *Service) newLetter(w *agent.Work, ch *Challenge, link string) error {
	pdf, err := s.cfg.Channels.Letters.RenderLetter(LetterContent{
		Address: ch.Subject, VerifierName: s.cfg.Verifier.Name, Verifier: ch.Verifier, User: ch.User,
		Link: link, Expires: ch.Expires, Reference: ch.ID,
	})
	if err != nil {
		return err
	}
	l := Letter{ID: ch.ID, User: ch.User, Address: ch.Subject, Created: s.now(), Expires: ch.Expires, PDF: pdf}
	return w.PutJSON(KindLetter, l.ID, &l)
}

func (s *Service) letterView(ctx context.Context, l *Letter) LetterView {
	v := LetterView{ID: l.ID, User: l.User, Address: l.Address, Created: l.Created, Expires: l.Expires, Sent: l.Sent, Bytes: len(l.PDF)}
	var c Challenge
	if s.st.get(ctx, KindChallenge, l.ID, &c) == nil {
		v.ChallengeState = c.view(s.now()).State
	}
	return v
}

// Letters lists the letter queue after the id after; unsent only lists the
// letters not marked as sent yet.
func (s *Service) Letters(ctx context.Context, unsent bool, after string, limit int) ([]LetterView, error) {
	return list(ctx, s.st, KindLetter, after, limit,
		func(l *Letter) bool { return !unsent || l.Sent.IsZero() },
		func(l *Letter) LetterView { return s.letterView(ctx, l) })
}

// LetterPDF returns the PDF of a letter.
func (s *Service) LetterPDF(ctx context.Context, id string) ([]byte, error) {
	var l Letter
	if err := s.st.get(ctx, KindLetter, id, &l); err != nil {
		if isNotFound(err) {
			return nil, notFound("letter", id)
		}
		return nil, err
	}
	return l.PDF, nil
}

// MarkLetterSent records that the operator mailed the letter.
func (s *Service) MarkLetterSent(ctx context.Context, id string) (LetterView, error) {
	var l Letter
	err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		if err := getIn(ctx, w, KindLetter, id, &l); err != nil {
			if isNotFound(err) {
				return notFound("letter", id)
			}
			return err
		}
		if l.Sent.IsZero() {
			l.Sent = s.now()
			return w.PutJSON(KindLetter, id, &l)
		}
		return nil
	})
	if err != nil {
		if isNotFound(err) {
			return LetterView{}, err
		}
		return LetterView{}, storeError(err, "could not update the letter")
	}
	return s.letterView(ctx, &l), nil
}
