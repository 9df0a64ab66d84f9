package iden3auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
	"github.com/iden3/go-circuits/v2"
	"github.com/iden3/go-iden3-auth/v2/pubsignals"
	core "github.com/iden3/go-iden3-core/v2"
	"github.com/iden3/go-jwz/v2"
	"github.com/iden3/iden3comm/v2/protocol"
)

// CodeRefused is the problem code of a response that failed verification
// (HTTP 400): the reason says which check.
const CodeRefused = "e.p.trust.crypto.iden3"

// chainRetry is the Retry-After given when the chain could not be read.
const chainRetry = 30 * time.Second

// Verify takes the wallet's answer to session id, a JWZ-packed
// authorization response, and records the verdict. It refuses, changing
// nothing, an unknown, expired, cancelled or answered session; a response
// that fails go-iden3-auth's FullVerify with the stored request; a
// response whose thid is not the request's or that answers a scope not
// requested; and a response accepted before. When the chain cannot be read
// the error has agent.CodeBusy and a RetryAfter: the session stays pending
// and the wallet may send again.
func (s *Service) Verify(ctx context.Context, id string, token []byte) (sess Session, err error) {
	start := time.Now()
	defer func() { s.cfg.Observe(answerResult(err), time.Since(start)) }()
	sess, err = s.verify(ctx, id, token)
	if err != nil && agent.HasCode(err, CodeRefused) {
		s.countRefusal(ctx, id, err)
	}
	return sess, err
}

// countRefusal counts a refused answer of a session that has a refusal
// limit, and fails the session (with its hooks and webhook, in one unit of
// work) when the limit is reached. A session without a limit, or no longer
// pending, is left alone.
func (s *Service) countRefusal(ctx context.Context, id string, refusal error) {
	now := s.cfg.Now()
	failed := false
	err := s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		failed = false
		var cur Session
		if err := getIn(ctx, w, id, &cur); err != nil {
			return err
		}
		if cur.MaxRefusals <= 0 || cur.Effective(now) != StatePending {
			return errSkip
		}
		cur.Refusals++
		cur.Updated = now
		if cur.Refusals >= cur.MaxRefusals {
			reason := fmt.Sprintf("%d answers refused; the last: %s", cur.Refusals, clip(agent.ErrorComment(refusal), 200))
			if err := cur.moveTo(StateFailed, now, reason); err != nil {
				return err
			}
			failed = true
			if err := w.PutJSON(KindSession, id, &cur); err != nil {
				return err
			}
			return s.notify(ctx, w, &cur, now)
		}
		return w.PutJSON(KindSession, id, &cur)
	})
	switch {
	case err == nil && failed:
		s.cfg.Logger.Info("iden3: session failed", "session", id, "refusals", "limit reached")
	case err != nil && !errors.Is(err, errSkip) && !agent.HasCode(err, agent.CodeNotFound):
		s.cfg.Logger.Warn("iden3: counting a refused answer failed", "session", id, "err", err)
	}
}

// answerResult is the metrics label of Verify's outcome.
func answerResult(err error) string {
	switch {
	case err == nil:
		return "verified"
	case errors.Is(err, ErrChainUnavailable):
		return "chain-unavailable"
	case agent.HasCode(err, agent.CodeBusy):
		return "busy"
	case agent.HasCode(err, CodeRefused), agent.HasCode(err, agent.CodeMsg), agent.HasCode(err, agent.CodeTooLarge):
		return "refused"
	}
	return "not-answerable"
}

