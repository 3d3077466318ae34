package decode

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/valyala/fastjson"
)

// RecordMeta is the Kafka metadata of one record, used for the optional _kafka_* columns.
type RecordMeta struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       []byte
}

// Cell is the converted value of one top-level column of the last parsed row.
//
// For struct, list and map columns only Null is meaningful (lists and maps also carry their
// number of entries in Int); their contents go straight to the builders in Append.
type Cell struct {
	Null  bool
	Int   int64          // boolean (0/1), int, long, date (days since 1970-01-01), time (micros of day), timestamp/timestamptz (micros since epoch, UTC; nanos for the _ns types)
	Float float64        // float, double
	Bytes []byte         // string (UTF-8 bytes), binary/fixed (decoded bytes), uuid (16 bytes). Valid only until the next Parse.
	Dec   decimal128.Num // decimal: unscaled value at the column's scale
}

type metaColumn uint8

const (
	metaNone metaColumn = iota
	metaTopic
	metaPartition
	metaOffset
	metaTimestamp
	metaKey
)

// kafkaMetaColumns maps each top-level column name reserved for Kafka metadata to its source and
// the only Iceberg type it may have.
var kafkaMetaColumns = map[string]struct {
	col metaColumn
	typ iceberg.Type
}{
	"_kafka_topic":     {metaTopic, iceberg.PrimitiveTypes.String},
	"_kafka_partition": {metaPartition, iceberg.PrimitiveTypes.Int32},
	"_kafka_offset":    {metaOffset, iceberg.PrimitiveTypes.Int64},
	"_kafka_timestamp": {metaTimestamp, iceberg.PrimitiveTypes.TimestampTz},
	"_kafka_key":       {metaKey, iceberg.PrimitiveTypes.Binary},
}

type jsonKind uint8

const (
	jkBool jsonKind = iota
	jkInt32
	jkInt64
	jkFloat32
	jkFloat64
	jkDecimal
	jkDate
	jkTime
	jkTimestamp   // micros
	jkTimestampNs // nanos
	jkString
	jkBinary
	jkFixed
	jkUUID
	jkUnknown // Iceberg's unknown type: always null
	jkStruct
	jkList
	jkMap
)

// hintSlots bounds the per-object key position prediction (see jsonNode.lookup).
const hintSlots = 64

// jsonNode is one compiled schema node. Struct fields, list elements, map keys and map values each
// get their own node, numbered in depth-first order so that per-RecordBuilder builder tables can be
// plain slices.
type jsonNode struct {
	kind     jsonKind
	name     string
	required bool
	id       int
	typeName string // Iceberg spelling, for messages
	meta     metaColumn

	precision, scale int // decimal
	fixedLen         int // fixed

	// children: struct fields; [element] for a list; [key, value] for a map.
	children []*jsonNode

	// Struct scratch, reused for every object of this node. A node never contains itself, so the
	// scratch of a node is never needed twice at once.
	index map[string]int
	hints []int32
	vals  []*fastjson.Value
	dup   int

	// Map scratch.
	keys  [][]byte
	mvals []*fastjson.Value
	order []int
}

// parseSlot is everything a parsed row points into. The decoder keeps two so that a failed Parse
// leaves the last good row intact: Cell and Append always see the last successfully parsed row.
type parseSlot struct {
	p     fastjson.Parser
	cells []Cell // top-level columns
	// tapeAt is where each top-level column's nested values start on the
	// tape (a Projector appends columns on their own).
	tapeAt []int
	tape   []Cell // nested values in depth-first order, consumed by Append in the same order
	arena  []byte // decoded bytes (binary, fixed, uuid, metadata) that do not live in the parser
}

// builderSet caches the typed builders of one RecordBuilder, indexed by node id.
type builderSet struct {
	rb    *array.RecordBuilder
	nodes []nodeBuilder
}

type nodeBuilder struct {
	any  array.Builder
	bl   *array.BooleanBuilder
	i32  *array.Int32Builder
	i64  *array.Int64Builder
	f32  *array.Float32Builder
	f64  *array.Float64Builder
	dec  *array.Decimal128Builder
	date *array.Date32Builder
	tm   *array.Time64Builder
	ts   *array.TimestampBuilder
	bin  *array.BinaryBuilder // also the storage of string builders
	fsb  *array.FixedSizeBinaryBuilder
	st   *array.StructBuilder
	ls   *array.ListBuilder
	mp   *array.MapBuilder
}

