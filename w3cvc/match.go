package w3cvc

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Match returns, for every input descriptor of def, the indexes into held of
// the credentials that satisfy its constraints (formats, fields and
// filters; is_holder cannot be checked without a holder and is ignored). A
// descriptor no credential satisfies has an empty, non-nil slice. An
// invalid definition matches nothing.
func Match(def *Definition, held []*Credential) map[string][]int {
	out := map[string][]int{}
	cds, err := compileDefinition(def)
	if err != nil {
		if def != nil {
			for _, d := range def.InputDescriptors {
				out[d.ID] = []int{}
			}
		}
		return out
	}
	for _, cd := range cds {
		idx := []int{}
		for i, c := range held {
			if c != nil && cd.satisfiedBy(c) {
				idx = append(idx, i)
			}
		}
		out[cd.desc.ID] = idx
	}
	return out
}

// satisfiedBy says whether c meets the descriptor's format and fields.
func (cd compiledDescriptor) satisfiedBy(c *Credential) bool {
	if len(cd.formats) > 0 && !formatAllowed(cd.formats, c.Format) {
		return false
	}
	for _, f := range cd.fields {
		if !f.field.Optional && !f.satisfiedBy(c.Document) {
			return false
		}
	}
	return true
}

// satisfiedBy follows PE's field evaluation: the first path whose selected
// value passes the filter satisfies the field.
func (f compiledField) satisfiedBy(doc map[string]any) bool {
	for _, p := range f.paths {
		for _, v := range p.Select(doc) {
			if f.filter == nil || f.filter(v) {
				return true
			}
		}
	}
	return false
}

// formatFamily maps a claim format designation to the credential format it
// can describe: jwt* to FormatJWTVC, ldp* to FormatLDPVC.
func formatFamily(f string) string {
	switch {
	case strings.HasPrefix(f, "jwt"):
		return FormatJWTVC
	case strings.HasPrefix(f, "ldp"):
		return FormatLDPVC
	}
	return ""
}

func formatAllowed(formats map[string]any, credFormat string) bool {
	for f := range formats {
		if strings.HasPrefix(f, "jwt_vp") || f == "ldp_vp" {
			continue // presentation formats say nothing of the credentials
		}
		if formatFamily(f) == credFormat {
			return true
		}
	}
	// Only presentation formats listed: no constraint on credentials.
	for f := range formats {
		if !strings.HasPrefix(f, "jwt_vp") && f != "ldp_vp" {
			return false
		}
	}
	return true
}

// BuildSubmission answers def with the chosen credentials (input descriptor
// id -> credential): it checks that each satisfies its descriptor and that
// the answered descriptors meet the submission requirements (all
// descriptors when there are none), and returns the credentials to present,
// deduplicated and in descriptor order, with the submission whose
// descriptor_map points at them ("$.verifiableCredential[i]"). A chosen
// descriptor with limit_disclosure "required" is refused
// (ErrSelectiveDisclosureUnsupported).
func BuildSubmission(def *Definition, chosen map[string]*Credential) ([]*Credential, *Submission, error) {
	cds, err := compileDefinition(def)
	if err != nil {
		return nil, nil, err
	}
	known := map[string]bool{}
	for _, cd := range cds {
		known[cd.desc.ID] = true
	}
	for id := range chosen {
		if !known[id] {
			return nil, nil, fmt.Errorf("no input descriptor %.80q in definition %.80q", id, def.ID)
		}
	}
	var creds []*Credential
	sub := &Submission{ID: strings.TrimPrefix(newURN(), "urn:uuid:"), DefinitionID: def.ID, DescriptorMap: []Descriptor{}}
	answered := map[string]bool{}
	for _, cd := range cds {
		c, ok := chosen[cd.desc.ID]
		if !ok {
			continue
		}
		if c == nil {
			return nil, nil, fmt.Errorf("input descriptor %.80q: credential is nil", cd.desc.ID)
		}
		if cd.desc.Constraints != nil && cd.desc.Constraints.LimitDisclosure == "required" {
			return nil, nil, fmt.Errorf("input descriptor %.80q: %w", cd.desc.ID, ErrSelectiveDisclosureUnsupported)
		}
		if !cd.satisfiedBy(c) {
			return nil, nil, fmt.Errorf("credential %.80q does not satisfy input descriptor %.80q", c.ID, cd.desc.ID)
		}
		i := indexOfCredential(creds, c)
		if i < 0 {
			i = len(creds)
			creds = append(creds, c)
		}
		sub.DescriptorMap = append(sub.DescriptorMap, Descriptor{
			ID: cd.desc.ID, Format: c.Format, Path: "$.verifiableCredential[" + strconv.Itoa(i) + "]",
		})
		answered[cd.desc.ID] = true
	}
	if err := requirementsMet(def, answered); err != nil {
		return nil, nil, err
	}
	return creds, sub, nil
}

func indexOfCredential(creds []*Credential, c *Credential) int {
	for i, e := range creds {
		if e == c || bytes.Equal(e.Raw, c.Raw) {
			return i
		}
	}
	return -1
}

