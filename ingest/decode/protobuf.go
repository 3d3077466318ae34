package decode

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
)

// ProtoDecoder converts protobuf records (the binary after Confluent's
// message-index list) of one message type into rows of a table's schema. It
// has the JSONDecoder's two phases and rules (see the package doc); the
// protobuf specifics:
//
//   - Columns are matched to fields by name (the .proto name). A column the
//     message lacks is null (NewProtoDecoder refuses a required one); a field
//     the table lacks is skipped. The only conversions are exact ones: int
//     (int32, sint32, sfixed32) into int or long, uint32 and fixed32 into long,
//     uint64 and fixed64 into decimal(P, 0) with P >= 20, float into float or
//     double, Timestamp into timestamptz or timestamptz_ns; see protobuf_schema.go
//     for the rest of the mapping. Anything else is a NewProtoDecoder error
//     naming the field.
//   - Protobuf semantics: for a singular field the last value on the wire
//     wins, and a message field given several times is the merge of its
//     parts; repeated scalars are accepted packed and unpacked; the last member
//     of a oneof given wins and the others are null; map entries with the same
//     key: the last wins; unknown fields are skipped.
//   - A field with explicit presence (proto3 optional, oneof members, proto2
//     optional, messages and so the wrappers) is null when absent. A proto3
//     field without presence that is absent is its zero value (0, false, "",
//     empty bytes, the enum's zero value), as protobuf defines it, never null.
//   - Refused with a *DecodeError naming the field: truncated or malformed
//     wire data; a value of a field the table has, with a wire type that does
//     not fit the field (protobuf would keep it as an unknown field: here
//     that would silently drop it); invalid UTF-8 in a string (proto2 files
//     too: the column is a string); a Timestamp or Duration outside its
//     defined range; a missing proto2 required field.
//
// The record bytes are copied into the decoder's scratch space, so the
// caller may reuse its buffer after Parse. Like the JSONDecoder, it is used by
// one goroutine, and Parse and Append of flat messages allocate nothing in
// the steady state. Struct, Value and ListValue fields are the exception: they
// are converted to JSON text through protojson, which allocates.
type ProtoDecoder struct {
	schema *arrow.Schema
	root   *protoNode
	nnodes int

	slots [2]protoSlot
	last  int // slot of the last successfully parsed row, -1 before the first

	meta RecordMeta // of the record being parsed
	one  [1][]byte  // a one-span list for list elements that are not messages
	rd   []int      // Append's read cursor into each node's queue

	builders []*builderSet

	// rows, when set, gets every good row too, in the JSONDecoder's layout
	// (see NewProtoDecoderInto).
	rows *JSONDecoder

	// google.protobuf.Struct/Value/ListValue conversion scratch.
	jsonIn  []byte
	jsonOut []byte
	compact bytes.Buffer
	jsMsgs  [3]proto.Message
}

// protoSlot is everything a parsed row points into (two of them, so that a
// failed Parse leaves the last good row intact).
type protoSlot struct {
	buf   []byte   // the record, copied
	arena []byte   // bytes made while decoding: metadata, enum numbers, JSON text
	q     [][]Cell // per node: its values in depth-first order, consumed in that order by Append
}

type protoConv uint8

const (
	pcAbsent protoConv = iota // the message has no such field: always null
	pcMeta                    // a Kafka metadata column
	pcBool
	pcInt32
	pcSint32
	pcSfixed32
	pcUint32
	pcFixed32
	pcInt64
	pcSint64
	pcSfixed64
	pcUint64
	pcFixed64
	pcFloat
	pcDouble
	pcEnum
	pcString
	pcBytes
	pcMessage   // a struct column
	pcTimestamp // google.protobuf.Timestamp
	pcDuration  // google.protobuf.Duration, as nanoseconds
	pcWrapper   // google.protobuf.*Value: sub is the wrapped value's conversion
	pcJSON      // google.protobuf.Struct, Value, ListValue as JSON text
	pcList
	pcMap
)

// spanned reports whether a field's values are messages collected on the
// wire and converted when their parent message is complete (so that repeated
// occurrences merge).
func (c protoConv) spanned() bool { return c >= pcMessage && c <= pcJSON }

const (
	jsonStruct = iota
	jsonValue
	jsonList
)

// protoNode is one compiled column (or list element, map key or value),
// numbered depth-first like the JSONDecoder's nodes.
type protoNode struct {
	kind     jsonKind // the column's Iceberg kind, as the Arrow builders see it
	conv     protoConv
	name     string
	required bool
	id       int
	typeName string
	meta     metaColumn

	presence bool           // absent on the wire is null, not the zero value
	wt       protowire.Type // wire type of one value
	packable bool           // repeated values of this element may come packed
	sub      protoConv      // wrappers: the wrapped value
	subWT    protowire.Type
	jsonType int // pcJSON: jsonStruct, jsonValue or jsonList
	enum     *protoEnum
	zero     Cell // the value of an absent field without presence

	children []*protoNode // struct fields; [element] for a list; [key, value] for a map
	prog     *protoProgram
	mp       *protoMapScratch
}

// protoEnum maps enum numbers to names.
type protoEnum struct {
	dense  [][]byte // by number, for 0 <= number < len(dense)
	sparse map[int32][]byte
}

func newProtoEnum(ed protoreflect.EnumDescriptor) *protoEnum {
	e := &protoEnum{sparse: map[int32][]byte{}}
	vals := ed.Values()
	for i := range vals.Len() {
		num := int32(vals.Get(i).Number())
		name := []byte(vals.ByNumber(vals.Get(i).Number()).Name()) // the first name of an alias
		if num >= 0 && num < 1024 {
			if int(num) >= len(e.dense) {
				e.dense = slices.Grow(e.dense, int(num)+1-len(e.dense))[:num+1]
			}
			e.dense[num] = name
		} else {
			e.sparse[num] = name
		}
	}
	return e
}