// maxCachedBuilders bounds the builder cache. The caller routes rows to per-partition builders,
// so several are live at once; the cache holds strong references, so it must stay small to not
// keep dropped builders (and their buffers) alive.
const maxCachedBuilders = 16

// JSONDecoder converts JSON records into rows of an Iceberg schema. It is not safe for concurrent
// use: give each goroutine its own.
type JSONDecoder struct {
	schema *arrow.Schema
	root   *jsonNode
	nnodes int

	slots [2]parseSlot
	last  int // slot of the last successfully parsed row, -1 before the first

	scan    jsonScanner
	numBuf  []byte
	visitFn func(key []byte, v *fastjson.Value)
	cur     *jsonNode // object being visited by visitFn
	pos     int       // index of the key being visited
	tapePos int       // Append's cursor into the tape

	builders []*builderSet // most recently used first

	// anyAsString makes string columns take any JSON value, as its JSON
	// text (see StringsTakeAnyJSON).
	anyAsString bool
}

// DecoderOption adjusts a JSONDecoder.
type DecoderOption func(*JSONDecoder)

// StringsTakeAnyJSON makes string columns take a value of any JSON type,
// written as its JSON text (1.5, true, {"a":1}), instead of rejecting it:
// the counterpart of inferring a conflicting field as a string
// (InferOptions.ConflictsAsString).
func StringsTakeAnyJSON() DecoderOption { return func(d *JSONDecoder) { d.anyAsString = true } }

// NewJSONDecoder compiles a decoder for the Iceberg schema. The Arrow schema it appends to is
// table.SchemaToArrowSchema(schema, nil, true, false) (field ids included, no large types).
// Unsupported types get an error naming the field and the type.
func NewJSONDecoder(schema *iceberg.Schema, opts ...DecoderOption) (*JSONDecoder, error) {
	if schema == nil {
		return nil, errors.New("ingest: nil schema")
	}
	d := &JSONDecoder{last: -1}
	for _, o := range opts {
		o(d)
	}
	root := &jsonNode{kind: jkStruct, required: true, typeName: "struct"}
	for _, f := range schema.Fields() {
		n, err := d.compile(f.Type, f.Name, f.Required, f.Name)
		if err != nil {
			return nil, err
		}
		if mc, ok := kafkaMetaColumns[f.Name]; ok {
			if !f.Type.Equals(mc.typ) {
				return nil, fmt.Errorf("ingest: column %q is filled from Kafka metadata and must have type %s, not %s",
					f.Name, mc.typ, f.Type)
			}
			n.meta = mc.col
		}
		root.children = append(root.children, n)
	}
	d.initStruct(root)
	d.root = root
	// compile has refused every type this could fail on.
	as, err := table.SchemaToArrowSchema(schema, nil, true, false)
	if err != nil {
		return nil, fmt.Errorf("ingest: converting schema to Arrow: %w", err)
	}
	d.schema = as
	for i := range d.slots {
		d.slots[i].cells = make([]Cell, len(root.children))
		d.slots[i].tapeAt = make([]int, len(root.children))
	}
	d.visitFn = d.visit
	return d, nil
}

