// Package registry is an in-memory schema registry for floe's tests (and for
// floe quickstart): an HTTP server that follows the Confluent Schema
// Registry's documented REST API
// (https://docs.confluent.io/platform/current/schema-registry/develop/api.html)
// for what floe and franz-go's client (pkg/sr) use:
//
//	POST   /subjects/{subject}/versions              register: {"id": N}
//	POST   /subjects/{subject}                       look a schema up in a subject
//	GET    /subjects                                 subjects (?deleted=true, ?subjectPrefix=)
//	GET    /subjects/{subject}/versions              versions (?deleted=true)
//	GET    /subjects/{subject}/versions/{version}    a version, or "latest" / -1 (?deleted=true)
//	GET    /subjects/{subject}/versions/{version}/schema        its text
//	GET    /subjects/{subject}/versions/{version}/referencedby  ids of schemas referencing it
//	DELETE /subjects/{subject}                       soft delete (?permanent=true: hard)
//	DELETE /subjects/{subject}/versions/{version}    soft delete (?permanent=true: hard)
//	GET    /schemas/ids/{id}                         {"schema", "schemaType" (left out for AVRO), "references"}
//	GET    /schemas/ids/{id}/schema                  its text
//	GET    /schemas/ids/{id}/versions                [{"subject", "version"}] (?deleted=true)
//	GET    /schemas/ids/{id}/subjects                subjects (?deleted=true)
//	GET    /schemas/types                            ["AVRO", "JSON", "PROTOBUF"]
//	GET    /config, /config/{subject}                {"compatibilityLevel": ...} (?defaultToGlobal=true)
//	PUT    /config, /config/{subject}                {"compatibility": ...}
//	DELETE /config, /config/{subject}                back to the default / the global level
//	POST   /compatibility/subjects/{subject}/versions[/{version}]   {"is_compatible": ...}
//
// Answers have the content type application/vnd.schemaregistry.v1+json, and
// errors the registry's body, {"error_code": 40403, "message": "Schema 7
// not found"}, with its statuses: 404 with 40401 (subject not found), 40402
// (version not found), 40403 (schema not found), 40404..40408 (soft-delete
// and config states); 409 (incompatible schema); 422 with 42201 (invalid
// schema), 42202 (invalid version), 42203 (invalid compatibility level),
// 42206 (a deleted version is referenced), 42207 (id does not match); 401
// with basic auth and wrong or missing credentials; 404 and 405 with
// error_code 404 and 405 for an unknown path or method.
//
// As the registry does: ids are global and increasing, never reused; the
// same schema (type, text and references) under the same subject returns its
// id without a new version, and under another subject gets the same id in a
// new version of that subject; a soft-deleted version still answers by id
// and with deleted=true, and is not reused; a hard delete (after a soft one)
// forgets an id no version uses any more; a version referenced by a live
// schema cannot be deleted.
//
// Where it is simpler: schemas are compared by their exact text (the
// registry compares a normalized form); an Avro schema is validated by
// parsing it with its references (github.com/twmb/avro), a JSON Schema is
// checked to be a JSON object or boolean, and a .proto file only shallowly
// (balanced braces, some declaration, not JSON). Compatibility levels are
// stored and answered; they are enforced on registration (409) and by the
// compatibility endpoints for Avro only, with twmb/avro's reader/writer
// check; Protobuf and JSON schemas are always compatible. The default level
// is BACKWARD, as the registry's. Registering with an "id" is always allowed
// (the registry wants IMPORT mode). Modes, contexts, schema GUIDs, metadata
// and rule sets are not implemented.
//
// For tests: counters of requests per path (Requests), failure injection
// (FailWith: every request answers a status; DropConnections: every
// connection is closed without an answer; Hang: no answer until the client
// gives up; SetDelay), basic auth (WithBasicAuth), and TLS with a CA of its
// own, optionally requiring client certificates (WithTLS, WithClientAuth).
package registry

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Server is a running in-memory schema registry.
type Server struct {
	hs  *httptest.Server
	dir string // temporary files (TLS); removed by Close

	user, pass string
	tlsFiles   *TLSFiles

	mu     sync.Mutex
	st     *store
	counts map[string]int
	total  int

	fail    atomic.Pointer[failure]
	delay   atomic.Int64 // time.Duration
	closing chan struct{}
	once    sync.Once
}

// failure is how every request fails, while one is set.
type failure struct {
	status int  // answer this status
	drop   bool // close the connection without an answer
	hang   bool // answer nothing until the client goes away or Close
}

type options struct {
	user, pass string
	tls        bool
	clientAuth bool
	addr       string
	compat     string
}

// Option configures a Server.
type Option func(*options)

// WithBasicAuth requires HTTP basic auth with user and pass: a request
// without them, or with others, is answered 401.
func WithBasicAuth(user, pass string) Option {
	return func(o *options) { o.user, o.pass = user, pass }
}