// name returns v's name, or nil if the enum has no such value.
func (e *protoEnum) name(v int32) []byte {
	if uint32(v) < uint32(len(e.dense)) {
		return e.dense[v]
	}
	return e.sparse[v]
}

// protoProgram is a struct node's field program: field number to step, plus
// the scratch of the one message instance being decoded. A node never contains
// itself, so its scratch is never needed twice at once.
type protoProgram struct {
	dense  []int32 // by field number: step index, -1 for an unknown field
	sparse map[protowire.Number]int32
	steps  []protoStep
	// required lists the names of the proto2 required fields, indexed by step.req.
	required []string
	noneofs  int

	cur      []int      // per child: index of this instance's value in the child's queue
	seen     []bool     // per child: given on the wire
	spans    [][][]byte // per child: the occurrences of a message-valued field or a map's entries
	oneofCur []int32    // per oneof: the step of the member given last, -1
	reqSeen  []bool
	one      [1][]byte
}

type protoStep struct {
	child int32 // index in the node's children; -1 when the table lacks the field
	oneof int32 // -1 unless a member of a (real) oneof
	req   int32 // -1 unless a proto2 required field
}

func (p *protoProgram) lookup(num protowire.Number) int {
	if uint64(num) < uint64(len(p.dense)) {
		return int(p.dense[num])
	}
	if i, ok := p.sparse[num]; ok {
		return int(i)
	}
	return -1
}

// protoMapScratch is a map node's scratch: the entries of the instance being decoded.
type protoMapScratch struct {
	entries []protoEntry
	vspans  [][]byte
	order   []int
}

type protoEntry struct {
	key, val Cell
	vs, ve   int // message values: their occurrences in vspans
	dead     bool
}

// NewProtoDecoder compiles a decoder from message md to the table's schema,
// matching columns by name. The Arrow schema it appends to is
// table.SchemaToArrowSchema(schema, nil, true, false), as for NewJSONDecoder.
func NewProtoDecoder(schema *iceberg.Schema, md protoreflect.MessageDescriptor) (*ProtoDecoder, error) {
	return NewProtoDecoderInto(schema, nil, md)
}

// NewProtoDecoderInto is NewProtoDecoder also filling rows, a JSONDecoder
// of the same table schema (nil: none), with every row Parse accepts:
// whatever reads rows (a transform, a Projector) then reads a protobuf
// record as it reads a JSON or Avro one, and decoders of several messages
// of one table can share one rows. The row in rows points into the
// decoder's own scratch, which stays as it is until the decoder's next
// successful Parse, so rows' last row is valid as long as the Cells of a
// JSONDecoder's are. Decoders sharing rows are used by one goroutine.
func NewProtoDecoderInto(schema *iceberg.Schema, rows *JSONDecoder, md protoreflect.MessageDescriptor) (*ProtoDecoder, error) {
	if schema == nil {
		return nil, errors.New("ingest: nil schema")
	}
	if md == nil {
		return nil, errors.New("ingest: nil protobuf message descriptor")
	}
	d := &ProtoDecoder{last: -1}
	root := &protoNode{kind: jkStruct, conv: pcMessage, required: true, typeName: "struct", id: -1}
	if err := d.compileMessage(root, schema.Fields(), md, "", true); err != nil {
		return nil, err
	}
	d.root = root
	as, err := table.SchemaToArrowSchema(schema, nil, true, false)
	if err != nil {
		return nil, fmt.Errorf("ingest: converting schema to Arrow: %w", err)
	}
	d.schema = as
	for i := range d.slots {
		d.slots[i].q = make([][]Cell, d.nnodes)
	}
	d.rd = make([]int, d.nnodes)
	if rows != nil {
		if len(rows.root.children) != len(d.root.children) {
			return nil, fmt.Errorf("ingest: the shared row has %d columns, the table %d", len(rows.root.children), len(d.root.children))
		}
		d.rows = rows
	}
	return d, nil
}

// Rows returns the JSONDecoder Parse fills (see NewProtoDecoderInto), or
// nil.
func (d *ProtoDecoder) Rows() *JSONDecoder { return d.rows }

func (d *ProtoDecoder) newNode(name string, t iceberg.Type, required bool) *protoNode {
	n := &protoNode{name: name, required: required, id: d.nnodes, typeName: t.String()}
	d.nnodes++
	return n
}

func protoJoinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// compileMessage compiles n's children (the table's fields) and n's program (md's fields).
func (d *ProtoDecoder) compileMessage(n *protoNode, fields []iceberg.NestedField, md protoreflect.MessageDescriptor, prefix string, top bool) error {
	byName := map[string]int32{}
	for _, f := range fields {
		path := protoJoinPath(prefix, f.Name)
		c := d.newNode(f.Name, f.Type, f.Required)
		n.children = append(n.children, c)
		if mc, ok := kafkaMetaColumns[f.Name]; top && ok {
			if !f.Type.Equals(mc.typ) {
				return fmt.Errorf("ingest: column %q is filled from Kafka metadata and must have type %s, not %s",
					f.Name, mc.typ, f.Type)
			}
			c.meta, c.conv = mc.col, pcMeta
			c.kind = map[metaColumn]jsonKind{metaTopic: jkString, metaPartition: jkInt32, metaOffset: jkInt64,
				metaTimestamp: jkTimestamp, metaKey: jkBinary}[mc.col]
			continue
		}
		fd := md.Fields().ByName(protoreflect.Name(f.Name))
		if fd == nil {
			if f.Required {
				return fmt.Errorf("ingest: column %q is required, but protobuf message %s has no field %q",
					path, md.FullName(), f.Name)
			}
			c.conv = pcAbsent
			continue
		}
		byName[f.Name] = int32(len(n.children) - 1)
		if err := d.compileField(c, f.Type, fd, path); err != nil {
			return err
		}
	}

	p := &protoProgram{}
	oneofs := map[int]int32{}
	maxNum := protowire.Number(0)
	for i := range md.Fields().Len() {
		fd := md.Fields().Get(i)
		st := protoStep{child: -1, oneof: -1, req: -1}
		if ci, ok := byName[string(fd.Name())]; ok {
			st.child = ci
		}
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			g, ok := oneofs[od.Index()]
			if !ok {
				g = int32(len(oneofs))
				oneofs[od.Index()] = g
			}
			st.oneof = g
		}
		if fd.Cardinality() == protoreflect.Required {
			st.req = int32(len(p.required))
			p.required = append(p.required, string(fd.Name()))
		}
		p.steps = append(p.steps, st)
		maxNum = max(maxNum, fd.Number())
	}
	const maxDense = 1024
	p.dense = make([]int32, min(int(maxNum), maxDense)+1)
	for i := range p.dense {
		p.dense[i] = -1
	}
	for i := range md.Fields().Len() {
		num := md.Fields().Get(i).Number()
		if int(num) < len(p.dense) {
			p.dense[num] = int32(i)
		} else {
			if p.sparse == nil {
				p.sparse = map[protowire.Number]int32{}
			}
			p.sparse[num] = int32(i)
		}
	}
	p.noneofs = len(oneofs)
	nc := len(n.children)
	p.cur, p.seen, p.spans = make([]int, nc), make([]bool, nc), make([][][]byte, nc)
	p.oneofCur = make([]int32, p.noneofs)
	p.reqSeen = make([]bool, len(p.required))
	n.prog = p
	return nil
}

// compileField compiles field fd into column node c of type t.
func (d *ProtoDecoder) compileField(c *protoNode, t iceberg.Type, fd protoreflect.FieldDescriptor, path string) error {
	c.presence = fd.HasPresence()
	switch {
	case fd.IsMap():
		mt, ok := t.(*iceberg.MapType)
		if !ok {
			return fmt.Errorf("ingest: field %q is a protobuf map, which needs a map column, not %s", path, t)
		}
		c.kind, c.conv, c.wt = jkMap, pcMap, protowire.BytesType
		k := d.newNode("key", mt.KeyType, true)
		v := d.newNode("value", mt.ValueType, mt.ValueRequired)
		c.children = []*protoNode{k, v}
		c.mp = &protoMapScratch{}
		if err := d.compileValue(k, mt.KeyType, fd.MapKey(), path+".key"); err != nil {
			return err
		}
		return d.compileValue(v, mt.ValueType, fd.MapValue(), path+".value")
	case fd.IsList():
		lt, ok := t.(*iceberg.ListType)
		if !ok {
			return fmt.Errorf("ingest: field %q is a repeated protobuf field, which needs a list column, not %s", path, t)
		}
		c.kind, c.conv = jkList, pcList
		e := d.newNode("element", lt.Element, lt.ElementRequired)
		c.children = []*protoNode{e}
		return d.compileValue(e, lt.Element, fd, path+"[]")
	}
	return d.compileValue(c, t, fd, path)
}

// compileValue compiles one value of fd (whatever its cardinality) into n, of type t.
func (d *ProtoDecoder) compileValue(n *protoNode, t iceberg.Type, fd protoreflect.FieldDescriptor, path string) error {
	k := fd.Kind()
	if k != protoreflect.MessageKind && k != protoreflect.GroupKind {
		return compileScalar(n, t, fd, path)
	}
	n.wt = protowire.BytesType
	if k == protoreflect.GroupKind {
		n.wt = protowire.StartGroupType
	}
	md := fd.Message()
	if st, ok := t.(*iceberg.StructType); ok {
		n.kind, n.conv = jkStruct, pcMessage
		return d.compileMessage(n, st.FieldList, md, path, false)
	}
	mismatch := func() error {
		return fmt.Errorf("ingest: field %q is protobuf %s, which cannot be stored in a column of type %s",
			path, md.FullName(), t)
	}
	switch wktOf(md) {
	case wktTimestamp:
		switch t.(type) {
		case iceberg.TimestampTzType:
			n.kind = jkTimestamp
		case iceberg.TimestampTzNsType:
			n.kind = jkTimestampNs
		default:
			return mismatch()
		}
		n.conv = pcTimestamp
	case wktDuration:
		if _, ok := t.(iceberg.Int64Type); !ok {
			return mismatch()
		}
		n.kind, n.conv = jkInt64, pcDuration
	case wktWrapper:
		if err := compileScalar(n, t, md.Fields().ByNumber(1), path); err != nil {
			return err
		}
		n.sub, n.subWT = n.conv, n.wt
		n.conv, n.wt, n.packable = pcWrapper, protowire.BytesType, false
		if k == protoreflect.GroupKind {
			n.wt = protowire.StartGroupType
		}
	case wktJSON:
		if _, ok := t.(iceberg.StringType); !ok {
			return mismatch()
		}
		n.kind, n.conv = jkString, pcJSON
		switch md.FullName() {
		case "google.protobuf.Struct":
			n.jsonType = jsonStruct
		case "google.protobuf.Value":
			n.jsonType = jsonValue
		default:
			n.jsonType = jsonList
		}
	default:
		return fmt.Errorf("ingest: field %q is protobuf message %s, which needs a struct column, not %s",
			path, md.FullName(), t)
	}
	return nil
}

// protoKindName names fd's type as a .proto file spells it.
func protoKindName(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.EnumKind:
		return "enum " + string(fd.Enum().FullName())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return string(fd.Message().FullName())
	}
	return fd.Kind().String()
}

