package decode

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/iceberg-go"
)

// Avro writer schemas: parsing (the whole Avro type system, so that the
// decoder can skip any field the table does not have) and the mapping to
// Iceberg (Appendix A of the Iceberg spec, read backwards).

type avroKind uint8

const (
	akNull avroKind = iota
	akBoolean
	akInt
	akLong
	akFloat
	akDouble
	akBytes
	akString
	akRecord
	akEnum
	akArray
	akMap
	akFixed
	akUnion
)

var avroKindNames = [...]string{
	akNull: "null", akBoolean: "boolean", akInt: "int", akLong: "long", akFloat: "float",
	akDouble: "double", akBytes: "bytes", akString: "string", akRecord: "record",
	akEnum: "enum", akArray: "array", akMap: "map", akFixed: "fixed", akUnion: "union",
}

// avroLogical is a logical type annotation that applies: one the Avro (or
// Iceberg) spec defines, on the underlying type it is defined for, with valid
// parameters. Others are ignored, as the Avro spec asks, and the value is
// read as its underlying type.
type avroLogical uint8

const (
	alNone avroLogical = iota
	alDecimal
	alDate
	alTimeMillis
	alTimeMicros
	alTimestampMillis
	alTimestampMicros
	alTimestampNanos
	alUUID
	alMap // Iceberg's array of key/value records
)

// avroNode is one node of a parsed Avro schema. Named types (records, enums,
// fixed) are one node however often they are referenced, so a recursive
// record is a cycle.
type avroNode struct {
	kind    avroKind
	logical avroLogical
	utc     bool // timestamps: adjust-to-utc, resolved (see ParseAvroSchema)

	precision, scale int // decimal
	size             int // fixed

	name     string   // full name of a named type
	symbols  []string // enum
	fields   []*avroField
	items    *avroNode   // array
	values   *avroNode   // map
	branches []*avroNode // union

	elementID, keyID, valueID int // Iceberg ids on arrays and maps, -1 when absent

	// minSize is the fewest bytes a value takes on the wire (a lower bound
	// for recursive records); the decoder bounds item counts with it.
	minSize int
}

type avroField struct {
	name   string
	doc    string
	typ    *avroNode
	id     int // Iceberg field-id, -1 when absent
	def    any // the Avro default as parsed JSON (json.Number for numbers)
	hasDef bool
}

// AvroSchema is a parsed Avro writer schema (JSON text), with its Iceberg form.
type AvroSchema struct {
	root *avroNode
}

// ParseAvroSchema parses an Avro schema in its JSON form, as a schema
// registry stores it. Named types may be referenced by name (also
// recursively); logical types the Avro spec does not define, or that are
// invalid (a decimal whose precision does not fit its fixed size, a uuid on a
// fixed that is not 16 bytes), are ignored as the Avro spec asks, and their
// values are read as the underlying type.
//
// Timestamps: "adjust-to-utc" (Iceberg's convention) decides between Iceberg
// timestamptz and timestamp when present; when absent, timestamp-millis,
// -micros and -nanos are instants (timestamptz), as the Avro spec defines
// them, and local-timestamp-* are timestamp.
func ParseAvroSchema(text string) (*AvroSchema, error) {
	return ParseAvroSchemaWith(text, nil)
}

// ParseAvroSchemaWith parses an Avro schema that uses named types defined
// by others (a schema registry's references): deps are their texts, each
// after the ones it uses, as the registry client's Dependencies lists them.
func ParseAvroSchemaWith(text string, deps []string) (*AvroSchema, error) {
	p := &avroParser{names: map[string]*avroNode{}}
	for i, d := range deps {
		v, err := avroJSON(d)
		if err != nil {
			return nil, fmt.Errorf("avro schema: reference %d: %w", i+1, err)
		}
		if _, err := p.parse(v, "", ""); err != nil {
			return nil, fmt.Errorf("avro schema: reference %d: %w", i+1, err)
		}
	}
	v, err := avroJSON(text)
	if err != nil {
		return nil, fmt.Errorf("avro schema: %w", err)
	}
	root, err := p.parse(v, "", "")
	if err != nil {
		return nil, err
	}
	if err := computeMinSizes(root, map[*avroNode]uint8{}, map[*avroNode]bool{}); err != nil {
		return nil, err
	}
	return &AvroSchema{root: root}, nil
}

