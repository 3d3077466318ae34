package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/registry"
	"github.com/floelake/floe/internal/schema"
)

// Records in the schema registry's wire format (format: avro, protobuf).
//
// Debezium change events in Avro (mode: cdc) take another way: each record
// is rewritten as JSON (decode.AvroJSON) and read by the change reader and
// the JSON decoder as a JSON change event would be; the same failures go
// the same ways.
//
// Every record names its writer schema by id. A worker decodes it with a
// decoder compiled for that writer schema and the table's schema, once per
// id (per id and message for protobuf), and keeps it for the run. What a
// record whose writer schema cannot be used becomes is chosen by what loses
// nothing:
//
//   - a value not in the wire format, a schema that cannot be read or
//     mapped to Iceberg, a writer schema the table cannot take (a type
//     narrowed or changed, found so by the worker or refused by the
//     table writer): a dead letter with the reason;
//   - a schema id the registry does not know: a dead letter too, but an
//     id that may be a schema just registered (one a registry replica has
//     not caught up on) first waits for it, pausing the pipeline (see
//     writerSchemas.missing);
//   - a registry that does not answer: the run ends and the pipeline
//     retries (pauses) from its committed offsets, never a dead letter;
//   - a registry that refuses floe's credentials: the pipeline stops (a
//     configuration problem).
//
// With schema_evolution: add, a writer schema with fields the table lacks
// (or wider types) ends the run with a *SchemaChangeError before any row of
// it is written: the node applies the change to the table through its
// table writer, then consumes again from the committed offsets with the new
// schema. The schema change is committed before any data that needs it,
// so a crash between the two loses nothing and no reader sees rows without
// their columns. The table writer plans the change again against the
// table's current schema, which may refuse the writer schema where the
// run's did not (the table changed meanwhile): the node then calls
// Pipeline.RefuseSchema, and the next runs make its records dead letters.

// SchemaChangeError ends a run whose records need the table's schema to
// change first (schema_evolution: add). It is not a failure: the node
// applies Changes (Writer against Table through the table writer) and
// consumes again.
type SchemaChangeError struct {
	// Pipeline and Table name where the change goes.
	Pipeline, Table string
	// SchemaID is the writer schema's registry id.
	SchemaID uint32
	// Indexes are, for protobuf, the message indexes of the writer
	// schema's message in schema SchemaID (a .proto file may hold several
	// messages, each a writer schema of its own); nil for Avro.
	Indexes []int
	// Writer is the writer schema in its Iceberg form (field ids mean
	// nothing): the table must take it.
	Writer *iceberg.Schema
	// Fixed are the columns the change must not touch (key, version and
	// partition source columns).
	Fixed []string
	// Changes are the changes planned against the table's schema the run
	// had (the table writer plans again against the current one).
	Changes []schema.Change
}

func (e *SchemaChangeError) Error() string {
	parts := make([]string, len(e.Changes))
	for i, c := range e.Changes {
		parts[i] = c.String()
	}
	return fmt.Sprintf("ingest: %s: writer schema %d needs the schema of %s to change first: %s",
		e.Pipeline, e.SchemaID, e.Table, strings.Join(parts, "; "))
}

// PauseError ends a run that cannot go on for now (the schema registry
// does not answer): nothing is a dead letter, and the pipeline consumes
// again from its committed offsets after a pause.
type PauseError struct{ Err error }

func (e *PauseError) Error() string { return "ingest: paused: " + e.Err.Error() }
func (e *PauseError) Unwrap() error { return e.Err }

// IsPause reports whether err ended a run for a pause (see PauseError).
func IsPause(err error) bool {
	var p *PauseError
	return errors.As(err, &p)
}

// runEnding wraps an error a decoder's Parse returns that must end the run
// instead of making the record a dead letter.
type runEnding struct{ err error }

func (e *runEnding) Error() string { return e.err.Error() }
func (e *runEnding) Unwrap() error { return e.err }

// writerSchemas fetches writer schemas from the registry and reads them,
// once per schema id, for every worker of a pipeline. It outlives runs: it
// also keeps what the pipeline learnt of the writer schemas it could not
// use, for as long as the pipeline runs in this process.
type writerSchemas struct {
	format string
	cl     *registry.Client
	mu     sync.Mutex
	avro   map[uint32]*decode.AvroSchema
	proto  map[uint32]protoreflect.FileDescriptor
	// newest is the largest schema id fetched.
	newest uint32
	// missed holds when the registry first did not know a schema id whose
	// records wait for it (see missing).
	missed map[uint32]time.Time
	// refused holds the writer schemas the table refused, by refusalKey,
	// with the table writer's reason (see Pipeline.RefuseSchema).
	refused map[string]string
}

