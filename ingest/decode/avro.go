package decode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
)

// AvroDecoder converts Avro binary records (the payload after the schema
// registry's 5-byte header) written with one writer schema into rows of a
// table's schema, which may differ from it (schema evolution, see
// NewAvroDecoder). It has the two-phase shape and the strictness of the JSON
// decoder (see the package doc) and shares its scratch row and Arrow append
// machinery: Parse fills a JSONDecoder's row slots exactly as its own Parse
// would, and Append is its appendValue. It is not safe for concurrent use.
type AvroDecoder struct {
	out *JSONDecoder // the table side: Arrow schema, row slots, builders

	top      []avroStep // writer fields in writer order: decode into a column, or skip
	nullCols []int      // table columns the writer lacks
	metaCols []int      // Kafka metadata columns

	budget int // items of zero-size array/map elements left in this record
}

// maxEmptyItems bounds the number of array and map items whose values take no bytes (nulls,
// empty records) in one record: their counts are not bounded by the payload's length.
const maxEmptyItems = 1 << 20

// maxSkipDepth bounds the nesting of skipped values of recursive writer types.
const maxSkipDepth = 256

// avroConv is what one compiled step reads from the wire and how it converts it.
type avroConv uint8

const (
	acNull       avroConv = iota // writer type null: nothing on the wire, always null
	acBool                       // one byte, 0 or 1
	acInt                        // int (also date): int, long and date columns
	acLong                       // long (also timestamp-micros/-nanos)
	acTimeMillis                 // int millis of day -> micros
	acTimeMicros                 // long micros of day
	acTsMillis                   // long millis -> micros
	acFloat                      // float: float and double columns
	acDouble                     // double
	acString                     // string, checked UTF-8
	acBinary                     // bytes
	acFixed                      // fixed: fixed, binary and uuid columns
	acUUIDString                 // string in the canonical UUID form -> 16 bytes
	acEnum                       // enum index -> symbol
	acDecBytes                   // decimal on bytes
	acDecFixed                   // decimal on fixed
	acRecord                     // containers from here on
	acArray
	acMap // Avro map, or Iceberg's array of key/value records with string keys
)

// avroOp is the compiled pair of one writer type and the table type it is read as.
type avroOp struct {
	conv avroConv

	// A writer union of null and one type: the branch index comes first on the wire.
	union      bool
	nbranch    int64
	nullIdx    int64 // -1 when null is not a branch
	required   bool  // the table's side
	nullReason string

	size      int      // fixed
	precision int32    // decimal: the table's precision
	typeName  string   // the table's type, for messages
	symbols   [][]byte // enum

	elem    *avroOp // array element, map value
	elemMin int     // fewest bytes of one array element or map entry

	steps   []avroStep   // record, when the writer's fields come in the table's order
	reorder *avroReorder // record, otherwise

	// Map scratch. An op belongs to one node of the table's schema, which never contains
	// itself, so an op is never active twice at once (even for a recursive writer type).
	keys  [][]byte
	order []int
}

type stepKind uint8

const (
	stepDecode stepKind = iota // decode op into the next cell (column col at the top level)
	stepSkip                   // parse the writer field and discard it
	stepNull                   // a table field the writer lacks: null
)

type avroStep struct {
	kind stepKind
	op   *avroOp
	skip *avroNode
	name string
	col  int
}

// avroReorder decodes a record whose writer fields come in another order than the table's: a
// first pass notes where each writer field starts (skipping them all), the second decodes the
// table's fields in the table's order from there.
type avroReorder struct {
	wfields []*avroField
	offs    []int
	fields  []avroStep // table order; stepDecode steps have col = writer field index
}

// NewAvroDecoder compiles a decoder from the writer schema to the table's schema. The Arrow
// schema it appends to is the JSON decoder's for the same table.
//
// Table columns are matched to writer fields by name (case-sensitive), at every level of
// nesting. A table column the writer lacks is null (an error if the column is required); a
// writer field the table lacks is parsed and discarded. A writer type is read as a table type
// when it maps to it (see AvroSchema.Iceberg) or is promoted to it as Iceberg allows: int ->
// long, float -> double, decimal(P,S) -> decimal(P',S) with P' >= P, fixed -> binary (and
// enum -> string, string -> string, bytes -> binary). A writer field in a union with null may be
// read into a required column: a record where it is null is refused. The Kafka metadata
// columns are filled from RecordMeta, as by the JSON decoder; writer fields of their names are
// skipped. Table maps must have string keys (the Arrow machinery shared with the JSON decoder
// has no other). Any other difference is an error naming the field (a *DecodeError when it is
// about the writer schema), to dead-letter the records of that writer schema with.
func NewAvroDecoder(table *iceberg.Schema, writer *AvroSchema) (*AvroDecoder, error) {
	return NewAvroDecoderInto(table, nil, writer)
}