// avroJSON decodes one JSON document, numbers as json.Number.
func avroJSON(text string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the schema")
	}
	return v, nil
}

type avroParser struct {
	names map[string]*avroNode // full name -> named type
}

var avroPrimitives = map[string]avroKind{
	"null": akNull, "boolean": akBoolean, "int": akInt, "long": akLong, "float": akFloat,
	"double": akDouble, "bytes": akBytes, "string": akString,
}

func schemaErr(path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if path == "" {
		return errors.New("avro schema: " + msg)
	}
	return fmt.Errorf("avro schema: field %q: %s", path, msg)
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// parse parses the schema v in namespace ns; path names the field for messages.
func (p *avroParser) parse(v any, ns, path string) (*avroNode, error) {
	switch v := v.(type) {
	case string:
		if k, ok := avroPrimitives[v]; ok {
			return &avroNode{kind: k, elementID: -1, keyID: -1, valueID: -1}, nil
		}
		return p.lookup(v, ns, path)
	case []any:
		n := &avroNode{kind: akUnion, elementID: -1, keyID: -1, valueID: -1}
		seen := map[string]bool{}
		for _, b := range v {
			bn, err := p.parse(b, ns, path)
			if err != nil {
				return nil, err
			}
			if bn.kind == akUnion {
				return nil, schemaErr(path, "a union may not contain a union")
			}
			key := avroKindNames[bn.kind]
			if bn.name != "" {
				key = bn.name
			}
			if seen[key] {
				return nil, schemaErr(path, "union has two branches of type %s", key)
			}
			seen[key] = true
			n.branches = append(n.branches, bn)
		}
		if len(n.branches) == 0 {
			return nil, schemaErr(path, "empty union")
		}
		return n, nil
	case map[string]any:
		return p.parseObject(v, ns, path)
	}
	return nil, schemaErr(path, "expected a type name, a union or a type object, got %s", jsonText(v))
}

func (p *avroParser) lookup(name, ns, path string) (*avroNode, error) {
	if !strings.Contains(name, ".") && ns != "" {
		if n, ok := p.names[ns+"."+name]; ok {
			return n, nil
		}
	}
	if n, ok := p.names[name]; ok {
		return n, nil
	}
	return nil, schemaErr(path, "unknown type %q", name)
}

func (p *avroParser) parseObject(o map[string]any, ns, path string) (*avroNode, error) {
	t, ok := o["type"]
	if !ok {
		return nil, schemaErr(path, `type object has no "type"`)
	}
	ts, ok := t.(string)
	if !ok {
		// {"type": {...}} or {"type": [...]}: the inner schema is the type.
		return p.parse(t, ns, path)
	}
	n := &avroNode{elementID: -1, keyID: -1, valueID: -1}
	if k, ok := avroPrimitives[ts]; ok {
		n.kind = k
		if err := applyLogical(n, o, path); err != nil {
			return nil, err
		}
		return n, nil
	}
	var err error
	switch ts {
	case "record", "error":
		n.kind = akRecord
		if ns, err = p.define(n, o, ns, path); err != nil {
			return nil, err
		}
		fs, ok := o["fields"].([]any)
		if !ok {
			return nil, schemaErr(path, "record %s has no fields array", n.name)
		}
		seen := map[string]bool{}
		for _, fv := range fs {
			fo, ok := fv.(map[string]any)
			if !ok {
				return nil, schemaErr(path, "record %s: a field is not an object", n.name)
			}
			fname, _ := fo["name"].(string)
			if !validAvroName(fname) {
				return nil, schemaErr(path, "record %s: invalid field name %s", n.name, jsonText(fo["name"]))
			}
			if seen[fname] {
				return nil, schemaErr(path, "record %s: duplicate field %q", n.name, fname)
			}
			seen[fname] = true
			fpath := joinPath(path, fname)
			ft, ok := fo["type"]
			if !ok {
				return nil, schemaErr(fpath, `field has no "type"`)
			}
			f := &avroField{name: fname, id: -1}
			if f.typ, err = p.parse(ft, ns, fpath); err != nil {
				return nil, err
			}
			f.doc, _ = fo["doc"].(string)
			f.def, f.hasDef = fo["default"]
			if f.id, err = idProp(fo, "field-id", fpath); err != nil {
				return nil, err
			}
			n.fields = append(n.fields, f)
		}
	case "enum":
		n.kind = akEnum
		if _, err = p.define(n, o, ns, path); err != nil {
			return nil, err
		}
		syms, ok := o["symbols"].([]any)
		if !ok {
			return nil, schemaErr(path, "enum %s has no symbols array", n.name)
		}
		seen := map[string]bool{}
		for _, s := range syms {
			str, ok := s.(string)
			if !ok || !validAvroName(str) {
				return nil, schemaErr(path, "enum %s: invalid symbol %s", n.name, jsonText(s))
			}
			if seen[str] {
				return nil, schemaErr(path, "enum %s: duplicate symbol %q", n.name, str)
			}
			seen[str] = true
			n.symbols = append(n.symbols, str)
		}
	case "fixed":
		n.kind = akFixed
		if _, err = p.define(n, o, ns, path); err != nil {
			return nil, err
		}
		size, ok := jsonInt(o["size"])
		if !ok || size < 0 || size > math.MaxInt32 {
			return nil, schemaErr(path, "fixed %s: invalid size %s", n.name, jsonText(o["size"]))
		}
		n.size = int(size)
		if err := applyLogical(n, o, path); err != nil {
			return nil, err
		}
	case "array":
		n.kind = akArray
		it, ok := o["items"]
		if !ok {
			return nil, schemaErr(path, `array has no "items"`)
		}
		if n.items, err = p.parse(it, ns, path+"[]"); err != nil {
			return nil, err
		}
		if n.elementID, err = idProp(o, "element-id", path); err != nil {
			return nil, err
		}
		if err := applyLogical(n, o, path); err != nil {
			return nil, err
		}
	case "map":
		n.kind = akMap
		vt, ok := o["values"]
		if !ok {
			return nil, schemaErr(path, `map has no "values"`)
		}
		if n.values, err = p.parse(vt, ns, joinPath(path, "value")); err != nil {
			return nil, err
		}
		if n.keyID, err = idProp(o, "key-id", path); err != nil {
			return nil, err
		}
		if n.valueID, err = idProp(o, "value-id", path); err != nil {
			return nil, err
		}
	default:
		// {"type": "com.example.Named"}
		return p.lookup(ts, ns, path)
	}
	return n, nil
}

// define registers the named type n (record, enum or fixed) and returns its namespace, which
// is the enclosing one for the types defined inside it.
func (p *avroParser) define(n *avroNode, o map[string]any, ns, path string) (string, error) {
	name, _ := o["name"].(string)
	if name == "" {
		return "", schemaErr(path, "%s has no name", o["type"])
	}
	if nsv, ok := o["namespace"]; ok && !strings.Contains(name, ".") {
		s, ok := nsv.(string)
		if !ok {
			return "", schemaErr(path, "%s %s: namespace is not a string", o["type"], name)
		}
		ns = s
	}
	full := name
	if !strings.Contains(name, ".") && ns != "" {
		full = ns + "." + name
	}
	for _, part := range strings.Split(full, ".") {
		if !validAvroName(part) {
			return "", schemaErr(path, "invalid name %q", full)
		}
	}
	if _, ok := avroPrimitives[full]; ok {
		return "", schemaErr(path, "a named type may not be called %q", full)
	}
	if _, dup := p.names[full]; dup {
		return "", schemaErr(path, "type %s is defined twice", full)
	}
	n.name = full
	p.names[full] = n
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i], nil
	}
	return "", nil
}

