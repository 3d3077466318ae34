package conf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// FieldError names a configuration field and says what is allowed there.
//
// Field is the field's path in the YAML document: keys joined with dots and
// list indexes in brackets (kafka.sasl.mechanism, pipelines[0].schema,
// kafka.brokers[1]). A component reports paths relative to its own section;
// Nest prefixes them as the component is composed, copying the error, so
// that whatever else an error carries about its field survives nesting, and
// whoever holds the document can resolve the path to a position in it.
//
// Pos is where the field is in the file, when it is there (a field left
// to its default is not); Env names the environment variable the field's
// value came from, when one did.
type FieldError struct {
	Field  string
	Reason string
	Pos
	Env string
}

// Error reads "config: floe.yaml:12:5: pipelines[0].commit_interval: want
// a duration ...", or "config: FLOE_PIPELINES_0_START: pipelines[0].start:
// ..." for a value from the environment, or "config: kafka.brokers: ..."
// for a field that is not in the file.
func (e *FieldError) Error() string {
	where := ""
	switch {
	case e.Line > 0:
		where = e.Pos.String() + ": "
	case e.Env != "":
		where = e.Env + ": "
	}
	return "config: " + where + e.Field + ": " + e.Reason
}

// Pos is a position in a configuration file. Line and Column count from 1;
// a zero Line is no position.
type Pos struct {
	File   string
	Line   int
	Column int
}

// String formats the position as file:line:column, leaving out what is
// unknown: "floe.yaml:12:5", "12:5" without a file name, "floe.yaml:12"
// without a column, "" without a line.
func (p Pos) String() string {
	if p.Line <= 0 {
		return ""
	}
	s := strconv.Itoa(p.Line)
	if p.Column > 0 {
		s += ":" + strconv.Itoa(p.Column)
	}
	if p.File != "" {
		s = p.File + ":" + s
	}
	return s
}

// Join returns the path of field inside the section at prefix: "kafka" and
// "brokers[0]" give kafka.brokers[0], "pipelines[0]" and "[1]" give
// pipelines[0][1]. An empty side leaves the other as it is.
func Join(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	case strings.HasPrefix(field, "["):
		return prefix + field
	}
	return prefix + "." + field
}

// Fields returns the field errors in err, however joined or wrapped, in
// order. An error that is not a FieldError (nor wraps one) is left out.
func Fields(err error) []*FieldError {
	var out []*FieldError
	for _, e := range flatten(err) {
		var fe *FieldError
		if errors.As(e, &fe) {
			out = append(out, fe)
		}
	}
	return out
}

// flatten lists the leaves of a tree of joined errors.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// Nest returns err with every field path moved under prefix (see
// Problems.Nest); nil for nil.
func Nest(prefix string, err error) error {
	var p Problems
	p.Nest(prefix, err)
	return p.Err()
}

// Problems collects a configuration's problems so that Validate reports
// them all at once. The zero value is ready to use.
type Problems struct {
	errs []error
}

// Addf records a problem with field: the reason is format and args.
func (p *Problems) Addf(field, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// Nest records the problems err holds (a component's Validate result)
// under prefix, the component's path: a FieldError's field is joined to
// prefix; any other error becomes a problem of prefix itself. nil adds
// nothing.
func (p *Problems) Nest(prefix string, err error) {
	for _, e := range flatten(err) {
		var fe *FieldError
		if !errors.As(e, &fe) {
			p.errs = append(p.errs, &FieldError{Field: prefix, Reason: e.Error()})
			continue
		}
		nested := *fe
		nested.Field = Join(prefix, fe.Field)
		p.errs = append(p.errs, &nested)
	}
}

// Err returns every recorded problem joined (errors.Join), or nil.
func (p *Problems) Err() error { return errors.Join(p.errs...) }
