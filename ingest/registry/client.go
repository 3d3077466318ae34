package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"golang.org/x/sync/singleflight"
)

// Schema types, as the registry names them.
const (
	TypeAvro     = "AVRO"
	TypeProtobuf = "PROTOBUF"
	TypeJSON     = "JSON"
)

// Schema is a schema as the registry holds it. A *Schema a Client returns is
// shared by every caller and must not be modified.
type Schema struct {
	// ID is the schema's id (for a schema fetched as a reference, the id the
	// registry gave with it).
	ID uint32
	// Type is AVRO, PROTOBUF or JSON (a registry leaves it out for Avro;
	// the Client fills it in), or whatever else the registry says.
	Type string
	// Text is the schema itself: Avro JSON, a .proto file, a JSON Schema.
	Text string
	// References are the other schemas this one uses.
	References []Reference
	// Subject and Version are set for a schema fetched as a reference
	// (by subject and version); a schema fetched by id has none.
	Subject string
	Version int
}

// Reference is a schema's use of another subject's version: for Protobuf,
// Name is the import path ("common/money.proto"); for Avro, the full name of
// the type the referenced schema defines.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// Dependency is a schema a schema references, directly or through other
// references, with the name it is referenced by.
type Dependency struct {
	Name   string
	Schema *Schema
}

// Metrics observes a Client. Implementations must be safe for concurrent use
// and quick: CacheHit is on the hot path.
type Metrics interface {
	// SchemaFetched is called after each fetch from the registry (a
	// schema by id or a referenced subject version, including the moves
	// from one URL to the next), ok when it got the schema.
	SchemaFetched(ok bool, took time.Duration)
	// CacheHit is called when a Schema or Resolve call is answered
	// without asking the registry.
	CacheHit()
}

// NopMetrics reports nothing; it stands in for a nil Metrics.
type NopMetrics struct{}

func (NopMetrics) SchemaFetched(bool, time.Duration) {}
func (NopMetrics) CacheHit()                         {}

// Option configures a Client.
type Option func(*Client)

// WithMetrics reports to m (nil: nothing).
func WithMetrics(m Metrics) Option {
	return func(c *Client) {
		if m != nil {
			c.metrics = m
		}
	}
}

// DefaultUnknownTTL is how long a Client remembers that the registry does not
// know an id unless WithUnknownTTL says otherwise.
const DefaultUnknownTTL = 5 * time.Second

// WithUnknownTTL sets how long the Client answers ErrUnknownSchema for an id
// (or a schema whose references do not resolve) without asking the registry
// again; 0 asks every time.
func WithUnknownTTL(d time.Duration) Option { return func(c *Client) { c.unknownTTL = d } }

// maxRefDepth bounds how deep references may nest.
const maxRefDepth = 32

// Client fetches schemas from a schema registry and caches them. It is safe
// for concurrent use.
type Client struct {
	urls      []string
	srs       []*sr.Client // one per URL
	transport *http.Transport
	metrics   Metrics
	// preferred is the index of the URL that last answered.
	preferred atomic.Int32

	byID     sync.Map // uint32 → *Schema
	byRef    sync.Map // refKey → *Schema
	resolved sync.Map // uint32 → *resolution
	flights  singleflight.Group

	unknownTTL time.Duration
	mu         sync.Mutex
	unknown    map[string]unknownEntry // flight key → remembered ErrUnknownSchema
}

type refKey struct {
	subject string
	version int
}

type resolution struct {
	deps  []Dependency
	texts map[string]string
}

type unknownEntry struct {
	err   error
	until time.Time
}

// maxUnknown bounds the remembered unknown ids; past it, expired ones are
// dropped.
const maxUnknown = 4096

