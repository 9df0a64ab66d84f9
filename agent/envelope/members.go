package envelope

// Members calls fn for each member of the JSON object obj, in order, with the
// member name (without its quotes) and the raw value (without surrounding
// whitespace; a sub-slice of obj). It reports false when obj is not exactly
// one valid JSON object (surrounding whitespace allowed), when a member name
// has escapes or is not plain lower-case printable ASCII, or when fn returned
// false; after that, fn is not called again. The syntax of all of obj is
// checked, as json.Valid would, even after fn returned false. A caller that
// decodes with it falls back to encoding/json when it reports false: for
// the names it accepts, encoding/json's case-insensitive matching of names
// to lower-case ASCII tags is an exact match.
func Members(obj []byte, fn func(name, value []byte) bool) bool {
	return fastObject(obj, fn)
}

// Elements calls fn for each element of the JSON array arr, in order, with
// the raw value (without surrounding whitespace; a sub-slice of arr). It
// reports false when arr is not exactly one valid JSON array (surrounding
// whitespace allowed) or when fn returned false; after that, fn is not
// called again.
func Elements(arr []byte, fn func(value []byte) bool) bool {
	ok := true
	err := scanTopArray(arr, func(v []byte) {
		if ok {
			ok = fn(v)
		}
	})
	return err == nil && ok
}

// ValidMembers is Members for obj known to be valid JSON: a value Members or
// Elements handed on, or a part of one. It checks structure, numbers and
// literals as Members does but passes over strings to their closing quote
// without checking their contents again, so that a reader of nested values
// does not pay for the checks of the same bytes once per level. On input
// that is not valid JSON it may report true where Members reports false.
func ValidMembers(obj []byte, fn func(name, value []byte) bool) bool {
	return fastValidObject(obj, fn)
}

// ValidElements is Elements for arr known to be valid JSON (see
// ValidMembers).
func ValidElements(arr []byte, fn func(value []byte) bool) bool {
	ok := true
	err := scanValidArray(arr, func(v []byte) {
		if ok {
			ok = fn(v)
		}
	})
	return err == nil && ok
}
