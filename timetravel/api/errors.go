package api

import (
	"context"
	"errors"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/timetravel"
)

// Errors. Every error a call returns is a gRPC status whose code follows
// the error's class (timetravel's Err* classes, the cluster's errors,
// the context's), with the error's text as the message: the text says
// what to change. HTTP answers carry the same message with the status
// httpStatus gives.

func invalidf(format string, args ...any) error {
	return timetravel.Errorf(timetravel.ErrInvalid, format, args...)
}

func notFoundf(format string, args ...any) error {
	return timetravel.Errorf(timetravel.ErrNotFound, format, args...)
}

func conflictf(format string, args ...any) error {
	return timetravel.Errorf(timetravel.ErrConflict, format, args...)
}

// code is the gRPC code of err.
func code(err error) codes.Code {
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return s.Code()
	}
	switch {
	case errors.Is(err, timetravel.ErrInvalid), errors.Is(err, commit.ErrNotAncestor):
		return codes.InvalidArgument
	case errors.Is(err, timetravel.ErrNotFound), errors.Is(err, cluster.ErrUnknownTable):
		return codes.NotFound
	case errors.Is(err, timetravel.ErrExhausted):
		return codes.ResourceExhausted
	case errors.Is(err, timetravel.ErrConflict), errors.Is(err, cluster.ErrNotWriting), errors.Is(err, commit.ErrAncestryCut),
		errors.Is(err, commit.ErrNotReplayable):
		return codes.FailedPrecondition
	case errors.Is(err, table.ErrCommitFailed):
		// Another writer changed the table under the call: retry.
		return codes.Aborted
	case errors.Is(err, timetravel.ErrUnavailable):
		return codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return codes.Internal
}

// toStatus turns err into a status error (nil stays nil).
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(code(err), err.Error())
}

// httpStatus is the HTTP status of a gRPC code. It differs from
// grpc-gateway's table where that one is not what an HTTP client expects:
// FailedPrecondition (this node does not write the table; a tag exists)
// is 409 Conflict, not 400.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted, codes.FailedPrecondition:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Canceled:
		return 499
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
