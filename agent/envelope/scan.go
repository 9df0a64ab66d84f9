package envelope

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// A small JSON scanner for the top level of JWE and JWS envelopes. Unpack
// reads every layer's members with it instead of encoding/json because the
// envelope is mostly one long base64url string that encoding/json would scan
// twice and copy; here it is scanned once and referenced in place. The scanner
// validates the complete JSON syntax (RFC 8259) of its input, like json.Valid,
// so nothing invalid gets through that encoding/json would have refused.
// Plaintext messages are read with it too: here (fastjson.go) and, through
// Members and Elements, by agent.ParseMessage, each falling back to
// encoding/json for anything unusual.

var errSyntax = errors.New("invalid JSON")

// maxDepth bounds nesting, so hostile input cannot exhaust the stack; it is
// the limit encoding/json applies.
const maxDepth = 10000

type scanner struct {
	data  []byte
	i     int
	depth int
	// valid: data is known to be valid JSON (a value an earlier scan handed
	// on), so strings inside values are skipped to their closing quote
	// without checking their contents again. Readers of nested values scan
	// them once more; the checks were the cost of it.
	valid bool
}

func (s *scanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// scanTopObject checks that data is exactly one JSON object (surrounding
// whitespace allowed) and calls member for each of its members, in order, with
// the raw name (with its quotes, escapes not resolved), whether the name has
// escapes, and the raw value.
func scanTopObject(data []byte, member func(name []byte, escaped bool, value []byte)) error {
	return (&scanner{data: data}).topObject(member)
}

// scanValidObject is scanTopObject for data known to be valid JSON: a value
// scanTopObject or scanTopArray handed on, or a part of one.
func scanValidObject(data []byte, member func(name []byte, escaped bool, value []byte)) error {
	return (&scanner{data: data, valid: true}).topObject(member)
}

func (s *scanner) topObject(member func(name []byte, escaped bool, value []byte)) error {
	data := s.data
	s.ws()
	if s.i >= len(data) || data[s.i] != '{' {
		return errSyntax
	}
	s.i++
	s.depth = 1
	s.ws()
	if s.i < len(data) && data[s.i] == '}' {
		s.i++
	} else {
		for {
			s.ws()
			start := s.i
			escaped, err := s.str()
			if err != nil {
				return err
			}
			name := data[start:s.i]
			s.ws()
			if s.i >= len(data) || data[s.i] != ':' {
				return errSyntax
			}
			s.i++
			s.ws()
			vstart := s.i
			if err := s.value(); err != nil {
				return err
			}
			member(name, escaped, data[vstart:s.i])
			s.ws()
			if s.i >= len(data) {
				return errSyntax
			}
			if data[s.i] == '}' {
				s.i++
				break
			}
			if data[s.i] != ',' {
				return errSyntax
			}
			s.i++
		}
	}
	s.ws()
	if s.i != len(data) {
		return errSyntax
	}
	return nil
}

// scanTopArray checks that data is exactly one JSON array (surrounding
// whitespace allowed) and calls elem for each of its elements, in order, with
// the raw value.
func scanTopArray(data []byte, elem func(value []byte)) error {
	return (&scanner{data: data}).topArray(elem)
}

// scanValidArray is scanTopArray for data known to be valid JSON (see
// scanValidObject).
func scanValidArray(data []byte, elem func(value []byte)) error {
	return (&scanner{data: data, valid: true}).topArray(elem)
}

func (s *scanner) topArray(elem func(value []byte)) error {
	data := s.data
	s.ws()
	if s.i >= len(data) || data[s.i] != '[' {
		return errSyntax
	}
	s.i++
	s.depth = 1
	s.ws()
	if s.i < len(data) && data[s.i] == ']' {
		s.i++
	} else {
		for {
			s.ws()
			start := s.i
			if err := s.value(); err != nil {
				return err
			}
			elem(data[start:s.i])
			s.ws()
			if s.i >= len(data) {
				return errSyntax
			}
			if data[s.i] == ']' {
				s.i++
				break
			}
			if data[s.i] != ',' {
				return errSyntax
			}
			s.i++
		}
	}
	s.ws()
	if s.i != len(data) {
		return errSyntax
	}
	return nil
}

// value scans one JSON value.
func (s *scanner) value() error {
	if s.i >= len(s.data) {
		return errSyntax
	}
	switch c := s.data[s.i]; {
	case c == '"':
		if s.valid {
			return s.skipStr()
		}
		_, err := s.str()
		return err
	case c == '{' || c == '[':
		return s.container(c)
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return errSyntax
}

// container scans an object or array starting at its opening bracket.
func (s *scanner) container(open byte) error {
	s.depth++
	if s.depth > maxDepth {
		return errSyntax
	}
	closer := byte(']')
	if open == '{' {
		closer = '}'
	}
	s.i++
	s.ws()
	if s.i < len(s.data) && s.data[s.i] == closer {
		s.i++
		s.depth--
		return nil
	}
	for {
		s.ws()
		if open == '{' {
			if s.i >= len(s.data) || s.data[s.i] != '"' {
				return errSyntax
			}
			if s.valid {
				if err := s.skipStr(); err != nil {
					return err
				}
			} else if _, err := s.str(); err != nil {
				return err
			}
			s.ws()
			if s.i >= len(s.data) || s.data[s.i] != ':' {
				return errSyntax
			}
			s.i++
			s.ws()
		}
		if err := s.value(); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.data) {
			return errSyntax
		}
		c := s.data[s.i]
		s.i++
		if c == closer {
			s.depth--
			return nil
		}
		if c != ',' {
			return errSyntax
		}
	}
}

// str scans a string starting at its opening quote and reports whether it
// contains escapes.
func (s *scanner) str() (escaped bool, err error) {
	if s.i >= len(s.data) || s.data[s.i] != '"' {
		return false, errSyntax
	}
	i := s.i + 1
	// Fast path: the first quote ends the string when no byte before it is
	// a backslash or a control character. Both searches run many bytes a
	// cycle (bytes.IndexByte is vectorised), so long base64url strings cost
	// little even when a nested value is scanned again by its reader.
	q := bytes.IndexByte(s.data[i:], '"')
	if q < 0 {
		return false, errSyntax // unterminated
	}
	if run := s.data[i : i+q]; noControl(run) && bytes.IndexByte(run, '\\') < 0 {
		s.i = i + q + 1
		return false, nil
	}
	for i < len(s.data) {
		// Skip eight bytes at a time while none of them is a quote, a
		// backslash or a control character: the long base64url strings
		// of envelopes are scanned at several bytes a cycle.
		for i+8 <= len(s.data) && plain8(binary.LittleEndian.Uint64(s.data[i:])) {
			i += 8
		}
		if i >= len(s.data) {
			break
		}
		c := s.data[i]
		switch {
		case c == '"':
			s.i = i + 1
			return escaped, nil
		case c < 0x20:
			return false, errSyntax
		case c == '\\':
			escaped = true
			if i+1 >= len(s.data) {
				return false, errSyntax
			}
			switch s.data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s.data) {
					return false, errSyntax
				}
				for _, h := range s.data[i+2 : i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false, errSyntax
					}
				}
				i += 6
			default:
				return false, errSyntax
			}
		default:
			i++
		}
	}
	return false, errSyntax
}

