package envelope

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// parsePlaintextJSON is parsePlaintext on encoding/json alone: the plaintext
// decoded with json.Unmarshal, its attachments into *[]attachmentJSON.
func parsePlaintextJSON(msg []byte) (plainInfo, error) {
	var m plainJSON
	return checkPlain(&m, json.Unmarshal(msg, &m))
}

// checkAttachmentsPath checks parsePlaintext on a message whose attachments
// member is att against parsePlaintextJSON: the same plainInfo and the same
// error (message included). It also checks fastAttachments on att alone
// against json.Unmarshal into *[]attachmentJSON and checkAttachments, and
// returns whether the fast path took att and its error.
func checkAttachmentsPath(t *testing.T, att []byte) (fast bool, err error) {
	t.Helper()
	msg := []byte(`{"id":"1","type":"t","body":{},"attachments":` + string(att) + `}`)
	p, perr := parsePlaintext(msg)
	wp, wperr := parsePlaintextJSON(msg)
	if fmt.Sprint(perr) != fmt.Sprint(wperr) || perr == nil && !reflect.DeepEqual(p, wp) {
		t.Fatalf("parsePlaintext(%q) = %+v, %v; with encoding/json %+v, %v", msg, p, perr, wp, wperr)
	}
	// fastAttachments takes a valid JSON value, as the scanner hands it on.
	att = bytes.TrimSpace(att)
	if !json.Valid(att) {
		return false, perr
	}
	ok, bad := fastAttachments(att)
	if !ok {
		return false, perr
	}
	var m plainJSON
	if err := json.Unmarshal(att, &m.Attachments); err != nil {
		t.Fatalf("fastAttachments took %q, json.Unmarshal: %v", att, err)
	}
	if want := m.checkAttachments(); fmt.Sprint(bad) != fmt.Sprint(want) {
		t.Fatalf("fastAttachments(%q): %v, with encoding/json %v", att, bad, want)
	}
	return true, bad
}

var attachmentCases = []struct {
	att  string
	fast bool   // the fast path takes it
	err  string // parsePlaintext's error, "" for none
}{
	{`[]`, true, ""},
	{`null`, true, ""},
	{`[{"data":{"base64":"AA"}}]`, true, ""},
	{`[{"data":{"json":{"a":[1,{"b":"c"}]}}}]`, true, ""},
	{`[{"data":{"json":null}}]`, true, ""}, // json present, even null
	{`[{"data":{"json":5}}]`, true, ""},
	{`[{"data":{"links":["https://x"],"hash":"h"}}]`, true, ""},
	{`[{"data":{"links":[],"hash":"h"}}]`, true, ""},
	{`[{"data":{"links":[null,"x"],"hash":"h"}}]`, true, ""},
	{`[{"id":"a","description":null,"filename":"f","media_type":"m","format":"x","lastmod_time":1,"byte_count":0,"data":{"base64":"AA"},"other":[{}]}]`, true, ""},
	{`[{"data":{"base64":"A\u0041","jws":{"x":1}}}]`, true, ""},
	// Missing or unusable data.
	{`[{}]`, true, "malformed envelope: attachment 0 has no data"},
	{`[null]`, true, "malformed envelope: attachment 0 has no data"},
	{`[{"data":null}]`, true, "malformed envelope: attachment 0 has no data"},
	{`[{"data":{"base64":"AA"}},{"id":"x"}]`, true, "malformed envelope: attachment 1 has no data"},
	{`[{"data":{}}]`, true, "malformed envelope: attachment 0 data has neither base64, json nor links with hash"},
	{`[{"data":{"links":["x"]}}]`, true, "malformed envelope: attachment 0 data has neither base64, json nor links with hash"},
	{`[{"data":{"hash":"h"}}]`, true, "malformed envelope: attachment 0 data has neither base64, json nor links with hash"},
	{`[{"data":{"links":null,"hash":"h"}}]`, true, "malformed envelope: attachment 0 data has neither base64, json nor links with hash"},
	{`[{"data":{"links":["x"],"hash":null}}]`, true, "malformed envelope: attachment 0 data has neither base64, json nor links with hash"},
	{`[{"data":{"base64":null}}]`, true, "malformed envelope: attachment 0 data has neither base64, json nor links with hash"},
	{`[{"data":{"base64":5}}]`, true, "malformed envelope: attachment 0 data has neither base64, json nor links with hash"},
	{`[{"data":{"base64":{"x":"y"}}}]`, true, "malformed envelope: attachment 0 data has neither base64, json nor links with hash"},
	{`[{"data":{"jws":"x"}}]`, true, "malformed envelope: attachment 0 data has neither base64, json nor links with hash"},
	{`[{"data":{"base64":"AA"}},{"data":{}},{}]`, true, "malformed envelope: attachment 1 data has neither base64, json nor links with hash"},
	// Repeated members, in the order encoding/json applies them.
	{`[{"data":{"links":["x"]},"data":{"hash":"h"}}]`, true, ""},
	{`[{"data":{"base64":"AA"},"data":null}]`, true, "malformed envelope: attachment 0 has no data"},
	{`[{"data":{"base64":"AA"},"data":null,"data":{"hash":"h"}}]`, true, "malformed envelope: attachment 0 data has neither base64, json nor links with hash"},
	{`[{"data":{"base64":"AA","base64":null}}]`, true, "malformed envelope: attachment 0 data has neither base64, json nor links with hash"},
	{`[{"data":{"links":["x"],"hash":"h","links":null}}]`, true, "malformed envelope: attachment 0 data has neither base64, json nor links with hash"},
	// Nested attachments arrays are ordinary values.
	{`[{"data":{"json":{"attachments":[{}]}},"attachments":[null]}]`, true, ""},
	// Wrong JSON types: encoding/json's error, by the fallback.
	{`{}`, false, "malformed envelope: plaintext member attachments has the wrong JSON type"},
	{`"x"`, false, "malformed envelope: plaintext member attachments has the wrong JSON type"},
	{`[1]`, false, ""},
	{`["x"]`, false, ""},
	{`[[{"data":{"base64":"AA"}}]]`, false, ""},
	{`[{"data":"x"}]`, false, ""},
	{`[{"data":[]}]`, false, ""},
	{`[{"id":5,"data":{"base64":"AA"}}]`, false, ""},
	{`[{"data":{"base64":"AA"},"byte_count":-1}]`, false, ""},
	{`[{"data":{"base64":"AA"},"lastmod_time":1.5}]`, false, ""},
	{`[{"data":{"base64":"AA"},"byte_count":"7"}]`, false, ""},
	{`[{"data":{"base64":"AA"},"byte_count":18446744073709551616}]`, false, ""},
	{`[{"data":{"hash":5,"links":["x"]}}]`, false, ""},
	{`[{"data":{"links":"x","hash":"h"}}]`, false, ""},
	{`[{"data":{"links":[5],"hash":"h"}}]`, false, ""},
	{`[{}, 1]`, false, ""},
	// Names the fast path does not follow.
	{`[{"Data":{"base64":"AA"}}]`, false, ""},
	{`[{"data":{"BASE64":"AA"}}]`, false, ""},
	{`[{"d\u0061ta":{"base64":"AA"}}]`, false, ""},
	{`[{"data":{"base64":"AA"}}],"attachments":[{}]`, false, ""},
}