func (d *JSONDecoder) compile(t iceberg.Type, name string, required bool, path string) (*jsonNode, error) {
	n := &jsonNode{name: name, required: required, id: d.nnodes, typeName: t.String()}
	d.nnodes++
	switch t := t.(type) {
	case iceberg.BooleanType:
		n.kind = jkBool
	case iceberg.Int32Type:
		n.kind = jkInt32
	case iceberg.Int64Type:
		n.kind = jkInt64
	case iceberg.Float32Type:
		n.kind = jkFloat32
	case iceberg.Float64Type:
		n.kind = jkFloat64
	case iceberg.DecimalType:
		n.kind, n.precision, n.scale = jkDecimal, t.Precision(), t.Scale()
	case iceberg.DateType:
		n.kind = jkDate
	case iceberg.TimeType:
		n.kind = jkTime
	case iceberg.TimestampType, iceberg.TimestampTzType:
		n.kind = jkTimestamp
	case iceberg.TimestampNsType, iceberg.TimestampTzNsType:
		n.kind = jkTimestampNs
	case iceberg.StringType:
		n.kind = jkString
	case iceberg.BinaryType:
		n.kind = jkBinary
	case iceberg.FixedType:
		n.kind, n.fixedLen = jkFixed, t.Len()
	case iceberg.UUIDType:
		n.kind = jkUUID
	case iceberg.UnknownType:
		n.kind = jkUnknown
	case *iceberg.StructType:
		n.kind = jkStruct
		for _, f := range t.FieldList {
			c, err := d.compile(f.Type, f.Name, f.Required, path+"."+f.Name)
			if err != nil {
				return nil, err
			}
			n.children = append(n.children, c)
		}
		d.initStruct(n)
	case *iceberg.ListType:
		n.kind = jkList
		c, err := d.compile(t.Element, "element", t.ElementRequired, path+"[]")
		if err != nil {
			return nil, err
		}
		n.children = []*jsonNode{c}
	case *iceberg.MapType:
		n.kind = jkMap
		if _, ok := t.KeyType.(iceberg.StringType); !ok {
			return nil, fmt.Errorf("ingest: field %q has type %s: only maps with string keys can be decoded from JSON objects",
				path, t)
		}
		k, _ := d.compile(t.KeyType, "key", true, path)
		v, err := d.compile(t.ValueType, "value", t.ValueRequired, path+".value")
		if err != nil {
			return nil, err
		}
		n.children = []*jsonNode{k, v}
	default:
		return nil, fmt.Errorf("ingest: field %q has type %s, which the JSON decoder does not support", path, t)
	}
	return n, nil
}

func (d *JSONDecoder) initStruct(n *jsonNode) {
	n.index = make(map[string]int, len(n.children))
	for i, c := range n.children {
		if c.meta == metaNone {
			n.index[c.name] = i
		}
	}
	n.hints = make([]int32, hintSlots)
	for i := range n.hints {
		n.hints[i] = -1
	}
	n.vals = make([]*fastjson.Value, len(n.children))
}

// ArrowSchema is the schema of the RecordBuilders Append accepts.
func (d *JSONDecoder) ArrowSchema() *arrow.Schema { return d.schema }

// Parse validates and converts one record into the decoder's scratch row. It appends nothing anywhere.
// On error it returns a *DecodeError.
func (d *JSONDecoder) Parse(value []byte, meta RecordMeta) error {
	w := 0
	if d.last == 0 {
		w = 1
	}
	s := &d.slots[w]
	if err := d.parseInto(s, value, meta); err != nil {
		return err
	}
	d.last = w
	return nil
}

func (d *JSONDecoder) parseInto(s *parseSlot, value []byte, meta RecordMeta) error {
	// fastjson accepts a superset of JSON (NaN, "1.2.3", control characters and bad escapes in
	// strings) and unescapes strings on a best-effort basis, so records are checked against the
	// JSON grammar first. Being strict here is what lets the converters trust fastjson's output.
	if err := d.scan.check(value); err != nil {
		return err
	}
	v, err := s.p.ParseBytes(value)
	if err != nil {
		return &DecodeError{Reason: "record is not a JSON object: " + err.Error()}
	}
	if v.Type() != fastjson.TypeObject {
		return &DecodeError{Reason: "record is not a JSON object: got " + snippet(v)}
	}
	obj, _ := v.Object()
	root := d.root
	d.collect(root, obj)
	if root.dup >= 0 {
		return &DecodeError{Field: root.children[root.dup].name, Reason: "duplicate key in JSON object"}
	}
	s.tape = s.tape[:0]
	s.arena = s.arena[:0]
	for i, n := range root.children {
		c := &s.cells[i]
		s.tapeAt[i] = len(s.tape)
		if n.meta != metaNone {
			if err := d.metaCell(s, n, c, &meta); err != nil {
				return withParent(err, n.name)
			}
			continue
		}
		jv := root.vals[i]
		if jv == nil || jv.Type() == fastjson.TypeNull {
			if n.required {
				return &DecodeError{Field: n.name, Reason: requiredReason(jv)}
			}
			*c = Cell{Null: true}
			continue
		}
		var err error
		switch n.kind {
		case jkStruct, jkList, jkMap:
			err = d.container(s, n, jv, c)
		default:
			err = d.leaf(s, n, jv, c)
		}
		if err != nil {
			return withParent(err, n.name)
		}
	}
	return nil
}

