package agent

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestFlexBool(t *testing.T) {
	type body struct {
		B FlexBool  `json:"b"`
		P *FlexBool `json:"p,omitempty"`
	}
	for _, tc := range []struct {
		in    string
		b     bool
		p     *bool
		fails bool
	}{
		{in: `{"b":true,"p":false}`, b: true, p: new(false)},
		{in: `{"b":"true","p":"false"}`, b: true, p: new(false)},
		{in: `{"b":"false","p":"true"}`, p: new(true)},
		{in: `{"b":null,"p":null}`},
		{in: `{}`},
		{in: `{"b":"yes"}`, fails: true},
		{in: `{"b":"True"}`, fails: true},
		{in: `{"b":" true"}`, fails: true},
		{in: `{"b":1}`, fails: true},
		{in: `{"p":0}`, fails: true},
		{in: `{"p":[]}`, fails: true},
	} {
		var got body
		err := json.Unmarshal([]byte(tc.in), &got)
		if tc.fails {
			if err == nil || !strings.Contains(err.Error(), `want true or false`) {
				t.Errorf("%s: want a clear error, got %v (%+v)", tc.in, err, got)
			}
			continue
		}
		if err != nil || bool(got.B) != tc.b || (got.P == nil) != (tc.p == nil) || (got.P != nil && bool(*got.P) != *tc.p) {
			t.Errorf("%s: got %+v %v", tc.in, got, err)
		}
	}
	// It is written as a JSON boolean.
	p := FlexBool(false)
	b, _ := json.Marshal(body{B: true, P: &p})
	if string(b) != `{"b":true,"p":false}` {
		t.Errorf("marshalled %s", b)
	}
}
