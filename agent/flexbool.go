package agent

import (
	"bytes"
	"fmt"
)

// FlexBool is a boolean field of a message body that also takes the strings
// "true" and "false", as some wallets send them (the Identus wallets send
// "live_delivery": "true"). It is written as a JSON boolean. Anything else
// (other strings, numbers) is refused with an error that says what is
// expected; JSON null leaves the value as it is (a *FlexBool stays nil).
type FlexBool bool

// UnmarshalJSON implements json.Unmarshaler.
func (b *FlexBool) UnmarshalJSON(data []byte) error {
	switch string(bytes.TrimSpace(data)) {
	case "true", `"true"`:
		*b = true
	case "false", `"false"`:
		*b = false
	case "null":
	default:
		return fmt.Errorf("want true or false (a JSON boolean, or the string \"true\" or \"false\"), got %.40s", data)
	}
	return nil
}
