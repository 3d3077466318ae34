package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	icecat "github.com/apache/iceberg-go/catalog"
)

// errorModel is the protocol's ErrorModel.
type errorModel struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    int    `json:"code"`
}

// errorResponse is the protocol's IcebergErrorResponse, the body of every
// error.
type errorResponse struct {
	Error errorModel `json:"error"`
}

// apiError is an error answered with its own status, type and message.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

// badRequest is a 400 BadRequestException.
func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "BadRequestException", msg: fmt.Sprintf(format, args...)}
}

// unsupported is the protocol's 406 UnsupportedOperationException.
func unsupported(msg string) *apiError {
	return &apiError{status: http.StatusNotAcceptable, typ: "UnsupportedOperationException", msg: msg}
}

// noSuchNamespace is a 404 NoSuchNamespaceException.
func noSuchNamespace(ns []string) *apiError {
	return &apiError{status: http.StatusNotFound, typ: "NoSuchNamespaceException",
		msg: fmt.Sprintf("namespace %s does not exist", showNamespace(ns))}
}

// noSuchTable is a 404 NoSuchTableException.
func noSuchTable(ns []string, name string) *apiError {
	return &apiError{status: http.StatusNotFound, typ: "NoSuchTableException",
		msg: fmt.Sprintf("table %s does not exist", showTable(ns, name))}
}

// writeError answers err: an apiError as it is, the catalog's not-found
// errors as 404, anything else as a 500 whose detail goes to the log only.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, icecat.ErrNoSuchTable):
		ae = &apiError{status: http.StatusNotFound, typ: "NoSuchTableException", msg: "the table does not exist"}
	case errors.Is(err, icecat.ErrNoSuchNamespace):
		ae = &apiError{status: http.StatusNotFound, typ: "NoSuchNamespaceException", msg: "the namespace does not exist"}
	default:
		if clientGone(r, err) {
			h.log.Debug("iceberg rest catalog: client went away", "method", r.Method, "path", r.URL.EscapedPath(), "err", err)
		} else {
			h.log.Error("iceberg rest catalog: request failed", "method", r.Method, "path", r.URL.EscapedPath(), "err", err)
		}
		ae = &apiError{status: http.StatusInternalServerError, typ: "InternalServerError",
			msg: "the catalog failed to answer this request; the floe node's log has the details"}
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(ae.status)
		return
	}
	h.writeJSON(w, r, ae.status, errorResponse{Error: errorModel{Message: ae.msg, Type: ae.typ, Code: ae.status}})
}

// writeJSON answers v as JSON with status. HTML characters are left
// unescaped: the body is data, not markup.
func (h *handler) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		h.log.Error("iceberg rest catalog: encode response", "method", r.Method, "path", r.URL.EscapedPath(), "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(errorResponse{Error: errorModel{
			Message: "the catalog failed to encode its response; the floe node's log has the details",
			Type:    "InternalServerError", Code: status,
		}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