// plain8 reports whether none of the eight bytes in x is a quote, a
// backslash or below 0x20, which str would pass over one by one. The tests
// are the classic "has a zero byte" and "has a byte less than n" word
// tricks, exact for whether any byte matches (their false hits lie only in
// bytes above a true one).
func plain8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ ('"' * ones)
	b := x ^ ('\\' * ones)
	return ((x-0x20*ones)&^x|(q-ones)&^q|(b-ones)&^b)&highs == 0
}

// skipStr passes over a string of valid JSON starting at its opening
// quote: it ends at the first quote preceded by an even number of
// backslashes. Its contents are not checked.
func (s *scanner) skipStr() error {
	start := s.i + 1
	for i := start; ; {
		q := bytes.IndexByte(s.data[i:], '"')
		if q < 0 {
			return errSyntax
		}
		j := i + q
		k := j
		for k > start && s.data[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			s.i = j + 1
			return nil
		}
		i = j + 1
	}
}

// noControl reports whether b has no byte below 0x20. It tests four words
// a step with the "has a byte less than n" trick of plain8, exact for
// whether any byte matches, and ORs the results, so the loop has no
// data-dependent branch.
func noControl(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	var acc uint64
	for len(b) >= 32 {
		w0 := binary.LittleEndian.Uint64(b)
		w1 := binary.LittleEndian.Uint64(b[8:])
		w2 := binary.LittleEndian.Uint64(b[16:])
		w3 := binary.LittleEndian.Uint64(b[24:])
		acc |= (w0-0x20*ones)&^w0 | (w1-0x20*ones)&^w1 | (w2-0x20*ones)&^w2 | (w3-0x20*ones)&^w3
		b = b[32:]
	}
	for len(b) >= 8 {
		w := binary.LittleEndian.Uint64(b)
		acc |= (w - 0x20*ones) &^ w
		b = b[8:]
	}
	if acc&highs != 0 {
		return false
	}
	for _, c := range b {
		if c < 0x20 {
			return false
		}
	}
	return true
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	d := s.data
	i := s.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case digits() == 0:
		return errSyntax
	}
	if i < len(d) && d[i] == '.' {
		i++
		if digits() == 0 {
			return errSyntax
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if digits() == 0 {
			return errSyntax
		}
	}
	s.i = i
	return nil
}

func (s *scanner) literal(lit string) error {
	if len(s.data)-s.i < len(lit) || string(s.data[s.i:s.i+len(lit)]) != lit {
		return errSyntax
	}
	s.i += len(lit)
	return nil
}
