package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	httptransport "github.com/agentd/agentd/transport/http"
)

// verifyUsage documents the Prove Control commands.
const verifyUsage = `  verify request VERIFIER TYPE SUBJECT
                              ask the verifier DID for a challenge (user role); TYPE is
                              Email, Domain, DID, Discord, Tel, IP or Address
  verify list                 list the challenges received (user role)
  verify show ID              show a received challenge (Domain: the TXT record to publish)
  verify prove [--published] ID
                              send the proof and wait for the confirmation; for Domain,
                              publish the TXT record first (verify prove prints it)
  verify fetch URL            take a challenge from a one-time link (SMS, Discord, letter)
  verify import FILE|-        take a challenge from a mail (.eml) or a packed message
  verify requests             list the verification requests sent
  verify start USER TYPE SUBJECT
                              challenge the DID USER without a request (verifier role)
  verify challenges [STATE]   list the challenges issued (verifier role)
  verify challenge ID         show an issued challenge
  verify verifications        list the confirmed verifications (verifier role)
  verify letters [--unsent]   list the letters for Address verification
  verify letter ID FILE       save a letter's PDF to FILE
  verify sent ID              mark a letter as mailed
  credentials [ID]            list the credentials the agent holds, or show one
`

// verify runs a "verify" subcommand and returns the answer to print, if any.
func (c *client) verify(ctx context.Context, args []string, stdout io.Writer) (any, error) {
	if len(args) == 0 {
		return nil, errors.New("verify: missing subcommand (request, list, show, prove, fetch, import, requests, start, challenges, challenge, verifications, letters, letter, sent)")
	}
	sub, rest := args[0], args[1:]
	need := func(n int, what string) error {
		if len(rest) < n {
			return fmt.Errorf("verify %s: missing %s", sub, what)
		}
		return nil
	}
	all := httptransport.PageRequest{}
	switch sub {
	case "request":
		if err := need(3, "VERIFIER TYPE SUBJECT"); err != nil {
			return nil, err
		}
		res, err := c.api.RequestVerification(ctx, httptransport.RequestVerificationRequest{
			Verifier: rest[0], VerificationType: rest[1], Subject: strings.Join(rest[2:], " "), Wait: "10s"})
		if err != nil {
			return nil, err
		}
		if res.Challenge != nil {
			printTXT(stdout, *res.Challenge)
		} else if res.Problem == nil {
			fmt.Fprintf(stdout, "Requested. The challenge comes by the %s channel; then: agentctl verify list\n", rest[1])
		}
		return res, nil
	case "list":
		return value(c.api.ReceivedChallenges(ctx, all))
	case "requests":
		return value(c.api.Requests(ctx, all))
	case "show":
		if err := need(1, "ID"); err != nil {
			return nil, err
		}
		ch, err := c.api.ReceivedChallenge(ctx, rest[0])
		if err != nil {
			return nil, err
		}
		printTXT(stdout, ch)
		return ch, nil
	case "prove":
		published := false
		var ids []string
		for _, a := range rest {
			if a == "--published" {
				published = true
			} else {
				ids = append(ids, a)
			}
		}
		if len(ids) == 0 {
			return nil, errors.New("verify prove: missing ID")
		}
		id := ids[0]
		ch, err := c.api.ReceivedChallenge(ctx, id)
		if err != nil {
			return nil, err
		}
		if ch.DNSRecord != nil && !published {
			printTXT(stdout, ch)
			fmt.Fprintf(stdout, "Once the record is published, run: agentctl verify prove --published %s\n", id)
			return nil, nil
		}
		res, err := c.api.Prove(ctx, id, httptransport.ProveRequest{Wait: "20s"})
		if err != nil {
			return nil, err
		}
		if p := res.Problem; p != nil {
			return res, fmt.Errorf("the verifier refused the proof: %v (%v)", p.Comment, p.Code)
		}
		return res, nil
	case "fetch":
		if err := need(1, "URL"); err != nil {
			return nil, err
		}
		return value(c.api.FetchChallenge(ctx, rest[0]))
	case "import":
		if err := need(1, "FILE (or - for standard input)"); err != nil {
			return nil, err
		}
		var data []byte
		var err error
		if rest[0] == "-" {
			data, err = io.ReadAll(io.LimitReader(os.Stdin, 8<<20))
		} else {
			data, err = os.ReadFile(rest[0])
		}
		if err != nil {
			return nil, fmt.Errorf("verify import: %w", err)
		}
		return value(c.api.ImportChallenge(ctx, data))
	case "start":
		if err := need(3, "USER TYPE SUBJECT"); err != nil {
			return nil, err
		}
		return value(c.api.StartChallenge(ctx, httptransport.StartChallengeRequest{
			User: rest[0], VerificationType: rest[1], Subject: strings.Join(rest[2:], " ")}))
	case "challenges":
		state := ""
		if len(rest) > 0 {
			state = rest[0]
		}
		return value(c.api.Challenges(ctx, state, all))
	case "challenge":
		if err := need(1, "ID"); err != nil {
			return nil, err
		}
		return value(c.api.Challenge(ctx, rest[0]))
	case "verifications":
		return value(c.api.Verifications(ctx, all))
	case "letters":
		return value(c.api.Letters(ctx, len(rest) > 0 && rest[0] == "--unsent", all))
	case "letter":
		if err := need(2, "ID FILE"); err != nil {
			return nil, err
		}
		pdf, err := c.api.LetterPDF(ctx, rest[0])
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(rest[1], pdf, 0o600); err != nil {
			return nil, err
		}
		fmt.Fprintf(stdout, "saved %s (%d bytes): print it and mail it, then: agentctl verify sent %s\n", rest[1], len(pdf), rest[0])
		return nil, nil
	case "sent":
		if err := need(1, "ID"); err != nil {
			return nil, err
		}
		return value(c.api.MarkLetterSent(ctx, rest[0]))
	}
	return nil, fmt.Errorf("verify: unknown subcommand %q", sub)
}

// credentials lists the held credentials, or shows one.
func (c *client) credentials(ctx context.Context, args []string) (any, error) {
	if len(args) > 0 {
		return value(c.api.Credential(ctx, args[0]))
	}
	return value(c.api.Credentials(ctx, httptransport.PageRequest{}))
}

// printTXT prints the DNS record of a Domain challenge, if it has one.
func printTXT(w io.Writer, ch httptransport.ReceivedChallenge) {
	rec := ch.DNSRecord
	if rec == nil {
		return
	}
	fmt.Fprintf(w, "Publish this DNS record before proving:\n  %v. 300 IN TXT %q\n", rec.Name, rec.Value)
}