// collect visits obj once and files the values of n's fields into n.vals.
func (d *JSONDecoder) collect(n *jsonNode, obj *fastjson.Object) {
	clear(n.vals)
	n.dup = -1
	d.cur, d.pos = n, 0
	obj.Visit(d.visitFn)
}

func (d *JSONDecoder) visit(key []byte, v *fastjson.Value) {
	n := d.cur
	pos := d.pos
	d.pos++
	if n.kind == jkMap {
		n.keys = append(n.keys, key)
		n.mvals = append(n.mvals, v)
		return
	}
	i := n.lookup(key, pos)
	if i < 0 {
		return
	}
	if n.vals[i] != nil {
		if n.dup < 0 {
			n.dup = i
		}
		return
	}
	n.vals[i] = v
}

// lookup finds the field named key. Producers emit keys in a fixed order, so the field found at the
// same position in the previous object is tried first; it saves the map lookup for nearly every key.
func (n *jsonNode) lookup(key []byte, pos int) int {
	if pos < hintSlots {
		if h := n.hints[pos]; h >= 0 && n.children[h].name == string(key) {
			return int(h)
		}
	}
	i, ok := n.index[string(key)]
	if !ok {
		i = -1
	}
	if pos < hintSlots {
		n.hints[pos] = int32(i)
	}
	return i
}

func (d *JSONDecoder) metaCell(s *parseSlot, n *jsonNode, c *Cell, m *RecordMeta) error {
	var err error
	s.arena, err = metaValue(n.meta, n.required, m, s.arena, c)
	return err
}

// metaValue sets c to the Kafka metadata column kind of the record m
// (bytes copied into arena, which it returns grown), or refuses a missing
// value of a required column. Every decoder fills these columns alike.
func metaValue(kind metaColumn, required bool, m *RecordMeta, arena []byte, c *Cell) ([]byte, error) {
	*c = Cell{}
	switch kind {
	case metaTopic:
		start := len(arena)
		arena = append(arena, m.Topic...)
		c.Bytes = arena[start:len(arena):len(arena)]
	case metaPartition:
		c.Int = int64(m.Partition)
	case metaOffset:
		c.Int = m.Offset
	case metaTimestamp:
		if m.Timestamp.IsZero() {
			if required {
				return arena, fieldErr("required field is missing (the Kafka record has no timestamp)")
			}
			c.Null = true
			return arena, nil
		}
		c.Int = m.Timestamp.UnixMicro()
	case metaKey:
		if m.Key == nil {
			if required {
				return arena, fieldErr("required field is missing (the Kafka record has no key)")
			}
			c.Null = true
			return arena, nil
		}
		start := len(arena)
		arena = append(arena, m.Key...)
		c.Bytes = arena[start:len(arena):len(arena)]
	}
	return arena, nil
}

// nested converts the value of a node below the top level and appends it, and then its
// descendants, to the tape.
func (d *JSONDecoder) nested(s *parseSlot, n *jsonNode, v *fastjson.Value, nullReason string) error {
	if v == nil || v.Type() == fastjson.TypeNull {
		if n.required {
			return fieldErr(nullReason)
		}
		s.tape = append(s.tape, Cell{Null: true})
		return nil
	}
	switch n.kind {
	case jkStruct, jkList, jkMap:
		// The head is appended before the children, which is the order Append reads them in.
		i := len(s.tape)
		s.tape = append(s.tape, Cell{})
		var head Cell
		err := d.container(s, n, v, &head)
		s.tape[i] = head
		return err
	}
	var c Cell
	if err := d.leaf(s, n, v, &c); err != nil {
		return err
	}
	s.tape = append(s.tape, c)
	return nil
}