func newWriterSchemas(format string, cl *registry.Client) *writerSchemas {
	return &writerSchemas{
		format: format, cl: cl, avro: map[uint32]*decode.AvroSchema{}, proto: map[uint32]protoreflect.FileDescriptor{},
		missed: map[uint32]time.Time{}, refused: map[string]string{},
	}
}

// maxMissed bounds the schema ids whose misses writerSchemas remembers: a
// topic of garbage ids costs one wait per id at most, and past this many,
// no wait at all.
const maxMissed = 1024

// schemaWait is a schema id the registry does not know (yet), whose records
// wait for it: the run pauses, and the next one asks the registry again.
type schemaWait struct {
	err        error // the registry's ErrUnknownSchema
	wait, left time.Duration
}

func (e *schemaWait) Error() string {
	return fmt.Sprintf("%v; its records wait for the registry to know it (unknown_schema_wait: %s, %s left)", e.err, e.wait, e.left.Round(time.Millisecond))
}

func (e *schemaWait) Unwrap() error { return e.err }

// missing sorts the registry's answer that it does not know schema id
// (err, an ErrUnknownSchema) for a pipeline whose records of an unknown id
// wait up to wait: a *schemaWait while they wait, else err, which makes
// them dead letters.
//
// A registry replica that has not caught up yet answers "not found" for a
// schema a producer has just registered with another replica: its records
// are good, and a dead letter would lose them from the table. So they wait,
// for up to wait from the first time this pipeline (in this process)
// missed the id, while each run asks the registry again. Only an id larger
// than every id the pipeline has fetched waits: registries hand out ids in
// increasing order and replicas apply them in that order, so a replica
// that knew a larger id knew every smaller one, and an unknown smaller id
// is no schema that was just registered (a deleted one, or garbage). A
// missing reference of a known schema never waits: a schema is registered
// after the ones it references.
func (s *writerSchemas) missing(id uint32, err error, wait time.Duration) error {
	var re *registry.Error
	if wait <= 0 || !errors.Is(err, registry.ErrUnknownSchema) || !errors.As(err, &re) || re.Ref != nil {
		return err
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	first, ok := s.missed[id]
	if !ok {
		if id <= s.newest || len(s.missed) >= maxMissed {
			return err
		}
		first = now
		s.missed[id] = first
	}
	waited := now.Sub(first)
	if waited < wait {
		return &schemaWait{err: err, wait: wait, left: wait - waited}
	}
	return fmt.Errorf("%w (its records waited %s for the registry to know it: unknown_schema_wait)", err, waited.Round(time.Millisecond))
}

// waiting reports whether the records of schema id wait (up to wait) for
// the registry to know it: a fetch of it must then ask the registry, not
// the client's memory of its last answer, which outlasts the pause
// between two runs.
func (s *writerSchemas) waiting(id uint32, wait time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	first, ok := s.missed[id]
	return ok && time.Since(first) < wait
}

// refusalKey names a writer schema: its schema id and, for protobuf, its
// message indexes.
func refusalKey(id uint32, indexes []int) string {
	var b strings.Builder
	b.WriteString(strconv.FormatUint(uint64(id), 10))
	for _, i := range indexes {
		b.WriteByte('.')
		b.WriteString(strconv.Itoa(i))
	}
	return b.String()
}

// refusal returns why the table refuses the writer schema id (at indexes),
// if it does.
func (s *writerSchemas) refusal(id uint32, indexes []int) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reason, ok := s.refused[refusalKey(id, indexes)]
	return reason, ok
}

// RefuseSchema records that the table refuses the writer schema of sc: the
// table writer, planning the change sc asks for against the table's current
// schema, found the writer schema incompatible (reason says why). From the
// next run on, the records of that writer schema are dead letters with the
// reason, as those of a writer schema a run finds incompatible itself,
// instead of ending the run to ask for the same change again. It lasts for
// the pipeline's life in this process: a restarted node asks again.
func (p *Pipeline) RefuseSchema(sc *SchemaChangeError, reason string) {
	if p.schemas == nil {
		return
	}
	p.schemas.mu.Lock()
	defer p.schemas.mu.Unlock()
	p.schemas.refused[refusalKey(sc.SchemaID, sc.Indexes)] = reason
}