// TestAttachmentsFast checks the plaintext check of attachments, fast path
// and fallback, against encoding/json and the expected errors.
func TestAttachmentsFast(t *testing.T) {
	for _, c := range attachmentCases {
		fast, err := checkAttachmentsPath(t, []byte(c.att))
		if fast != c.fast {
			t.Errorf("%s: fast path taken %v, want %v", c.att, fast, c.fast)
		}
		_, perr := parsePlaintext([]byte(`{"id":"1","type":"t","body":{},"attachments":` + c.att + `}`))
		if c.fast && fmt.Sprint(err) != fmt.Sprint(perr) {
			t.Errorf("%s: fastAttachments %v, parsePlaintext %v", c.att, err, perr)
		}
		if c.err != "" && fmt.Sprint(perr) != c.err {
			t.Errorf("%s: error %v, want %s", c.att, perr, c.err)
		}
		if c.err == "" && c.fast && perr != nil {
			t.Errorf("%s: error %v, want none", c.att, perr)
		}
	}
	// A forward as senders pack it takes the fast path.
	plain := forwardPlaintext(2048)
	var m plainJSON
	if !fastPlain(plain, &m) || !m.attScanned || m.attErr != nil {
		t.Errorf("fast path not taken for a forward: %v %v", m.attScanned, m.attErr)
	}
	if _, err := parsePlaintext(plain); err != nil {
		t.Error(err)
	}
	checkFastJSON(t, plain)
	// Deep nesting inside an attachment agrees with encoding/json.
	for _, d := range []int{9995, 9996, 9997, 9998} {
		checkAttachmentsPath(t, []byte(`[{"data":{"json":`+strings.Repeat("[", d)+strings.Repeat("]", d)+`}}]`))
	}
}

// FuzzAttachments compares the plaintext check of an attachments member
// (fast path and fallback) with the check on encoding/json's decoding.
func FuzzAttachments(f *testing.F) {
	for _, c := range attachmentCases {
		f.Add([]byte(c.att))
	}
	f.Fuzz(func(t *testing.T, att []byte) {
		checkAttachmentsPath(t, att)
		checkFastJSON(t, []byte(`{"id":"1","type":"t","body":{},"attachments":`+string(att)+`}`))
	})
}
