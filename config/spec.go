package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// DecodeSpec decodes a spec strictly (unknown fields and trailing data are
// errors) and returns a *FieldError naming the field that failed, with its
// full path ("spec.limits.memory").
func DecodeSpec(spec json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(spec))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if field, msg := locate(spec, reflect.TypeOf(v), "spec"); field != "" {
			return &FieldError{Field: field, Message: msg, Err: err}
		}
		return specError(err)
	}
	if dec.More() {
		return &FieldError{Field: "spec", Message: "trailing data after the object"}
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// locate walks raw along t and returns the path and message of the first
// value that does not decode, or "" when it finds none.
func locate(raw json.RawMessage, t reflect.Type, path string) (string, string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return "", ""
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return leaf(raw, t, path)
	}
	switch t.Kind() {
	case reflect.Struct:
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return path, "must be an object, got " + jsonKind(raw)
		}
		for _, k := range sortedKeys(m) {
			f, ok := fieldByTag(t, k)
			if !ok {
				return path + "." + k, "unknown field"
			}
			if p, msg := locate(m[k], f.Type, path+"."+k); p != "" {
				return p, msg
			}
		}
		return "", ""
	case reflect.Map:
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return path, "must be an object, got " + jsonKind(raw)
		}
		for _, k := range sortedKeys(m) {
			if p, msg := locate(m[k], t.Elem(), path+"."+k); p != "" {
				return p, msg
			}
		}
		return "", ""
	case reflect.Slice:
		var l []json.RawMessage
		if json.Unmarshal(raw, &l) != nil {
			return path, "must be a list, got " + jsonKind(raw)
		}
		for i, e := range l {
			if p, msg := locate(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p, msg
			}
		}
		return "", ""
	}
	return leaf(raw, t, path)
}

func leaf(raw json.RawMessage, t reflect.Type, path string) (string, string) {
	err := json.Unmarshal(raw, reflect.New(t).Interface())
	if err == nil {
		return "", ""
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return path, fmt.Sprintf("must be %s, got %s", typeName(te.Type.String()), jsonKind(raw))
	}
	return path, strings.TrimPrefix(err.Error(), "json: ")
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func jsonKind(raw json.RawMessage) string {
	switch t := bytes.TrimSpace(raw); {
	case len(t) == 0:
		return "nothing"
	case t[0] == '{':
		return "an object"
	case t[0] == '[':
		return "a list"
	case t[0] == '"':
		return "a string"
	case t[0] == 't' || t[0] == 'f':
		return "true or false"
	case t[0] == 'n':
		return "null"
	}
	return "a number"
}

// specError turns a JSON decoding error about a spec into a FieldError
// naming the field.
func specError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := "spec"
		if te.Field != "" {
			field += "." + te.Field
		}
		return &FieldError{Field: field, Message: fmt.Sprintf("must be %s, got %s", typeName(te.Type.String()), te.Value), Err: err}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &FieldError{Field: "spec." + strings.Trim(f, `"`), Message: "unknown field", Err: err}
	}
	return &FieldError{Field: "spec", Message: strings.TrimPrefix(msg, "json: "), Err: err}
}

func typeName(t string) string {
	switch {
	case strings.HasPrefix(t, "map["):
		return "an object"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	}
	return t
}