// container checks a struct, list or map value, sets its head cell and puts its contents on the
// tape.
func (d *JSONDecoder) container(s *parseSlot, n *jsonNode, v *fastjson.Value, head *Cell) error {
	*head = Cell{}
	switch n.kind {
	case jkStruct:
		if v.Type() != fastjson.TypeObject {
			return gotErr("a JSON object", v)
		}
		obj, _ := v.Object()
		d.collect(n, obj)
		if n.dup >= 0 {
			return &DecodeError{Field: n.children[n.dup].name, Reason: "duplicate key in JSON object"}
		}
		for i, c := range n.children {
			if err := d.nested(s, c, n.vals[i], requiredReason(n.vals[i])); err != nil {
				return withParent(err, c.name)
			}
		}
	case jkList:
		if v.Type() != fastjson.TypeArray {
			return gotErr("a JSON array", v)
		}
		elems, _ := v.Array()
		head.Int = int64(len(elems))
		elem := n.children[0]
		for i, e := range elems {
			if err := d.nested(s, elem, e, "required list element is null"); err != nil {
				return withIndex(err, i)
			}
		}
	case jkMap:
		if v.Type() != fastjson.TypeObject {
			return gotErr("a JSON object", v)
		}
		obj, _ := v.Object()
		n.keys, n.mvals = n.keys[:0], n.mvals[:0]
		d.cur, d.pos = n, 0
		obj.Visit(d.visitFn)
		if dup := n.duplicateKey(); dup != nil {
			return fieldErr("duplicate key " + strconv.Quote(string(dup)))
		}
		head.Int = int64(len(n.keys))
		val := n.children[1]
		for i, k := range n.keys {
			if !d.scan.allASCII() && !utf8.Valid(k) {
				return fieldErr("map key " + strconv.Quote(string(k)) + " is not valid UTF-8")
			}
			s.tape = append(s.tape, Cell{Bytes: k})
			if err := d.nested(s, val, n.mvals[i], "required map value is null"); err != nil {
				return withParent(err, string(k))
			}
		}
	}
	return nil
}

// duplicateKey returns a key that occurs twice in n.keys, or nil.
func (n *jsonNode) duplicateKey() []byte {
	keys := n.keys
	if len(keys) <= 16 {
		for i := 1; i < len(keys); i++ {
			for j := 0; j < i; j++ {
				if bytes.Equal(keys[i], keys[j]) {
					return keys[i]
				}
			}
		}
		return nil
	}
	n.order = n.order[:0]
	for i := range keys {
		n.order = append(n.order, i)
	}
	slices.SortFunc(n.order, func(a, b int) int { return bytes.Compare(keys[a], keys[b]) })
	for i := 1; i < len(n.order); i++ {
		if bytes.Equal(keys[n.order[i]], keys[n.order[i-1]]) {
			return keys[n.order[i]]
		}
	}
	return nil
}

// number returns the text of a JSON number value. fastjson keeps numbers as text and only exposes
// it through MarshalTo; the scanner has already checked it against the JSON number grammar.
func (d *JSONDecoder) number(v *fastjson.Value) ([]byte, bool) {
	if v.Type() != fastjson.TypeNumber {
		return nil, false
	}
	d.numBuf = v.MarshalTo(d.numBuf[:0])
	return d.numBuf, true
}

// requiredReason says why a required field has no value: absent from its
// object, or present as null.
func requiredReason(v *fastjson.Value) string {
	if v == nil {
		return "required field is missing"
	}
	return "required field is null"
}

