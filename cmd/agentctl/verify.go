package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
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

// verify runs a "verify" subcommand; out receives the JSON to print, if any.
func (c *client) verify(ctx context.Context, args []string, stdout io.Writer, out *any) error {
	if len(args) == 0 {
		return errors.New("verify: missing subcommand (request, list, show, prove, fetch, import, requests, start, challenges, challenge, verifications, letters, letter, sent)")
	}
	sub, rest := args[0], args[1:]
	need := func(n int, what string) error {
		if len(rest) < n {
			return fmt.Errorf("verify %s: missing %s", sub, what)
		}
		return nil
	}
	const pc = "/admin/provecontrol"
	switch sub {
	case "request":
		if err := need(3, "VERIFIER TYPE SUBJECT"); err != nil {
			return err
		}
		var res map[string]any
		err := c.do(ctx, "POST", pc+"/requests", map[string]string{
			"verifier": rest[0], "verification_type": rest[1], "subject": strings.Join(rest[2:], " "), "wait": "10s"}, &res)
		if err != nil {
			return err
		}
		if ch, ok := res["challenge"].(map[string]any); ok {
			printTXT(stdout, ch)
		} else if res["problem"] == nil {
			fmt.Fprintf(stdout, "Requested. The challenge comes by the %s channel; then: agentctl verify list\n", rest[1])
		}
		*out = res
		return nil
	case "list":
		return c.do(ctx, "GET", pc+"/received", nil, out)
	case "requests":
		return c.do(ctx, "GET", pc+"/requests", nil, out)
	case "show":
		if err := need(1, "ID"); err != nil {
			return err
		}
		var ch map[string]any
		if err := c.do(ctx, "GET", pc+"/received/"+url.PathEscape(rest[0]), nil, &ch); err != nil {
			return err
		}
		printTXT(stdout, ch)
		*out = ch
		return nil
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
			return errors.New("verify prove: missing ID")
		}
		id := ids[0]
		var ch map[string]any
		if err := c.do(ctx, "GET", pc+"/received/"+url.PathEscape(id), nil, &ch); err != nil {
			return err
		}
		if ch["dns_record"] != nil && !published {
			printTXT(stdout, ch)
			fmt.Fprintf(stdout, "Once the record is published, run: agentctl verify prove --published %s\n", id)
			return nil
		}
		var res map[string]any
		if err := c.do(ctx, "POST", pc+"/received/"+url.PathEscape(id)+"/prove", map[string]string{"wait": "20s"}, &res); err != nil {
			return err
		}
		*out = res
		if p, ok := res["problem"].(map[string]any); ok {
			return fmt.Errorf("the verifier refused the proof: %v (%v)", p["comment"], p["code"])
		}
		return nil
	case "fetch":
		if err := need(1, "URL"); err != nil {
			return err
		}
		return c.do(ctx, "POST", pc+"/fetch", map[string]string{"url": rest[0]}, out)
	case "import":
		if err := need(1, "FILE (or - for standard input)"); err != nil {
			return err
		}
		var data []byte
		var err error
		if rest[0] == "-" {
			data, err = io.ReadAll(io.LimitReader(os.Stdin, 8<<20))
		} else {
			data, err = os.ReadFile(rest[0])
		}
		if err != nil {
			return fmt.Errorf("verify import: %w", err)
		}
		return c.do(ctx, "POST", pc+"/import", rawBody(data), out)
	case "start":
		if err := need(3, "USER TYPE SUBJECT"); err != nil {
			return err
		}
		return c.do(ctx, "POST", pc+"/challenges", map[string]string{
			"user": rest[0], "verification_type": rest[1], "subject": strings.Join(rest[2:], " ")}, out)
	case "challenges":
		path := pc + "/challenges"
		if len(rest) > 0 {
			path += "?state=" + url.QueryEscape(rest[0])
		}
		return c.do(ctx, "GET", path, nil, out)
	case "challenge":
		if err := need(1, "ID"); err != nil {
			return err
		}
		return c.do(ctx, "GET", pc+"/challenges/"+url.PathEscape(rest[0]), nil, out)
	case "verifications":
		return c.do(ctx, "GET", pc+"/verifications", nil, out)
	case "letters":
		path := pc + "/letters"
		if len(rest) > 0 && rest[0] == "--unsent" {
			path += "?unsent=true"
		}
		return c.do(ctx, "GET", path, nil, out)
	case "letter":
		if err := need(2, "ID FILE"); err != nil {
			return err
		}
		pdf, err := c.get(ctx, pc+"/letters/"+url.PathEscape(rest[0])+"/pdf")
		if err != nil {
			return err
		}
		if err := os.WriteFile(rest[1], pdf, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "saved %s (%d bytes): print it and mail it, then: agentctl verify sent %s\n", rest[1], len(pdf), rest[0])
		return nil
	case "sent":
		if err := need(1, "ID"); err != nil {
			return err
		}
		return c.do(ctx, "POST", pc+"/letters/"+url.PathEscape(rest[0])+"/sent", nil, out)
	}
	return fmt.Errorf("verify: unknown subcommand %q", sub)
}

// credentials lists the held credentials, or shows one.
func (c *client) credentials(ctx context.Context, args []string, out *any) error {
	if len(args) > 0 {
		return c.do(ctx, "GET", "/admin/credentials/"+url.PathEscape(args[0]), nil, out)
	}
	return c.do(ctx, "GET", "/admin/credentials", nil, out)
}

// printTXT prints the DNS record of a Domain challenge, if it has one.
func printTXT(w io.Writer, ch map[string]any) {
	rec, ok := ch["dns_record"].(map[string]any)
	if !ok {
		return
	}
	fmt.Fprintf(w, "Publish this DNS record before proving:\n  %v. 300 IN TXT %q\n", rec["name"], rec["value"])
}

// rawBody is a request body sent as it is (not as JSON).
type rawBody []byte

// get fetches a non-JSON admin resource.
func (c *client) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach agentd at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return data, nil
}