// requirementsMet checks the answered descriptors against def's
// submission requirements, or requires all descriptors when it has none.
func requirementsMet(def *Definition, answered map[string]bool) error {
	if len(def.SubmissionRequirements) == 0 {
		var missing []string
		for _, d := range def.InputDescriptors {
			if !answered[d.ID] {
				missing = append(missing, d.ID)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("input descriptors %q are not answered", missing)
		}
		return nil
	}
	groups := map[string][]string{}
	for _, d := range def.InputDescriptors {
		for _, g := range d.Group {
			groups[g] = append(groups[g], d.ID)
		}
	}
	for i, r := range def.SubmissionRequirements {
		if err := requirementMet(r, answered, groups); err != nil {
			name := r.Name
			if name == "" {
				name = strconv.Itoa(i)
			}
			return fmt.Errorf("submission requirement %.80q: %w", name, err)
		}
	}
	return nil
}

func requirementMet(r SubmissionRequirement, answered map[string]bool, groups map[string][]string) error {
	n, total := 0, 0
	if r.From != "" {
		for _, id := range groups[r.From] {
			total++
			if answered[id] {
				n++
			}
		}
	} else {
		for _, nr := range r.FromNested {
			total++
			if requirementMet(nr, answered, groups) == nil {
				n++
			}
		}
	}
	what := "input descriptors of group " + strconv.Quote(r.From)
	if r.From == "" {
		what = "nested requirements"
	}
	switch {
	case r.Rule == "all" && n != total:
		return fmt.Errorf("rule all: %d of %d %s satisfied", n, total, what)
	case r.Rule == "pick" && r.Count != nil && n != *r.Count:
		return fmt.Errorf("rule pick count %d: %d %s satisfied", *r.Count, n, what)
	case r.Rule == "pick" && r.Min != nil && n < *r.Min:
		return fmt.Errorf("rule pick min %d: %d %s satisfied", *r.Min, n, what)
	case r.Rule == "pick" && r.Max != nil && n > *r.Max:
		return fmt.Errorf("rule pick max %d: %d %s satisfied", *r.Max, n, what)
	}
	return nil
}

var credentialPath = regexp.MustCompile(`^\$(?:\.vp)?(?:\.verifiableCredential|\['verifiableCredential'\]|\["verifiableCredential"\])\[(\d{1,4})\]$`)

// EvaluateSubmission checks p's presentation_submission against def: it
// names def; every descriptor_map entry names an input descriptor and
// points (path, or path_nested from "$") at a credential of p of a
// matching format that satisfies the descriptor, whose subject is the
// holder when is_holder requires it; and the answered descriptors meet the
// submission requirements (all descriptors when there are none).
// limit_disclosure "required" is refused (ErrSelectiveDisclosureUnsupported).
// Errors have reason "submission".
func EvaluateSubmission(def *Definition, p *Presentation) error {
	fail := func(format string, a ...any) error { return newErr(ReasonSubmission, fmt.Sprintf(format, a...)) }
	cds, err := compileDefinition(def)
	if err != nil {
		return wrapErr(ReasonSubmission, "presentation definition", err)
	}
	if p == nil || p.Submission == nil {
		return fail("the presentation has no presentation_submission")
	}
	s := p.Submission
	if s.DefinitionID != def.ID {
		return fail("presentation_submission answers definition %.80q, not %.80q", s.DefinitionID, def.ID)
	}
	byID := map[string]compiledDescriptor{}
	for _, cd := range cds {
		byID[cd.desc.ID] = cd
	}
	answered := map[string]bool{}
	for i, e := range s.DescriptorMap {
		cd, ok := byID[e.ID]
		if !ok {
			return fail("descriptor_map[%d] names input descriptor %.80q, which the definition does not have", i, e.ID)
		}
		c, err := submittedCredential(e, p)
		if err != nil {
			return fail("descriptor_map[%d]: %v", i, err)
		}
		if cd.desc.Constraints != nil && cd.desc.Constraints.LimitDisclosure == "required" {
			return &Error{Reason: ReasonSubmission, Msg: fmt.Sprintf("input descriptor %.80q: %v", e.ID, ErrSelectiveDisclosureUnsupported), err: ErrSelectiveDisclosureUnsupported}
		}
		if !cd.satisfiedBy(c) {
			return fail("descriptor_map[%d]: the credential does not satisfy input descriptor %.80q", i, e.ID)
		}
		if cd.desc.Constraints != nil {
			for _, h := range cd.desc.Constraints.IsHolder {
				if h.Directive == "required" && c.Subject != p.Holder {
					return fail("input descriptor %.80q requires the holder to be the credential's subject", e.ID)
				}
			}
		}
		answered[e.ID] = true
	}
	if err := requirementsMet(def, answered); err != nil {
		return wrapErr(ReasonSubmission, "presentation_submission", err)
	}
	return nil
}

// submittedCredential returns the credential of p a descriptor_map entry
// points at.
func submittedCredential(e Descriptor, p *Presentation) (*Credential, error) {
	d := &e
	for depth := 0; d.PathNested != nil && (d.Path == "$" || d.Path == "$.vp"); depth++ {
		if depth > maxNesting {
			return nil, errors.New("path_nested too deep")
		}
		d = d.PathNested
	}
	m := credentialPath.FindStringSubmatch(d.Path)
	if m == nil {
		return nil, fmt.Errorf("path %.80q does not name a verifiableCredential entry", d.Path)
	}
	i, _ := strconv.Atoi(m[1])
	if i >= len(p.Credentials) {
		return nil, fmt.Errorf("path %.80q: the presentation has %d credentials", d.Path, len(p.Credentials))
	}
	c := p.Credentials[i]
	if formatFamily(d.Format) != c.Format {
		return nil, fmt.Errorf("format %.40q does not describe the %s credential at %s", d.Format, c.Format, d.Path)
	}
	return c, nil
}
