package http

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"reflect"
	"testing"
)

// TestClientRoundTrip calls every admin route through the typed Client and
// checks that what the service answered arrives intact: the client and the
// server agree on paths, methods and JSON shapes.
func TestClientRoundTrip(t *testing.T) {
	mux, _ := fullServer(t)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, Token: testToken}
	ctx := context.Background()
	f := fullFake{}
	all := PageRequest{}
	same := func(name string, got, want any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Compared as JSON: a json.RawMessage comes back re-indented.
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) || reflect.TypeOf(got) != reflect.TypeOf(want) {
			t.Fatalf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
	// Times come back in UTC already (fill uses UTC); ids and lists too.
	g, err := c.MediationGrants(ctx, all)
	want, _ := f.MediationGrants(ctx, "", 0)
	same("grants", g.Items, want, err)
	if g.Key != "grants" || g.Next != "" {
		t.Fatalf("grants page: key %q next %q", g.Key, g.Next)
	}
	one, err := c.MediationGrant(ctx, "did:example:c")
	wantOne, _ := f.MediationGrant(ctx, "")
	same("grant", one, wantOne, err)
	q, err := c.MediationQueue(ctx)
	wantQ, _ := f.MediationQueue(ctx)
	same("queue", q, wantQ, err)
	rc, err := c.ReceivedChallenge(ctx, "r1")
	wantRC, _ := f.ReceivedChallenge(ctx, "")
	same("received", rc, wantRC, err)
	po, err := c.Prove(ctx, "r1", ProveRequest{Wait: "1s"})
	wantPO, _ := f.Prove(ctx, "", 0)
	same("prove", po, wantPO, err)
	ro, err := c.RequestVerification(ctx, RequestVerificationRequest{Verifier: "did:v", VerificationType: "Email", Subject: "a@b"})
	wantRO, _ := f.RequestVerification(ctx, "", "", "", 0)
	same("request", ro, wantRO, err)
	cr, err := c.Credentials(ctx, PageRequest{Limit: 1})
	wantCr, _ := f.Credentials(ctx, "", 0)
	same("credentials", cr.Items, wantCr, err)
	if cr.Next != wantCr[0].ID {
		t.Fatalf("a full page has the last id as next cursor: %q", cr.Next)
	}
	im, err := c.ImportChallenge(ctx, []byte("From: x\r\n\r\nbody"))
	wantIm, _ := f.ImportChallenge(ctx, nil)
	same("import", im.Challenges, wantIm, err)
	inv, err := c.CreateMediationInvitation(ctx)
	wantInv, url, _ := f.CreateMediationInvitation(ctx)
	same("invitation", inv, InvitationResponse{Invitation: wantInv, URL: url}, err)
	pdf, err := c.LetterPDF(ctx, "l1")
	same("pdf", string(pdf), "%PDF-1.7", err)
	dl, err := c.DeadLetters(ctx, all)
	if err != nil || len(dl.Items) != 1 || dl.Items[0].Bytes != 3 || dl.Key != "deadLetters" {
		t.Fatalf("dead letters: %+v %v", dl, err)
	}
	for name, call := range map[string]func() error{
		"retry":  func() error { return c.RetryDeadLetter(ctx, "d1") },
		"drop":   func() error { return c.DeleteDeadLetter(ctx, "d1") },
		"revoke": func() error { return c.RevokeMediation(ctx, "did:example:c") },
	} {
		if err := call(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	// Errors carry the server's code and reason.
	_, err = c.Ping(ctx, "")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Code != "e.p.msg" || apiErr.Reason != "to is required" {
		t.Fatalf("ping without to: %v", err)
	}
	c.Token = ""
	if _, err := c.Outbox(ctx); !errors.Is(err, ErrNoToken) {
		t.Fatalf("no token: %v", err)
	}
}