func (s *Service) verify(ctx context.Context, id string, token []byte) (Session, error) {
	now := s.cfg.Now()
	sess, err := s.load(ctx, id)
	if err != nil {
		return Session{}, err
	}
	if err := answerable(&sess, now); err != nil {
		return Session{}, err
	}
	tok := normalizeToken(token)
	switch {
	case tok == "":
		return Session{}, agent.Errorf(agent.CodeMsg, "the body must be the wallet's JWZ token")
	case len(tok) > MaxTokenBytes:
		return Session{}, agent.Errorf(agent.CodeTooLarge, "the token is larger than %d bytes", MaxTokenBytes)
	}
	// A token of another thread is refused before the proofs are checked
	// (the check after FullVerify holds whatever this one says).
	if thid, err := ThreadOf([]byte(tok)); err == nil && thid != sess.Request.ThreadID {
		return Session{}, agent.Errorf(CodeRefused, "response refused: thid %q is not the request's thid %s", clip(thid, 80), sess.Request.ThreadID)
	}
	if err := s.acquire(ctx); err != nil {
		return Session{}, err
	}
	var resp *protocol.AuthorizationResponseMessage
	err = safely(func() (err error) {
		resp, err = s.verifier.FullVerify(ctx, tok, sess.Request, s.opts...)
		return err
	})
	s.release()
	if err != nil {
		return Session{}, s.refusal(id, err)
	}
	if err := checkBinding(&sess.Request, resp); err != nil {
		s.cfg.Logger.Info("iden3: response refused", "session", id, "reason", agent.ErrorComment(err))
		return Session{}, err
	}
	result, err := results(resp, now)
	if err != nil {
		return Session{}, agent.Wrap(CodeRefused, err, "response refused: "+clip(err.Error(), 200))
	}
	var out Session
	err = s.cfg.Store.Update(ctx, func(w *agent.Work) error {
		var cur Session
		if err := getIn(ctx, w, id, &cur); err != nil {
			return err
		}
		if err := answerable(&cur, now); err != nil {
			return err
		}
		if err := cur.moveTo(StateVerified, now, ""); err != nil {
			return err
		}
		cur.Result, cur.ResponseID = result, resp.ID
		if err := w.PutJSON(KindSession, id, &cur); err != nil {
			return err
		}
		w.Remember(replayKeyPrefix+tokenHash(tok), now.Add(replayKeep))
		out = cur
		cur.Token = tok
		return s.notify(ctx, w, &cur, now)
	})
	if errors.Is(err, agent.ErrReplay) {
		return Session{}, agent.Wrap(agent.CodeMsgReplay, err, "this response was already accepted")
	}
	if err != nil {
		return Session{}, err
	}
	s.cfg.Logger.Info("iden3: session verified", "session", id, "user", result.UserDID, "scopes", len(result.Scopes))
	return out, nil
}

// safely runs fn, turning a panic into an error: the libraries panic on
// some malformed input (go-jwz on a header without crit), which is the
// wallet's fault, not ours.
func safely(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("malformed token: %v", v)
		}
	}()
	return fn()
}

// slotWait is how long an answer waits for a verification slot.
var slotWait = 5 * time.Second

// acquire takes a verification slot, waiting up to slotWait.
func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(slotWait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-t.C:
		return &agent.Error{Code: agent.CodeBusy, RetryAfter: 5 * time.Second,
			Comment: "the verifier is busy; the session is still pending, send the response again shortly"}
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) release() { <-s.slots }

// refusal turns a FullVerify error into the answer: the chain could not be
// read (retry), or the response failed a check (refused, with the
// library's reason).
func (s *Service) refusal(id string, err error) error {
	if isChainUnavailable(err) {
		s.cfg.Logger.Warn("iden3: chain unavailable, response not verified", "session", id, "err", err)
		chain := "the chain"
		var ce *chainError
		if errors.As(err, &ce) {
			chain = "chain " + ce.chain
		}
		return &agent.Error{Code: agent.CodeBusy, Err: err, RetryAfter: chainRetry,
			Comment: chain + " could not be read to check the proof; the session is still pending, send the response again later"}
	}
	s.cfg.Logger.Info("iden3: response refused", "session", id, "reason", clip(err.Error(), 300))
	return agent.Wrap(CodeRefused, err, "response refused: "+clip(err.Error(), 300))
}

