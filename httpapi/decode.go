package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"hsmkms/kms"
)

// decodeRequest decodes a request body strictly into a new *T.
//
// encoding/json alone is too lenient for a wire protocol: it matches member
// names case-insensitively, keeps the last of duplicate members and reports
// bad base64 without saying where. So the body is first walked token by
// token against T's shape (exact member names, no duplicates, JSON types
// that fit, valid base64 for blobs, one value and nothing after it), which
// also lets every error name the member; then encoding/json fills the value.
//
// An empty body, {} and null all mean "every member absent", as the SDKs
// send {} for operations without parameters.
func decodeRequest[T any](body []byte) (*T, error) {
	v := new(T)
	body = bytes.Trim(body, " \t\r\n") // JSON whitespace only
	if len(body) == 0 {
		return v, nil
	}
	if !utf8.Valid(body) {
		return nil, serializationf("Request body is not valid UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, serializationf("Request body is not valid JSON.")
	}
	switch tok {
	case nil: // null
	case json.Delim('{'):
		if err := checkStruct(dec, reflect.TypeFor[T](), ""); err != nil {
			return nil, err
		}
	default:
		return nil, serializationf("Request body must be a JSON object.")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, serializationf("Request body must hold exactly one JSON object; found data after it.")
	}

	strict := json.NewDecoder(bytes.NewReader(body))
	strict.DisallowUnknownFields()
	if err := strict.Decode(v); err != nil {
		// The walk above accepts only what decodes; reaching this means the
		// two disagree, which the fuzz test exists to catch.
		return nil, &kms.Error{Code: kms.CodeSerialization, Message: "Request body could not be decoded.", Cause: err}
	}
	return v, nil
}

func serializationf(format string, args ...any) *kms.Error {
	return kms.Errorf(kms.CodeSerialization, format, args...)
}

// memberError reports a value that does not fit member path.
func memberError(path, want string) *kms.Error {
	if path == "" {
		return serializationf("Request body must be %s.", want)
	}
	return serializationf("Member '%s' must be %s.", path, want)
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// checkValue reads one JSON value from dec and checks that it fits type t.
// null fits everything: it means the member is absent.
func checkValue(dec *json.Decoder, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		// The type judges its own JSON in the final decode; only require
		// a well-formed value here.
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return serializationf("Request body is not valid JSON.")
		}
		return nil
	}
	tok, err := dec.Token()
	if err != nil {
		return serializationf("Request body is not valid JSON.")
	}
	if tok == nil {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if tok != json.Delim('{') {
			return memberError(path, "a JSON object")
		}
		return checkStruct(dec, t, path)
	case reflect.Map:
		if tok != json.Delim('{') || t.Key().Kind() != reflect.String {
			return memberError(path, "a JSON object")
		}
		return checkMap(dec, t, path)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			s, ok := tok.(string)
			if !ok {
				return memberError(path, "a base64-encoded string")
			}
			// Go's decoder skips CR and LF inside base64; the AWS protocol
			// has none, so a blob with line breaks is refused rather than
			// silently read as another value.
			if strings.ContainsAny(s, "\r\n") {
				return memberError(path, "valid base64 without line breaks")
			}
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				return memberError(path, "valid base64")
			}
			return nil
		}
		if tok != json.Delim('[') {
			return memberError(path, "a JSON array")
		}
		for i := 0; dec.More(); i++ {
			if err := checkElement(dec, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return closeDelim(dec)
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return memberError(path, "a string")
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return memberError(path, "a boolean")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := tok.(json.Number)
		if !ok {
			return memberError(path, "a number")
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			return memberError(path, fmt.Sprintf("an integer that fits in %d bits", t.Bits()))
		}
	case reflect.Float32, reflect.Float64:
		n, ok := tok.(json.Number)
		if !ok {
			return memberError(path, "a number")
		}
		if _, err := strconv.ParseFloat(string(n), t.Bits()); err != nil {
			return memberError(path, "a finite number")
		}
	default:
		// A request type with a kind this walker does not know is a
		// programming error; refuse rather than guess.
		return kms.Internal(fmt.Errorf("httpapi: cannot decode member %q of kind %s", path, t.Kind()))
	}
	return nil
}

// checkStruct checks the members of an object whose '{' was read, up to and
// including its '}'.
func checkStruct(dec *json.Decoder, t reflect.Type, path string) error {
	fields := jsonFields(t)
	seen := map[string]bool{}
	for dec.More() {
		name, err := memberName(dec)
		if err != nil {
			return err
		}
		ft, ok := fields[name]
		if !ok {
			return serializationf("Unknown member %s.", quoteMember(join(path, name)))
		}
		if seen[name] {
			return serializationf("Duplicate member %s.", quoteMember(join(path, name)))
		}
		seen[name] = true
		if err := checkValue(dec, ft, join(path, name)); err != nil {
			return err
		}
	}
	return closeDelim(dec)
}

// checkMap checks a string-keyed map (EncryptionContext) whose '{' was read.
// Map keys are client data, so messages name the member, not the key.
func checkMap(dec *json.Decoder, t reflect.Type, path string) error {
	seen := map[string]bool{}
	for dec.More() {
		key, err := memberName(dec)
		if err != nil {
			return err
		}
		if seen[key] {
			return serializationf("Member '%s' has a duplicate key.", path)
		}
		seen[key] = true
		if err := checkElement(dec, t.Elem(), path); err != nil {
			return err
		}
	}
	return closeDelim(dec)
}

// checkElement checks one element of an array or one value of a map. Unlike
// a member, an element cannot be null: null would decode to "" and pass as a
// real value (an encryption context pair that was never sent), and AWS
// rejects it with SerializationException.
func checkElement(dec *json.Decoder, t reflect.Type, path string) error {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return serializationf("Request body is not valid JSON.")
	}
	if string(raw) == "null" {
		return memberError(path, "free of null values")
	}
	inner := json.NewDecoder(bytes.NewReader(raw))
	inner.UseNumber()
	return checkValue(inner, t, path)
}

func memberName(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", serializationf("Request body is not valid JSON.")
	}
	name, ok := tok.(string)
	if !ok {
		return "", serializationf("Request body is not valid JSON.")
	}
	return name, nil
}

// closeDelim consumes the '}' or ']' that dec.More said comes next.
func closeDelim(dec *json.Decoder) error {
	if _, err := dec.Token(); err != nil {
		return serializationf("Request body is not valid JSON.")
	}
	return nil
}

// jsonFields maps the exact wire name of each member of struct t to its type.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// quoteMember quotes a member path for a message, shortened so a client
// cannot make us echo a large string back.
func quoteMember(path string) string {
	const max = 64
	if len(path) > max {
		path = path[:max] + "..."
	}
	return strconv.Quote(path)
}