func validAvroName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || (c|0x20) >= 'a' && (c|0x20) <= 'z':
		case i > 0 && c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}

// applyLogical sets n.logical from the "logicalType" of its type object, when the logical type
// applies to n's underlying type and is valid.
func applyLogical(n *avroNode, o map[string]any, path string) error {
	lt, _ := o["logicalType"].(string)
	utc, hasUTC := o["adjust-to-utc"]
	if hasUTC {
		if _, ok := utc.(bool); !ok {
			return schemaErr(path, `"adjust-to-utc" must be true or false, not %s`, jsonText(utc))
		}
	}
	ts := func(l avroLogical, local bool) {
		n.logical = l
		n.utc = !local
		if hasUTC {
			n.utc = utc.(bool)
		}
	}
	switch {
	case n.kind == akInt && lt == "date":
		n.logical = alDate
	case n.kind == akInt && lt == "time-millis":
		n.logical = alTimeMillis
	case n.kind == akLong && lt == "time-micros":
		n.logical = alTimeMicros
	case n.kind == akLong && lt == "timestamp-millis":
		ts(alTimestampMillis, false)
	case n.kind == akLong && lt == "timestamp-micros":
		ts(alTimestampMicros, false)
	case n.kind == akLong && lt == "timestamp-nanos":
		ts(alTimestampNanos, false)
	case n.kind == akLong && lt == "local-timestamp-millis":
		ts(alTimestampMillis, true)
	case n.kind == akLong && lt == "local-timestamp-micros":
		ts(alTimestampMicros, true)
	case n.kind == akLong && lt == "local-timestamp-nanos":
		ts(alTimestampNanos, true)
	case n.kind == akString && lt == "uuid", n.kind == akFixed && lt == "uuid" && n.size == 16:
		n.logical = alUUID
	case (n.kind == akBytes || n.kind == akFixed) && lt == "decimal":
		prec, ok1 := jsonInt(o["precision"])
		scale, ok2 := int64(0), true
		if sv, ok := o["scale"]; ok {
			scale, ok2 = jsonInt(sv)
		}
		if !ok1 || !ok2 || prec < 1 || prec > 1000 || scale < 0 || scale > prec {
			return nil // invalid: ignored
		}
		if n.kind == akFixed && int(prec) > maxDecimalDigits(n.size) {
			return nil
		}
		n.logical, n.precision, n.scale = alDecimal, int(prec), int(scale)
	case n.kind == akArray && lt == "map":
		if r := n.items; r != nil && r.kind == akRecord && len(r.fields) == 2 {
			n.logical = alMap
		}
	}
	return nil
}

