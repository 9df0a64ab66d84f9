package w3cvc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Definition is a DIF Presentation Exchange v2 presentation_definition.
// Members this model does not name are kept in Extra and written back.
type Definition struct {
	ID                     string                     `json:"id"`
	Name                   string                     `json:"name,omitempty"`
	Purpose                string                     `json:"purpose,omitempty"`
	Format                 map[string]any             `json:"format,omitempty"`
	InputDescriptors       []InputDescriptor          `json:"input_descriptors"`
	SubmissionRequirements []SubmissionRequirement    `json:"submission_requirements,omitempty"`
	Extra                  map[string]json.RawMessage `json:"-"`
}

// InputDescriptor is one input_descriptors entry.
type InputDescriptor struct {
	ID          string                     `json:"id"`
	Name        string                     `json:"name,omitempty"`
	Purpose     string                     `json:"purpose,omitempty"`
	Group       []string                   `json:"group,omitempty"`
	Format      map[string]any             `json:"format,omitempty"`
	Constraints *Constraints               `json:"constraints,omitempty"`
	Extra       map[string]json.RawMessage `json:"-"`
}

// Constraints are an input descriptor's constraints.
type Constraints struct {
	// LimitDisclosure is "", "required" or "preferred".
	LimitDisclosure string                     `json:"limit_disclosure,omitempty"`
	IsHolder        []HolderSubject            `json:"is_holder,omitempty"`
	Fields          []Field                    `json:"fields,omitempty"`
	Extra           map[string]json.RawMessage `json:"-"`
}

// HolderSubject is an is_holder entry: the holder must be the subject of
// the fields named.
type HolderSubject struct {
	FieldID []string `json:"field_id"`
	// Directive is "required" or "preferred".
	Directive string `json:"directive"`
}

// Field is a constraints.fields entry.
type Field struct {
	ID      string         `json:"id,omitempty"`
	Path    []string       `json:"path"`
	Purpose string         `json:"purpose,omitempty"`
	Name    string         `json:"name,omitempty"`
	Filter  map[string]any `json:"filter,omitempty"`
	// Predicate is "", "required" or "preferred".
	Predicate string                     `json:"predicate,omitempty"`
	Optional  bool                       `json:"optional,omitempty"`
	Extra     map[string]json.RawMessage `json:"-"`
}

// SubmissionRequirement is a submission_requirements entry: Rule "all" or
// "pick" (with Count, or Min and/or Max) over the descriptors of group From
// or the nested requirements FromNested.
type SubmissionRequirement struct {
	Name       string                     `json:"name,omitempty"`
	Purpose    string                     `json:"purpose,omitempty"`
	Rule       string                     `json:"rule"`
	Count      *int                       `json:"count,omitempty"`
	Min        *int                       `json:"min,omitempty"`
	Max        *int                       `json:"max,omitempty"`
	From       string                     `json:"from,omitempty"`
	FromNested []SubmissionRequirement    `json:"from_nested,omitempty"`
	Extra      map[string]json.RawMessage `json:"-"`
}

// Submission is a presentation_submission.
type Submission struct {
	ID            string       `json:"id"`
	DefinitionID  string       `json:"definition_id"`
	DescriptorMap []Descriptor `json:"descriptor_map"`
}

// Descriptor is a descriptor_map entry.
type Descriptor struct {
	ID         string      `json:"id"`
	Format     string      `json:"format"`
	Path       string      `json:"path"`
	PathNested *Descriptor `json:"path_nested,omitempty"`
}

// The JSON methods keep unknown members in Extra.

type (
	definitionJSON      Definition
	inputDescriptorJSON InputDescriptor
	constraintsJSON     Constraints
	fieldJSON           Field
	requirementJSON     SubmissionRequirement
)

// MarshalJSON writes the definition with its Extra members.
func (d Definition) MarshalJSON() ([]byte, error) { return marshalExtra(definitionJSON(d), d.Extra) }

// UnmarshalJSON reads the definition, keeping unknown members in Extra.
func (d *Definition) UnmarshalJSON(b []byte) error {
	return unmarshalExtra(b, (*definitionJSON)(d), &d.Extra)
}

// MarshalJSON writes the descriptor with its Extra members.
func (d InputDescriptor) MarshalJSON() ([]byte, error) {
	return marshalExtra(inputDescriptorJSON(d), d.Extra)
}

// UnmarshalJSON reads the descriptor, keeping unknown members in Extra.
func (d *InputDescriptor) UnmarshalJSON(b []byte) error {
	return unmarshalExtra(b, (*inputDescriptorJSON)(d), &d.Extra)
}

// MarshalJSON writes the constraints with their Extra members.
func (c Constraints) MarshalJSON() ([]byte, error) { return marshalExtra(constraintsJSON(c), c.Extra) }

// UnmarshalJSON reads the constraints, keeping unknown members in Extra.
func (c *Constraints) UnmarshalJSON(b []byte) error {
	return unmarshalExtra(b, (*constraintsJSON)(c), &c.Extra)
}

// MarshalJSON writes the field with its Extra members.
func (f Field) MarshalJSON() ([]byte, error) { return marshalExtra(fieldJSON(f), f.Extra) }

// UnmarshalJSON reads the field, keeping unknown members in Extra.
func (f *Field) UnmarshalJSON(b []byte) error { return unmarshalExtra(b, (*fieldJSON)(f), &f.Extra) }

// MarshalJSON writes the requirement with its Extra members.
func (r SubmissionRequirement) MarshalJSON() ([]byte, error) {
	return marshalExtra(requirementJSON(r), r.Extra)
}

// UnmarshalJSON reads the requirement, keeping unknown members in Extra.
func (r *SubmissionRequirement) UnmarshalJSON(b []byte) error {
	return unmarshalExtra(b, (*requirementJSON)(r), &r.Extra)
}

func marshalExtra(v any, extra map[string]json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, e := range extra {
		if _, known := m[k]; !known {
			m[k] = e
		}
	}
	return json.Marshal(m)
}

func unmarshalExtra(b []byte, v any, extra *map[string]json.RawMessage) error {
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	names := jsonNames(v)
	*extra = nil
	for k, e := range all {
		if names[k] {
			continue
		}
		if *extra == nil {
			*extra = map[string]json.RawMessage{}
		}
		(*extra)[k] = e
	}
	return nil
}

// ParseDefinition reads and validates a presentation definition: ids
// present and unique (descriptors, fields), JSONPath syntax (RFC 9535),
// filters in the supported JSON Schema subset (see CompileFilter),
// predicate, limit_disclosure and is_holder values, and well formed
// submission requirements naming existing groups.
func ParseDefinition(b []byte) (*Definition, error) {
	if len(b) > MaxDefinitionSize {
		return nil, fmt.Errorf("presentation definition is %d bytes, more than %d", len(b), MaxDefinitionSize)
	}
	var d Definition
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("presentation definition: %w", err)
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

// jsonNames returns the JSON member names of the struct v points to.
func jsonNames(v any) map[string]bool {
	t := reflect.TypeOf(v).Elem()
	out := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}
