package timetravel

import (
	"errors"
	"fmt"
)

// The classes of error the time-travel calls return. The API maps each to
// its gRPC and HTTP status (timetravel/api): every error a caller can act
// on wraps one of them, and its text says what to change.
var (
	// ErrInvalid: the request cannot be served as given (a bad filter, an
	// unknown column, a snapshot that is not an ancestor). 400.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound: a table, snapshot, tag or branch that does not exist. 404.
	ErrNotFound = errors.New("not found")
	// ErrExhausted: a node limit (rows, bytes, time) ended the request. 429.
	ErrExhausted = errors.New("limit reached")
	// ErrConflict: the request clashes with the table's state (a tag that
	// exists, a table this node does not write). 409.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the node cannot serve it now (starting, catalog
	// unreachable); retry. 503.
	ErrUnavailable = errors.New("unavailable")
)

// Errorf returns an error that Is class (one of the Err* above) and whose
// text is the formatted message alone.
func Errorf(class error, format string, args ...any) error {
	return &classed{class: class, msg: fmt.Sprintf(format, args...)}
}

// invalid returns an error that Is ErrInvalid with the given text.
func invalid(format string, args ...any) error { return Errorf(ErrInvalid, format, args...) }

// notFound returns an error that Is ErrNotFound with the given text.
func notFound(format string, args ...any) error { return Errorf(ErrNotFound, format, args...) }

// classed is an error of one class whose text is only its message (not
// "invalid argument: ..."): the message is what a user reads.
type classed struct {
	class error
	msg   string
	err   error
}

func (e *classed) Error() string { return e.msg }

func (e *classed) Is(target error) bool { return target == e.class }

func (e *classed) Unwrap() error { return e.err }
