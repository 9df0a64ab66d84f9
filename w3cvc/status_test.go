package w3cvc

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentd/agentd/agent/keys"
)

// statusServer serves status list credentials signed by iss; revoked are
// the set indexes. It counts requests.
type statusServer struct {
	*httptest.Server
	hits atomic.Int32
	body atomic.Value
}

func newStatusServer(t *testing.T, iss *party, listType string, revoked ...int) *statusServer {
	t.Helper()
	s := &statusServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if r.URL.Path != "/list/1" {
			http.NotFound(w, r)
			return
		}
		w.Write(s.body.Load().([]byte))
	}))
	t.Cleanup(s.Close)
	s.publish(t, iss, listType, revoked...)
	return s
}

func (s *statusServer) publish(t *testing.T, iss *party, listType string, revoked ...int) {
	t.Helper()
	bits := make([]byte, 16<<10)
	for _, i := range revoked {
		bits[i/8] |= 0x80 >> (i % 8)
	}
	enc, err := EncodeStatusList(bits)
	if err != nil {
		t.Fatal(err)
	}
	vc := map[string]any{
		"id":   s.URL + "/list/1",
		"type": []any{"VerifiableCredential", listType + "Credential"},
		"credentialSubject": map[string]any{
			"id": s.URL + "/list/1#list", "type": listType, "statusPurpose": "revocation", "encodedList": enc,
		},
	}
	if listType == statusListBitstring {
		vc["@context"] = []any{ContextV2}
		vc["validFrom"] = "2024-01-01T00:00:00Z"
	} else {
		vc["@context"] = []any{ContextV1, ContextStatusList2021}
	}
	raw, err := IssueLDP(vc, iss.Signer)
	if err != nil {
		t.Fatal(err)
	}
	s.body.Store(raw)
}

func statusVC(subject, url, entryType string, index int) map[string]any {
	vc := sampleVC(subject)
	vc["credentialStatus"] = map[string]any{
		"id": url + "#" + itoa(index), "type": entryType, "statusPurpose": "revocation",
		"statusListIndex": itoa(index), "statusListCredential": url,
	}
	if entryType == StatusTypeList2021 {
		vc["@context"] = append(vc["@context"].([]any), ContextStatusList2021)
	} else {
		vc["@context"] = []any{ContextV2, ContextUndefinedTermsV2}
		delete(vc, "issuanceDate")
	}
	return vc
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestStatusList(t *testing.T) {
	for _, tc := range []struct{ list, entry string }{
		{statusListBitstring, StatusTypeBitstring},
		{statusListStatus2021, StatusTypeList2021},
	} {
		t.Run(tc.entry, func(t *testing.T) {
			iss := newKeyParty(t, keys.Ed25519)
			srv := newStatusServer(t, iss, tc.list, 7, 1000)
			url := srv.URL + "/list/1"
			clock := time.Now()
			v := newTestVerifier(t, VerifierConfig{HTTPClient: srv.Client(), StatusCacheTTL: time.Minute, Now: func() time.Time { return clock }})
			for _, issue := range []func(map[string]any, Signer) ([]byte, error){IssueJWT, IssueLDP} {
				for idx, want := range map[int]string{7: ReasonRevoked, 1000: ReasonRevoked, 8: "", 6: ""} {
					raw, err := issue(statusVC("did:example:alice", url, tc.entry, idx), iss.Signer)
					if err != nil {
						t.Fatal(err)
					}
					_, err = v.VerifyCredential(ctx(), raw)
					if want == "" && err != nil {
						t.Fatalf("index %d: %v", idx, err)
					}
					if want != "" {
						mustReason(t, err, want)
					}
				}
			}
			if n := srv.hits.Load(); n != 1 {
				t.Fatalf("status list fetched %d times, want 1 (cached)", n)
			}
			// Revoke index 8: seen once the cache entry is older than the TTL.
			srv.publish(t, iss, tc.list, 8)
			raw, _ := IssueJWT(statusVC("did:example:alice", url, tc.entry, 8), iss.Signer)
			if _, err := v.VerifyCredential(ctx(), raw); err != nil {
				t.Fatalf("cached list: %v", err)
			}
			clock = clock.Add(2 * time.Minute)
			_, err := v.VerifyCredential(ctx(), raw)
			mustReason(t, err, ReasonRevoked)

			// A list signed by someone else is not trusted.
			srv.publish(t, newKeyParty(t, keys.Ed25519), tc.list)
			clock = clock.Add(2 * time.Minute)
			_, err = v.VerifyCredential(ctx(), raw)
			mustReason(t, err, ReasonStatusUnavailable)

			// Unreachable list.
			srv.Close()
			clock = clock.Add(2 * time.Minute)
			_, err = v.VerifyCredential(ctx(), raw)
			mustReason(t, err, ReasonStatusUnavailable)
		})
	}
}

func TestStatusListTamperedList(t *testing.T) {
	iss := newKeyParty(t, keys.Ed25519)
	srv := newStatusServer(t, iss, statusListBitstring, 3)
	body := srv.body.Load().([]byte)
	// Flip the list to all zeroes without re-signing.
	zero, _ := EncodeStatusList(make([]byte, 16<<10))
	var doc map[string]any
	_ = jsonUnmarshal(body, &doc)
	doc["credentialSubject"].(map[string]any)["encodedList"] = zero
	srv.body.Store(mustJSON(t, doc))
	v := newTestVerifier(t, VerifierConfig{HTTPClient: srv.Client()})
	raw, _ := IssueJWT(statusVC("did:example:alice", srv.URL+"/list/1", StatusTypeBitstring, 3), iss.Signer)
	_, err := v.VerifyCredential(ctx(), raw)
	mustReason(t, err, ReasonStatusUnavailable)
}