// maxDecimalDigits is the largest precision a two's-complement value of size bytes holds.
func maxDecimalDigits(size int) int {
	if size <= 0 {
		return 0
	}
	if size > 128 {
		return 1000
	}
	return int(math.Floor(math.Log10(math.Pow(2, float64(8*size-1)) - 1)))
}

func idProp(o map[string]any, key, path string) (int, error) {
	v, ok := o[key]
	if !ok {
		return -1, nil
	}
	id, ok := jsonInt(v)
	if !ok || id < 0 || id > math.MaxInt32 {
		return 0, schemaErr(path, "%q must be a non-negative integer, not %s", key, jsonText(v))
	}
	return int(id), nil
}

func jsonInt(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

func jsonText(v any) string {
	if v == nil {
		return "nothing"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return shorten(string(b))
}

// computeMinSizes fills minSize for n and every node below it. state: 1 while n is being
// computed, 2 when done; chain holds the records reached from the nearest array, map or union
// above (or the root) through records only.
func computeMinSizes(n *avroNode, state map[*avroNode]uint8, chain map[*avroNode]bool) error {
	if chain[n] {
		// Each array, map or union takes at least a byte: a record that contains itself
		// without one in between can never be written.
		return fmt.Errorf("avro schema: record %s contains itself without a union or an array in between, so no value of it can be written", n.name)
	}
	if state[n] != 0 {
		// Done, or in progress above an array, map or union: its size is not needed there.
		return nil
	}
	state[n] = 1
	defer func() { state[n] = 2 }()
	switch n.kind {
	case akNull:
		n.minSize = 0
	case akBoolean, akInt, akLong, akBytes, akString, akEnum:
		n.minSize = 1
	case akFloat:
		n.minSize = 4
	case akDouble:
		n.minSize = 8
	case akFixed:
		n.minSize = n.size
	case akRecord:
		chain[n] = true
		defer delete(chain, n)
		n.minSize = 0
		for _, f := range n.fields {
			if err := computeMinSizes(f.typ, state, chain); err != nil {
				return err
			}
			n.minSize = min(n.minSize+f.typ.minSize, 1<<30)
		}
	case akArray, akMap, akUnion:
		n.minSize = 1 // a block count or a branch index
		var kids []*avroNode
		switch n.kind {
		case akArray:
			kids = []*avroNode{n.items}
		case akMap:
			kids = []*avroNode{n.values}
		default:
			kids = n.branches
		}
		for _, k := range kids {
			if err := computeMinSizes(k, state, map[*avroNode]bool{}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Record returns the record type of the record's field name (a union of
// null and a record counts), as a schema of its own: Debezium's "after"
// record in its change event, say. ok is false when the schema is not a
// record, or has no such field, or the field is not a record.
func (s *AvroSchema) Record(name string) (_ *AvroSchema, ok bool) {
	if s.root.kind != akRecord {
		return nil, false
	}
	for _, f := range s.root.fields {
		if f.name != name {
			continue
		}
		inner, _, ok := f.typ.nullable()
		if !ok || inner.kind != akRecord {
			return nil, false
		}
		return &AvroSchema{root: inner}, true
	}
	return nil, false
}

// nullable returns the non-null type of a union of null and one type (or of a union of one
// type), and whether null is a branch, and its index. ok is false for other unions.
func (n *avroNode) nullable() (inner *avroNode, nullIdx int, ok bool) {
	if n.kind != akUnion {
		return n, -1, true
	}
	nullIdx = -1
	for i, b := range n.branches {
		if b.kind == akNull {
			nullIdx = i
		} else {
			if inner != nil {
				return nil, 0, false
			}
			inner = b
		}
	}
	if inner == nil { // ["null"]
		inner = n.branches[0]
		nullIdx = -1
	}
	return inner, nullIdx, true
}

// describe names a writer type for messages: "string", "record com.example.User",
// "long (timestamp-micros)", "[null, string, int]".
func (n *avroNode) describe() string {
	switch n.kind {
	case akUnion:
		parts := make([]string, len(n.branches))
		for i, b := range n.branches {
			parts[i] = b.describe()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case akRecord, akEnum:
		return avroKindNames[n.kind] + " " + n.name
	case akFixed:
		s := fmt.Sprintf("fixed %s (size %d)", n.name, n.size)
		if n.logical == alDecimal {
			s += fmt.Sprintf(" decimal(%d,%d)", n.precision, n.scale)
		} else if n.logical == alUUID {
			s += " uuid"
		}
		return s
	case akArray:
		if n.logical == alMap {
			return "array (map) of " + n.items.describe()
		}
		return "array of " + n.items.describe()
	case akMap:
		return "map of " + n.values.describe()
	}
	s := avroKindNames[n.kind]
	switch n.logical {
	case alDecimal:
		s += fmt.Sprintf(" (decimal(%d,%d))", n.precision, n.scale)
	case alDate:
		s += " (date)"
	case alTimeMillis:
		s += " (time-millis)"
	case alTimeMicros:
		s += " (time-micros)"
	case alTimestampMillis, alTimestampMicros, alTimestampNanos:
		unit := map[avroLogical]string{alTimestampMillis: "millis", alTimestampMicros: "micros", alTimestampNanos: "nanos"}[n.logical]
		if n.utc {
			s += " (timestamp-" + unit + ", adjusted to UTC)"
		} else {
			s += " (local-timestamp-" + unit + ")"
		}
	case alUUID:
		s += " (uuid)"
	}
	return s
}

// --- Iceberg mapping ---

// Iceberg maps the schema, which must be a record, to an Iceberg schema (Appendix A of the
// Iceberg spec): record -> struct; a union of null and T -> optional T (any other union is an
// error naming the field); array -> list (an array with logical type "map" of key/value
// records -> map); map -> map<string, V>; enum -> string; fixed(n) -> fixed[n]; bytes ->
// binary; decimal (bytes or fixed) -> decimal(P,S); date -> date; time-millis and
// time-micros -> time; timestamp-millis/-micros -> timestamptz or timestamp (see
// ParseAvroSchema), -nanos -> timestamptz_ns or timestamp_ns; uuid (string or fixed(16)) ->
// uuid; null -> unknown; int, long, float, double, boolean and string as themselves.
//
// Field ids: the "field-id", "element-id", "key-id" and "value-id" properties are used where
// present (Avro written by Iceberg has them all). Fields, elements, keys and values without
// one are numbered from one more than the largest id present (from 1 when none is), in the
// order Iceberg assigns fresh ids: all fields of a struct in writer order, then the nested
// types of each field in turn, depth first; a list's element before the element's own
// fields; a map's key, then its value, then their nested fields. For a schema without ids
// the top-level columns are therefore 1..n in writer order. The ids are only as stable as
// the writer schema's shape: match columns across schema versions by name.
//
// Field docs are kept. Avro field defaults become the Iceberg field's initial-default and
// write-default when they are primitive values (records, arrays and maps as defaults are
// dropped: Iceberg can only have null or empty ones); null defaults are no default. Iceberg
// has defaults from format version 3: a v2 table refuses a schema with non-null defaults.
func (s *AvroSchema) Iceberg() (*iceberg.Schema, error) {
	if s.root.kind != akRecord {
		return nil, fmt.Errorf("avro schema: the schema is a %s, not a record", s.root.describe())
	}
	m := &icebergMapper{inProgress: map[*avroNode]bool{}, used: map[int]bool{}}
	st, err := m.record(s.root, "")
	if err != nil {
		return nil, err
	}
	next := m.maxID + 1
	assign := func(id *int) {
		if *id < 0 {
			*id = next
			next++
		}
	}
	assignFreshIDs(st, assign)
	return iceberg.NewSchema(0, st.FieldList...), nil
}

type icebergMapper struct {
	inProgress map[*avroNode]bool
	used       map[int]bool
	maxID      int
}

func (m *icebergMapper) useID(id int, path string) error {
	if id < 0 {
		return nil
	}
	if m.used[id] {
		return fmt.Errorf("avro schema: field %q: id %d is used twice", path, id)
	}
	m.used[id] = true
	m.maxID = max(m.maxID, id)
	return nil
}

func unsupportedUnion(path string, n *avroNode) error {
	return fmt.Errorf("avro schema: field %q has type %s: unions other than of null and one type are not supported (Iceberg has no union type)", path, n.describe())
}

func (m *icebergMapper) record(n *avroNode, path string) (*iceberg.StructType, error) {
	if m.inProgress[n] {
		return nil, fmt.Errorf("avro schema: field %q: record %s is recursive, which Iceberg cannot represent", path, n.name)
	}
	m.inProgress[n] = true
	defer delete(m.inProgress, n)
	st := &iceberg.StructType{}
	for _, f := range n.fields {
		fpath := joinPath(path, f.name)
		t, optional, err := m.typ(f.typ, fpath)
		if err != nil {
			return nil, err
		}
		if err := m.useID(f.id, fpath); err != nil {
			return nil, err
		}
		nf := iceberg.NestedField{ID: f.id, Name: f.name, Type: t, Required: !optional, Doc: f.doc}
		if f.hasDef {
			if dv, ok := icebergDefault(f.typ, f.def); ok {
				nf.InitialDefault, nf.WriteDefault = dv, dv
			}
		}
		st.FieldList = append(st.FieldList, nf)
	}
	return st, nil
}

// typ maps a field, element or value type; optional reports a union with null.
func (m *icebergMapper) typ(n *avroNode, path string) (iceberg.Type, bool, error) {
	inner, nullIdx, ok := n.nullable()
	if !ok {
		return nil, false, unsupportedUnion(path, n)
	}
	optional := nullIdx >= 0 || inner.kind == akNull
	switch inner.kind {
	case akNull:
		return iceberg.PrimitiveTypes.Unknown, true, nil
	case akBoolean:
		return iceberg.PrimitiveTypes.Bool, optional, nil
	case akInt:
		switch inner.logical {
		case alDate:
			return iceberg.PrimitiveTypes.Date, optional, nil
		case alTimeMillis:
			return iceberg.PrimitiveTypes.Time, optional, nil
		}
		return iceberg.PrimitiveTypes.Int32, optional, nil
	case akLong:
		switch inner.logical {
		case alTimeMicros:
			return iceberg.PrimitiveTypes.Time, optional, nil
		case alTimestampMillis, alTimestampMicros:
			if inner.utc {
				return iceberg.PrimitiveTypes.TimestampTz, optional, nil
			}
			return iceberg.PrimitiveTypes.Timestamp, optional, nil
		case alTimestampNanos:
			if inner.utc {
				return iceberg.PrimitiveTypes.TimestampTzNs, optional, nil
			}
			return iceberg.PrimitiveTypes.TimestampNs, optional, nil
		}
		return iceberg.PrimitiveTypes.Int64, optional, nil
	case akFloat:
		return iceberg.PrimitiveTypes.Float32, optional, nil
	case akDouble:
		return iceberg.PrimitiveTypes.Float64, optional, nil
	case akString:
		if inner.logical == alUUID {
			return iceberg.PrimitiveTypes.UUID, optional, nil
		}
		return iceberg.PrimitiveTypes.String, optional, nil
	case akEnum:
		return iceberg.PrimitiveTypes.String, optional, nil
	case akBytes, akFixed:
		switch inner.logical {
		case alDecimal:
			if inner.precision > 38 {
				return nil, false, fmt.Errorf("avro schema: field %q has type %s: Iceberg decimals have at most 38 digits", path, inner.describe())
			}
			return iceberg.DecimalTypeOf(inner.precision, inner.scale), optional, nil
		case alUUID:
			return iceberg.PrimitiveTypes.UUID, optional, nil
		}
		if inner.kind == akFixed {
			return iceberg.FixedTypeOf(inner.size), optional, nil
		}
		return iceberg.PrimitiveTypes.Binary, optional, nil
	case akRecord:
		st, err := m.record(inner, path)
		return st, optional, err
	case akArray:
		if inner.logical == alMap {
			kf, vf := inner.items.fields[0], inner.items.fields[1]
			kt, kopt, err := m.typ(kf.typ, path+".key")
			if err != nil {
				return nil, false, err
			}
			if kopt {
				return nil, false, fmt.Errorf("avro schema: field %q: map keys may not be null", path)
			}
			vt, vopt, err := m.typ(vf.typ, path+".value")
			if err != nil {
				return nil, false, err
			}
			if err := m.useID(kf.id, path+".key"); err != nil {
				return nil, false, err
			}
			if err := m.useID(vf.id, path+".value"); err != nil {
				return nil, false, err
			}
			return &iceberg.MapType{KeyID: kf.id, KeyType: kt, ValueID: vf.id, ValueType: vt, ValueRequired: !vopt}, optional, nil
		}
		et, eopt, err := m.typ(inner.items, path+"[]")
		if err != nil {
			return nil, false, err
		}
		if err := m.useID(inner.elementID, path+"[]"); err != nil {
			return nil, false, err
		}
		return &iceberg.ListType{ElementID: inner.elementID, Element: et, ElementRequired: !eopt}, optional, nil
	case akMap:
		vt, vopt, err := m.typ(inner.values, path+".value")
		if err != nil {
			return nil, false, err
		}
		if err := m.useID(inner.keyID, path+".key"); err != nil {
			return nil, false, err
		}
		if err := m.useID(inner.valueID, path+".value"); err != nil {
			return nil, false, err
		}
		return &iceberg.MapType{KeyID: inner.keyID, KeyType: iceberg.PrimitiveTypes.String, ValueID: inner.valueID,
			ValueType: vt, ValueRequired: !vopt}, optional, nil
	}
	return nil, false, fmt.Errorf("avro schema: field %q has unsupported type %s", path, inner.describe())
}

// assignFreshIDs gives ids to the fields, elements, keys and values that have none (-1), in
// Iceberg's fresh-id order: a struct's fields first, then each field's nested types.
func assignFreshIDs(st *iceberg.StructType, assign func(*int)) {
	for i := range st.FieldList {
		assign(&st.FieldList[i].ID)
	}
	for i := range st.FieldList {
		assignNestedIDs(st.FieldList[i].Type, assign)
	}
}

func assignNestedIDs(t iceberg.Type, assign func(*int)) {
	switch t := t.(type) {
	case *iceberg.StructType:
		assignFreshIDs(t, assign)
	case *iceberg.ListType:
		assign(&t.ElementID)
		assignNestedIDs(t.Element, assign)
	case *iceberg.MapType:
		assign(&t.KeyID)
		assign(&t.ValueID)
		assignNestedIDs(t.KeyType, assign)
		assignNestedIDs(t.ValueType, assign)
	}
}

// icebergDefault converts the Avro default of a field of type n to the Go value iceberg-go
// keeps as a default (the value of the spec's JSON single-value serialization; []byte for
// binary and fixed). ok is false for null, for complex defaults and for invalid ones.
func icebergDefault(n *avroNode, v any) (any, bool) {
	if n.kind == akUnion {
		// The default of a union is a value of its first branch.
		if _, _, ok := n.nullable(); !ok {
			return nil, false
		}
		n = n.branches[0]
	}
	if v == nil {
		return nil, false
	}
	switch n.kind {
	case akBoolean:
		b, ok := v.(bool)
		return b, ok
	case akInt:
		i, ok := jsonInt(v)
		if !ok || int64(int32(i)) != i {
			return nil, false
		}
		switch n.logical {
		case alDate:
			return time.Unix(i*86400, 0).UTC().Format("2006-01-02"), true
		case alTimeMillis:
			if i < 0 || i >= 86400e3 {
				return nil, false
			}
			return formatTimeOfDay(i * 1000), true
		}
		return int32(i), true
	case akLong:
		i, ok := jsonInt(v)
		if !ok {
			return nil, false
		}
		switch n.logical {
		case alTimeMicros:
			if i < 0 || i >= 86400e6 {
				return nil, false
			}
			return formatTimeOfDay(i), true
		case alTimestampMillis, alTimestampMicros, alTimestampNanos:
			var t time.Time
			layout := "2006-01-02T15:04:05.000000"
			switch n.logical {
			case alTimestampMillis:
				t = time.UnixMilli(i)
			case alTimestampMicros:
				t = time.UnixMicro(i)
			default:
				t = time.Unix(0, i)
				layout = "2006-01-02T15:04:05.000000000"
			}
			s := t.UTC().Format(layout)
			if n.utc {
				s += "+00:00"
			}
			return s, true
		}
		return i, true
	case akFloat, akDouble:
		num, ok := v.(json.Number)
		if !ok {
			return nil, false
		}
		bits := 64
		if n.kind == akFloat {
			bits = 32
		}
		f, err := strconv.ParseFloat(string(num), bits)
		if err != nil {
			return nil, false
		}
		if n.kind == akFloat {
			return float32(f), true
		}
		return f, true
	case akString:
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		if n.logical == alUUID {
			var u [16]byte
			if !parseUUID(u[:], []byte(s)) {
				return nil, false
			}
		}
		return s, true
	case akEnum:
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		for _, sym := range n.symbols {
			if sym == s {
				return s, true
			}
		}
		return nil, false
	case akBytes, akFixed:
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		// Avro writes bytes defaults as strings of code points 0-255.
		b := make([]byte, 0, len(s))
		for _, r := range s {
			if r > 0xFF {
				return nil, false
			}
			b = append(b, byte(r))
		}
		if n.kind == akFixed && len(b) != n.size {
			return nil, false
		}
		switch n.logical {
		case alDecimal:
			if len(b) == 0 || n.precision > 38 {
				return nil, false
			}
			num, ok := decimalFromTwos(b)
			if !ok || !num.FitsInPrecision(int32(n.precision)) {
				return nil, false
			}
			return num.ToString(int32(n.scale)), true
		case alUUID:
			return formatUUID(b), true
		}
		return b, true
	}
	return nil, false
}

func formatTimeOfDay(us int64) string {
	return time.UnixMicro(us).UTC().Format("15:04:05.000000")
}

func formatUUID(b []byte) string {
	const hex = "0123456789abcdef"
	var out []byte
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&15])
	}
	return string(out)
}

// decimalFromTwos converts a big-endian two's-complement integer to a decimal128.Num; ok is
// false when it needs more than 128 bits.
func decimalFromTwos(b []byte) (decimal128.Num, bool) {
	neg := len(b) > 0 && b[0]&0x80 != 0
	if len(b) > 16 {
		ext := byte(0)
		if neg {
			ext = 0xFF
		}
		for _, c := range b[:len(b)-16] {
			if c != ext {
				return decimal128.Num{}, false
			}
		}
		// The kept bytes must carry the same sign.
		if (b[len(b)-16]&0x80 != 0) != neg {
			return decimal128.Num{}, false
		}
		b = b[len(b)-16:]
	}
	var hi, lo uint64
	if neg {
		hi, lo = math.MaxUint64, math.MaxUint64
	}
	for _, c := range b {
		hi = hi<<8 | lo>>56
		lo = lo<<8 | uint64(c)
	}
	return decimal128.New(int64(hi), lo), true
}
