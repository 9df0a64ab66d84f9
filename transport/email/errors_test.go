package email

import (
	"errors"
	"fmt"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/agentd/agentd/agent"
)

func TestSMTPStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		ec   smtp.EnhancedCode
	}{
		{agent.Errorf(agent.CodeTooLarge, "x"), 552, smtp.EnhancedCode{5, 3, 4}},
		{agent.Errorf(agent.CodeMeResStorage, "x"), 552, smtp.EnhancedCode{5, 3, 4}},
		{agent.Errorf(agent.CodeMe, "x"), 451, smtp.EnhancedCode{4, 3, 0}},
		{errors.New("unexplained"), 451, smtp.EnhancedCode{4, 3, 0}},
		{agent.Errorf(agent.CodeTrustCrypto, "x"), 554, smtp.EnhancedCode{5, 7, 0}},
		{agent.Errorf("e.p.trust.provecontrol.unsigned", "x"), 554, smtp.EnhancedCode{5, 7, 0}},
		{fmt.Errorf("wrapped: %w", agent.Errorf(agent.CodeNotForUs, "x")), 554, smtp.EnhancedCode{5, 7, 0}},
		{agent.Errorf(agent.CodeMsg, "x"), 554, smtp.EnhancedCode{5, 6, 0}},
		{agent.Errorf("e.p.trustee", "x"), 554, smtp.EnhancedCode{5, 6, 0}},
	} {
		code, ec := smtpStatus(tc.err)
		if code != tc.code || ec != tc.ec {
			t.Errorf("%v: %d %v, want %d %v", tc.err, code, ec, tc.code, tc.ec)
		}
	}
}