// compileScalar compiles a non-message value of fd into n, checking that column type t takes it exactly.
func compileScalar(n *protoNode, t iceberg.Type, fd protoreflect.FieldDescriptor, path string) error {
	ok := false
	n.packable = true
	n.wt = protowire.VarintType
	switch fd.Kind() {
	case protoreflect.BoolKind:
		n.conv = pcBool
		_, ok = t.(iceberg.BooleanType)
		n.kind = jkBool
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n.conv = map[protoreflect.Kind]protoConv{protoreflect.Int32Kind: pcInt32, protoreflect.Sint32Kind: pcSint32,
			protoreflect.Sfixed32Kind: pcSfixed32}[fd.Kind()]
		switch t.(type) {
		case iceberg.Int32Type:
			n.kind, ok = jkInt32, true
		case iceberg.Int64Type:
			n.kind, ok = jkInt64, true
		}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n.conv = map[protoreflect.Kind]protoConv{protoreflect.Uint32Kind: pcUint32, protoreflect.Fixed32Kind: pcFixed32,
			protoreflect.Int64Kind: pcInt64, protoreflect.Sint64Kind: pcSint64, protoreflect.Sfixed64Kind: pcSfixed64}[fd.Kind()]
		_, ok = t.(iceberg.Int64Type)
		n.kind = jkInt64
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n.conv = pcUint64
		if fd.Kind() == protoreflect.Fixed64Kind {
			n.conv = pcFixed64
		}
		dt, isDec := t.(iceberg.DecimalType)
		ok = isDec && dt.Scale() == 0 && dt.Precision() >= 20
		n.kind = jkDecimal
	case protoreflect.FloatKind:
		n.conv = pcFloat
		switch t.(type) {
		case iceberg.Float32Type:
			n.kind, ok = jkFloat32, true
		case iceberg.Float64Type:
			n.kind, ok = jkFloat64, true
		}
	case protoreflect.DoubleKind:
		n.conv = pcDouble
		_, ok = t.(iceberg.Float64Type)
		n.kind = jkFloat64
	case protoreflect.StringKind:
		n.conv, n.packable, n.wt = pcString, false, protowire.BytesType
		_, ok = t.(iceberg.StringType)
		n.kind = jkString
	case protoreflect.BytesKind:
		n.conv, n.packable, n.wt = pcBytes, false, protowire.BytesType
		_, ok = t.(iceberg.BinaryType)
		n.kind = jkBinary
	case protoreflect.EnumKind:
		n.conv = pcEnum
		_, ok = t.(iceberg.StringType)
		n.kind = jkString
		n.enum = newProtoEnum(fd.Enum())
		n.zero.Bytes = n.enum.name(0)
		if n.zero.Bytes == nil {
			n.zero.Bytes = []byte("0")
		}
	}
	switch n.conv {
	case pcSfixed32, pcFixed32, pcFloat:
		n.wt = protowire.Fixed32Type
	case pcSfixed64, pcFixed64, pcDouble:
		n.wt = protowire.Fixed64Type
	}
	if !ok {
		return fmt.Errorf("ingest: field %q is protobuf %s, which cannot be stored in a column of type %s",
			path, protoKindName(fd), t)
	}
	return nil
}

// ArrowSchema is the schema of the RecordBuilders Append accepts.
func (d *ProtoDecoder) ArrowSchema() *arrow.Schema { return d.schema }

// Parse validates and converts one record (the protobuf binary after the
// message-index list) into the decoder's scratch row. It appends nothing
// anywhere. On error it returns a *DecodeError.
func (d *ProtoDecoder) Parse(payload []byte, meta RecordMeta) error {
	w := 0
	if d.last == 0 {
		w = 1
	}
	s := &d.slots[w]
	s.buf = append(s.buf[:0], payload...)
	s.arena = s.arena[:0]
	for i := range s.q {
		s.q[i] = s.q[i][:0]
	}
	d.meta = meta
	p := d.root.prog
	p.one[0] = s.buf
	err := d.message(s, d.root, p.one[:1])
	d.meta = RecordMeta{}
	if err != nil {
		return err
	}
	d.last = w
	if d.rows != nil {
		d.fillRows()
	}
	return nil
}

// fillRows makes the last good row d.rows' last good row: the top-level
// columns' cells, and their nested values on the tape in the depth-first
// order Append reads them in (a struct's fields, a list's elements, a
// map's keys and values in turn; nothing under a null). The cells' bytes
// stay in d's slot.
func (d *ProtoDecoder) fillRows() {
	out := d.rows
	w := 0
	if out.last == 0 {
		w = 1
	}
	s := &out.slots[w]
	ps := &d.slots[d.last]
	s.tape = s.tape[:0]
	clear(d.rd)
	for i, n := range d.root.children {
		c := ps.q[n.id][d.rd[n.id]]
		d.rd[n.id]++
		s.cells[i] = c
		s.tapeAt[i] = len(s.tape)
		if !c.Null {
			s.tape = d.tapeChildren(ps, n, c, s.tape)
		}
	}
	out.last = w
}

func (d *ProtoDecoder) tapeChildren(ps *protoSlot, n *protoNode, c Cell, tape []Cell) []Cell {
	switch n.kind {
	case jkStruct:
		for _, ch := range n.children {
			tape = d.tapeNode(ps, ch, tape)
		}
	case jkList:
		for k := int64(0); k < c.Int; k++ {
			tape = d.tapeNode(ps, n.children[0], tape)
		}
	case jkMap:
		for k := int64(0); k < c.Int; k++ {
			tape = d.tapeNode(ps, n.children[0], tape)
			tape = d.tapeNode(ps, n.children[1], tape)
		}
	}
	return tape
}

func (d *ProtoDecoder) tapeNode(ps *protoSlot, n *protoNode, tape []Cell) []Cell {
	c := ps.q[n.id][d.rd[n.id]]
	d.rd[n.id]++
	tape = append(tape, c)
	if !c.Null {
		tape = d.tapeChildren(ps, n, c, tape)
	}
	return tape
}

// Cell returns top-level column i (schema field order) of the last successfully parsed row.
func (d *ProtoDecoder) Cell(i int) Cell {
	if d.last < 0 {
		panic("ingest: ProtoDecoder.Cell called before a successful Parse")
	}
	return d.slots[d.last].q[d.root.children[i].id][0]
}

