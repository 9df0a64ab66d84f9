package did

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// marshalNoEscape encodes v like json.Marshal but without escaping <, > and &,
// as JavaScript's JSON.stringify does: DID encodings (did:peer:2 services,
// did:peer:4 documents) must come out byte-identical to other
// implementations'.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// member is one name/value pair of an ordered JSON object.
type member struct {
	key string
	val any
}

// object is a JSON object that keeps its members in document order. Values in
// the ordered tree are object, []any, string, json.Number, bool or nil.
type object []member

// set replaces the value of key, or inserts key first when it is absent.
func (o object) set(key string, v any) object {
	for i := range o {
		if o[i].key == key {
			o[i].val = v
			return o
		}
	}
	return append(object{{key, v}}, o...)
}

// decodeOrdered parses one JSON value into the ordered tree.
func decodeOrdered(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := object{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is %T", kt)
				}
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				o = append(o, member{k, v})
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return o, nil
		case '[':
			a := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return a, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	}
	return tok, nil
}

// encodeOrdered writes the ordered tree as compact JSON without HTML escaping.
func encodeOrdered(buf *bytes.Buffer, v any) error {
	switch t := v.(type) {
	case object:
		buf.WriteByte('{')
		for i, m := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			k, err := marshalNoEscape(m.key)
			if err != nil {
				return err
			}
			buf.Write(k)
			buf.WriteByte(':')
			if err := encodeOrdered(buf, m.val); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := encodeOrdered(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	default:
		b, err := marshalNoEscape(t)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	return nil
}

func encodeOrderedBytes(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := encodeOrdered(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// renameKeys returns a copy of the tree with object keys renamed by names,
// recursively, and string values of keys named typeKey (after renaming)
// mapped by types. It implements the did:peer:2 service abbreviations in
// both directions.
func renameKeys(v any, names, types map[string]string, typeKey string) any {
	switch t := v.(type) {
	case object:
		out := make(object, 0, len(t))
		for _, m := range t {
			k := m.key
			if n, ok := names[k]; ok {
				k = n
			}
			val := renameKeys(m.val, names, types, typeKey)
			if k == typeKey {
				if s, ok := val.(string); ok {
					if n, ok := types[s]; ok {
						val = n
					}
				}
			}
			out = append(out, member{k, val})
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = renameKeys(e, names, types, typeKey)
		}
		return out
	}
	return v
}

// objectWriter builds a JSON object member by member, in order.
type objectWriter struct {
	buf bytes.Buffer
	n   int
	err error
}

// add writes key: v, encoding v without HTML escaping.
func (w *objectWriter) add(key string, v any) {
	if w.err != nil {
		return
	}
	b, err := marshalNoEscape(v)
	if err != nil {
		w.err = fmt.Errorf("%s: %w", key, err)
		return
	}
	w.addRaw(key, b)
}

func (w *objectWriter) addRaw(key string, raw []byte) {
	if w.err != nil {
		return
	}
	if w.n == 0 {
		w.buf.WriteByte('{')
	} else {
		w.buf.WriteByte(',')
	}
	w.n++
	k, _ := marshalNoEscape(key)
	w.buf.Write(k)
	w.buf.WriteByte(':')
	w.buf.Write(raw)
}

func (w *objectWriter) bytes() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	if w.n == 0 {
		return []byte("{}"), nil
	}
	w.buf.WriteByte('}')
	return w.buf.Bytes(), nil
}
