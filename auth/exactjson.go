package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrDuplicateName: a JSON object names a member twice.
var ErrDuplicateName = errors.New("duplicate member name")

// maxJSONDepth bounds the nesting CheckUniqueNames follows, as
// encoding/json bounds what it decodes.
const maxJSONDepth = 10000

// CheckUniqueNames returns an error wrapping ErrDuplicateName when an
// object of the JSON text data, at any depth, names a member twice (names
// are compared exactly, after unescaping: "tid" and "t\u0069d" are the
// same name, "tid" and "TID" are not), and the syntax error when data is
// not one JSON value. encoding/json keeps the last of duplicated members
// without a word while other parsers keep the first or refuse the
// document, so two verifiers could read one signed token or key set two
// ways; tokens and key sets with duplicated names are refused instead.
func CheckUniqueNames(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are not converted: 1e400 is valid JSON
	// One entry per open object or array: an object's names (nil for an
	// array), and whether a name comes next in that object.
	type level struct {
		names    map[string]struct{}
		wantName bool
	}
	var stack []level
	done := false // one value was read
	for {
		tok, err := dec.Token()
		if err == io.EOF && done {
			return nil
		}
		if err != nil {
			return fmt.Errorf("json: %w", err)
		}
		if done {
			return errors.New("json: data after the value")
		}
		if n := len(stack); n > 0 && stack[n-1].wantName {
			if name, ok := tok.(string); ok {
				if _, dup := stack[n-1].names[name]; dup {
					return fmt.Errorf("json: %w %q", ErrDuplicateName, name)
				}
				stack[n-1].names[name] = struct{}{}
				stack[n-1].wantName = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) == maxJSONDepth {
				return fmt.Errorf("json: nested deeper than %d", maxJSONDepth)
			}
			l := level{}
			if tok == json.Delim('{') {
				l = level{names: make(map[string]struct{}), wantName: true}
			}
			stack = append(stack, l)
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: in an object, a name comes next.
		if n := len(stack); n > 0 {
			stack[n-1].wantName = stack[n-1].names != nil
		} else {
			done = true
		}
	}
}

// DecodeFields decodes the JSON object data member by member: the value of
// the member named exactly name goes into fields[name], a pointer as for
// json.Unmarshal; members of other names are ignored, including those
// whose names differ from a field's only in case ("TID", "Tid", or "tıd"
// beside "tid"), which encoding/json's struct decoding would take for the
// field. A name given twice anywhere in data is an error wrapping
// ErrDuplicateName (see CheckUniqueNames). null sets nothing.
func DecodeFields(data []byte, fields map[string]any) error {
	if err := CheckUniqueNames(data); err != nil {
		return err
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return err
	}
	for name, dst := range fields {
		raw, ok := members[name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return fmt.Errorf("member %q: %w", name, err)
		}
	}
	return nil
}

// CheckJWTHeader checks the header of the compact JWT token with
// CheckUniqueNames: a header naming alg or kid twice is refused rather
// than read as its last value. It decodes the header as golang-jwt does
// (base64url without padding); what does not decode is an error too.
func CheckJWTHeader(token string) error {
	header, _, ok := strings.Cut(token, ".")
	if !ok {
		return errors.New("jwt: no header")
	}
	data, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return fmt.Errorf("jwt: header: %w", err)
	}
	if err := CheckUniqueNames(data); err != nil {
		return fmt.Errorf("jwt: header: %w", err)
	}
	return nil
}