// checkBinding makes the checks FullVerify leaves out: the response is an
// authorization response in the request's thread, and each of its proofs
// answers a scope of the request, once.
func checkBinding(req *protocol.AuthorizationRequestMessage, resp *protocol.AuthorizationResponseMessage) error {
	if resp.Type != protocol.AuthorizationResponseMessageType {
		return agent.Errorf(CodeRefused, "response refused: type %q is not %s", clip(string(resp.Type), 80), protocol.AuthorizationResponseMessageType)
	}
	if resp.ThreadID != req.ThreadID {
		return agent.Errorf(CodeRefused, "response refused: thid %q is not the request's thid %s", clip(resp.ThreadID, 80), req.ThreadID)
	}
	requested := map[uint32]string{}
	for _, sc := range req.Body.Scope {
		requested[sc.ID] = sc.CircuitID
	}
	seen := map[uint32]bool{}
	for _, p := range resp.Body.Scope {
		if p.ExtendedID != nil {
			return agent.Errorf(CodeRefused, "response refused: scope id %s was not requested", p.ExtendedID)
		}
		if _, ok := requested[p.ID]; !ok {
			return agent.Errorf(CodeRefused, "response refused: scope id %d was not requested", p.ID)
		}
		if seen[p.ID] {
			return agent.Errorf(CodeRefused, "response refused: scope id %d is answered twice", p.ID)
		}
		seen[p.ID] = true
	}
	return nil
}

// results reads what the verified response proves: per proof, the
// circuit's public signals (issuer, proof kind, nullifier...).
func results(resp *protocol.AuthorizationResponseMessage, now time.Time) (*Result, error) {
	r := &Result{UserDID: resp.From, Scopes: []ScopeResult{}, Verified: now}
	for _, p := range resp.Body.Scope {
		sr, err := scopeResult(p)
		if err != nil {
			return nil, err
		}
		r.Scopes = append(r.Scopes, sr)
	}
	return r, nil
}

// V3 proofType signal values (go-circuits credentialAtomicQueryV3).
const (
	v3ProofTypeSig = 1 // BJJSignature2021
	v3ProofTypeMTP = 2 // Iden3SparseMerkleTreeProof
)

// scopeResult reads one verified proof's public signals.
func scopeResult(p protocol.ZeroKnowledgeProofResponse) (ScopeResult, error) {
	sr := ScopeResult{ID: p.ID, CircuitID: p.CircuitID}
	if len(p.VerifiablePresentation) > 0 && string(p.VerifiablePresentation) != "null" {
		sr.VerifiablePresentation = p.VerifiablePresentation
	}
	cv, err := pubsignals.GetVerifier(circuits.CircuitID(p.CircuitID))
	if err != nil {
		return sr, fmt.Errorf("scope %d: circuit %s: %w", p.ID, p.CircuitID, err)
	}
	b, err := json.Marshal(p.PubSignals)
	if err != nil {
		return sr, err
	}
	if err := cv.PubSignalsUnmarshal(b); err != nil {
		return sr, fmt.Errorf("scope %d: public signals: %w", p.ID, err)
	}
	var issuer *core.ID
	switch v := cv.(type) {
	case *pubsignals.AtomicQuerySigV2:
		sr.ProofKind, issuer, sr.Timestamp = ProofKindSig, v.IssuerID, v.Timestamp
	case *pubsignals.AtomicQueryMTPV2:
		sr.ProofKind, issuer, sr.Timestamp = ProofKindMTP, v.IssuerID, v.Timestamp
	case *pubsignals.AtomicQueryV3:
		switch v.ProofType {
		case v3ProofTypeSig:
			sr.ProofKind = ProofKindSig
		case v3ProofTypeMTP:
			sr.ProofKind = ProofKindMTP
		default:
			return sr, fmt.Errorf("scope %d: unknown proofType signal %d", p.ID, v.ProofType)
		}
		issuer, sr.Timestamp = v.IssuerID, v.Timestamp
		sr.Nullifier, sr.LinkID, sr.OperatorOutput = nonZero(v.Nullifier), nonZero(v.LinkID), nonZero(v.OperatorOutput)
	case *pubsignals.LinkedMultiQuery:
		sr.LinkID = nonZero(v.LinkID)
	}
	if issuer != nil {
		did, err := core.ParseDIDFromID(*issuer)
		if err != nil {
			return sr, fmt.Errorf("scope %d: issuer id: %w", p.ID, err)
		}
		sr.Issuer = did.String()
	}
	return sr, nil
}