// wireErr words protowire's negative error codes (its own texts vary on purpose).
func wireErr(m int) *DecodeError {
	reason := "invalid wire data"
	switch m {
	case -1:
		reason = "unexpected end of data (truncated record)"
	case -2:
		reason = "invalid field number"
	case -3:
		reason = "variable length integer overflow"
	case -4:
		reason = "reserved wire type"
	case -5:
		reason = "mismatched end of group"
	case -6:
		reason = "groups nested too deeply"
	}
	return fieldErr("malformed protobuf: " + reason)
}

func wireTypeName(wt protowire.Type) string {
	switch wt {
	case protowire.VarintType:
		return "varint"
	case protowire.Fixed32Type:
		return "32-bit"
	case protowire.Fixed64Type:
		return "64-bit"
	case protowire.BytesType:
		return "length-delimited"
	case protowire.StartGroupType:
		return "group"
	case protowire.EndGroupType:
		return "end-group"
	}
	return "reserved (" + strconv.Itoa(int(wt)) + ")"
}

func wireTypeErr(got, want protowire.Type) *DecodeError {
	return fieldErr("wrong protobuf wire type: " + wireTypeName(got) + ", expected " + wireTypeName(want))
}

// consumeTag is protowire.ConsumeTag, also refusing field numbers above
// protowire.MaxValidNumber as protobuf does.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, wt, m := protowire.ConsumeTag(b)
	if m >= 0 && num > protowire.MaxValidNumber {
		return 0, 0, -2 // protowire's code for an invalid field number
	}
	return num, wt, m
}

// consumeSpan reads a length-delimited value or a group's contents.
func consumeSpan(num protowire.Number, wt protowire.Type, b []byte) ([]byte, int) {
	if wt == protowire.StartGroupType {
		return protowire.ConsumeGroup(num, b)
	}
	return protowire.ConsumeBytes(b)
}

// message decodes one instance of struct node n, whose wire form is the
// concatenation of spans (several when a message field occurs more than
// once: protobuf merges them), pushing exactly one value to each child's queue.
func (d *ProtoDecoder) message(s *protoSlot, n *protoNode, spans [][]byte) error {
	p := n.prog
	for i, c := range n.children {
		q := &s.q[c.id]
		p.cur[i] = len(*q)
		*q = append(*q, Cell{})
		p.seen[i] = false
		p.spans[i] = p.spans[i][:0]
	}
	for g := range p.oneofCur {
		p.oneofCur[g] = -1
	}
	clear(p.reqSeen)
	for _, b := range spans {
		for len(b) > 0 {
			num, wt, m := consumeTag(b)
			if m < 0 {
				return wireErr(m)
			}
			b = b[m:]
			si := p.lookup(num)
			if si < 0 {
				if m = protowire.ConsumeFieldValue(num, wt, b); m < 0 {
					return wireErr(m)
				}
				b = b[m:]
				continue
			}
			st := &p.steps[si]
			if st.oneof >= 0 {
				if prev := p.oneofCur[st.oneof]; prev != int32(si) {
					if prev >= 0 {
						if ci := p.steps[prev].child; ci >= 0 {
							p.seen[ci] = false
							p.spans[ci] = p.spans[ci][:0]
						}
					}
					p.oneofCur[st.oneof] = int32(si)
				}
			}
			if st.req >= 0 {
				p.reqSeen[st.req] = true
			}
			if st.child < 0 {
				if m = protowire.ConsumeFieldValue(num, wt, b); m < 0 {
					return wireErr(m)
				}
				b = b[m:]
				continue
			}
			c := n.children[st.child]
			m, err := d.field(s, p, int(st.child), c, num, wt, b)
			if err != nil {
				return withParent(err, c.name)
			}
			b = b[m:]
		}
	}
	for r, ok := range p.reqSeen {
		if !ok {
			return &DecodeError{Field: p.required[r], Reason: "required field is missing"}
		}
	}
	for i, c := range n.children {
		if err := d.finish(s, p, i, c); err != nil {
			return withParent(err, c.name)
		}
	}
	return nil
}

// field decodes one occurrence of child c (child i of the message being
// decoded) from b, which starts at its value, returning the bytes consumed.
func (d *ProtoDecoder) field(s *protoSlot, p *protoProgram, i int, c *protoNode, num protowire.Number, wt protowire.Type, b []byte) (int, error) {
	switch c.conv {
	case pcList:
		e := c.children[0]
		head := p.cur[i]
		if wt == protowire.BytesType && e.packable {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return 0, wireErr(m)
			}
			for len(v) > 0 {
				var cell Cell
				k, err := d.scalar(s, e, e.conv, v, &cell)
				if err != nil {
					return 0, withIndex(err, int(s.q[c.id][head].Int))
				}
				s.q[e.id] = append(s.q[e.id], cell)
				s.q[c.id][head].Int++
				v = v[k:]
			}
			return m, nil
		}
		idx := int(s.q[c.id][head].Int)
		if wt != e.wt {
			return 0, withIndex(wireTypeErr(wt, e.wt), idx)
		}
		var m int
		var err error
		if e.conv.spanned() {
			var v []byte
			if v, m = consumeSpan(num, wt, b); m < 0 {
				return 0, wireErr(m)
			}
			qi := len(s.q[e.id])
			s.q[e.id] = append(s.q[e.id], Cell{})
			// A one-span list that does not escape: the element's own for a
			// message (which recurses), the decoder's for the other kinds.
			one := &d.one
			if e.prog != nil {
				one = &e.prog.one
			}
			one[0] = v
			err = d.spanned(s, e, one[:1], qi)
		} else {
			var cell Cell
			m, err = d.scalar(s, e, e.conv, b, &cell)
			s.q[e.id] = append(s.q[e.id], cell)
		}
		if err != nil {
			return 0, withIndex(err, idx)
		}
		s.q[c.id][head].Int++
		return m, nil

	case pcMap:
		if wt != protowire.BytesType {
			return 0, wireTypeErr(wt, protowire.BytesType)
		}
		v, m := protowire.ConsumeBytes(b)
		if m < 0 {
			return 0, wireErr(m)
		}
		p.spans[i] = append(p.spans[i], v)
		return m, nil
	}
	if wt != c.wt {
		return 0, wireTypeErr(wt, c.wt)
	}
	p.seen[i] = true
	if c.conv.spanned() {
		v, m := consumeSpan(num, wt, b)
		if m < 0 {
			return 0, wireErr(m)
		}
		p.spans[i] = append(p.spans[i], v)
		return m, nil
	}
	return d.scalar(s, c, c.conv, b, &s.q[c.id][p.cur[i]])
}

