package w3cvc

import (
	"fmt"

	"github.com/theory/jsonpath"
)

// compiledField is a field with its paths parsed and filter compiled.
type compiledField struct {
	field  *Field
	paths  []*jsonpath.Path
	filter filterFunc
}

// compiledDescriptor is an input descriptor ready for matching.
type compiledDescriptor struct {
	desc    *InputDescriptor
	fields  []compiledField
	formats map[string]any
}

// Validate checks the definition as ParseDefinition does.
func (d *Definition) Validate() error {
	_, err := compileDefinition(d)
	return err
}

// compileDefinition validates d and compiles its descriptors, in order.
func compileDefinition(d *Definition) ([]compiledDescriptor, error) {
	if d == nil {
		return nil, fmt.Errorf("presentation definition is nil")
	}
	if d.ID == "" {
		return nil, fmt.Errorf("presentation definition has no id")
	}
	if len(d.InputDescriptors) == 0 {
		return nil, fmt.Errorf("presentation definition %.80q has no input_descriptors", d.ID)
	}
	ids := map[string]bool{}
	fieldIDs := map[string]bool{}
	groups := map[string]bool{}
	out := make([]compiledDescriptor, len(d.InputDescriptors))
	for i := range d.InputDescriptors {
		desc := &d.InputDescriptors[i]
		if desc.ID == "" {
			return nil, fmt.Errorf("input_descriptors[%d] has no id", i)
		}
		if ids[desc.ID] {
			return nil, fmt.Errorf("input descriptor id %.80q is not unique", desc.ID)
		}
		ids[desc.ID] = true
		for _, g := range desc.Group {
			groups[g] = true
		}
		cd := compiledDescriptor{desc: desc, formats: desc.Format}
		if len(cd.formats) == 0 {
			cd.formats = d.Format
		}
		if c := desc.Constraints; c != nil {
			if err := oneOf("limit_disclosure", c.LimitDisclosure, "", "required", "preferred"); err != nil {
				return nil, fmt.Errorf("input descriptor %.80q: %w", desc.ID, err)
			}
			local := map[string]bool{}
			for j := range c.Fields {
				f := &c.Fields[j]
				cf, err := compileField(f)
				if err != nil {
					return nil, fmt.Errorf("input descriptor %.80q field %d: %w", desc.ID, j, err)
				}
				if f.ID != "" {
					if fieldIDs[f.ID] {
						return nil, fmt.Errorf("field id %.80q is not unique", f.ID)
					}
					fieldIDs[f.ID], local[f.ID] = true, true
				}
				cd.fields = append(cd.fields, cf)
			}
			for _, h := range c.IsHolder {
				if err := oneOf("is_holder directive", h.Directive, "required", "preferred"); err != nil {
					return nil, fmt.Errorf("input descriptor %.80q: %w", desc.ID, err)
				}
				if len(h.FieldID) == 0 {
					return nil, fmt.Errorf("input descriptor %.80q: is_holder has no field_id", desc.ID)
				}
				for _, id := range h.FieldID {
					if !local[id] {
						return nil, fmt.Errorf("input descriptor %.80q: is_holder names field %.80q, which it does not have", desc.ID, id)
					}
				}
			}
		}
		out[i] = cd
	}
	for i, r := range d.SubmissionRequirements {
		if err := validateRequirement(r, groups, 0); err != nil {
			return nil, fmt.Errorf("submission_requirements[%d]: %w", i, err)
		}
	}
	return out, nil
}

func compileField(f *Field) (compiledField, error) {
	cf := compiledField{field: f}
	if len(f.Path) == 0 {
		return cf, fmt.Errorf("no path")
	}
	for _, p := range f.Path {
		jp, err := jsonpath.Parse(p)
		if err != nil {
			return cf, fmt.Errorf("path %.120q: %w", p, err)
		}
		cf.paths = append(cf.paths, jp)
	}
	if err := oneOf("predicate", f.Predicate, "", "required", "preferred"); err != nil {
		return cf, err
	}
	if f.Predicate != "" && f.Filter == nil {
		return cf, fmt.Errorf("predicate without filter")
	}
	if f.Filter != nil {
		flt, err := compileFilterJSON(f.Filter)
		if err != nil {
			return cf, fmt.Errorf("filter: %w", err)
		}
		cf.filter = flt
	}
	return cf, nil
}

func validateRequirement(r SubmissionRequirement, groups map[string]bool, depth int) error {
	if depth > maxNesting {
		return fmt.Errorf("from_nested deeper than %d", maxNesting)
	}
	switch r.Rule {
	case "all":
		if r.Count != nil || r.Min != nil || r.Max != nil {
			return fmt.Errorf("rule all takes no count, min or max")
		}
	case "pick":
		for name, p := range map[string]*int{"count": r.Count, "min": r.Min, "max": r.Max} {
			if p != nil && *p < 0 {
				return fmt.Errorf("%s is negative", name)
			}
		}
		if r.Count == nil && r.Min == nil && r.Max == nil {
			return fmt.Errorf("rule pick needs count, min or max")
		}
		if r.Min != nil && r.Max != nil && *r.Min > *r.Max {
			return fmt.Errorf("min %d is more than max %d", *r.Min, *r.Max)
		}
	default:
		return fmt.Errorf("rule %.40q is neither all nor pick", r.Rule)
	}
	if (r.From == "") == (len(r.FromNested) == 0) {
		return fmt.Errorf("needs exactly one of from and from_nested")
	}
	if r.From != "" && !groups[r.From] {
		return fmt.Errorf("from names group %.80q, which no input descriptor is in", r.From)
	}
	for i, n := range r.FromNested {
		if err := validateRequirement(n, groups, depth+1); err != nil {
			return fmt.Errorf("from_nested[%d]: %w", i, err)
		}
	}
	return nil
}

func oneOf(what, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s %.40q is not one of %q", what, v, allowed)
}