func nonZero(n *big.Int) string {
	if n == nil || n.Sign() == 0 {
		return ""
	}
	return n.String()
}

// normalizeToken trims the token and takes it out of JSON quotes: some
// clients post the JWZ as a JSON string.
func normalizeToken(token []byte) string {
	tok := strings.TrimSpace(string(token))
	if len(tok) >= 2 && tok[0] == '"' && tok[len(tok)-1] == '"' {
		var s string
		if json.Unmarshal([]byte(tok), &s) == nil {
			tok = strings.TrimSpace(s)
		}
	}
	return tok
}

// tokenPayload returns the payload of a JWZ, or of a compact JWS
// (header.payload.signature, base64url): what it says, unverified.
func tokenPayload(tok string) ([]byte, error) {
	var t *jwz.Token
	if err := safely(func() (err error) { t, err = jwz.Parse(tok); return err }); err == nil {
		return t.GetPayload(), nil
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, agent.Errorf(agent.CodeMsg, "not a JWZ or compact JWS token")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, agent.Wrap(agent.CodeMsg, err, "not a JWZ or compact JWS token: the payload is not base64url")
	}
	return payload, nil
}

// ThreadOf reads the thid of a JWZ or compact JWS token's payload without
// verifying it: for routing a response that arrives without its session id
// (the DIDComm endpoint) to Verify, which verifies everything.
func ThreadOf(token []byte) (string, error) {
	payload, err := tokenPayload(normalizeToken(token))
	if err != nil {
		return "", err
	}
	var m struct {
		Type     string `json:"type"`
		ThreadID string `json:"thid"`
	}
	if err := json.Unmarshal(payload, &m); err != nil {
		return "", agent.Wrap(agent.CodeMsg, err, "the token's payload is not a JSON message")
	}
	if m.Type != string(protocol.AuthorizationResponseMessageType) {
		return "", agent.Errorf(agent.CodeMsgUnsupported, "message type %q is not handled (agentd takes %s)", clip(m.Type, 80), protocol.AuthorizationResponseMessageType)
	}
	if m.ThreadID == "" {
		return "", agent.Errorf(agent.CodeMsg, "the authorization response has no thid")
	}
	return m.ThreadID, nil
}

// Recheck verifies token again against session id's stored request and the
// chain as it is now, changing nothing: for a relying party that asks
// whether a proof it was given still holds. The session may be in any
// state. A token that fails a check gives an error with CodeRefused (the
// reason says which); a chain that cannot be read, agent.CodeBusy.
func (s *Service) Recheck(ctx context.Context, id string, token []byte) (*Result, error) {
	sess, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	tok := normalizeToken(token)
	switch {
	case tok == "":
		return nil, agent.Errorf(agent.CodeMsg, "the proof must be the wallet's JWZ token")
	case len(tok) > MaxTokenBytes:
		return nil, agent.Errorf(agent.CodeTooLarge, "the token is larger than %d bytes", MaxTokenBytes)
	}
	if thid, err := ThreadOf([]byte(tok)); err == nil && thid != sess.Request.ThreadID {
		return nil, agent.Errorf(CodeRefused, "proof refused: it answers another request")
	}
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	var resp *protocol.AuthorizationResponseMessage
	err = safely(func() (err error) {
		resp, err = s.verifier.FullVerify(ctx, tok, sess.Request, s.opts...)
		return err
	})
	s.release()
	if err != nil {
		return nil, s.refusal(id, err)
	}
	if err := checkBinding(&sess.Request, resp); err != nil {
		return nil, err
	}
	result, err := results(resp, s.cfg.Now())
	if err != nil {
		return nil, agent.Wrap(CodeRefused, err, "proof refused: "+clip(err.Error(), 200))
	}
	return result, nil
}
