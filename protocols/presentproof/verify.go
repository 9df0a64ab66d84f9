package presentproof

import (
	"context"
	"errors"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/anoncreds"
)

// Verification. A presentation is stored (PRESENTED) with the message
// that brought it; verification runs after that commit, off the message's
// path (it may fetch status lists), and its result moves the exchange to
// DONE together with the ack or problem report it sends, in one unit of
// work. Resume verifies what a restart interrupted.

// verifyTimeout bounds one verification.
const verifyTimeout = time.Minute

// verifyLease is how long an instance claims a verification: longer than
// it may take, so that the lease outlives it; a crashed holder's claim
// expires after it and Resume (on any instance) verifies again.
const verifyLease = verifyTimeout + 30*time.Second

// verifyLeaseName is the lease of exchange id's verification.
func verifyLeaseName(id string) string { return "presentproof/verify/" + id }

// ProblemCodeNotVerified is the code of the problem report sent, when the
// request asked to confirm (will_confirm), for a presentation that did not
// verify.
const ProblemCodeNotVerified = "e.p.msg.presentation-not-verified"

// verifyLater verifies exchange id in the background.
func (s *Service) verifyLater(id string) {
	s.mu.Lock()
	if s.closed || s.running[id] {
		s.mu.Unlock()
		return
	}
	s.running[id] = true
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.running, id)
			s.mu.Unlock()
		}()
		s.slots <- struct{}{}
		defer func() { <-s.slots }()
		ctx, cancel := context.WithTimeout(context.Background(), verifyTimeout)
		defer cancel()
		// Another instance sharing the store may verify the same exchange
		// (its Resume, or the handler that stored the presentation): the
		// one holding the lease does. The verdict's commit checks the
		// state anyway, so a double run could not commit two outcomes,
		// but it would verify twice.
		lease := verifyLeaseName(id)
		ok, err := s.cfg.Leases.Lead(ctx, lease, verifyLease)
		if err != nil {
			s.log.Warn("could not claim a verification; Resume tries again", "exchange", id, "err", err)
			return
		}
		if !ok {
			s.log.Debug("verification claimed by another instance", "exchange", id)
			return
		}
		defer func() {
			rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer rcancel()
			if err := s.cfg.Leases.Release(rctx, lease); err != nil {
				s.log.Debug("could not release a verification's lease; it expires", "exchange", id, "err", err)
			}
		}()
		if err := s.Verify(ctx, id); err != nil {
			s.log.Warn("verification did not complete; Resume tries again", "exchange", id, "err", err)
		}
	}()
}

// Resume starts the verification of every VERIFIER exchange left in
// PRESENTED (by a restart, a crashed instance, or a verification that
// could not run). Each verification runs under its lease (Config.Leases):
// instances sharing a store may all call Resume; each exchange is verified
// by one of them.
func (s *Service) Resume(ctx context.Context) error {
	after := ""
	for {
		items, next, err := s.ProofExchanges(ctx, aip.Page{NextToken: after, Limit: aip.MaxLimit},
			aip.ProofExchangeFilter{Role: aip.ProofExVerifier, States: []aip.ProofExState{aip.ProofExPresented}})
		if err != nil {
			return err
		}
		for _, x := range items {
			s.verifyLater(x.ID)
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// Verify verifies the presentation of a VERIFIER exchange in PRESENTED
// and moves it to DONE with the result; it does nothing to an exchange in
// any other state. The daemon need not call it: the handler and Resume
// do.
func (s *Service) Verify(ctx context.Context, id string) error {
	r, err := load(ctx, agent.NewWork(s.cfg.Store.Records), id)
	if err != nil {
		return err
	}
	if r.MyRole != aip.ProofExVerifier || r.State != aip.ProofExPresented || r.Presentation == nil || r.Request == nil {
		return nil
	}
	result, err := s.verify(ctx, r)
	if err != nil {
		return err
	}
	result.Comment = r.Messages.Presentation.Comment
	var reply agent.Message
	var outs []*agent.OutboundMessage
	if r.WillConfirm {
		if result.VerificationResult == aip.Verified {
			reply, err = agent.NewMessage(TypeAck, AckBody{Status: "OK"})
		} else {
			reply, err = agent.NewMessage(agent.ProblemReportType, agent.ProblemReportBody{Code: ProblemCodeNotVerified,
				Comment: "the presentation was not verified"})
			reply.PThID = r.ThreadID
		}
		if err != nil {
			return err
		}
		reply.ThID = r.ThreadID
		if reply.Type == agent.ProblemReportType {
			reply.ThID = ""
		}
		if outs, err = s.pack(ctx, reply, r.MyDID, r.TheirDID); err != nil {
			return err
		}
	}
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		cur, err := load(ctx, w, id)
		if err != nil {
			return err
		}
		if cur.MyRole != aip.ProofExVerifier || cur.State != aip.ProofExPresented {
			return errAlreadyMoved
		}
		cur.State, cur.Modified, cur.Messages.Presentation, cur.Presentation = aip.ProofExDone, s.now(), result, nil
		w.Enqueue(outs...)
		if err := move(w, cur, aip.ProofExPresented); err != nil {
			return err
		}
		return s.publish(w, cur)
	})
	if errors.Is(err, errAlreadyMoved) {
		return nil
	}
	if err == nil {
		s.log.InfoContext(ctx, "presentation verified", "exchange", id, "result", result.VerificationResult)
	}
	return storeError(err)
}

var errAlreadyMoved = errors.New("exchange moved meanwhile")

// verify runs the format's verification of r's presentation against r's
// request.
func (s *Service) verify(ctx context.Context, r *record) (*aip.ProofPresentation, error) {
	req, err := attachmentJSON(*r.Request)
	if err != nil {
		return nil, err
	}
	pres, err := attachmentJSON(*r.Presentation)
	if err != nil {
		return notVerified(&aip.ProofPresentation{}, agent.ErrorComment(err)), nil
	}
	switch r.Request.Format {
	case FormatAnoncredsRequest, FormatIndyRequest:
		pr, err := anoncreds.ParsePresentationRequest(req)
		if err != nil {
			return nil, err
		}
		return s.anoncredsVerify(ctx, pr, pres)
	case FormatDIFDefinition:
		if s.cfg.W3C == nil {
			return notVerified(&aip.ProofPresentation{W3C: &aip.W3CProofPresentation{PresentationJSON: string(pres)}},
				"W3C presentations are not available in this agent"), nil
		}
		return s.cfg.W3C.Verify(ctx, req, pres, r.TheirDID)
	}
	return notVerified(&aip.ProofPresentation{}, "unsupported request format "+clip(r.Request.Format)), nil
}
