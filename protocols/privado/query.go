package privado

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/agentd/agentd/agent"
)

// CheckQuery checks a proof template (an iden3 query): a JSON object with
// context, type and allowedIssuers, as iden3auth.ValidateScope wants them.
func CheckQuery(q map[string]any) error {
	if len(q) == 0 {
		return agent.Errorf(agent.CodeMsg, "query: required (the exchange has no proof template)")
	}
	if s, _ := q["context"].(string); s == "" {
		return agent.Errorf(agent.CodeMsg, "query.context: required (the credential's JSON-LD schema URL)")
	}
	if s, _ := q["type"].(string); s == "" {
		return agent.Errorf(agent.CodeMsg, "query.type: required (the credential type)")
	}
	if l, _ := q["allowedIssuers"].([]any); len(l) == 0 {
		return agent.Errorf(agent.CodeMsg, "query.allowedIssuers: required (issuer DIDs, or [\"*\"])")
	}
	if cs, ok := q["credentialSubject"]; ok {
		if _, ok := cs.(map[string]any); !ok {
			return agent.Errorf(agent.CodeMsg, "query.credentialSubject: must be an object")
		}
	}
	return nil
}

// words of the query operators.
var opWords = map[string]string{
	"$eq": "is", "$ne": "is not", "$lt": "is less than", "$gt": "is greater than",
	"$lte": "is at most", "$gte": "is at least", "$in": "is one of", "$nin": "is none of",
	"$between": "is between", "$nonbetween": "is not between",
}

// Describe says in words what a proof with query q proves, for the mail and
// the consent page: "that your KYCAgeCredential credential, from any
// issuer, shows that birthday is less than 20000101".
func Describe(q map[string]any) string {
	typ, _ := q["type"].(string)
	issuers := "from any issuer"
	if l, _ := q["allowedIssuers"].([]any); len(l) > 0 && !(len(l) == 1 && l[0] == "*") {
		var names []string
		for _, v := range l {
			names = append(names, fmt.Sprint(v))
		}
		issuers = "from " + strings.Join(names, " or ")
	}
	out := fmt.Sprintf("that you hold a %s credential %s", typ, issuers)
	cs, _ := q["credentialSubject"].(map[string]any)
	fields := make([]string, 0, len(cs))
	for f := range cs {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	var parts []string
	for _, f := range fields {
		ops, _ := cs[f].(map[string]any)
		if len(ops) == 0 {
			parts = append(parts, "discloses your "+f)
			continue
		}
		names := make([]string, 0, len(ops))
		for op := range ops {
			names = append(names, op)
		}
		sort.Strings(names)
		for _, op := range names {
			v := value(ops[op])
			switch {
			case op == "$exists":
				if b, _ := ops[op].(bool); b {
					parts = append(parts, f+" is present")
				} else {
					parts = append(parts, f+" is absent")
				}
			case opWords[op] != "":
				parts = append(parts, f+" "+opWords[op]+" "+v)
			default:
				parts = append(parts, f+" "+op+" "+v)
			}
		}
	}
	if len(parts) > 0 {
		out += ", showing that " + strings.Join(parts, " and ")
	}
	return out
}

func value(v any) string {
	switch x := v.(type) {
	case []any:
		var s []string
		for _, e := range x {
			s = append(s, value(e))
		}
		return strings.Join(s, ", ")
	case string:
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}
