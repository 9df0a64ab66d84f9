package provecontrol

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/agentd/agentd/agent"
)

// Challenges reach the user outside the DIDComm endpoint too: a one-time
// link the verifier sent (fetched here), a mail or packed message the
// operator pastes (imported), or a POST to the well-known challenge path
// (received). Intake checks that such a message is a verificationchallenge
// and hands it to the router, so that it is taken exactly as one that
// arrived at the endpoint.

// Inbound is the router: Check unpacks and checks a message without acting
// on it, Receive handles it.
type Inbound interface {
	Check(ctx context.Context, transport string, raw []byte) (*agent.Message, error)
	Receive(ctx context.Context, transport string, raw []byte) (*agent.Reply, error)
}

// HTTPDoer sends HTTP requests; *http.Client is one.
type HTTPDoer interface {
	Do(req *http.Request) (*http.Response, error)
}

// IntakeConfig is what an Intake needs.
type IntakeConfig struct {
	// Service holds the challenges taken.
	Service *Service
	// Inbound is the router the challenges are handed to.
	Inbound Inbound
	// HTTP fetches one-time links; nil means http.DefaultClient.
	HTTP HTTPDoer
	// UserAgent is sent when fetching a link.
	UserAgent string
	// ExtractMail returns the packed DIDComm messages of a whole mail
	// (transport/email.PackedMessages); nil refuses mails.
	ExtractMail func(mail []byte) ([][]byte, error)
}

// Intake takes challenges that came outside the DIDComm endpoint.
type Intake struct{ cfg IntakeConfig }

// NewIntake returns an Intake.
func NewIntake(cfg IntakeConfig) *Intake {
	if cfg.HTTP == nil {
		cfg.HTTP = http.DefaultClient
	}
	return &Intake{cfg: cfg}
}

// Import takes challenges that reached the operator some other way: a mail
// as a whole (.eml, the DIDComm parts are taken out as the SMTP listener
// does) or a packed message pasted as it is.
func (in *Intake) Import(ctx context.Context, raw []byte) ([]ReceivedView, error) {
	trimmed := bytes.TrimSpace(raw)
	var packed [][]byte
	if len(trimmed) > 0 && trimmed[0] == '{' {
		packed = [][]byte{trimmed}
	} else {
		if in.cfg.ExtractMail == nil {
			return nil, agent.Errorf(agent.CodeMsg, "mails cannot be imported: paste the packed message")
		}
		var err error
		if packed, err = in.cfg.ExtractMail(raw); err != nil {
			return nil, err
		}
	}
	var out []ReceivedView
	for _, p := range packed {
		v, err := in.Receive(ctx, "import", p)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// maxLinkBody bounds what a one-time link may return.
const maxLinkBody = 1 << 20

// Fetch fetches the challenge behind a one-time link and takes it.
func (in *Intake) Fetch(ctx context.Context, link string) (ReceivedView, error) {
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ReceivedView{}, agent.Errorf(agent.CodeMsg, "the link must be an absolute http(s) URL")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return ReceivedView{}, agent.Errorf(agent.CodeMsg, "the link must be an absolute http(s) URL")
	}
	req.Header.Set("Accept", agent.MediaTypeEncrypted)
	if in.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", in.cfg.UserAgent)
	}
	resp, err := in.cfg.HTTP.Do(req)
	if err != nil {
		return ReceivedView{}, agent.Errorf(agent.CodeXfer, "the link could not be fetched: %v", unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLinkBody+1))
	switch {
	case err != nil:
		return ReceivedView{}, agent.Errorf(agent.CodeXfer, "the link could not be read: %v", err)
	case resp.StatusCode == http.StatusNotFound:
		return ReceivedView{}, agent.Errorf(agent.CodeMsg, "the verifier does not know this link")
	case resp.StatusCode == http.StatusGone:
		return ReceivedView{}, agent.Errorf(agent.CodeMsg, "the link was used already or has expired: ask for a new challenge")
	case resp.StatusCode != http.StatusOK:
		return ReceivedView{}, agent.Errorf(agent.CodeXfer, "the link answered %s", resp.Status)
	case len(body) > maxLinkBody:
		return ReceivedView{}, agent.Errorf(agent.CodeTooLarge, "the link returned more than %d bytes", maxLinkBody)
	}
	return in.Receive(ctx, "link", body)
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Receive hands a packed verificationchallenge that came outside the DIDComm
// endpoint (by transport) to the router, refusing anything else, and returns
// the challenge as held. A challenge the protocol refused (its verifier got a
// problem report) is an error.
func (in *Intake) Receive(ctx context.Context, transport string, raw []byte) (ReceivedView, error) {
	msg, err := in.cfg.Inbound.Check(ctx, transport, raw)
	if err != nil {
		return ReceivedView{}, err
	}
	if err := CheckChallengeType(msg); err != nil {
		return ReceivedView{}, err
	}
	if _, err := in.cfg.Inbound.Receive(ctx, transport, raw); err != nil {
		return ReceivedView{}, err
	}
	v, err := in.cfg.Service.ReceivedChallenge(ctx, msg.ID)
	if err != nil {
		if errors.Is(err, agent.ErrNotFound) {
			return ReceivedView{}, agent.Errorf(agent.CodeMsg, "the challenge was not accepted (see the log; its verifier was sent a problem report)")
		}
		return ReceivedView{}, err
	}
	return v, nil
}