// New returns a Client for the registry cfg describes. It reads the files
// cfg names (CA, client certificate, password) now, and does not contact
// the registry.
func New(cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, errors.New("registry: no urls configured")
	}
	cfg = cfg.WithDefaults()
	tc, err := cfg.TLS.clientTLS()
	if err != nil {
		return nil, err
	}
	password, err := cfg.password()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.MaxIdleConnsPerHost = 16
	hc := &http.Client{Transport: tr, Timeout: cfg.Timeout.D()}
	c := &Client{
		transport:  tr,
		metrics:    NopMetrics{},
		unknownTTL: DefaultUnknownTTL,
		unknown:    map[string]unknownEntry{},
	}
	for _, raw := range cfg.URLs {
		u := strings.TrimRight(raw, "/")
		srOpts := []sr.ClientOpt{sr.URLs(u), sr.HTTPClient(hc), sr.UserAgent("floe")}
		if cfg.Username != "" {
			srOpts = append(srOpts, sr.BasicAuth(cfg.Username, password))
		}
		cl, err := sr.NewClient(srOpts...)
		if err != nil {
			return nil, fmt.Errorf("registry: %s: %w", u, err)
		}
		c.urls = append(c.urls, u)
		c.srs = append(c.srs, cl)
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Close releases the Client's idle connections. A closed Client still works
// (it opens new ones).
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// Schema returns the schema with id: from the cache, or fetched from the
// registry once and cached for good. Errors are *Error (see the package
// documentation for the classes) or the end of ctx.
func (c *Client) Schema(ctx context.Context, id uint32) (*Schema, error) {
	if s, ok := c.byID.Load(id); ok {
		c.metrics.CacheHit()
		return s.(*Schema), nil
	}
	return c.fetchID(ctx, id)
}

// ForgetUnknown drops what the Client remembers of the registry not knowing
// id (see WithUnknownTTL), so that the next call for it asks the registry
// again: for a caller that waits for the id to become known, and asks at
// its own pace.
func (c *Client) ForgetUnknown(id uint32) {
	c.mu.Lock()
	delete(c.unknown, idKey(id))
	c.mu.Unlock()
}

// idKey is the flight key of the fetch of schema id.
func idKey(id uint32) string { return "id:" + strconv.FormatUint(uint64(id), 10) }

func (c *Client) fetchID(ctx context.Context, id uint32) (*Schema, error) {
	key := idKey(id)
	v, err := c.flight(ctx, key, func(fctx context.Context) (any, error) {
		if s, ok := c.byID.Load(id); ok {
			// Cached by a flight that ended after this caller missed.
			return s, nil
		}
		s, err := c.get(fctx, id, nil, "/schemas/ids/"+strconv.FormatUint(uint64(id), 10))
		if err != nil {
			return nil, err
		}
		s.ID = id
		c.byID.Store(id, s)
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*Schema), nil
}

// Resolve returns the schema with id and the text of every schema it
// references, directly or not, by reference name: what a Protobuf
// compiler's import resolver needs (a .proto file's imports by path). The
// map is nil for a schema without references and, like the Schema, shared:
// it must not be modified. Referenced subject versions are fetched once and
// cached like ids.
func (c *Client) Resolve(ctx context.Context, id uint32) (*Schema, map[string]string, error) {
	s, r, err := c.resolve(ctx, id)
	if err != nil || r == nil {
		return s, nil, err
	}
	return s, r.texts, nil
}

// Dependencies returns the schema with id and every schema it references,
// directly or not, in dependency order: each after the ones it references,
// so that parsing them in order (an Avro parser's named types) never meets
// a name not yet defined. A schema referenced under two names is listed
// under each. The slice is nil for a schema without references and shared:
// it must not be modified.
func (c *Client) Dependencies(ctx context.Context, id uint32) (*Schema, []Dependency, error) {
	s, r, err := c.resolve(ctx, id)
	if err != nil || r == nil {
		return s, nil, err
	}
	return s, r.deps, nil
}

func (c *Client) resolve(ctx context.Context, id uint32) (*Schema, *resolution, error) {
	if r, ok := c.resolved.Load(id); ok {
		s, _ := c.byID.Load(id)
		c.metrics.CacheHit()
		return s.(*Schema), r.(*resolution), nil
	}
	s, err := c.Schema(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if len(s.References) == 0 {
		return s, nil, nil
	}
	v, err := c.flight(ctx, "resolve:"+strconv.FormatUint(uint64(id), 10), func(fctx context.Context) (any, error) {
		if r, ok := c.resolved.Load(id); ok {
			return r, nil
		}
		r, err := c.walk(fctx, s)
		if err != nil {
			return nil, err
		}
		c.resolved.Store(id, r)
		return r, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return s, v.(*resolution), nil
}

// walk fetches the references of root, depth first.
func (c *Client) walk(ctx context.Context, root *Schema) (*resolution, error) {
	r := &resolution{texts: map[string]string{}}
	names := map[string]refKey{}
	done := map[refKey]bool{}
	var visit func(s *Schema, depth int) error
	visit = func(s *Schema, depth int) error {
		for _, ref := range s.References {
			k := refKey{ref.Subject, ref.Version}
			if prev, ok := names[ref.Name]; ok {
				if prev != k {
					return c.refError(root.ID, ref, fmt.Sprintf("the name %q also names subject %q version %s; a name must name one schema",
						ref.Name, prev.subject, versionString(prev.version)))
				}
				continue
			}
			names[ref.Name] = k
			if depth >= maxRefDepth {
				return c.refError(root.ID, ref, fmt.Sprintf("references nest more than %d deep", maxRefDepth))
			}
			dep, err := c.subjectVersion(ctx, root.ID, ref)
			if err != nil {
				return err
			}
			if !done[k] {
				done[k] = true
				if err := visit(dep, depth+1); err != nil {
					return err
				}
			}
			r.deps = append(r.deps, Dependency{Name: ref.Name, Schema: dep})
			r.texts[ref.Name] = dep.Text
		}
		return nil
	}
	if err := visit(root, 0); err != nil {
		return nil, err
	}
	return r, nil
}

// refError is a reference that cannot be resolved for a reason of the
// schemas themselves: permanent, like an unknown id.
func (c *Client) refError(id uint32, ref Reference, detail string) *Error {
	return &Error{Class: ErrUnknownSchema, URL: c.urls[c.preferred.Load()], ID: id, Ref: &ref, Detail: detail}
}

// subjectVersion fetches a referenced subject version (cached unless it is
// "latest": the resolution of the schema that references it is).
func (c *Client) subjectVersion(ctx context.Context, id uint32, ref Reference) (*Schema, error) {
	k := refKey{ref.Subject, ref.Version}
	if ref.Version > 0 {
		if s, ok := c.byRef.Load(k); ok {
			return s.(*Schema), nil
		}
	}
	v := "latest"
	if ref.Version > 0 {
		v = strconv.Itoa(ref.Version)
	}
	path := "/subjects/" + url.PathEscape(ref.Subject) + "/versions/" + v
	s, err := c.get(ctx, id, &ref, path, sr.ShowDeleted)
	if err != nil {
		return nil, err
	}
	if s.Subject == "" {
		s.Subject = ref.Subject
	}
	if ref.Version > 0 {
		s.Version = ref.Version
		c.byRef.Store(k, s)
	}
	return s, nil
}

// flight runs fetch once for all concurrent callers of key, under a context
// no caller can cancel; each caller waits on its own ctx. An ErrUnknownSchema
// result is remembered for the unknown TTL.
func (c *Client) flight(ctx context.Context, key string, fetch func(context.Context) (any, error)) (any, error) {
	if err := c.knownUnknown(key); err != nil {
		return nil, err
	}
	ch := c.flights.DoChan(key, func() (any, error) {
		v, err := fetch(context.WithoutCancel(ctx))
		if err != nil && errors.Is(err, ErrUnknownSchema) {
			c.rememberUnknown(key, err)
		}
		return v, err
	})
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, fmt.Errorf("registry: waiting for the schema registry: %w", ctx.Err())
	}
}

func (c *Client) knownUnknown(key string) error {
	if c.unknownTTL <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.unknown[key]
	if !ok {
		return nil
	}
	if time.Now().After(e.until) {
		delete(c.unknown, key)
		return nil
	}
	c.metrics.CacheHit()
	return e.err
}

func (c *Client) rememberUnknown(key string, err error) {
	if c.unknownTTL <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if len(c.unknown) >= maxUnknown {
		for k, e := range c.unknown {
			if now.After(e.until) {
				delete(c.unknown, k)
			}
		}
		if len(c.unknown) >= maxUnknown {
			return
		}
	}
	c.unknown[key] = unknownEntry{err: err, until: now.Add(c.unknownTTL)}
}

// wireSchema is the body of GET /schemas/ids/{id} and GET
// /subjects/{subject}/versions/{version}.
type wireSchema struct {
	Subject    string      `json:"subject"`
	Version    int         `json:"version"`
	ID         int64       `json:"id"`
	Schema     *string     `json:"schema"`
	SchemaType string      `json:"schemaType"`
	References []Reference `json:"references"`
}

// get fetches a schema at path from the first URL that answers, starting
// with the one that answered last. ref is the reference being fetched for
// schema id, if it is one.
func (c *Client) get(ctx context.Context, id uint32, ref *Reference, path string, params ...sr.Param) (*Schema, error) {
	start := time.Now()
	if len(params) > 0 {
		ctx = sr.WithParams(ctx, params...)
	}
	n := len(c.srs)
	first := int(c.preferred.Load())
	var tried, details []string
	var last failure
	for i := range n {
		k := (first + i) % n
		var body []byte
		err := c.srs[k].Do(ctx, http.MethodGet, path, nil, &body)
		var f failure
		if err == nil {
			s, err := decodeSchema(body)
			if err == nil {
				c.preferred.Store(int32(k))
				c.metrics.SchemaFetched(true, time.Since(start))
				return s, nil
			}
			f = failure{class: ErrUnreachable, status: http.StatusOK, detail: err.Error(), err: err}
		} else {
			f = classify(err)
		}
		if f.class != ErrUnreachable {
			// The registry's answer: asking another node changes nothing.
			c.preferred.Store(int32(k))
			c.metrics.SchemaFetched(false, time.Since(start))
			return nil, &Error{Class: f.class, URL: c.urls[k], ID: id, Ref: ref, Status: f.status, Code: f.code, Detail: f.detail, Err: f.err}
		}
		tried = append(tried, c.urls[k])
		if n > 1 {
			f.detail = c.urls[k] + ": " + f.detail
		}
		details = append(details, f.detail)
		last = f
	}
	c.metrics.SchemaFetched(false, time.Since(start))
	return nil, &Error{Class: ErrUnreachable, URL: strings.Join(tried, ", "), ID: id, Ref: ref,
		Status: last.status, Code: last.code, Detail: strings.Join(details, "; "), Err: last.err}
}

// decodeSchema reads a schema response, rejecting a body that is not one (a
// URL that is not the registry's answering 200).
func decodeSchema(body []byte) (*Schema, error) {
	var w wireSchema
	if err := json.Unmarshal(body, &w); err != nil || w.Schema == nil || *w.Schema == "" {
		return nil, fmt.Errorf("the URL answered with something that is not a schema registry response (%s): is the url right?", snippet(string(body)))
	}
	typ := strings.ToUpper(w.SchemaType)
	if typ == "" {
		typ = TypeAvro
	}
	s := &Schema{Type: typ, Text: *w.Schema, References: w.References, Subject: w.Subject, Version: w.Version}
	if w.ID > 0 && w.ID <= 1<<32-1 {
		s.ID = uint32(w.ID)
	}
	return s, nil
}
