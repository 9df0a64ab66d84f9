package email

import (
	"errors"
	"fmt"

	"github.com/emersion/go-smtp"

	"github.com/agentd/agentd/agent"
)

// smtpStatus maps err to the SMTP reply code and enhanced status code the
// listener answers a refused mail with; it is the one place SMTP statuses
// are derived from errors. Codes match by prefix (agent.HasCode): 552 for
// size and storage limits, 451 (try again) for our own faults and rate
// limits, 452 for a full outbox, 554 for
// anything wrong with the message itself, with 5.7.0 for trust problems.
func smtpStatus(err error) (int, smtp.EnhancedCode) {
	switch {
	case agent.HasCode(err, agent.CodeRateLimited):
		return 451, smtp.EnhancedCode{4, 7, 0}
	case agent.HasCode(err, agent.CodeOutboxFull):
		return 452, smtp.EnhancedCode{4, 3, 1}
	case agent.HasCode(err, agent.CodeBusy):
		return 451, smtp.EnhancedCode{4, 3, 2}
	case agent.HasCode(err, agent.CodeTooLarge), agent.HasCode(err, agent.CodeMeResStorage):
		return 552, smtp.EnhancedCode{5, 3, 4}
	case agent.HasCode(err, agent.CodeMe):
		return 451, smtp.EnhancedCode{4, 3, 0}
	case agent.HasCode(err, agent.CodeTrust), agent.HasCode(err, agent.CodeNotForUs):
		return 554, smtp.EnhancedCode{5, 7, 0}
	}
	return 554, smtp.EnhancedCode{5, 6, 0}
}

// causeChain renders err and every error it wraps, outermost first, for
// the log.
func causeChain(err error) string {
	s := err.Error()
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		s += " | caused by: " + fmt.Sprintf("%T: %s", e, e.Error())
	}
	return s
}