// writerSchema is one writer schema: Avro, or a protobuf message.
type writerSchema struct {
	id    uint32
	avro  *decode.AvroSchema
	proto protoreflect.MessageDescriptor
}

// badSchema is a writer schema that cannot be used: its records are dead
// letters with this reason.
type badSchema struct{ reason string }

func (e *badSchema) Error() string { return e.reason }

// get returns the writer schema with id (and, for protobuf, the message at
// indexes). Errors: *registry.Error (its class says what to do), a
// *schemaWait for an unknown id whose records wait up to wait (see
// missing), a *badSchema, or the end of ctx.
func (s *writerSchemas) get(ctx context.Context, id uint32, indexes []int, wait time.Duration) (writerSchema, error) {
	ws := writerSchema{id: id}
	s.mu.Lock()
	a, p := s.avro[id], s.proto[id]
	s.mu.Unlock()
	if a == nil && p == nil {
		if s.waiting(id, wait) {
			s.cl.ForgetUnknown(id)
		}
		sch, deps, err := s.cl.Dependencies(ctx, id)
		if err != nil {
			return ws, s.missing(id, err, wait)
		}
		s.mu.Lock()
		s.newest = max(s.newest, id)
		s.mu.Unlock()
		want := registry.TypeAvro
		if s.format == FormatProtobuf {
			want = registry.TypeProtobuf
		}
		if sch.Type != want {
			return ws, &badSchema{fmt.Sprintf("schema id %d is a %s schema; the pipeline reads format %s", id, sch.Type, s.format)}
		}
		switch s.format {
		case FormatAvro:
			texts := make([]string, len(deps))
			for i, d := range deps {
				texts[i] = d.Schema.Text
			}
			if a, err = decode.ParseAvroSchemaWith(sch.Text, texts); err != nil {
				return ws, &badSchema{fmt.Sprintf("schema id %d cannot be read: %v", id, err)}
			}
		default:
			imports := make(map[string]string, len(deps))
			for _, d := range deps {
				imports[d.Name] = d.Schema.Text
			}
			if p, err = decode.ProtoFileFromSource(fmt.Sprintf("schema-%d.proto", id), sch.Text, imports); err != nil {
				return ws, &badSchema{fmt.Sprintf("schema id %d cannot be read: %v", id, err)}
			}
		}
		s.mu.Lock()
		if a != nil {
			s.avro[id] = a
		} else {
			s.proto[id] = p
		}
		s.mu.Unlock()
	}
	ws.avro = a
	if p != nil {
		md, err := decode.ProtoMessage(p, indexes)
		if err != nil {
			return ws, &badSchema{fmt.Sprintf("schema id %d: %v", id, err)}
		}
		ws.proto = md
	}
	return ws, nil
}

// iceberg maps the writer schema to an Iceberg schema.
func (ws writerSchema) iceberg() (*iceberg.Schema, error) {
	var sch *iceberg.Schema
	var err error
	if ws.avro != nil {
		sch, err = ws.avro.Iceberg()
	} else {
		sch, err = decode.ProtoIceberg(ws.proto)
	}
	if err != nil {
		return nil, &badSchema{fmt.Sprintf("schema id %d has no Iceberg form: %v", ws.id, err)}
	}
	// Writer defaults are not table defaults (a record is written as the
	// writer wrote it), and format version 2 tables refuse them.
	fields := make([]iceberg.NestedField, 0, sch.NumFields())
	for _, f := range sch.Fields() {
		fields = append(fields, withoutDefaults(f))
	}
	return iceberg.NewSchemaWithIdentifiers(sch.ID, sch.IdentifierFieldIDs, fields...), nil
}

// v3Only names a type in t that format version 2 tables cannot hold
// (unknown, nanosecond timestamps), "" if there is none.
func v3Only(t iceberg.Type) string {
	switch t := t.(type) {
	case iceberg.UnknownType, iceberg.TimestampNsType, iceberg.TimestampTzNsType:
		return t.String()
	case iceberg.NestedType:
		for _, f := range t.Fields() {
			if s := v3Only(f.Type); s != "" {
				return s
			}
		}
	}
	return ""
}