// NewAvroDecoderInto is NewAvroDecoder parsing into rows, a JSONDecoder of
// the same table schema (nil: a new one): decoders of several writer
// schemas of one table then share one row, which Rows returns, so that
// whatever reads the row (a transform, a Projector) reads it from one
// place whichever writer schema the record had. Decoders sharing rows are
// used by one goroutine.
func NewAvroDecoderInto(table *iceberg.Schema, rows *JSONDecoder, writer *AvroSchema) (*AvroDecoder, error) {
	if table == nil || writer == nil {
		return nil, errors.New("ingest: nil schema")
	}
	for _, f := range table.Fields() {
		if err := avroTableType(f.Type, f.Name); err != nil {
			return nil, err
		}
	}
	out := rows
	if out == nil {
		var err error
		if out, err = NewJSONDecoder(table); err != nil {
			return nil, err
		}
	} else if len(out.root.children) != len(table.Fields()) {
		return nil, fmt.Errorf("ingest: the shared row has %d columns, the table %d", len(out.root.children), len(table.Fields()))
	}
	w := writer.root
	if w.kind != akRecord {
		return nil, &DecodeError{Reason: "the writer schema is a " + w.describe() + ", not a record"}
	}
	d := &AvroDecoder{out: out}
	wIdx := make(map[string]int, len(w.fields))
	for i, f := range w.fields {
		wIdx[f.name] = i
	}
	colOf := make([]int, len(w.fields))
	for i := range colOf {
		colOf[i] = -1
	}
	fields := table.Fields()
	for j, tn := range out.root.children {
		if tn.meta != metaNone {
			d.metaCols = append(d.metaCols, j)
			continue
		}
		wi, ok := wIdx[tn.name]
		if !ok {
			if tn.required {
				return nil, &DecodeError{Field: tn.name, Reason: "the column is required, but the writer schema has no such field"}
			}
			d.nullCols = append(d.nullCols, j)
			continue
		}
		colOf[wi] = j
	}
	for wi, f := range w.fields {
		j := colOf[wi]
		if j < 0 {
			d.top = append(d.top, avroStep{kind: stepSkip, skip: f.typ, name: f.name})
			continue
		}
		op, err := compileAvro(f.typ, out.root.children[j], fields[j].Type, f.name)
		if err != nil {
			return nil, err
		}
		op.nullReason = "required field is null"
		d.top = append(d.top, avroStep{kind: stepDecode, op: op, name: f.name, col: j})
	}
	return d, nil
}

// avroTableType refuses the table types the decoder cannot fill, before NewJSONDecoder (whose
// row and builders it uses) words the refusal for JSON.
func avroTableType(t iceberg.Type, path string) error {
	switch t := t.(type) {
	case iceberg.BooleanType, iceberg.Int32Type, iceberg.Int64Type, iceberg.Float32Type, iceberg.Float64Type,
		iceberg.DecimalType, iceberg.DateType, iceberg.TimeType, iceberg.TimestampType, iceberg.TimestampTzType,
		iceberg.TimestampNsType, iceberg.TimestampTzNsType, iceberg.StringType, iceberg.BinaryType,
		iceberg.FixedType, iceberg.UUIDType, iceberg.UnknownType:
		return nil
	case *iceberg.StructType:
		for _, f := range t.FieldList {
			if err := avroTableType(f.Type, path+"."+f.Name); err != nil {
				return err
			}
		}
		return nil
	case *iceberg.ListType:
		return avroTableType(t.Element, path+"[]")
	case *iceberg.MapType:
		if _, ok := t.KeyType.(iceberg.StringType); !ok {
			return fmt.Errorf("ingest: field %q has type %s: the Avro decoder only fills maps with string keys", path, t)
		}
		return avroTableType(t.ValueType, path+".value")
	}
	return fmt.Errorf("ingest: field %q has type %s, which the Avro decoder does not support", path, t)
}