// leaf converts a non-null primitive value into c.
func (d *JSONDecoder) leaf(s *parseSlot, n *jsonNode, v *fastjson.Value, c *Cell) error {
	*c = Cell{}
	switch n.kind {
	case jkBool:
		switch v.Type() {
		case fastjson.TypeTrue:
			c.Int = 1
		case fastjson.TypeFalse:
		default:
			return gotErr("true or false", v)
		}

	case jkInt32, jkInt64:
		raw, ok := d.number(v)
		if !ok {
			return gotErr("an integer", v)
		}
		x, integral, fits := parseJSONInt(raw)
		if !integral {
			return gotErr("an integer", v)
		}
		if !fits || (n.kind == jkInt32 && int64(int32(x)) != x) {
			return fieldErr("integer " + string(raw) + " is out of range for " + n.typeName)
		}
		c.Int = x

	case jkFloat32, jkFloat64:
		raw, ok := d.number(v)
		if !ok {
			return gotErr("a number", v)
		}
		size := 64
		if n.kind == jkFloat32 {
			size = 32
		}
		f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(raw), len(raw)), size)
		if err != nil {
			return fieldErr("number " + string(raw) + " is out of range for " + n.typeName)
		}
		c.Float = f

	case jkDecimal:
		var text []byte
		switch v.Type() {
		case fastjson.TypeNumber:
			text, _ = d.number(v)
		case fastjson.TypeString:
			text, _ = v.StringBytes()
		default:
			return gotErr("a decimal number (a JSON number or a numeric string)", v)
		}
		num, res := parseDecimal(text, n.precision, n.scale)
		switch res {
		case decSyntax:
			return gotErr("a decimal number (a JSON number or a numeric string)", v)
		case decScale:
			return fieldErr(fmt.Sprintf("value %s does not fit %s: more than %d digits after the decimal point",
				snippet(v), n.typeName, n.scale))
		case decPrecision:
			return fieldErr(fmt.Sprintf("value %s does not fit %s: more than %d digits before the decimal point",
				snippet(v), n.typeName, n.precision-n.scale))
		}
		c.Dec = num

	case jkDate:
		const want = `a date as "YYYY-MM-DD" or a number of days since 1970-01-01`
		switch v.Type() {
		case fastjson.TypeString:
			b, _ := v.StringBytes()
			days, ok := parseDate(b)
			if !ok {
				return gotErr(want, v)
			}
			c.Int = days
		case fastjson.TypeNumber:
			raw, _ := d.number(v)
			x, integral, fits := parseJSONInt(raw)
			if !integral {
				return gotErr(want, v)
			}
			if !fits || int64(int32(x)) != x {
				return fieldErr("day number " + string(raw) + " is out of range for date")
			}
			c.Int = x
		default:
			return gotErr(want, v)
		}

	case jkTime:
		const want = `a time of day as "HH:MM:SS[.ffffff]"`
		if v.Type() != fastjson.TypeString {
			return gotErr(want, v)
		}
		b, _ := v.StringBytes()
		us, ok := parseTimeOfDay(b)
		if !ok {
			return gotErr(want, v)
		}
		c.Int = us

	case jkTimestamp, jkTimestampNs:
		const want = "an RFC 3339 timestamp or epoch milliseconds"
		switch v.Type() {
		case fastjson.TypeString:
			b, _ := v.StringBytes()
			sec, nsec, _, ok := parseTimestamp(b)
			if !ok {
				return gotErr(want, v)
			}
			if n.kind == jkTimestamp {
				// Years 0000-9999 keep micros far from overflow.
				c.Int = sec*1e6 + nsec/1e3
			} else if c.Int, ok = mulAdd(sec, 1e9, nsec); !ok {
				return fieldErr("timestamp " + snippet(v) + " is out of range for " + n.typeName)
			}
		case fastjson.TypeNumber:
			raw, _ := d.number(v)
			ms, integral, fits := parseJSONInt(raw)
			if !integral {
				return gotErr(want, v)
			}
			mul := int64(1e3)
			if n.kind == jkTimestampNs {
				mul = 1e6
			}
			var ok bool
			if c.Int, ok = mulAdd(ms, mul, 0); !ok || !fits {
				return fieldErr("epoch milliseconds " + string(raw) + " are out of range for " + n.typeName)
			}
		default:
			return gotErr(want, v)
		}

	case jkString:
		if v.Type() != fastjson.TypeString {
			if !d.anyAsString {
				return gotErr("a string", v)
			}
			// The scanner checked the record, so its JSON text is valid
			// UTF-8 and MarshalTo writes it back as it was.
			start := len(s.arena)
			s.arena = v.MarshalTo(s.arena)
			c.Bytes = s.arena[start:len(s.arena):len(s.arena)]
			return nil
		}
		b, _ := v.StringBytes()
		if !d.scan.allASCII() && !utf8.Valid(b) {
			return fieldErr("string is not valid UTF-8")
		}
		c.Bytes = b

	case jkBinary, jkFixed:
		if v.Type() != fastjson.TypeString {
			return gotErr("a base64 string", v)
		}
		src, _ := v.StringBytes()
		start := len(s.arena)
		s.arena = slices.Grow(s.arena, base64.StdEncoding.DecodedLen(len(src)))
		dst := s.arena[start : start+base64.StdEncoding.DecodedLen(len(src))]
		m, err := base64Strict.Decode(dst, src)
		if err != nil {
			return gotErr("a base64 string", v)
		}
		s.arena = s.arena[:start+m]
		if n.kind == jkFixed && m != n.fixedLen {
			return fieldErr(fmt.Sprintf("base64 value decodes to %d bytes, %s needs exactly %d", m, n.typeName, n.fixedLen))
		}
		c.Bytes = s.arena[start : start+m : start+m]

	case jkUUID:
		const want = `a UUID as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"`
		if v.Type() != fastjson.TypeString {
			return gotErr(want, v)
		}
		b, _ := v.StringBytes()
		start := len(s.arena)
		s.arena = slices.Grow(s.arena, 16)[:start+16]
		if !parseUUID(s.arena[start:start+16], b) {
			s.arena = s.arena[:start]
			return gotErr(want, v)
		}
		c.Bytes = s.arena[start : start+16 : start+16]

	case jkUnknown:
		return gotErr("null (the field's type is unknown)", v)
	}
	return nil
}

