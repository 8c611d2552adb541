package controlplane

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
)

// decodeBody reads a JSON body strictly into v (a pointer to a struct):
// it must be one JSON object whose field names are exactly the struct's
// JSON names (encoding/json alone would match them case-insensitively),
// nested objects' too, each at most once; unknown fields, duplicated
// fields and trailing data are validation errors. A body over
// Options.MaxBodyBytes is a *TooLargeError.
func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return &TooLargeError{Limit: mb.Limit}
		}
		return &ValidationError{Field: "body", Message: err.Error()}
	}
	if err := checkFields(b, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return &ValidationError{Field: te.Field, Message: fmt.Sprintf("want a JSON %s", te.Type)}
		case errors.Is(err, io.EOF):
			return &ValidationError{Field: "body", Message: "empty: want a JSON object"}
		}
		return &ValidationError{Field: "body", Message: err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &ValidationError{Field: "body", Message: "trailing data after the JSON object"}
	}
	return nil
}

// checkFields checks the names in the JSON body b against t's JSON field
// names, exactly, and refuses a name given twice in one object and a body
// that is not an object. It reports only those refusals: b that is not
// JSON at all is left to the decoder, which says why.
func checkFields(b []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // a number too large for a float64 is the decoder's to refuse
	tok, err := dec.Token()
	if err != nil {
		return nil // empty or not JSON: the decoder says so
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return &ValidationError{Field: "body", Message: fmt.Sprintf("want a JSON object, got %s", tokenKind(tok))}
	}
	err = checkObject(dec, t, "", 1)
	var ve *ValidationError
	if errors.As(err, &ve) {
		return err
	}
	return nil
}

// tokenKind names a JSON token's kind for an error.
func tokenKind(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case json.Delim:
		if v == '[' {
			return "an array"
		}
	}
	return fmt.Sprint(tok)
}

// maxBodyDepth bounds the nesting of objects and arrays in a request body
// (no request field nests more than two): the check refuses a deeper body
// at once rather than walk it, in time and stack that grow with its
// depth.
const maxBodyDepth = 16

// checkValue reads one JSON value from dec, at nesting depth depth,
// checking the fields of the objects in it against t.
func checkValue(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if _, ok := tok.(json.Delim); ok && depth >= maxBodyDepth {
		return &ValidationError{Field: "body", Message: fmt.Sprintf("%s: nested deeper than %d levels", path, maxBodyDepth)}
	}
	switch tok {
	case json.Delim('{'):
		return checkObject(dec, t, path, depth+1)
	case json.Delim('['):
		elem := deref(t)
		if elem != nil && (elem.Kind() == reflect.Slice || elem.Kind() == reflect.Array) {
			elem = elem.Elem()
		} else {
			elem = nil
		}
		for dec.More() {
			if err := checkValue(dec, elem, path+"[]", depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
		return err
	}
	return nil
}

// checkObject reads the rest of an object whose '{' dec has read, at
// nesting depth depth. With t a struct, every name must be one of its
// JSON names; with any other t (a map, nil) every name is taken. No name
// may come twice.
func checkObject(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	fields, isStruct := jsonFields(t)
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		full := name
		if path != "" {
			full = path + "." + name
		}
		if seen[name] {
			return &ValidationError{Field: "body", Message: fmt.Sprintf("field %q given twice", full)}
		}
		seen[name] = true
		ft, known := fields[name]
		if isStruct && !known {
			return &ValidationError{Field: "body", Message: fmt.Sprintf("unknown field %q (field names are case-sensitive; %s)", full, knownFields(fields, path))}
		}
		if !isStruct {
			ft = elemOf(t)
		}
		if err := checkValue(dec, ft, full, depth); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

// knownFields lists an object's field names for an error.
func knownFields(fields map[string]reflect.Type, path string) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	slices.Sort(names)
	where := "the body's"
	if path != "" {
		where = path + "'s"
	}
	return where + " fields are " + strings.Join(names, ", ")
}

// deref strips pointers from t (nil stays nil).
func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// elemOf is the value type of a map type, else nil.
func elemOf(t reflect.Type) reflect.Type {
	if t = deref(t); t != nil && t.Kind() == reflect.Map {
		return t.Elem()
	}
	return nil
}

// jsonFields returns the JSON names of a struct's fields (t a struct or a
// pointer to one) with their types, as encoding/json names them: the
// tag's name, else the Go name; "-" and unexported fields left out; the
// fields of an embedded struct without a tag name promoted. isStruct is
// false when t is no struct.
func jsonFields(t reflect.Type) (fields map[string]reflect.Type, isStruct bool) {
	t = deref(t)
	if t == nil || t.Kind() != reflect.Struct {
		return nil, false
	}
	fields = make(map[string]reflect.Type)
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			if inner, ok := jsonFields(f.Type); ok {
				for n, ft := range inner {
					if _, dup := fields[n]; !dup {
						fields[n] = ft
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields, true
}