// compileAvro compiles writer type w read as table node t (of Iceberg type it) at path.
func compileAvro(w *avroNode, t *jsonNode, it iceberg.Type, path string) (*avroOp, error) {
	inner, nullIdx, ok := w.nullable()
	if !ok {
		return nil, &DecodeError{Field: path, Reason: "the writer's type " + w.describe() +
			" is a union that cannot be read: only unions of null and one type can be"}
	}
	op := &avroOp{required: t.required, typeName: t.typeName, nullIdx: -1, nullReason: "required field is null"}
	if w.kind == akUnion {
		op.union, op.nbranch, op.nullIdx = true, int64(len(w.branches)), int64(nullIdx)
	}
	mismatch := func() error {
		return &DecodeError{Field: path, Reason: "the writer's type " + inner.describe() +
			" cannot be read as the table's " + t.typeName}
	}
	if inner.kind == akNull {
		if t.required {
			return nil, &DecodeError{Field: path, Reason: "the column is required, but the writer's type is null"}
		}
		op.conv = acNull
		return op, nil
	}
	plain := inner.logical == alNone
	switch t.kind {
	case jkBool:
		if inner.kind != akBoolean {
			return nil, mismatch()
		}
		op.conv = acBool
	case jkInt32:
		if inner.kind != akInt || !plain {
			return nil, mismatch()
		}
		op.conv = acInt
	case jkInt64:
		switch {
		case inner.kind == akInt && plain:
			op.conv = acInt
		case inner.kind == akLong && plain:
			op.conv = acLong
		default:
			return nil, mismatch()
		}
	case jkFloat32:
		if inner.kind != akFloat {
			return nil, mismatch()
		}
		op.conv = acFloat
	case jkFloat64:
		switch inner.kind {
		case akFloat:
			op.conv = acFloat
		case akDouble:
			op.conv = acDouble
		default:
			return nil, mismatch()
		}
	case jkDecimal:
		if inner.logical != alDecimal {
			return nil, mismatch()
		}
		if inner.scale != t.scale || inner.precision > t.precision {
			return nil, &DecodeError{Field: path, Reason: fmt.Sprintf(
				"the writer's decimal(%d,%d) cannot be read as the table's %s: only the precision may grow, the scale must stay",
				inner.precision, inner.scale, t.typeName)}
		}
		op.precision = int32(t.precision)
		if inner.kind == akFixed {
			op.conv, op.size = acDecFixed, inner.size
		} else {
			op.conv = acDecBytes
		}
	case jkDate:
		if inner.logical != alDate {
			return nil, mismatch()
		}
		op.conv = acInt
	case jkTime:
		switch inner.logical {
		case alTimeMillis:
			op.conv = acTimeMillis
		case alTimeMicros:
			op.conv = acTimeMicros
		default:
			return nil, mismatch()
		}
	case jkTimestamp, jkTimestampNs:
		_, tz := it.(iceberg.TimestampTzType)
		if t.kind == jkTimestampNs {
			_, tz = it.(iceberg.TimestampTzNsType)
		}
		if inner.utc != tz {
			return nil, mismatch()
		}
		switch {
		case t.kind == jkTimestamp && inner.logical == alTimestampMillis:
			op.conv = acTsMillis
		case t.kind == jkTimestamp && inner.logical == alTimestampMicros,
			t.kind == jkTimestampNs && inner.logical == alTimestampNanos:
			op.conv = acLong
		default:
			return nil, mismatch()
		}
	case jkString:
		switch {
		case inner.kind == akString && plain:
			op.conv = acString
		case inner.kind == akEnum:
			op.conv = acEnum
			for _, s := range inner.symbols {
				op.symbols = append(op.symbols, []byte(s))
			}
		default:
			return nil, mismatch()
		}
	case jkBinary:
		switch {
		case inner.kind == akBytes && plain:
			op.conv = acBinary
		case inner.kind == akFixed && plain:
			op.conv, op.size = acFixed, inner.size
		default:
			return nil, mismatch()
		}
	case jkFixed:
		if inner.kind != akFixed || !plain || inner.size != t.fixedLen {
			return nil, mismatch()
		}
		op.conv, op.size = acFixed, inner.size
	case jkUUID:
		switch {
		case inner.kind == akString && inner.logical == alUUID:
			op.conv = acUUIDString
		case inner.kind == akFixed && inner.logical == alUUID:
			op.conv, op.size = acFixed, 16
		default:
			return nil, mismatch()
		}
	case jkStruct:
		if inner.kind != akRecord {
			return nil, mismatch()
		}
		st := it.(*iceberg.StructType)
		if err := compileRecord(op, inner, t, st, path); err != nil {
			return nil, err
		}
	case jkList:
		if inner.kind != akArray {
			return nil, mismatch()
		}
		lt := it.(*iceberg.ListType)
		elem, err := compileAvro(inner.items, t.children[0], lt.Element, path+"[]")
		if err != nil {
			return nil, err
		}
		elem.nullReason = "required list element is null"
		op.conv, op.elem, op.elemMin = acArray, elem, inner.items.minSize
	case jkMap:
		mt := it.(*iceberg.MapType)
		var vw *avroNode
		switch {
		case inner.kind == akMap:
			vw = inner.values
			op.elemMin = 1 + vw.minSize
		case inner.kind == akArray && inner.logical == alMap:
			// The key/value records are written as the key then the value: with a plain
			// string key that is exactly an Avro map entry.
			kw := inner.items.fields[0].typ
			if kw.kind != akString || kw.logical != alNone {
				return nil, &DecodeError{Field: path, Reason: "the writer's map keys are " + kw.describe() +
					", the table's map keys are string"}
			}
			vw = inner.items.fields[1].typ
			op.elemMin = inner.items.minSize
		default:
			return nil, mismatch()
		}
		elem, err := compileAvro(vw, t.children[1], mt.ValueType, path+".value")
		if err != nil {
			return nil, err
		}
		elem.nullReason = "required map value is null"
		op.conv, op.elem = acMap, elem
	default: // jkUnknown takes only null
		return nil, mismatch()
	}
	return op, nil
}