// finish completes child c's value for the message instance: absent
// fields, collected messages, maps.
func (d *ProtoDecoder) finish(s *protoSlot, p *protoProgram, i int, c *protoNode) error {
	qi := p.cur[i]
	cell := &s.q[c.id][qi]
	switch c.conv {
	case pcMeta:
		return d.metaCell(s, c, cell)
	case pcAbsent:
		cell.Null = true
		return nil
	case pcList:
		return nil
	case pcMap:
		n, err := d.mapEntries(s, c, p.spans[i])
		cell.Int = int64(n)
		return err
	}
	if !p.seen[i] {
		if !c.presence {
			*cell = c.zero
			return nil
		}
		if c.required {
			return fieldErr("required field is missing")
		}
		cell.Null = true
		return nil
	}
	if c.conv.spanned() {
		return d.spanned(s, c, p.spans[i], qi)
	}
	return nil
}

// spanned converts a message-valued node from the occurrences in spans (none:
// the message's default instance) into its queue entry qi.
func (d *ProtoDecoder) spanned(s *protoSlot, n *protoNode, spans [][]byte, qi int) error {
	switch n.conv {
	case pcMessage:
		s.q[n.id][qi] = Cell{}
		return d.message(s, n, spans)
	case pcTimestamp:
		sec, nanos, err := secondsNanos(spans)
		if err != nil {
			return err
		}
		if sec < minTimestampSeconds || sec > maxTimestampSeconds {
			return fieldErr("timestamp seconds " + strconv.FormatInt(sec, 10) + " are out of range (0001-01-01 to 9999-12-31)")
		}
		if nanos < 0 || nanos > 999_999_999 {
			return fieldErr("timestamp nanos " + strconv.FormatInt(nanos, 10) + " are out of range (0 to 999999999)")
		}
		c := Cell{Int: sec*1e6 + nanos/1e3}
		if n.kind == jkTimestampNs {
			var ok bool
			if c.Int, ok = secNanosSum(sec, nanos); !ok {
				return fieldErr("timestamp " + strconv.FormatInt(sec, 10) + "s is out of range for " + n.typeName)
			}
		}
		s.q[n.id][qi] = c
	case pcDuration:
		sec, nanos, err := secondsNanos(spans)
		if err != nil {
			return err
		}
		if sec < -maxDurationSeconds || sec > maxDurationSeconds || nanos < -999_999_999 || nanos > 999_999_999 ||
			(sec > 0 && nanos < 0) || (sec < 0 && nanos > 0) {
			return fieldErr("invalid duration: " + strconv.FormatInt(sec, 10) + "s " + strconv.FormatInt(nanos, 10) + "ns")
		}
		v, ok := secNanosSum(sec, nanos)
		if !ok {
			return fieldErr("duration of " + strconv.FormatInt(sec, 10) + "s does not fit a long of nanoseconds (±292 years)")
		}
		s.q[n.id][qi] = Cell{Int: v}
	case pcWrapper:
		var c Cell
		for _, b := range spans {
			for len(b) > 0 {
				num, wt, m := consumeTag(b)
				if m < 0 {
					return wireErr(m)
				}
				b = b[m:]
				if num != 1 {
					if m = protowire.ConsumeFieldValue(num, wt, b); m < 0 {
						return wireErr(m)
					}
					b = b[m:]
					continue
				}
				if wt != n.subWT {
					return withParent(wireTypeErr(wt, n.subWT), "value")
				}
				k, err := d.scalar(s, n, n.sub, b, &c)
				if err != nil {
					return withParent(err, "value")
				}
				b = b[k:]
			}
		}
		s.q[n.id][qi] = c
	case pcJSON:
		text, err := d.jsonText(n, spans)
		if err != nil {
			return err
		}
		start := len(s.arena)
		s.arena = append(s.arena, text...)
		s.q[n.id][qi] = Cell{Bytes: s.arena[start:len(s.arena):len(s.arena)]}
	}
	return nil
}

const (
	minTimestampSeconds = -62135596800 // 0001-01-01T00:00:00Z
	maxTimestampSeconds = 253402300799 // 9999-12-31T23:59:59Z
	maxDurationSeconds  = 315576000000 // 10000 years, as google/protobuf/duration.proto defines
)

// secondsNanos reads a Timestamp's or Duration's fields (1: int64 seconds, 2: int32 nanos).
func secondsNanos(spans [][]byte) (sec, nanos int64, err error) {
	for _, b := range spans {
		for len(b) > 0 {
			num, wt, m := consumeTag(b)
			if m < 0 {
				return 0, 0, wireErr(m)
			}
			b = b[m:]
			if num != 1 && num != 2 {
				if m = protowire.ConsumeFieldValue(num, wt, b); m < 0 {
					return 0, 0, wireErr(m)
				}
				b = b[m:]
				continue
			}
			name := "seconds"
			if num == 2 {
				name = "nanos"
			}
			if wt != protowire.VarintType {
				return 0, 0, withParent(wireTypeErr(wt, protowire.VarintType), name)
			}
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return 0, 0, withParent(wireErr(m), name)
			}
			b = b[m:]
			if num == 1 {
				sec = int64(v)
			} else {
				nanos = int64(int32(v))
			}
		}
	}
	return sec, nanos, nil
}

