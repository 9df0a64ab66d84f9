package daemon

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/agentd/agentd/protocols/mediation"
)

// fillAll sets every exported field under v to a non-zero value.
func fillAll(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillAll(v.Elem())
	case reflect.String:
		v.SetString("s")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[json.RawMessage]() {
			v.SetBytes([]byte(`{"a":1}`))
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fillAll(s.Index(0))
		v.Set(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fillAll(v.Field(i))
			}
		}
	}
}

func filledValue[T any]() T {
	var v T
	fillAll(reflect.ValueOf(&v).Elem())
	return v
}

func asJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

// sameJSON checks that the transport's typed view of a protocol value has
// the JSON the protocol value itself had: the admin API's shape did not
// change, and no member is dropped by the conversion.
func sameJSON[A, B any](t *testing.T, name string, conv func(A) B) {
	t.Helper()
	in := filledValue[A]()
	if got, want := asJSON(t, conv(in)), asJSON(t, in); !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", name, got, want)
	}
}

func TestAdminViewsKeepTheProtocolsJSON(t *testing.T) {
	sameJSON(t, "invitation", invitationOut)
	sameJSON(t, "challenge", challengeOut)
	sameJSON(t, "verification", verificationOut)
	sameJSON(t, "letter", letterOut)
	sameJSON(t, "request", requestOut)
	sameJSON(t, "received", receivedOut)
	sameJSON(t, "credential", credentialOut)
	sameJSON(t, "request outcome", requestOutcomeOut)
	sameJSON(t, "prove outcome", proveOutcomeOut)
	// A grant's view has always had recipient_count beside the grant.
	type grantView struct {
		mediation.Grant
		RecipientN int `json:"recipient_count"`
	}
	g := filledValue[mediation.Grant]()
	if got, want := asJSON(t, grantOut(g)), asJSON(t, grantView{Grant: g}); !reflect.DeepEqual(got, want) {
		t.Errorf("grant:\n got %v\nwant %v", got, want)
	}
	sameJSON(t, "recipient", func(r mediation.Recipient) any { return recipientsOut([]mediation.Recipient{r})[0] })
}
