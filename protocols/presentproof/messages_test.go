package presentproof

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/agentd/agentd/agent"
	"github.com/agentd/agentd/aip"
	"github.com/agentd/agentd/w3cvc"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func generic(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVectorsRoundTrip: the WACI-DIDComm Present Proof 3.0 vectors parse
// as messages and write back to the same JSON; their attachments parse
// (definition, options, VP with presentation_submission). The one quirk
// (see testdata/SOURCES.md) is written back without the members it puts
// in the wrong place.
func TestVectorsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		file, typ, format string
		quirk             bool
	}{
		{"request-presentation.json", TypeRequest, FormatDIFDefinition, false},
		{"request-presentation.test-vector.json", TypeRequest, FormatDIFDefinition, false},
		{"presentation.json", TypePresentation, FormatDIFSubmission, false},
		{"presentation.test-vector.json", TypePresentation, "", true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw := readTestdata(t, tc.file)
			m, err := agent.ParseMessage(raw)
			if err != nil {
				t.Fatal(err)
			}
			if m.Type != tc.typ || m.ThID == "" || len(m.Attachments) != 1 || m.Attachments[0].Format != tc.format {
				t.Fatalf("parsed %+v", m)
			}
			out, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			want := generic(t, raw)
			if tc.quirk {
				data := want.(map[string]any)["attachments"].([]any)[0].(map[string]any)["data"].(map[string]any)
				for _, k := range []string{"id", "media_type", "format"} {
					if _, ok := data[k]; !ok {
						t.Fatalf("quirk gone: data.%s", k)
					}
					delete(data, k)
				}
			}
			if got := generic(t, out); !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip differs:\n got %s\nwant %s", out, raw)
			}
			// The attachment content.
			data := m.Attachments[0].Data.JSON
			switch tc.typ {
			case TypeRequest:
				r, def, err := readRequest(data)
				if err != nil {
					t.Fatal(err)
				}
				if r.Options.Challenge != "3fa85f64-5717-4562-b3fc-2c963f66afa7" || r.Options.Domain != "4jt78h47fh47" || len(def.InputDescriptors) != 1 {
					t.Fatalf("request %+v %+v", r.Options, def)
				}
				again, _ := json.Marshal(def)
				if !reflect.DeepEqual(generic(t, again), generic(t, r.PresentationDefinition)) {
					t.Fatalf("definition does not round-trip:\n got %s\nwant %s", again, r.PresentationDefinition)
				}
			case TypePresentation:
				var vp struct {
					Holder string            `json:"holder"`
					Sub    *w3cvc.Submission `json:"presentation_submission"`
					VCs    []json.RawMessage `json:"verifiableCredential"`
				}
				if err := json.Unmarshal(data, &vp); err != nil {
					t.Fatal(err)
				}
				if vp.Holder == "" || vp.Sub == nil || len(vp.Sub.DescriptorMap) != 1 || vp.Sub.DescriptorMap[0].Path != "$.verifiableCredential[0]" || len(vp.VCs) != 1 {
					t.Fatalf("vp %+v", vp)
				}
				if _, err := w3cvc.ParseCredential(vp.VCs[0]); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestVectorRequestReceived: the WACI request, sent to a prover by a
// connection, makes a PROVER exchange in REQUEST whose negotiation shows
// the vector's descriptor, fields and options, with the wire definition
// kept as it came.
func TestVectorRequestReceived(t *testing.T) {
	v, p := newNode(t, "verifier"), newNode(t, "prover")
	connect(v, p)
	m, err := agent.ParseMessage(readTestdata(t, "request-presentation.json"))
	if err != nil {
		t.Fatal(err)
	}
	m.From, m.To = v.did, []string{p.did}
	outs, _ := memMessenger{}.Outbound(context.Background(), m)
	if err := v.store.Update(context.Background(), func(w *agent.Work) error { w.Enqueue(outs...); return nil }); err != nil {
		t.Fatal(err)
	}
	deliver(t, v, p)
	x := only(t, p, aip.ProofExProver)
	n := x.Messages.Request.W3C
	if x.State != aip.ProofExRequest || x.ThreadID != "95e63a5f-73e1-46ac-b269-48bb22591bfa" || n.Challenge != "3fa85f64-5717-4562-b3fc-2c963f66afa7" {
		t.Fatalf("exchange %+v", x)
	}
	if len(n.AttributeGroups) != 1 || n.AttributeGroups[0].Referent != "vaccination_input" || len(n.AttributeGroups[0].Attributes) != 3 ||
		n.AttributeGroups[0].Attributes[0].AttributePaths[1] != "$.vc.credentialSchema.id" ||
		*n.AttributeGroups[0].Attributes[0].ValueRestrictions.Equal != "https://w3id.org/vaccination/#VaccinationCertificate" {
		t.Fatalf("negotiation %+v", n)
	}
	if !strings.Contains(n.PresentationDefinitionJSON, `"frame"`) {
		t.Fatal("the wire definition lost its frame")
	}
	// Nothing held fits: empty lists.
	c, err := p.svc.CredentialsFor(context.Background(), x.ID)
	if err != nil || len(c) != 1 || c[0].CredentialIDs == nil || len(c[0].CredentialIDs) != 0 {
		t.Fatalf("candidates %+v %v", c, err)
	}
}

// TestUnsupportedFormat: a request in a format the agent does not know is
// refused with e.p.msg.unsupported and makes no exchange.
func TestUnsupportedFormat(t *testing.T) {
	v, p := newNode(t, "verifier"), newNode(t, "prover")
	connect(v, p)
	m, _ := agent.NewMessage(TypeRequest, RequestBody{})
	m.From, m.To = v.did, []string{p.did}
	m.Attachments = []agent.Attachment{{ID: "a", Format: "mdoc/request@v1", Data: agent.AttachmentData{JSON: json.RawMessage(`{}`)}}}
	outs, _ := memMessenger{}.Outbound(context.Background(), m)
	if err := v.store.Update(context.Background(), func(w *agent.Work) error { w.Enqueue(outs...); return nil }); err != nil {
		t.Fatal(err)
	}
	deliver(t, v, p)
	if items, _, _ := p.svc.ProofExchanges(context.Background(), aip.Page{}, aip.ProofExchangeFilter{}); len(items) != 0 {
		t.Fatalf("exchanges %+v", items)
	}
	back := deliver(t, p, v)
	if len(back) != 1 || !strings.Contains(string(back[0].Body), agent.CodeMsgUnsupported) {
		t.Fatalf("answer %+v", back)
	}
}
