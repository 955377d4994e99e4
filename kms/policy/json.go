package policy

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// The policy grammar forbids repeated keys ("you cannot include the Effect
// block twice") and order matters for messages, which encoding/json's maps
// would hide. So documents are read token by token into this small ordered
// tree.

type jkind uint8

const (
	jString jkind = iota
	jNumber
	jBool
	jNull
	jArray
	jObject
)

func (k jkind) String() string {
	return [...]string{"a string", "a number", "a boolean", "null", "an array", "an object"}[k]
}

type jvalue struct {
	kind jkind
	s    string // string value, number literal, or "true"/"false"
	arr  []jvalue
	obj  []jmember
}

type jmember struct {
	key string
	val jvalue
}

// maxDepth bounds nesting; a valid policy needs 5 levels (policy, Statement
// list, statement, Condition, operator, key list).
const maxDepth = 16

func decodeJSON(doc string) (jvalue, error) {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	v, err := readValue(dec, 0)
	if err != nil {
		return jvalue{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return jvalue{}, malformed("Policy contains invalid JSON: unexpected data after the policy document.")
	}
	return v, nil
}

func jsonError(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return malformed("Policy contains invalid JSON: unexpected end of document.")
	}
	return malformed("Policy contains invalid JSON: %s.", strings.TrimPrefix(err.Error(), "json: "))
}

func readValue(dec *json.Decoder, depth int) (jvalue, error) {
	if depth > maxDepth {
		return jvalue{}, malformed("Policy contains invalid JSON: nested too deeply.")
	}
	tok, err := dec.Token()
	if err != nil {
		return jvalue{}, jsonError(err)
	}
	switch t := tok.(type) {
	case string:
		return jvalue{kind: jString, s: t}, nil
	case json.Number:
		return jvalue{kind: jNumber, s: string(t)}, nil
	case bool:
		if t {
			return jvalue{kind: jBool, s: "true"}, nil
		}
		return jvalue{kind: jBool, s: "false"}, nil
	case nil:
		return jvalue{kind: jNull}, nil
	case json.Delim:
		switch t {
		case '[':
			v := jvalue{kind: jArray, arr: []jvalue{}}
			for dec.More() {
				e, err := readValue(dec, depth+1)
				if err != nil {
					return jvalue{}, err
				}
				v.arr = append(v.arr, e)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return jvalue{}, jsonError(err)
			}
			return v, nil
		case '{':
			v := jvalue{kind: jObject, obj: []jmember{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return jvalue{}, jsonError(err)
				}
				key, ok := kt.(string)
				if !ok { // the decoder reports this itself; kept for safety
					return jvalue{}, malformed("Policy contains invalid JSON: object key is not a string.")
				}
				for _, m := range v.obj {
					if m.key == key {
						return jvalue{}, malformed("Policy contains a duplicate %q element.", key)
					}
				}
				e, err := readValue(dec, depth+1)
				if err != nil {
					return jvalue{}, err
				}
				v.obj = append(v.obj, jmember{key: key, val: e})
			}
			if _, err := dec.Token(); err != nil { // '}'
				return jvalue{}, jsonError(err)
			}
			return v, nil
		}
	}
	return jvalue{}, malformed("Policy contains invalid JSON.")
}