// Cell returns top-level column i (schema field order) of the last successfully parsed row.
func (d *JSONDecoder) Cell(i int) Cell {
	if d.last < 0 {
		panic("ingest: JSONDecoder.Cell called before a successful Parse")
	}
	return d.slots[d.last].cells[i]
}

// Append appends the last successfully parsed row to b (whose schema is ArrowSchema()). It cannot fail
// and appends exactly one value to every column builder.
func (d *JSONDecoder) Append(b *array.RecordBuilder) {
	if d.last < 0 {
		panic("ingest: JSONDecoder.Append called before a successful Parse")
	}
	nbs := d.buildersFor(b)
	s := &d.slots[d.last]
	d.tapePos = 0
	for i, n := range d.root.children {
		d.appendValue(s, n, nbs, &s.cells[i])
	}
}

func (d *JSONDecoder) appendValue(s *parseSlot, n *jsonNode, nbs []nodeBuilder, c *Cell) {
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
	case jkDate:
		nb.date.Append(arrow.Date32(c.Int))
	case jkTime:
		nb.tm.Append(arrow.Time64(c.Int))
	case jkTimestamp, jkTimestampNs:
		nb.ts.Append(arrow.Timestamp(c.Int))
	case jkString, jkBinary:
		nb.bin.Append(c.Bytes)
	case jkFixed, jkUUID:
		nb.fsb.Append(c.Bytes)
	case jkUnknown:
		nb.any.AppendNull()
	case jkStruct:
		nb.st.Append(true)
		for _, ch := range n.children {
			d.appendNested(s, ch, nbs)
		}
	case jkList:
		nb.ls.Append(true)
		elem := n.children[0]
		for k := int64(0); k < c.Int; k++ {
			d.appendNested(s, elem, nbs)
		}
	case jkMap:
		nb.mp.Append(true)
		key, val := n.children[0], n.children[1]
		for k := int64(0); k < c.Int; k++ {
			d.appendNested(s, key, nbs)
			d.appendNested(s, val, nbs)
		}
	}
}

func (d *JSONDecoder) appendNested(s *parseSlot, n *jsonNode, nbs []nodeBuilder) {
	c := &s.tape[d.tapePos]
	d.tapePos++
	d.appendValue(s, n, nbs, c)
}

// buildersFor returns the typed builders of b, binding them on first use.
func (d *JSONDecoder) buildersFor(b *array.RecordBuilder) []nodeBuilder {
	return cachedBuilders(&d.builders, b, d.nnodes, func(nodes []nodeBuilder) {
		if !sameColumns(b.Schema(), d.schema) {
			panic(fmt.Sprintf("ingest: RecordBuilder schema %s does not match the decoder's %s", b.Schema(), d.schema))
		}
		for i, n := range d.root.children {
			bindBuilder(n, b.Field(i), nodes)
		}
	})
}