// WithTLS serves HTTPS with a certificate for 127.0.0.1, ::1 and localhost
// signed by a CA the server makes (TLSFiles().CAFile).
func WithTLS() Option { return func(o *options) { o.tls = true } }

// WithClientAuth serves HTTPS (WithTLS) and requires a client certificate
// signed by the server's CA: TLSFiles().ClientCert and ClientKey are one.
func WithClientAuth() Option { return func(o *options) { o.tls, o.clientAuth = true, true } }

// WithAddr listens on addr (such as 127.0.0.1:8081) rather than on a free
// port of 127.0.0.1.
func WithAddr(addr string) Option { return func(o *options) { o.addr = addr } }

// WithCompatibility sets the global compatibility level the server starts
// with (default BACKWARD, as the registry's).
func WithCompatibility(level string) Option { return func(o *options) { o.compat = level } }

// Start starts a server that lives until the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := New(opts...)
	if err != nil {
		t.Fatalf("schema registry: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// New starts a server; Close stops it. Start is New for a test.
func New(opts ...Option) (*Server, error) {
	o := options{compat: CompatBackward}
	for _, f := range opts {
		f(&o)
	}
	level, ok := validLevel(o.compat)
	if !ok {
		return nil, fmt.Errorf("unknown compatibility level %q", o.compat)
	}
	s := &Server{
		user: o.user, pass: o.pass,
		st:      newStore(level),
		counts:  map[string]int{},
		closing: make(chan struct{}),
	}
	s.hs = httptest.NewUnstartedServer(s.handler())
	// Failed handshakes and dropped connections are what tests ask for.
	s.hs.Config.ErrorLog = log.New(io.Discard, "", 0)
	if o.addr != "" {
		l, err := net.Listen("tcp", o.addr)
		if err != nil {
			return nil, err
		}
		s.hs.Listener.Close()
		s.hs.Listener = l
	}
	if !o.tls {
		s.hs.Start()
		return s, nil
	}
	dir, err := os.MkdirTemp("", "floe-registry-")
	if err != nil {
		s.hs.Listener.Close()
		return nil, err
	}
	s.dir = dir
	files, cfg, err := makeTLS(dir, o.clientAuth)
	if err != nil {
		s.hs.Listener.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	s.tlsFiles = files
	s.hs.TLS = cfg
	s.hs.StartTLS()
	return s, nil
}

// URL is the server's base URL: http://127.0.0.1:PORT, or https://.
func (s *Server) URL() string { return s.hs.URL }

// TLSFiles returns the PEM files of a TLS server (nil without TLS).
func (s *Server) TLSFiles() *TLSFiles { return s.tlsFiles }

// Close stops the server: after it, connections to its URL are refused.
// It may be called more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.hs.CloseClientConnections()
		s.hs.Close()
		if s.dir != "" {
			os.RemoveAll(s.dir)
		}
	})
}

// FailWith makes every request answer status with a registry error body
// (error_code status) until Heal, without touching the registry's state.
// 503 is a registry that is down behind a load balancer.
func (s *Server) FailWith(status int) { s.fail.Store(&failure{status: status}) }

// DropConnections makes every request's connection close without an answer
// until Heal.
func (s *Server) DropConnections() { s.fail.Store(&failure{drop: true}) }

// Hang makes every request wait, unanswered, until the client gives up (its
// timeout) or the server closes, until Heal.
func (s *Server) Hang() { s.fail.Store(&failure{hang: true}) }

// Heal ends FailWith, DropConnections and Hang.
func (s *Server) Heal() { s.fail.Store(nil) }

// SetDelay makes every request wait d before it is handled (0: none).
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// Requests returns how many requests the server received for path (such
// as /schemas/ids/7, any method, unescaped, without the query), including
// those it failed or refused.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[path]
}

// TotalRequests returns how many requests the server received.
func (s *Server) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// ResetRequests sets the request counters to zero.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = map[string]int{}
	s.total = 0
}

// Register registers sch under subject as POST /subjects/{subject}/versions
// does (without counting a request or failing), and returns its id. An
// error is an *APIError.
func (s *Server) Register(subject string, sch Schema) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, aerr := s.st.register(subject, sch)
	if aerr != nil {
		return 0, aerr
	}
	return id, nil
}

// MustRegister is Register that fails t on an error.
func (s *Server) MustRegister(t testing.TB, subject string, sch Schema) int {
	t.Helper()
	id, err := s.Register(subject, sch)
	if err != nil {
		t.Fatalf("register %s: %v", subject, err)
	}
	return id
}

// SetCompatibility sets subject's compatibility level ("" subject: the
// global level), as PUT /config does.
func (s *Server) SetCompatibility(subject, level string) error {
	l, ok := validLevel(level)
	if !ok {
		return fmt.Errorf("unknown compatibility level %q", level)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.setLevel(subject, l)
	return nil
}

// IsAPIError reports whether err is an *APIError with code.
func IsAPIError(err error, code int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}
