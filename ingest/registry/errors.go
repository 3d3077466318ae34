package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/sr"
)

// The error classes (see the package documentation). Test with errors.Is.
var (
	// ErrNotFramed: a value is not in the schema registry wire format.
	// The record is a dead letter.
	ErrNotFramed = errors.New("not in the schema registry wire format")
	// ErrUnknownSchema: the registry answered that the schema (or a
	// subject version it references) does not exist. The record is a dead
	// letter, possibly after a wait (see the package documentation).
	ErrUnknownSchema = errors.New("schema not found")
	// ErrUnreachable: no registry answered about the schema. Transient:
	// pause and retry; never a dead letter.
	ErrUnreachable = errors.New("registry unreachable")
	// ErrAuth: the registry refused floe's credentials or certificate, or
	// floe refused the registry's certificate. A configuration problem:
	// stop.
	ErrAuth = errors.New("registry refused access")
)

// Error is a failure to get a schema from the registry. It is in one class
// (Class: ErrUnknownSchema, ErrUnreachable or ErrAuth), which errors.Is
// reports, and unwraps to its cause.
type Error struct {
	// Class is ErrUnknownSchema, ErrUnreachable or ErrAuth.
	Class error
	// URL is the registry URL that answered, or the URLs tried, comma
	// separated, when none did.
	URL string
	// ID is the schema id asked for.
	ID uint32
	// Ref is the reference of the schema ID that failed, when it is one of
	// its references rather than the schema itself.
	Ref *Reference
	// Status is the HTTP status the registry answered (0: no answer), and
	// Code the error_code of its error body (0: none).
	Status, Code int
	// Detail says what happened, for the message.
	Detail string
	// Err is the cause.
	Err error
}

// Error reads, for example, "schema registry http://registry:8081: schema
// id 7: schema not found: Schema 7 not found (error code 40403)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("schema registry ")
	b.WriteString(e.URL)
	b.WriteString(": schema id ")
	b.WriteString(strconv.FormatUint(uint64(e.ID), 10))
	if e.Ref != nil {
		fmt.Fprintf(&b, ": reference %q (subject %q, version %s)", e.Ref.Name, e.Ref.Subject, versionString(e.Ref.Version))
	}
	b.WriteString(": ")
	b.WriteString(e.Class.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Is reports whether target is e's class.
func (e *Error) Is(target error) bool { return target == e.Class }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func versionString(v int) string {
	if v <= 0 {
		return "latest"
	}
	return strconv.Itoa(v)
}

// failure is how one request failed, before it is an *Error.
type failure struct {
	class        error
	status, code int
	detail       string
	err          error
}

// classify sorts an error from sr.Client.Do into a class.
func classify(err error) failure {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		f := failure{status: re.StatusCode, code: re.ErrorCode, err: err}
		msg := strings.TrimSpace(re.Message)
		if msg == "" {
			msg = snippet(string(re.Raw))
		}
		switch {
		case re.StatusCode == http.StatusUnauthorized:
			f.class = ErrAuth
			f.detail = fmt.Sprintf("401 Unauthorized (%s): check username and password (or password_file)", msg)
		case re.StatusCode == http.StatusForbidden:
			f.class = ErrAuth
			f.detail = fmt.Sprintf("403 Forbidden (%s): the credentials may not read schemas; grant them read access to the registry's subjects", msg)
		case re.StatusCode == http.StatusNotFound && sr.IsNotFoundError(re.ErrorCode):
			f.class = ErrUnknownSchema
			f.detail = fmt.Sprintf("%s (error code %d)", msg, re.ErrorCode)
		case re.StatusCode == http.StatusNotFound:
			f.class = ErrUnreachable
			f.detail = fmt.Sprintf("the URL answered 404 without a schema registry error (%s): is the url right, with any path the registry is served under?", msg)
		default:
			f.class = ErrUnreachable
			f.detail = fmt.Sprintf("answered %d %s (%s)", re.StatusCode, http.StatusText(re.StatusCode), msg)
			if re.ErrorCode != 0 {
				f.detail = fmt.Sprintf("answered %d %s (%s, error code %d)", re.StatusCode, http.StatusText(re.StatusCode), msg, re.ErrorCode)
			}
		}
		return f
	}
	if detail, ok := tlsRefused(err); ok {
		return failure{class: ErrAuth, detail: detail, err: err}
	}
	// sr wraps the *url.Error of http.Client.Do, which repeats the URL;
	// its cause is the message.
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err
		if ue.Timeout() {
			return failure{class: ErrUnreachable, detail: fmt.Sprintf("no answer in time (timeout): %v", cause), err: err}
		}
	}
	return failure{class: ErrUnreachable, detail: cause.Error(), err: err}
}

// tlsRefused recognizes a TLS handshake that failed verification, either
// side's: a configuration problem rather than an outage.
func tlsRefused(err error) (string, bool) {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var cv *tls.CertificateVerificationError
	var op *net.OpError
	switch {
	case errors.As(err, &ua):
		return fmt.Sprintf("the registry's certificate is signed by an authority floe does not trust (%v): set tls.ca_file to the CA that signs it", ua), true
	case errors.As(err, &he):
		return fmt.Sprintf("the registry's certificate is not for the host floe connects to (%v): fix the url or set tls.server_name", he), true
	case errors.As(err, &ci):
		return fmt.Sprintf("the registry's certificate is not valid (%v)", ci), true
	case errors.As(err, &cv):
		return fmt.Sprintf("the registry's certificate does not verify (%v)", cv), true
	case errors.As(err, &op) && op.Op == "remote error" && op.Err != nil && certAlert(op.Err.Error()):
		return fmt.Sprintf("the registry refused the TLS connection (%v): check tls.cert_file and tls.key_file (the client certificate it wants)", op.Err), true
	}
	return "", false
}

// certAlert reports whether a TLS alert's text is about certificates: the
// peer refused the handshake for the certificate floe presented, or did
// not present.
func certAlert(s string) bool {
	for _, a := range []string{
		"tls: bad certificate", "tls: unsupported certificate", "tls: revoked certificate",
		"tls: expired certificate", "tls: unknown certificate", "tls: unknown certificate authority",
		"tls: access denied", "tls: certificate required",
	} {
		if s == a {
			return true
		}
	}
	return false
}

// maxSnippet bounds how much of a response body an error quotes.
const maxSnippet = 120

func snippet(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "empty body"
	}
	if len(s) > maxSnippet {
		cut := maxSnippet
		for cut > 0 && s[cut]&0xc0 == 0x80 {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}
