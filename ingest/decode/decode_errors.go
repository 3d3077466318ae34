package decode

import (
	"strconv"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// DecodeError says which field of a record was wrong and why. Its text is stored with the record in
// the dead-letter table, so it is written for the person who produced the record.
type DecodeError struct {
	// Field is the path of the offending field: "ts", "user.id", "items[3].qty" or "attrs.color" for
	// the value of key "color" of a map. It is empty when the record as a whole is wrong.
	Field string
	// Reason says what was wrong, e.g. `required field is missing`.
	Reason string
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return "field " + strconv.Quote(e.Field) + ": " + e.Reason
}

// fieldErr is the constructor used by the leaf converters; the path is completed by the callers as
// the error travels up (see withParent), so that paths are only built on the error path.
func fieldErr(reason string) *DecodeError { return &DecodeError{Reason: reason} }

// withParent prefixes err's path with a struct field or map key name.
func withParent(err error, name string) error {
	de, ok := err.(*DecodeError)
	if !ok {
		return err
	}
	switch {
	case de.Field == "":
		de.Field = name
	case de.Field[0] == '[':
		de.Field = name + de.Field
	default:
		de.Field = name + "." + de.Field
	}
	return de
}

// withIndex prefixes err's path with a list index.
func withIndex(err error, i int) error {
	de, ok := err.(*DecodeError)
	if !ok {
		return err
	}
	idx := "[" + strconv.Itoa(i) + "]"
	switch {
	case de.Field == "":
		de.Field = idx
	case de.Field[0] == '[':
		de.Field = idx + de.Field
	default:
		de.Field = idx + "." + de.Field
	}
	return de
}

// maxSnippet bounds how much of an offending value is quoted back in an error: the message ends up
// in a table column and in logs, and a multi-kilobyte blob helps nobody.
const maxSnippet = 64

// snippet renders v as compact JSON for an error message, shortened to maxSnippet bytes.
func snippet(v *fastjson.Value) string {
	if v == nil {
		return "nothing"
	}
	return shorten(string(v.MarshalTo(nil)))
}

func shorten(s string) string {
	if len(s) <= maxSnippet {
		return s
	}
	cut := maxSnippet - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// gotErr builds the common "expected X, got Y" reason.
func gotErr(expected string, v *fastjson.Value) *DecodeError {
	return fieldErr("expected " + expected + ", got " + snippet(v))
}
