package provecontrol

import (
	"testing"

	"github.com/agentd/agentd/agent"
)

func TestNormalizeSubject(t *testing.T) {
	private := SubjectOptions{AllowPrivateIPs: true}
	for _, tc := range []struct {
		t       VerificationType
		in, out string
		opts    SubjectOptions
	}{
		{Email, " Fabio@FMGP.app ", "Fabio@fmgp.app", SubjectOptions{}},
		{Domain, "Sub.Example.COM.", "sub.example.com", SubjectOptions{}},
		{DID, "did:example:alice", "did:example:alice", SubjectOptions{}},
		{Tel, "+1 (555) 010-0199", "+15550100199", SubjectOptions{}},
		{Discord, "80351110224678912", "80351110224678912", SubjectOptions{}},
		{IP, "8.8.8.8", "8.8.8.8", SubjectOptions{}},
		{IP, "8.8.8.8:8080", "8.8.8.8:8080", SubjectOptions{}},
		{IP, "[2606:4700::1111]:443", "[2606:4700::1111]:443", SubjectOptions{}},
		{IP, "::ffff:8.8.4.4", "8.8.4.4", SubjectOptions{}},
		{IP, "127.0.0.1:9000", "127.0.0.1:9000", private},
		{Address, "Ana\r\n  Street   1 \n\nTown", "Ana\nStreet 1\nTown", SubjectOptions{}},
	} {
		got, err := NormalizeSubject(tc.t, tc.in, tc.opts)
		if err != nil || got != tc.out {
			t.Errorf("%s %q = %q, %v; want %q", tc.t, tc.in, got, err, tc.out)
		}
	}
	for _, tc := range []struct {
		t  VerificationType
		in string
	}{
		{Email, "no-at"}, {Email, "a b@example.org"}, {Email, "a@localhost"}, {Email, "@example.org"},
		{Domain, "localhost"}, {Domain, "-bad.example"}, {Domain, "1.2.3.4"}, {Domain, "a..b"},
		{DID, "did:example:a#key-1"}, {DID, "alice"},
		{Tel, "5550100199"}, {Tel, "+0123456789"}, {Tel, "+1"}, {Tel, "+1555abc0100"},
		{Discord, "alice"}, {Discord, "123"},
		{IP, "example.org"}, {IP, "127.0.0.1"}, {IP, "10.1.2.3:80"}, {IP, "192.168.1.1"}, {IP, "[::1]:80"},
		{IP, "169.254.0.1"}, {IP, "8.8.8.8:0"}, {IP, "8.8.8.8:70000"}, {IP, "fe80::1%eth0"},
		{Address, "single line"}, {Address, "a\nb\x07"}, {"Fax", "x"},
	} {
		if _, err := NormalizeSubject(tc.t, tc.in, SubjectOptions{}); agent.ErrorCode(err) != CodeSubject && agent.ErrorCode(err) != CodeVerificationType {
			t.Errorf("%s %q accepted: %v", tc.t, tc.in, err)
		}
	}
	if got := ChallengeURL("[2606:4700::1111]:443"); got != "http://[2606:4700::1111]:443/.well-known/provecontrol/challenge" {
		t.Errorf("ChallengeURL %s", got)
	}
}