func compileRecord(op *avroOp, w *avroNode, t *jsonNode, st *iceberg.StructType, path string) error {
	op.conv = acRecord
	wIdx := make(map[string]int, len(w.fields))
	for i, f := range w.fields {
		wIdx[f.name] = i
	}
	match := make([]int, len(t.children))
	ops := make([]*avroOp, len(t.children))
	inOrder := true
	last := -1
	for j, tc := range t.children {
		cpath := path + "." + tc.name
		wi, ok := wIdx[tc.name]
		if !ok {
			if tc.required {
				return &DecodeError{Field: cpath, Reason: "the field is required, but the writer's record " + w.name + " has no such field"}
			}
			match[j] = -1
			continue
		}
		match[j] = wi
		if wi < last {
			inOrder = false
		}
		last = wi
		var err error
		if ops[j], err = compileAvro(w.fields[wi].typ, tc, st.FieldList[j].Type, cpath); err != nil {
			return err
		}
	}
	if inOrder {
		wi := 0
		for j, tc := range t.children {
			if match[j] < 0 {
				op.steps = append(op.steps, avroStep{kind: stepNull, name: tc.name})
				continue
			}
			for ; wi < match[j]; wi++ {
				op.steps = append(op.steps, avroStep{kind: stepSkip, skip: w.fields[wi].typ, name: w.fields[wi].name})
			}
			op.steps = append(op.steps, avroStep{kind: stepDecode, op: ops[j], name: tc.name})
			wi++
		}
		for ; wi < len(w.fields); wi++ {
			op.steps = append(op.steps, avroStep{kind: stepSkip, skip: w.fields[wi].typ, name: w.fields[wi].name})
		}
		return nil
	}
	ro := &avroReorder{offs: make([]int, len(w.fields))}
	ro.wfields = w.fields
	for j, tc := range t.children {
		if match[j] < 0 {
			ro.fields = append(ro.fields, avroStep{kind: stepNull, name: tc.name})
		} else {
			ro.fields = append(ro.fields, avroStep{kind: stepDecode, op: ops[j], name: tc.name, col: match[j]})
		}
	}
	op.reorder = ro
	return nil
}

// ArrowSchema is the schema of the RecordBuilders Append accepts: the table's, as
// NewJSONDecoder makes it.
func (d *AvroDecoder) ArrowSchema() *arrow.Schema { return d.out.schema }

// Rows returns the JSONDecoder whose row Parse fills (see NewAvroDecoderInto).
func (d *AvroDecoder) Rows() *JSONDecoder { return d.out }