// secNanosSum is sec*1e9 + nanos, unless that overflows.
func secNanosSum(sec, nanos int64) (int64, bool) {
	if sec > math.MaxInt64/1_000_000_000 || sec < math.MinInt64/1_000_000_000 {
		return 0, false
	}
	r := sec * 1e9
	v := r + nanos
	if (nanos > 0 && v < r) || (nanos < 0 && v > r) {
		return 0, false
	}
	return v, true
}

// jsonText renders a Struct, Value or ListValue as compact JSON, as protojson maps it.
func (d *ProtoDecoder) jsonText(n *protoNode, spans [][]byte) ([]byte, error) {
	d.jsonIn = d.jsonIn[:0]
	for _, b := range spans {
		d.jsonIn = append(d.jsonIn, b...)
	}
	m := d.jsMsgs[n.jsonType]
	if m == nil {
		switch n.jsonType {
		case jsonStruct:
			m = &structpb.Struct{}
		case jsonValue:
			m = &structpb.Value{}
		default:
			m = &structpb.ListValue{}
		}
		d.jsMsgs[n.jsonType] = m
	}
	if err := proto.Unmarshal(d.jsonIn, m); err != nil {
		return nil, fieldErr("invalid " + string(m.ProtoReflect().Descriptor().FullName()) + ": " + err.Error())
	}
	out, err := protojson.MarshalOptions{}.MarshalAppend(d.jsonOut[:0], m)
	if err != nil {
		return nil, fieldErr("cannot be written as JSON: " + err.Error())
	}
	d.jsonOut = out
	// protojson varies its whitespace on purpose; the column holds the compact form.
	d.compact.Reset()
	if err := json.Compact(&d.compact, out); err != nil {
		return nil, fieldErr("cannot be written as JSON: " + err.Error())
	}
	return d.compact.Bytes(), nil
}

// scalar decodes one non-message value of node n with conversion conv from
// the start of b (whose wire type the caller checked) into c, returning the
// bytes consumed.
func (d *ProtoDecoder) scalar(s *protoSlot, n *protoNode, conv protoConv, b []byte, c *Cell) (int, error) {
	*c = Cell{}
	var v uint64
	var m int
	switch conv {
	case pcSfixed32, pcFixed32, pcFloat:
		var v32 uint32
		v32, m = protowire.ConsumeFixed32(b)
		v = uint64(v32)
	case pcSfixed64, pcFixed64, pcDouble:
		v, m = protowire.ConsumeFixed64(b)
	case pcString, pcBytes:
		var bs []byte
		if bs, m = protowire.ConsumeBytes(b); m < 0 {
			return 0, wireErr(m)
		}
		if conv == pcString && !utf8.Valid(bs) {
			return 0, fieldErr("string is not valid UTF-8")
		}
		c.Bytes = bs[:len(bs):len(bs)]
		return m, nil
	default:
		v, m = protowire.ConsumeVarint(b)
	}
	if m < 0 {
		return 0, wireErr(m)
	}
	switch conv {
	case pcBool:
		if v != 0 {
			c.Int = 1
		}
	case pcInt32, pcSfixed32:
		c.Int = int64(int32(v))
	case pcSint32:
		c.Int = int64(int32(protowire.DecodeZigZag(v & math.MaxUint32)))
	case pcUint32, pcFixed32:
		c.Int = int64(uint32(v))
	case pcInt64, pcSfixed64:
		c.Int = int64(v)
	case pcSint64:
		c.Int = protowire.DecodeZigZag(v)
	case pcUint64, pcFixed64:
		c.Dec = decimal128.FromU64(v)
	case pcFloat:
		c.Float = float64(math.Float32frombits(uint32(v)))
	case pcDouble:
		c.Float = math.Float64frombits(v)
	case pcEnum:
		if name := n.enum.name(int32(v)); name != nil {
			c.Bytes = name
		} else {
			start := len(s.arena)
			s.arena = strconv.AppendInt(s.arena, int64(int32(v)), 10)
			c.Bytes = s.arena[start:len(s.arena):len(s.arena)]
		}
	}
	return m, nil
}

// mapEntries decodes the entries of map node c (the last entry of a key
// wins), pushes their keys and values and returns how many there are.
func (d *ProtoDecoder) mapEntries(s *protoSlot, c *protoNode, entries [][]byte) (int, error) {
	ms := c.mp
	kn, vn := c.children[0], c.children[1]
	ms.entries, ms.vspans = ms.entries[:0], ms.vspans[:0]
	for _, b := range entries {
		e := protoEntry{key: kn.zero, val: vn.zero}
		e.vs = len(ms.vspans)
		for len(b) > 0 {
			num, wt, m := consumeTag(b)
			if m < 0 {
				return 0, wireErr(m)
			}
			b = b[m:]
			switch num {
			case 1:
				if wt != kn.wt {
					return 0, withParent(wireTypeErr(wt, kn.wt), "key")
				}
				k, err := d.scalar(s, kn, kn.conv, b, &e.key)
				if err != nil {
					return 0, withParent(err, "key")
				}
				b = b[k:]
			case 2:
				if wt != vn.wt {
					return 0, withParent(wireTypeErr(wt, vn.wt), "value")
				}
				if vn.conv.spanned() {
					v, k := consumeSpan(num, wt, b)
					if k < 0 {
						return 0, withParent(wireErr(k), "value")
					}
					ms.vspans = append(ms.vspans, v)
					b = b[k:]
					continue
				}
				k, err := d.scalar(s, vn, vn.conv, b, &e.val)
				if err != nil {
					return 0, withParent(err, "value")
				}
				b = b[k:]
			default:
				if m = protowire.ConsumeFieldValue(num, wt, b); m < 0 {
					return 0, wireErr(m)
				}
				b = b[m:]
			}
		}
		e.ve = len(ms.vspans)
		ms.entries = append(ms.entries, e)
	}
	ms.markDuplicates()
	count := 0
	for i := range ms.entries {
		e := &ms.entries[i]
		if e.dead {
			continue
		}
		count++
		s.q[kn.id] = append(s.q[kn.id], e.key)
		qi := len(s.q[vn.id])
		s.q[vn.id] = append(s.q[vn.id], e.val)
		if vn.conv.spanned() {
			if err := d.spanned(s, vn, ms.vspans[e.vs:e.ve], qi); err != nil {
				return count, withParent(err, mapKeyText(kn, e.key))
			}
		}
	}
	return count, nil
}