// fitsVersion refuses, for a table of format version v, a schema with a
// type the version cannot hold.
func fitsVersion(sch *iceberg.Schema, v int, id uint32) error {
	if v >= 3 {
		return nil
	}
	for _, f := range sch.Fields() {
		if t := v3Only(f.Type); t != "" {
			return &badSchema{fmt.Sprintf("schema id %d: field %q has type %s, which format version %d tables cannot hold (format_version: 3 can)", id, f.Name, t, v)}
		}
	}
	return nil
}

// registryDecoder decodes a worker's records in the schema registry's wire
// format into rows of the table's schema: a decode.Decoder whose row is that
// of the decoder of the last good record's writer schema. It is used by one
// worker.
type registryDecoder struct {
	src      *writerSchemas
	pipeline string
	table    string
	schema   *iceberg.Schema
	arrow    *arrow.Schema
	// rows is the row every Avro decoder fills (a transform reads it).
	rows *decode.JSONDecoder
	// evolve: a writer schema the table cannot take as it is ends the run
	// with a *SchemaChangeError, planned by plan.
	evolve  bool
	plan    evolutionPlan
	metrics Metrics
	// wait is how long the records of an unknown schema id wait for it.
	wait time.Duration

	byHeader map[string]*compiled
	cur      decode.Decoder
	idx      []int
}

// NewRowDecoder returns a decoder of the record values of pipeline pc
// into rows of sch, as the pipeline's workers decode them, and the
// JSONDecoder whose row it fills with each record it accepts (which a
// transform reads): for format json the JSONDecoder itself; for avro and
// protobuf a decoder of the schema registry's wire format, reading writer
// schemas from pc's registry, whose records of a schema id the registry
// does not know are dead letters at once. It never changes a table (no
// schema evolution). Parse refuses a record with a *decode.DecodeError (a
// dead letter) or fails with another error: the registry cannot be used,
// which ends the reading. It is for tools that read a pipeline's records
// outside a running pipeline (floe verify), and reads record values only
// (not mode: cdc's change events).
func NewRowDecoder(pc PipelineConfig, sch *iceberg.Schema) (decode.Decoder, *decode.JSONDecoder, error) {
	if !pc.RegistryFormat() {
		d, err := decode.NewJSONDecoder(sch)
		return d, d, err
	}
	pc.SchemaEvolution = EvolutionStrict
	pc.Registry.UnknownSchemaWait = registry.WaitFor(0)
	cl, err := registry.New(pc.Registry)
	if err != nil {
		return nil, nil, err
	}
	p := &Pipeline{opts: Options{Pipeline: pc}, schemas: newWriterSchemas(pc.Format, cl)}
	d, err := newRegistryDecoder(p, pc.Table, sch, nil, DefaultFormatVersion, true)
	if err != nil {
		return nil, nil, err
	}
	return d, d.rows, nil
}

// compiled is a writer schema's decoder, or why its records are dead
// letters.
type compiled struct {
	dec  decode.Decoder
	err  error
	kind string
}