// Parse validates and converts one Avro binary record (without the schema registry header)
// into the decoder's scratch row. It appends nothing anywhere. On error it returns a
// *DecodeError naming the field, and the last good row stays as it was.
func (d *AvroDecoder) Parse(payload []byte, meta RecordMeta) error {
	out := d.out
	w := 0
	if out.last == 0 {
		w = 1
	}
	s := &out.slots[w]
	s.tape = s.tape[:0]
	// The row's strings and bytes point into the slot's own copy of the payload, which stays
	// valid (and unchanged) while the row is the last good one.
	s.arena = append(s.arena[:0], payload...)
	r := avroReader{b: s.arena[:len(payload):len(payload)]}
	d.budget = maxEmptyItems
	for i := range d.top {
		st := &d.top[i]
		var err error
		if st.kind == stepSkip {
			err = d.skip(&r, st.skip, 0)
		} else {
			s.tapeAt[st.col] = len(s.tape)
			err = d.value(s, &r, st.op, &s.cells[st.col])
		}
		if err != nil {
			return withParent(err, st.name)
		}
	}
	if rest := len(r.b) - r.p; rest > 0 {
		return &DecodeError{Reason: strconv.Itoa(rest) + " bytes left over after the record: the payload does not match its writer schema"}
	}
	for _, j := range d.nullCols {
		s.cells[j] = Cell{Null: true}
		s.tapeAt[j] = len(s.tape)
	}
	for _, j := range d.metaCols {
		s.tapeAt[j] = len(s.tape)
		n := out.root.children[j]
		if err := out.metaCell(s, n, &s.cells[j], &meta); err != nil {
			return withParent(err, n.name)
		}
	}
	out.last = w
	return nil
}

// Cell returns top-level column i (table field order) of the last successfully parsed row.
func (d *AvroDecoder) Cell(i int) Cell {
	if d.out.last < 0 {
		panic("ingest: AvroDecoder.Cell called before a successful Parse")
	}
	return d.out.slots[d.out.last].cells[i]
}

// Append appends the last successfully parsed row to b (whose schema is ArrowSchema()). It
// cannot fail and appends exactly one value to every column builder.
func (d *AvroDecoder) Append(b *array.RecordBuilder) {
	out := d.out
	if out.last < 0 {
		panic("ingest: AvroDecoder.Append called before a successful Parse")
	}
	nbs := out.buildersFor(b)
	s := &out.slots[out.last]
	// Top-level columns were decoded in the writer's order: each one's nested values start at
	// its tapeAt.
	for i, n := range out.root.children {
		out.tapePos = s.tapeAt[i]
		out.appendValue(s, n, nbs, &s.cells[i])
	}
}

// --- decoding ---

type avroReader struct {
	b []byte
	p int
}

func errTruncated() error { return fieldErr("the record ends inside this value (truncated payload)") }

// long reads a zig-zag varint of at most 64 bits.
func (r *avroReader) long() (int64, error) {
	b, p := r.b, r.p
	if p < len(b) && b[p] < 0x80 {
		r.p = p + 1
		u := uint64(b[p])
		return int64(u>>1) ^ -int64(u&1), nil
	}
	var u uint64
	for shift := uint(0); ; shift += 7 {
		if p >= len(b) {
			return 0, errTruncated()
		}
		c := b[p]
		p++
		if shift == 63 && c > 1 {
			return 0, fieldErr("malformed long: the varint has more than 64 bits")
		}
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			r.p = p
			return int64(u>>1) ^ -int64(u&1), nil
		}
	}
}

// int reads a zig-zag varint of at most 32 bits.
func (r *avroReader) int() (int64, error) {
	b, p := r.b, r.p
	if p < len(b) && b[p] < 0x80 {
		r.p = p + 1
		u := uint32(b[p])
		return int64(int32(u>>1) ^ -int32(u&1)), nil
	}
	var u uint32
	for shift := uint(0); ; shift += 7 {
		if p >= len(b) {
			return 0, errTruncated()
		}
		c := b[p]
		p++
		if shift == 28 && c > 0x0f {
			return 0, fieldErr("malformed int: the varint has more than 32 bits")
		}
		u |= uint32(c&0x7f) << shift
		if c < 0x80 {
			r.p = p
			return int64(int32(u>>1) ^ -int32(u&1)), nil
		}
	}
}