// cachedBuilders returns the typed builders of b from cache (most recently
// used first, at most maxCachedBuilders), binding them with bind on a miss.
func cachedBuilders(cache *[]*builderSet, b *array.RecordBuilder, nnodes int, bind func(nodes []nodeBuilder)) []nodeBuilder {
	c := *cache
	for i, bs := range c {
		if bs.rb == b {
			if i != 0 {
				copy(c[1:i+1], c[:i])
				c[0] = bs
			}
			return bs.nodes
		}
	}
	var bs *builderSet
	if len(c) < maxCachedBuilders {
		bs = &builderSet{nodes: make([]nodeBuilder, nnodes)}
		c = append(c, nil)
	} else {
		bs = c[len(c)-1]
		clear(bs.nodes)
	}
	copy(c[1:], c[:len(c)-1])
	c[0] = bs
	bs.rb = b
	*cache = c
	bind(bs.nodes)
	return bs.nodes
}

// sameColumns compares names and types only: metadata (docs, field ids) does not change what the
// builders accept.
func sameColumns(a, b *arrow.Schema) bool {
	if a == b {
		return true
	}
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i := range a.NumFields() {
		fa, fb := a.Field(i), b.Field(i)
		if fa.Name != fb.Name || !arrow.TypeEqual(fa.Type, fb.Type) {
			return false
		}
	}
	return true
}

func bindBuilder(n *jsonNode, b array.Builder, nbs []nodeBuilder) {
	nb := &nbs[n.id]
	if !bindTyped(n.kind, b, nb) {
		panic(fmt.Sprintf("ingest: builder for %s column %q is %T", n.typeName, n.name, b))
	}
	switch n.kind {
	case jkStruct:
		for i, c := range n.children {
			bindBuilder(c, nb.st.FieldBuilder(i), nbs)
		}
	case jkList:
		bindBuilder(n.children[0], nb.ls.ValueBuilder(), nbs)
	case jkMap:
		bindBuilder(n.children[0], nb.mp.KeyBuilder(), nbs)
		bindBuilder(n.children[1], nb.mp.ItemBuilder(), nbs)
	}
}

// bindTyped sets nb's typed builder for kind from b, and reports whether b
// is of the type kind needs. Nested kinds bind only their own builder: the
// caller binds the children (every decoder has its own node type).
func bindTyped(kind jsonKind, b array.Builder, nb *nodeBuilder) bool {
	nb.any = b
	ok := true
	switch kind {
	case jkBool:
		nb.bl, ok = b.(*array.BooleanBuilder)
	case jkInt32:
		nb.i32, ok = b.(*array.Int32Builder)
	case jkInt64:
		nb.i64, ok = b.(*array.Int64Builder)
	case jkFloat32:
		nb.f32, ok = b.(*array.Float32Builder)
	case jkFloat64:
		nb.f64, ok = b.(*array.Float64Builder)
	case jkDecimal:
		nb.dec, ok = b.(*array.Decimal128Builder)
	case jkDate:
		nb.date, ok = b.(*array.Date32Builder)
	case jkTime:
		nb.tm, ok = b.(*array.Time64Builder)
	case jkTimestamp, jkTimestampNs:
		nb.ts, ok = b.(*array.TimestampBuilder)
	case jkString:
		var sb *array.StringBuilder
		if sb, ok = b.(*array.StringBuilder); ok {
			nb.bin = sb.BinaryBuilder
		}
	case jkBinary:
		nb.bin, ok = b.(*array.BinaryBuilder)
	case jkFixed:
		nb.fsb, ok = b.(*array.FixedSizeBinaryBuilder)
	case jkUUID:
		// UUIDs are an Arrow extension type over fixed_size_binary(16).
		var eb interface{ StorageBuilder() array.Builder }
		if eb, ok = b.(interface{ StorageBuilder() array.Builder }); ok {
			nb.fsb, ok = eb.StorageBuilder().(*array.FixedSizeBinaryBuilder)
		}
	case jkUnknown:
	case jkStruct:
		nb.st, ok = b.(*array.StructBuilder)
	case jkList:
		nb.ls, ok = b.(*array.ListBuilder)
	case jkMap:
		nb.mp, ok = b.(*array.MapBuilder)
	}
	return ok
}