// markDuplicates marks every entry that a later entry with the same key replaces.
func (ms *protoMapScratch) markDuplicates() {
	es := ms.entries
	if len(es) <= 16 {
		for i := range es {
			for j := i + 1; j < len(es); j++ {
				if keyCmp(&es[i].key, &es[j].key) == 0 {
					es[i].dead = true
					break
				}
			}
		}
		return
	}
	ms.order = ms.order[:0]
	for i := range es {
		ms.order = append(ms.order, i)
	}
	slices.SortStableFunc(ms.order, func(a, b int) int { return keyCmp(&es[a].key, &es[b].key) })
	for k := 0; k+1 < len(ms.order); k++ {
		if keyCmp(&es[ms.order[k]].key, &es[ms.order[k+1]].key) == 0 {
			es[ms.order[k]].dead = true // stable: the later entry comes next
		}
	}
}

func keyCmp(a, b *Cell) int {
	if a.Int != b.Int {
		if a.Int < b.Int {
			return -1
		}
		return 1
	}
	if c := a.Dec.Cmp(b.Dec); c != 0 {
		return c
	}
	return bytes.Compare(a.Bytes, b.Bytes)
}

// mapKeyText is a map key as it appears in an error's field path.
func mapKeyText(kn *protoNode, k Cell) string {
	switch kn.kind {
	case jkString:
		return string(k.Bytes)
	case jkBool:
		return strconv.FormatBool(k.Int != 0)
	case jkDecimal:
		return k.Dec.BigInt().String()
	}
	return strconv.FormatInt(k.Int, 10)
}

func (d *ProtoDecoder) metaCell(s *protoSlot, n *protoNode, c *Cell) error {
	var err error
	s.arena, err = metaValue(n.meta, n.required, &d.meta, s.arena, c)
	return err
}

// Append appends the last successfully parsed row to b (whose schema is
// ArrowSchema()). It cannot fail and appends exactly one value to every
// column builder.
func (d *ProtoDecoder) Append(b *array.RecordBuilder) {
	if d.last < 0 {
		panic("ingest: ProtoDecoder.Append called before a successful Parse")
	}
	nbs := cachedBuilders(&d.builders, b, d.nnodes, func(nodes []nodeBuilder) {
		if !sameColumns(b.Schema(), d.schema) {
			panic(fmt.Sprintf("ingest: RecordBuilder schema %s does not match the decoder's %s", b.Schema(), d.schema))
		}
		for i, n := range d.root.children {
			protoBind(n, b.Field(i), nodes)
		}
	})
	s := &d.slots[d.last]
	clear(d.rd)
	for _, n := range d.root.children {
		d.appendNode(s, n, nbs)
	}
}

func (d *ProtoDecoder) appendNode(s *protoSlot, n *protoNode, nbs []nodeBuilder) {
	c := &s.q[n.id][d.rd[n.id]]
	d.rd[n.id]++
	nb := &nbs[n.id]
	if c.Null {
		nb.any.AppendNull()
		return
	}
	switch n.kind {
	case jkBool:
		nb.bl.Append(c.Int != 0)
	case jkInt32:
		nb.i32.Append(int32(c.Int))
	case jkInt64:
		nb.i64.Append(c.Int)
	case jkFloat32:
		nb.f32.Append(float32(c.Float))
	case jkFloat64:
		nb.f64.Append(c.Float)
	case jkDecimal:
		nb.dec.Append(c.Dec)
	case jkTimestamp, jkTimestampNs:
		nb.ts.Append(arrow.Timestamp(c.Int))
	case jkString, jkBinary:
		nb.bin.Append(c.Bytes)
	case jkStruct:
		nb.st.Append(true)
		for _, ch := range n.children {
			d.appendNode(s, ch, nbs)
		}
	case jkList:
		nb.ls.Append(true)
		for k := int64(0); k < c.Int; k++ {
			d.appendNode(s, n.children[0], nbs)
		}
	case jkMap:
		nb.mp.Append(true)
		for k := int64(0); k < c.Int; k++ {
			d.appendNode(s, n.children[0], nbs)
			d.appendNode(s, n.children[1], nbs)
		}
	}
}

// protoBind binds the typed builders of node n and its descendants.
func protoBind(n *protoNode, b array.Builder, nbs []nodeBuilder) {
	nb := &nbs[n.id]
	if n.conv == pcAbsent {
		nb.any = b
		return // only ever null
	}
	if !bindTyped(n.kind, b, nb) {
		panic(fmt.Sprintf("ingest: builder for %s column %q is %T", n.typeName, n.name, b))
	}
	switch n.kind {
	case jkStruct:
		for i, c := range n.children {
			protoBind(c, nb.st.FieldBuilder(i), nbs)
		}
	case jkList:
		protoBind(n.children[0], nb.ls.ValueBuilder(), nbs)
	case jkMap:
		protoBind(n.children[0], nb.mp.KeyBuilder(), nbs)
		protoBind(n.children[1], nb.mp.ItemBuilder(), nbs)
	}
}