func (r *avroReader) next(n int) ([]byte, error) {
	if n > len(r.b)-r.p {
		return nil, errTruncated()
	}
	b := r.b[r.p : r.p+n : r.p+n]
	r.p += n
	return b, nil
}

// bytes reads a length-prefixed bytes or string value.
func (r *avroReader) bytes() ([]byte, error) {
	n, err := r.long()
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, fieldErr("negative length " + strconv.FormatInt(n, 10))
	}
	if n > int64(len(r.b)-r.p) {
		return nil, fieldErr("length " + strconv.FormatInt(n, 10) + " runs past the end of the record (truncated payload)")
	}
	b := r.b[r.p : r.p+int(n) : r.p+int(n)]
	r.p += int(n)
	return b, nil
}

// blockCount reads the item count of the next array or map block (0 at the end). A negative
// count is followed by the block's size in bytes, returned in size (-1 when absent).
func (d *AvroDecoder) blockCount(r *avroReader, elemMin int) (count int64, size int64, err error) {
	if count, err = r.long(); err != nil || count == 0 {
		return 0, -1, err
	}
	size = -1
	if count < 0 {
		if count == math.MinInt64 {
			return 0, 0, fieldErr("malformed block count")
		}
		count = -count
		if size, err = r.long(); err != nil {
			return 0, 0, err
		}
		if size < 0 || size > int64(len(r.b)-r.p) {
			return 0, 0, fieldErr("block size " + strconv.FormatInt(size, 10) + " is negative or runs past the end of the record")
		}
	}
	if elemMin > 0 {
		if count > int64((len(r.b)-r.p)/elemMin) {
			return 0, 0, fieldErr("a block of " + strconv.FormatInt(count, 10) + " items runs past the end of the record (truncated payload)")
		}
	} else if d.budget -= int(min(count, maxEmptyItems+1)); d.budget < 0 {
		return 0, 0, fieldErr("more than " + strconv.Itoa(maxEmptyItems) + " empty items in arrays and maps")
	}
	return count, size, nil
}

func checkBlockSize(r *avroReader, start int, size int64) error {
	if size >= 0 && int64(r.p-start) != size {
		return fieldErr(fmt.Sprintf("block size %d does not match its items' %d bytes", size, r.p-start))
	}
	return nil
}

// nested decodes a value below the top level onto the tape: its cell, then its contents.
func (d *AvroDecoder) nested(s *parseSlot, r *avroReader, op *avroOp) error {
	if op.conv >= acRecord {
		i := len(s.tape)
		s.tape = append(s.tape, Cell{})
		var head Cell
		err := d.value(s, r, op, &head)
		s.tape[i] = head
		return err
	}
	s.tape = append(s.tape, Cell{})
	return d.value(s, r, op, &s.tape[len(s.tape)-1])
}