// newRegistryDecoder returns a decoder of p's records into rows of sch, a
// schema of table; withRows makes its decoders fill rows (a transform
// reads it), which Avro decoders always do.
func newRegistryDecoder(p *Pipeline, table string, sch *iceberg.Schema, fixed []string, version int, withRows bool) (*registryDecoder, error) {
	asc, err := arrowSchema(sch)
	if err != nil {
		return nil, err
	}
	d := &registryDecoder{
		src: p.schemas, pipeline: p.opts.Pipeline.Name, table: table, schema: sch, arrow: asc,
		evolve: p.opts.Pipeline.Evolves(), plan: evolutionPlan{pipeline: p.opts.Pipeline.Name, table: table, schema: sch, fixed: fixed, version: version},
		metrics: p.metrics(), byHeader: map[string]*compiled{},
		wait: p.opts.Pipeline.Registry.UnknownWait(),
	}
	// An Avro table's types are all ones a JSONDecoder holds; a protobuf
	// table's may not be (maps with other than string keys), so its
	// decoders fill a shared row only when asked to.
	if p.opts.Pipeline.Format == FormatAvro || withRows {
		if d.rows, err = decode.NewJSONDecoder(sch); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *registryDecoder) ArrowSchema() *arrow.Schema { return d.arrow }

// Parse decodes one record. A record that cannot be decoded gets a
// *decode.DecodeError (a dead letter); a record that must end the run (an
// unreachable registry, a schema change to apply first) a *runEnding.
func (d *registryDecoder) Parse(value []byte, meta decode.RecordMeta) error {
	id, idx, header, payload, err := splitFrame(d.src.format, value, d.idx, d.metrics, d.pipeline)
	d.idx = idx
	if err != nil {
		return err
	}
	c := d.byHeader[string(header)]
	if c == nil {
		if c, err = d.compile(id); err != nil {
			return err
		}
		d.byHeader[string(header)] = c
	}
	if c.err != nil {
		d.metrics.RegistryError(d.pipeline, c.kind)
		return c.err
	}
	if err := c.dec.Parse(payload, meta); err != nil {
		return err
	}
	d.cur = c.dec
	return nil
}

// splitFrame splits a value (or key) in the schema registry's wire format
// of format: its schema id, for protobuf the message indexes (appended to
// idx[:0]), its header (the bytes naming its writer schema: the id and the
// indexes) and its payload. A value not in the wire format is a
// *decode.DecodeError, counted as not_framed.
func splitFrame(format string, value []byte, idx []int, m Metrics, pipeline string) (id uint32, _ []int, header, payload []byte, err error) {
	id, payload, err = registry.Header(value)
	if err != nil {
		m.RegistryError(pipeline, "not_framed")
		return 0, idx, nil, nil, &decode.DecodeError{Reason: err.Error()}
	}
	if format == FormatProtobuf {
		idx, payload, err = decode.AppendMessageIndexes(idx[:0], payload)
		if err != nil {
			m.RegistryError(pipeline, "not_framed")
			return 0, idx, nil, nil, &decode.DecodeError{Reason: fmt.Sprintf("schema id %d: %v", id, err)}
		}
	}
	return id, idx, value[1 : len(value)-len(payload)], payload, nil
}

// compile makes the decoder of writer schema id (d.idx: the protobuf
// message). An error ends the run; a writer schema that cannot be used is
// a compiled with the dead letters' reason.
func (d *registryDecoder) compile(id uint32) (*compiled, error) {
	if reason, ok := d.src.refusal(id, d.idx); ok {
		return &compiled{err: &decode.DecodeError{Reason: fmt.Sprintf("schema id %d cannot be added to the table: %s", id, reason)}, kind: "incompatible"}, nil
	}
	ws, err := d.src.get(context.Background(), id, d.idx, d.wait)
	if err != nil {
		return schemaFailure(d.pipeline, d.metrics, err)
	}
	if d.evolve {
		w, err := ws.iceberg()
		if err != nil {
			return &compiled{err: &decode.DecodeError{Reason: err.Error()}, kind: "bad_schema"}, nil
		}
		if c, err := d.plan.changes(id, d.idx, w); c != nil || err != nil {
			return c, err
		}
	}
	var dec decode.Decoder
	if ws.avro != nil {
		dec, err = decode.NewAvroDecoderInto(d.schema, d.rows, ws.avro)
	} else {
		dec, err = decode.NewProtoDecoderInto(d.schema, d.rows, ws.proto)
	}
	if err != nil {
		return &compiled{err: &decode.DecodeError{Reason: fmt.Sprintf("schema id %d does not fit the table: %v", id, err)}, kind: "incompatible"}, nil
	}
	return &compiled{dec: dec}, nil
}

// evolutionPlan plans the changes a table must take before the records of
// a writer schema (schema_evolution: add).
type evolutionPlan struct {
	pipeline, table string
	schema          *iceberg.Schema // the table's, as the run started
	fixed           []string        // the columns no change may touch (FixedColumns)
	version         int             // the table's format version
}

// changes plans the changes the table must take for writer schema id
// (idx: its protobuf message), whose Iceberg form is w: nil when it takes
// w as it is; a compiled with the dead letters' reason when it cannot take
// it; a *runEnding with the *SchemaChangeError to apply first otherwise.
func (e evolutionPlan) changes(id uint32, idx []int, w *iceberg.Schema) (*compiled, error) {
	changes, err := schema.Evolve(e.schema, w, e.fixed)
	if err == nil && len(changes) > 0 {
		// Only the columns the change adds need to fit the table's
		// version: a field the table lacks and will not get is skipped.
		for _, c := range changes {
			if c.Kind == schema.AddColumn {
				if t := v3Only(c.Type); t != "" && e.version < 3 {
					return &compiled{err: &decode.DecodeError{Reason: fmt.Sprintf("schema id %d: new field %q has type %s, which format version %d tables cannot hold (format_version: 3 can)",
						id, strings.Join(c.Path, "."), t, e.version)}, kind: "incompatible"}, nil
				}
			}
		}
	}
	var inc *schema.IncompatibleError
	switch {
	case errors.As(err, &inc):
		return &compiled{err: &decode.DecodeError{Reason: fmt.Sprintf("schema id %d cannot be added to the table: %v", id, err)}, kind: "incompatible"}, nil
	case err != nil:
		return nil, err
	case len(changes) > 0:
		return nil, &runEnding{&SchemaChangeError{Pipeline: e.pipeline, Table: e.table, SchemaID: id, Indexes: slices.Clone(idx),
			Writer: w, Fixed: e.fixed, Changes: changes}}
	}
	return nil, nil
}

// schemaFailure sorts a failure to get a writer schema: the records of a
// schema that cannot be used are dead letters (a compiled with the
// reason); an unreachable registry, or an unknown id whose records wait
// for it, pauses the run, a registry that refuses floe's credentials stops
// the pipeline (the error ends the run).
func schemaFailure(pipeline string, m Metrics, err error) (*compiled, error) {
	var bad *badSchema
	var wait *schemaWait
	switch {
	case errors.As(err, &wait):
		m.RegistryError(pipeline, "unknown_schema_wait")
		return nil, &runEnding{&PauseError{err}}
	case errors.As(err, &bad):
		return &compiled{err: &decode.DecodeError{Reason: bad.reason}, kind: "bad_schema"}, nil
	case errors.Is(err, registry.ErrUnknownSchema):
		return &compiled{err: &decode.DecodeError{Reason: err.Error()}, kind: "unknown_schema"}, nil
	case errors.Is(err, registry.ErrAuth):
		m.RegistryError(pipeline, "auth")
		return nil, &runEnding{&configError{fmt.Errorf("ingest: pipelines[%s].registry: %w", pipeline, err)}}
	}
	m.RegistryError(pipeline, "unreachable")
	return nil, &runEnding{&PauseError{err}}
}

// avroTranscoder rewrites a worker's Avro records as JSON (decode.AvroJSON),
// for a pipeline whose records the JSON change reader reads: Debezium
// change events in Avro (mode: cdc).
type avroTranscoder struct {
	src      *writerSchemas
	pipeline string
	metrics  Metrics
	wait     time.Duration // as registryDecoder's
	// evolve: a writer schema whose "after" record (the row) the table
	// cannot take as it is ends the run with a *SchemaChangeError,
	// planned by plan.
	evolve bool
	plan   evolutionPlan
	// fromEnvelope are the table's columns filled from the change event
	// rather than its row (version_from's column): the row need not have
	// them.
	fromEnvelope []string
	byID         map[uint32]*transcoding
	buf          []byte
}

// transcoding is a writer schema's rewriter, or why its records are dead
// letters.
type transcoding struct {
	aj   *decode.AvroJSON
	fail *compiled
}

// newAvroTranscoder returns the rewriter of p's records; plan is how the
// table takes the rows of change events, nil for records that are not
// change events (Kafka keys).
func newAvroTranscoder(p *Pipeline, plan *evolutionPlan) *avroTranscoder {
	a := &avroTranscoder{src: p.schemas, pipeline: p.opts.Pipeline.Name, metrics: p.metrics(), wait: p.opts.Pipeline.Registry.UnknownWait(),
		byID: map[uint32]*transcoding{}}
	if plan != nil {
		a.evolve, a.plan = p.opts.Pipeline.Evolves(), *plan
		if cfg := p.opts.Pipeline; cfg.VersionFrom != "" {
			a.fromEnvelope = []string{cfg.VersionColumn}
		}
	}
	return a
}

// withColumns returns w with the top-level primitive columns names of tbl
// that w lacks added as tbl has them (under ids of w's own: a writer
// schema's ids mean nothing).
func withColumns(w, tbl *iceberg.Schema, names []string) *iceberg.Schema {
	fields := slices.Clone(w.Fields())
	next := w.HighestFieldID()
	for _, name := range names {
		if _, ok := w.FindFieldByName(name); ok {
			continue
		}
		if f, ok := tbl.FindFieldByName(name); ok {
			next++
			f.ID = next
			fields = append(fields, f)
		}
	}
	if len(fields) == len(w.Fields()) {
		return w
	}
	return iceberg.NewSchema(w.ID, fields...)
}

// json returns the JSON text of a record value in the wire format (valid
// until the next call): a *decode.DecodeError makes the record a dead
// letter, a *runEnding ends the run.
func (a *avroTranscoder) json(value []byte) ([]byte, error) {
	id, payload, err := registry.Header(value)
	if err != nil {
		a.metrics.RegistryError(a.pipeline, "not_framed")
		return nil, &decode.DecodeError{Reason: err.Error()}
	}
	tc := a.byID[id]
	if tc == nil {
		if tc, err = a.compile(id); err != nil {
			return nil, err
		}
		a.byID[id] = tc
	}
	if tc.fail != nil {
		a.metrics.RegistryError(a.pipeline, tc.fail.kind)
		return nil, tc.fail.err
	}
	a.buf, err = tc.aj.AppendJSON(a.buf[:0], payload)
	return a.buf, err
}

// compile makes the rewriter of writer schema id. An error ends the run;
// a writer schema that cannot be used is a transcoding with the dead
// letters' reason.
func (a *avroTranscoder) compile(id uint32) (*transcoding, error) {
	if reason, ok := a.src.refusal(id, nil); ok {
		return &transcoding{fail: &compiled{err: &decode.DecodeError{Reason: fmt.Sprintf("schema id %d cannot be added to the table: %s", id, reason)}, kind: "incompatible"}}, nil
	}
	ws, err := a.src.get(context.Background(), id, nil, a.wait)
	if err != nil {
		fail, err := schemaFailure(a.pipeline, a.metrics, err)
		return &transcoding{fail: fail}, err
	}
	if after, ok := ws.avro.Record("after"); ok && a.evolve {
		// The table's columns are the rows': those of the change
		// event's after record (before has the same type).
		w, err := after.Iceberg()
		if err != nil {
			return &transcoding{fail: &compiled{err: &decode.DecodeError{Reason: fmt.Sprintf("schema id %d: the change event's after record: %v", id, err)}, kind: "bad_schema"}}, nil
		}
		w = withColumns(w, a.plan.schema, a.fromEnvelope)
		if fail, err := a.plan.changes(id, nil, w); fail != nil || err != nil {
			return &transcoding{fail: fail}, err
		}
	}
	return &transcoding{aj: decode.NewAvroJSON(ws.avro)}, nil
}

// protoKeys rewrites a worker's Kafka keys in the schema registry's wire
// format holding a protobuf message as the JSON object of its fields
// (decode.AppendProtoKeyJSON), for the key reader of a keyed protobuf
// pipeline: a tombstone names the key it deletes with it.
type protoKeys struct {
	src      *writerSchemas
	pipeline string
	metrics  Metrics
	wait     time.Duration // as registryDecoder's
	byHeader map[string]*protoKey
	idx      []int
	buf      []byte
}

// protoKey is a key message's type, or why its keys cannot be read.
type protoKey struct {
	md   protoreflect.MessageDescriptor
	fail *compiled
}

func newProtoKeys(p *Pipeline) *protoKeys {
	return &protoKeys{src: p.schemas, pipeline: p.opts.Pipeline.Name, metrics: p.metrics(), wait: p.opts.Pipeline.Registry.UnknownWait(),
		byHeader: map[string]*protoKey{}}
}

// json returns the JSON text of a Kafka key in the wire format (valid
// until the next call): a *decode.DecodeError makes the record a dead
// letter, a *runEnding ends the run.
func (k *protoKeys) json(key []byte) ([]byte, error) {
	id, idx, header, payload, err := splitFrame(FormatProtobuf, key, k.idx, k.metrics, k.pipeline)
	k.idx = idx
	if err != nil {
		return nil, err
	}
	pk := k.byHeader[string(header)]
	if pk == nil {
		ws, err := k.src.get(context.Background(), id, k.idx, k.wait)
		if err != nil {
			fail, err := schemaFailure(k.pipeline, k.metrics, err)
			if err != nil {
				return nil, err
			}
			pk = &protoKey{fail: fail}
		} else {
			pk = &protoKey{md: ws.proto}
		}
		k.byHeader[string(header)] = pk
	}
	if pk.fail != nil {
		k.metrics.RegistryError(k.pipeline, pk.fail.kind)
		return nil, pk.fail.err
	}
	k.buf, err = decode.AppendProtoKeyJSON(k.buf[:0], pk.md, payload)
	return k.buf, err
}

func (d *registryDecoder) Cell(i int) decode.Cell { return d.cur.Cell(i) }

func (d *registryDecoder) Append(b *array.RecordBuilder) { d.cur.Append(b) }

// fixedColumns are the top-level columns schema evolution must leave as
// they are: the key and version columns, and the partition source columns.
func FixedColumns(cfg PipelineConfig, sch *iceberg.Schema, spec *iceberg.PartitionSpec) []string {
	fixed := append([]string(nil), cfg.Key...)
	if cfg.VersionColumn != "" {
		fixed = append(fixed, cfg.VersionColumn)
	}
	for _, f := range spec.Fields() {
		if name, ok := sch.FindColumnName(f.SourceID()); ok {
			fixed = append(fixed, name)
		}
	}
	return fixed
}

// tableSchemaOf is the schema of the table a registry-format pipeline
// creates when it declares none: the writer schema of the first record in
// samples whose schema can be used, with the Kafka metadata columns meta.
// Records whose schema is unknown or cannot be read are skipped (they are
// dead letters); an unreachable registry is an error to retry, one that
// refuses floe's credentials a configuration error.
func (s *writerSchemas) tableSchemaOf(ctx context.Context, samples [][]byte, meta []string, version int) (*iceberg.Schema, uint32, error) {
	var skipped []string
	for _, v := range samples {
		id, payload, err := registry.Header(v)
		if err != nil {
			continue
		}
		var idx []int
		if s.format == FormatProtobuf {
			if idx, _, err = decode.ReadMessageIndexes(payload); err != nil {
				continue
			}
		}
		// No record waits here: the table is created from the first
		// record whose schema is known.
		ws, err := s.get(ctx, id, idx, 0)
		var w *iceberg.Schema
		if err == nil {
			w, err = ws.iceberg()
		}
		if err == nil {
			err = fitsVersion(w, version, id)
		}
		var bad *badSchema
		switch {
		case errors.As(err, &bad) || errors.Is(err, registry.ErrUnknownSchema):
			if len(skipped) < 3 {
				skipped = append(skipped, err.Error())
			}
			continue
		case errors.Is(err, registry.ErrAuth):
			return nil, 0, &configError{err}
		case err != nil:
			return nil, 0, err
		}
		metaSch, err := schema.Build(nil, meta, nil)
		if err != nil {
			return nil, 0, &configError{err}
		}
		var fields []iceberg.NestedField
		for _, f := range w.Fields() {
			if strings.HasPrefix(f.Name, "_kafka_") {
				continue // filled from the record's metadata
			}
			fields = append(fields, f) // without defaults: iceberg() strips them
		}
		next := iceberg.NewSchema(0, fields...).HighestFieldID()
		for _, f := range metaSch.Fields() {
			next++
			f.ID = next
			fields = append(fields, f)
		}
		sch, err := iceberg.AssignFreshSchemaIDs(iceberg.NewSchema(0, fields...), nil)
		if err != nil {
			return nil, 0, err
		}
		return sch, id, nil
	}
	if len(skipped) > 0 {
		return nil, 0, fmt.Errorf("no record among the first has a writer schema floe can use: %s", strings.Join(skipped, "; "))
	}
	return nil, 0, errors.New("no record among the first is in the schema registry wire format")
}

// withoutDefaults is f without default values, at every level: the
// decoders never fill a column from its default (a record without a field
// is null there), and format version 2 tables refuse defaults.
func withoutDefaults(f iceberg.NestedField) iceberg.NestedField {
	f.InitialDefault, f.WriteDefault = nil, nil
	switch t := f.Type.(type) {
	case *iceberg.StructType:
		st := &iceberg.StructType{FieldList: make([]iceberg.NestedField, len(t.FieldList))}
		for i, c := range t.FieldList {
			st.FieldList[i] = withoutDefaults(c)
		}
		f.Type = st
	case *iceberg.ListType:
		lt := *t
		lt.Element = withoutDefaults(iceberg.NestedField{ID: t.ElementID, Name: "element", Type: t.Element, Required: t.ElementRequired}).Type
		f.Type = &lt
	case *iceberg.MapType:
		mt := *t
		mt.ValueType = withoutDefaults(iceberg.NestedField{ID: t.ValueID, Name: "value", Type: t.ValueType, Required: t.ValueRequired}).Type
		f.Type = &mt
	}
	return f
}