// value decodes one value of op into c; the contents of records, arrays and maps go onto the
// tape.
func (d *AvroDecoder) value(s *parseSlot, r *avroReader, op *avroOp, c *Cell) error {
	if op.union {
		idx, err := r.long()
		if err != nil {
			return err
		}
		if uint64(idx) >= uint64(op.nbranch) {
			return fieldErr(fmt.Sprintf("union branch %d does not exist: the writer's union has %d", idx, op.nbranch))
		}
		if idx == op.nullIdx {
			if op.required {
				return fieldErr(op.nullReason)
			}
			*c = Cell{Null: true}
			return nil
		}
	}
	*c = Cell{}
	var err error
	switch op.conv {
	case acNull:
		c.Null = true
	case acBool:
		var b []byte
		if b, err = r.next(1); err == nil {
			if b[0] > 1 {
				return fieldErr(fmt.Sprintf("boolean byte is 0x%02x, not 0 or 1", b[0]))
			}
			c.Int = int64(b[0])
		}
	case acInt:
		c.Int, err = r.int()
	case acLong:
		c.Int, err = r.long()
	case acTimeMillis:
		var v int64
		if v, err = r.int(); err == nil {
			if v < 0 || v >= 86400e3 {
				return fieldErr(strconv.FormatInt(v, 10) + " milliseconds is not a time of day")
			}
			c.Int = v * 1000
		}
	case acTimeMicros:
		if c.Int, err = r.long(); err == nil && (c.Int < 0 || c.Int >= 86400e6) {
			return fieldErr(strconv.FormatInt(c.Int, 10) + " microseconds is not a time of day")
		}
	case acTsMillis:
		var v int64
		if v, err = r.long(); err == nil {
			var ok bool
			if c.Int, ok = mulAdd(v, 1000, 0); !ok {
				return fieldErr(strconv.FormatInt(v, 10) + " milliseconds are out of range for " + op.typeName)
			}
		}
	case acFloat:
		var b []byte
		if b, err = r.next(4); err == nil {
			c.Float = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		}
	case acDouble:
		var b []byte
		if b, err = r.next(8); err == nil {
			c.Float = math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
	case acString:
		if c.Bytes, err = r.bytes(); err == nil && !utf8.Valid(c.Bytes) {
			return fieldErr("string is not valid UTF-8")
		}
	case acBinary:
		c.Bytes, err = r.bytes()
	case acFixed:
		c.Bytes, err = r.next(op.size)
	case acUUIDString:
		var b []byte
		if b, err = r.bytes(); err == nil {
			start := len(s.arena)
			s.arena = slices.Grow(s.arena, 16)[:start+16]
			if !parseUUID(s.arena[start:start+16], b) {
				s.arena = s.arena[:start]
				return fieldErr(`expected a UUID as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", got ` + strconv.Quote(shorten(string(b))))
			}
			c.Bytes = s.arena[start : start+16 : start+16]
		}
	case acEnum:
		var i int64
		if i, err = r.int(); err == nil {
			if i < 0 || i >= int64(len(op.symbols)) {
				return fieldErr(fmt.Sprintf("enum index %d does not exist: the writer's enum has %d symbols", i, len(op.symbols)))
			}
			c.Bytes = op.symbols[i]
		}
	case acDecBytes, acDecFixed:
		var b []byte
		if op.conv == acDecBytes {
			b, err = r.bytes()
		} else {
			b, err = r.next(op.size)
		}
		if err != nil {
			return err
		}
		if len(b) == 0 {
			return fieldErr("decimal has no bytes")
		}
		num, ok := decimalFromTwos(b)
		if !ok || !num.FitsInPrecision(op.precision) {
			return fieldErr("decimal value does not fit " + op.typeName)
		}
		c.Dec = num
	case acRecord:
		return d.record(s, r, op)
	case acArray:
		return d.array(s, r, op, c)
	case acMap:
		return d.mapValue(s, r, op, c)
	}
	return err
}

func (d *AvroDecoder) record(s *parseSlot, r *avroReader, op *avroOp) error {
	if ro := op.reorder; ro != nil {
		for i, f := range ro.wfields {
			ro.offs[i] = r.p
			if err := d.skip(r, f.typ, 0); err != nil {
				return withParent(err, f.name)
			}
		}
		end := r.p
		for i := range ro.fields {
			st := &ro.fields[i]
			if st.kind == stepNull {
				s.tape = append(s.tape, Cell{Null: true})
				continue
			}
			r.p = ro.offs[st.col]
			if err := d.nested(s, r, st.op); err != nil {
				return withParent(err, st.name)
			}
		}
		r.p = end
		return nil
	}
	for i := range op.steps {
		st := &op.steps[i]
		var err error
		switch st.kind {
		case stepDecode:
			err = d.nested(s, r, st.op)
		case stepSkip:
			err = d.skip(r, st.skip, 0)
		case stepNull:
			s.tape = append(s.tape, Cell{Null: true})
		}
		if err != nil {
			return withParent(err, st.name)
		}
	}
	return nil
}

func (d *AvroDecoder) array(s *parseSlot, r *avroReader, op *avroOp, head *Cell) error {
	var total int
	for {
		count, size, err := d.blockCount(r, op.elemMin)
		if err != nil {
			return err
		}
		if count == 0 {
			break
		}
		start := r.p
		for k := int64(0); k < count; k++ {
			if err := d.nested(s, r, op.elem); err != nil {
				return withIndex(err, total)
			}
			total++
		}
		if err := checkBlockSize(r, start, size); err != nil {
			return err
		}
	}
	head.Int = int64(total)
	return nil
}

func (d *AvroDecoder) mapValue(s *parseSlot, r *avroReader, op *avroOp, head *Cell) error {
	op.keys = op.keys[:0]
	for {
		count, size, err := d.blockCount(r, op.elemMin)
		if err != nil {
			return err
		}
		if count == 0 {
			break
		}
		start := r.p
		for k := int64(0); k < count; k++ {
			key, err := r.bytes()
			if err != nil {
				return err
			}
			if !utf8.Valid(key) {
				return fieldErr("map key " + strconv.Quote(string(key)) + " is not valid UTF-8")
			}
			op.keys = append(op.keys, key)
			s.tape = append(s.tape, Cell{Bytes: key})
			if err := d.nested(s, r, op.elem); err != nil {
				return withParent(err, string(key))
			}
		}
		if err := checkBlockSize(r, start, size); err != nil {
			return err
		}
	}
	if dup := duplicateBytes(op.keys, &op.order); dup != nil {
		return fieldErr("duplicate key " + strconv.Quote(string(dup)))
	}
	head.Int = int64(len(op.keys))
	return nil
}

// duplicateBytes returns a value that occurs twice in keys, or nil.
func duplicateBytes(keys [][]byte, order *[]int) []byte {
	if len(keys) <= 16 {
		for i := 1; i < len(keys); i++ {
			for j := 0; j < i; j++ {
				if string(keys[i]) == string(keys[j]) {
					return keys[i]
				}
			}
		}
		return nil
	}
	o := (*order)[:0]
	for i := range keys {
		o = append(o, i)
	}
	*order = o
	slices.SortFunc(o, func(a, b int) int { return bytes.Compare(keys[a], keys[b]) })
	for i := 1; i < len(o); i++ {
		if string(keys[o[i]]) == string(keys[o[i-1]]) {
			return keys[o[i]]
		}
	}
	return nil
}

// skip parses a value of writer type n and discards it. It checks what it must read to find
// the value's end (lengths, union branches, enum indexes, booleans), not the contents.
func (d *AvroDecoder) skip(r *avroReader, n *avroNode, depth int) error {
	if depth > maxSkipDepth {
		return fieldErr("values nested more than " + strconv.Itoa(maxSkipDepth) + " deep")
	}
	var err error
	switch n.kind {
	case akNull:
	case akBoolean:
		var b []byte
		if b, err = r.next(1); err == nil && b[0] > 1 {
			return fieldErr(fmt.Sprintf("boolean byte is 0x%02x, not 0 or 1", b[0]))
		}
	case akInt:
		_, err = r.int()
	case akLong:
		_, err = r.long()
	case akFloat:
		_, err = r.next(4)
	case akDouble:
		_, err = r.next(8)
	case akBytes, akString:
		_, err = r.bytes()
	case akFixed:
		_, err = r.next(n.size)
	case akEnum:
		var i int64
		if i, err = r.int(); err == nil && (i < 0 || i >= int64(len(n.symbols))) {
			return fieldErr(fmt.Sprintf("enum index %d does not exist: the writer's enum has %d symbols", i, len(n.symbols)))
		}
	case akUnion:
		var i int64
		if i, err = r.long(); err != nil {
			return err
		}
		if uint64(i) >= uint64(len(n.branches)) {
			return fieldErr(fmt.Sprintf("union branch %d does not exist: the writer's union has %d", i, len(n.branches)))
		}
		return d.skip(r, n.branches[i], depth+1)
	case akRecord:
		for _, f := range n.fields {
			if err := d.skip(r, f.typ, depth+1); err != nil {
				return withParent(err, f.name)
			}
		}
	case akArray, akMap:
		elem, elemMin := n.items, 0
		if n.kind == akMap {
			elem = n.values
			elemMin = 1 + elem.minSize
		} else {
			elemMin = elem.minSize
		}
		total := 0
		for {
			count, size, err := d.blockCount(r, elemMin)
			if err != nil {
				return err
			}
			if count == 0 {
				break
			}
			// A block that says how long it is could be jumped over; its items are parsed
			// all the same, so that a record is refused whatever the table reads of it.
			start := r.p
			for k := int64(0); k < count; k++ {
				if n.kind == akMap {
					if _, err := r.bytes(); err != nil {
						return err
					}
				}
				if err := d.skip(r, elem, depth+1); err != nil {
					return withIndex(err, total)
				}
				total++
			}
			if err := checkBlockSize(r, start, size); err != nil {
				return err
			}
		}
	}
	return err
}
