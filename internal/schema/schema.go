// Package schema turns the declarative table description of a pipeline's
// configuration (type strings, partition transforms, Kafka metadata columns)
// into Iceberg schemas and partition specs (and back into text), and finds
// in a table's metadata the specs floe writes some files under
// (UnpartitionedSpec).
//
// Field ids are assigned depth-first from 1 in declaration order, the same
// order iceberg-go's fresh-id assignment uses, so a declared schema and the
// table floe creates from it agree on ids.
package schema

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"
)

// Column is one declared column.
type Column struct {
	Name     string
	Type     string
	Required bool
	Doc      string
}

// MetaColumns maps the short names accepted in configuration to the Kafka
// metadata columns and their types.
var MetaColumns = []struct {
	Short, Name string
	Type        iceberg.Type
}{
	{"topic", "_kafka_topic", iceberg.PrimitiveTypes.String},
	{"partition", "_kafka_partition", iceberg.PrimitiveTypes.Int32},
	{"offset", "_kafka_offset", iceberg.PrimitiveTypes.Int64},
	{"timestamp", "_kafka_timestamp", iceberg.PrimitiveTypes.TimestampTz},
	{"key", "_kafka_key", iceberg.PrimitiveTypes.Binary},
}

// IsMetaColumn reports whether name is the name of a Kafka metadata column
// (_kafka_offset, not offset).
func IsMetaColumn(name string) bool {
	for _, m := range MetaColumns {
		if m.Name == name {
			return true
		}
	}
	return false
}

// MetaColumnName returns the column name for a short metadata name.
func MetaColumnName(short string) (string, error) {
	for _, m := range MetaColumns {
		if m.Short == short || m.Name == short {
			return m.Name, nil
		}
	}
	return "", fmt.Errorf("unknown Kafka metadata column %q: allowed are topic, partition, offset, timestamp, key", short)
}

// Build makes an Iceberg schema from declared columns plus Kafka metadata
// columns (short names) appended at the end. key names the identifier
// fields (the key columns of a table that keeps the newest row per key), in
// the order given; each must be a top-level column CheckIdentifier accepts.
func Build(cols []Column, meta, key []string) (*iceberg.Schema, error) {
	ids := &idGen{}
	fields := make([]iceberg.NestedField, 0, len(cols)+len(meta))
	seen := map[string]bool{}
	for i, c := range cols {
		if c.Name == "" {
			return nil, fmt.Errorf("schema[%d].name: must not be empty", i)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("schema[%d].name: duplicate column %q", i, c.Name)
		}
		seen[c.Name] = true
		id := ids.next()
		t, err := parseType(c.Type, ids)
		if err != nil {
			return nil, fmt.Errorf("schema[%d] (%s).type: %w", i, c.Name, err)
		}
		fields = append(fields, iceberg.NestedField{ID: id, Name: c.Name, Type: t, Required: c.Required, Doc: c.Doc})
	}
	for _, m := range meta {
		name, err := MetaColumnName(m)
		if err != nil {
			return nil, err
		}
		if seen[name] {
			return nil, fmt.Errorf("kafka_metadata: column %q is declared twice", name)
		}
		seen[name] = true
		for _, mc := range MetaColumns {
			if mc.Name == name {
				fields = append(fields, iceberg.NestedField{ID: ids.next(), Name: name, Type: mc.Type, Required: false})
			}
		}
	}
	keyIDs := make([]int, 0, len(key))
	for i, k := range key {
		j := slices.IndexFunc(fields, func(f iceberg.NestedField) bool { return f.Name == k })
		if j < 0 {
			return nil, fmt.Errorf("key[%d]: no top-level column %q", i, k)
		}
		if slices.Contains(keyIDs, fields[j].ID) {
			return nil, fmt.Errorf("key[%d]: column %q is listed twice", i, k)
		}
		if err := CheckIdentifier(fields[j]); err != nil {
			return nil, fmt.Errorf("key[%d]: %w", i, err)
		}
		keyIDs = append(keyIDs, fields[j].ID)
	}
	return iceberg.NewSchemaWithIdentifiers(0, keyIDs, fields...), nil
}

// IdentifierTypes lists the types a key column may have, for messages.
const IdentifierTypes = "boolean, int, long, decimal(P,S), date, time, timestamp, timestamptz, string, uuid, binary or fixed[L]"

// CheckIdentifier says why a column cannot be an identifier field (a key
// column), if it cannot. It must be required: a row without a key could not
// be told apart from another. And its type must be a primitive whose values
// compare exactly: not float or double, where NaN is unequal to itself and
// -0 equals 0 with other bits, nor a struct, list or map (the Iceberg
// spec's rules for identifier fields).
func CheckIdentifier(f iceberg.NestedField) error {
	switch f.Type.(type) {
	case iceberg.BooleanType, iceberg.Int32Type, iceberg.Int64Type, iceberg.DecimalType,
		iceberg.DateType, iceberg.TimeType, iceberg.TimestampType, iceberg.TimestampTzType,
		iceberg.StringType, iceberg.UUIDType, iceberg.BinaryType, iceberg.FixedType:
	default:
		return fmt.Errorf("column %q is %s; a key column must be %s (not float, double, struct, list or map)",
			f.Name, f.Type, IdentifierTypes)
	}
	if !f.Required {
		return fmt.Errorf("column %q must be declared required: true (a key column cannot be null)", f.Name)
	}
	return nil
}

// ParseType parses a type string such as "decimal(12,2)" or
// "list<struct<sku:string,qty:int>>".
func ParseType(s string) (iceberg.Type, error) {
	return parseType(s, &idGen{})
}

type idGen struct{ n int }

func (g *idGen) next() int { g.n++; return g.n }

const allowedTypes = "boolean, int, long, float, double, decimal(P,S), date, time, timestamp, timestamptz, string, uuid, binary, fixed[L], struct<name:type,...>, list<type>, map<string,type>"

func parseType(s string, ids *idGen) (iceberg.Type, error) {
	p := &typeParser{s: s, ids: ids}
	t, err := p.parse()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.s) {
		return nil, fmt.Errorf("unexpected %q at position %d in type %q", p.s[p.pos:], p.pos, s)
	}
	return t, nil
}

type typeParser struct {
	s   string
	pos int
	ids *idGen
}

func (p *typeParser) skipSpace() {
	for p.pos < len(p.s) && p.s[p.pos] == ' ' {
		p.pos++
	}
}

func (p *typeParser) ident() string {
	p.skipSpace()
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if c == '<' || c == '>' || c == ',' || c == ':' || c == '(' || c == ')' || c == '[' || c == ']' || c == ' ' {
			break
		}
		p.pos++
	}
	return p.s[start:p.pos]
}

func (p *typeParser) expect(c byte) error {
	p.skipSpace()
	if p.pos >= len(p.s) || p.s[p.pos] != c {
		return fmt.Errorf("expected %q at position %d in type %q", c, p.pos, p.s)
	}
	p.pos++
	return nil
}

func (p *typeParser) peek() byte {
	p.skipSpace()
	if p.pos >= len(p.s) {
		return 0
	}
	return p.s[p.pos]
}

func (p *typeParser) number() (int, error) {
	tok := p.ident()
	n, err := strconv.Atoi(tok)
	if err != nil {
		return 0, fmt.Errorf("expected a number, got %q in type %q", tok, p.s)
	}
	return n, nil
}

func (p *typeParser) parse() (iceberg.Type, error) {
	name := strings.ToLower(p.ident())
	switch name {
	case "boolean", "bool":
		return iceberg.PrimitiveTypes.Bool, nil
	case "int", "integer":
		return iceberg.PrimitiveTypes.Int32, nil
	case "long", "bigint":
		return iceberg.PrimitiveTypes.Int64, nil
	case "float":
		return iceberg.PrimitiveTypes.Float32, nil
	case "double":
		return iceberg.PrimitiveTypes.Float64, nil
	case "date":
		return iceberg.PrimitiveTypes.Date, nil
	case "time":
		return iceberg.PrimitiveTypes.Time, nil
	case "timestamp":
		return iceberg.PrimitiveTypes.Timestamp, nil
	case "timestamptz":
		return iceberg.PrimitiveTypes.TimestampTz, nil
	case "string":
		return iceberg.PrimitiveTypes.String, nil
	case "uuid":
		return iceberg.PrimitiveTypes.UUID, nil
	case "binary":
		return iceberg.PrimitiveTypes.Binary, nil
	case "decimal":
		if err := p.expect('('); err != nil {
			return nil, err
		}
		prec, err := p.number()
		if err != nil {
			return nil, err
		}
		if err := p.expect(','); err != nil {
			return nil, err
		}
		scale, err := p.number()
		if err != nil {
			return nil, err
		}
		if err := p.expect(')'); err != nil {
			return nil, err
		}
		if prec < 1 || prec > 38 || scale < 0 || scale > prec {
			return nil, fmt.Errorf("decimal(%d,%d): precision must be 1..38 and scale 0..precision", prec, scale)
		}
		return iceberg.DecimalTypeOf(prec, scale), nil
	case "fixed":
		if err := p.expect('['); err != nil {
			return nil, err
		}
		n, err := p.number()
		if err != nil {
			return nil, err
		}
		if err := p.expect(']'); err != nil {
			return nil, err
		}
		if n < 1 {
			return nil, fmt.Errorf("fixed[%d]: length must be positive", n)
		}
		return iceberg.FixedTypeOf(n), nil
	case "list", "array":
		if err := p.expect('<'); err != nil {
			return nil, err
		}
		id := p.ids.next()
		elem, err := p.parse()
		if err != nil {
			return nil, err
		}
		if err := p.expect('>'); err != nil {
			return nil, err
		}
		return &iceberg.ListType{ElementID: id, Element: elem, ElementRequired: false}, nil
	case "map":
		if err := p.expect('<'); err != nil {
			return nil, err
		}
		keyID, valID := p.ids.next(), p.ids.next()
		key, err := p.parse()
		if err != nil {
			return nil, err
		}
		if !key.Equals(iceberg.PrimitiveTypes.String) {
			return nil, fmt.Errorf("map keys must be string (JSON object keys), got %s", key)
		}
		if err := p.expect(','); err != nil {
			return nil, err
		}
		val, err := p.parse()
		if err != nil {
			return nil, err
		}
		if err := p.expect('>'); err != nil {
			return nil, err
		}
		return &iceberg.MapType{KeyID: keyID, KeyType: key, ValueID: valID, ValueType: val, ValueRequired: false}, nil
	case "struct":
		if err := p.expect('<'); err != nil {
			return nil, err
		}
		var fields []iceberg.NestedField
		seen := map[string]bool{}
		for {
			fname := p.ident()
			if fname == "" {
				return nil, fmt.Errorf("expected a field name at position %d in type %q", p.pos, p.s)
			}
			required := false
			if strings.HasSuffix(fname, "!") {
				// name!:type marks a required nested field.
				required, fname = true, strings.TrimSuffix(fname, "!")
			}
			if seen[fname] {
				return nil, fmt.Errorf("duplicate struct field %q in type %q", fname, p.s)
			}
			seen[fname] = true
			if err := p.expect(':'); err != nil {
				return nil, err
			}
			id := p.ids.next()
			ft, err := p.parse()
			if err != nil {
				return nil, err
			}
			fields = append(fields, iceberg.NestedField{ID: id, Name: fname, Type: ft, Required: required})
			if p.peek() == ',' {
				p.pos++
				continue
			}
			break
		}
		if err := p.expect('>'); err != nil {
			return nil, err
		}
		return &iceberg.StructType{FieldList: fields}, nil
	case "":
		return nil, fmt.Errorf("missing type; allowed: %s", allowedTypes)
	default:
		return nil, fmt.Errorf("unknown type %q; allowed: %s", name, allowedTypes)
	}
}

// Partition parses partition transforms ("day(ts)", "bucket(16, id)",
// "country") against a schema. Partition sources must be top-level
// primitive columns: floe computes partition values while decoding, before
// nested values are materialised.
func Partition(exprs []string, sch *iceberg.Schema) (iceberg.PartitionSpec, error) {
	if len(exprs) == 0 {
		return *iceberg.UnpartitionedSpec, nil
	}
	var opts []iceberg.PartitionOption
	for i, e := range exprs {
		tr, col, err := parseTransform(e)
		if err != nil {
			return iceberg.PartitionSpec{}, fmt.Errorf("partition_by[%d]: %w", i, err)
		}
		f, ok := sch.FindFieldByName(col)
		if !ok {
			return iceberg.PartitionSpec{}, fmt.Errorf("partition_by[%d] %q: no column %q in the schema", i, e, col)
		}
		top := false
		for _, tf := range sch.Fields() {
			if tf.ID == f.ID {
				top = true
			}
		}
		if !top {
			return iceberg.PartitionSpec{}, fmt.Errorf("partition_by[%d] %q: source column must be a top-level column", i, e)
		}
		if _, ok := f.Type.(iceberg.PrimitiveType); !ok {
			return iceberg.PartitionSpec{}, fmt.Errorf("partition_by[%d] %q: source column must have a primitive type, %q is %s", i, e, col, f.Type)
		}
		if !tr.CanTransform(f.Type) {
			return iceberg.PartitionSpec{}, fmt.Errorf("partition_by[%d] %q: transform %s cannot apply to %s column %q", i, e, tr, f.Type, col)
		}
		name := col
		if _, ok := tr.(iceberg.IdentityTransform); !ok {
			name = col + "_" + transformSuffix(tr)
		}
		// Partition field ids start at 1000 (spec: "Partition Specs"),
		// in declaration order, as a created table numbers them.
		id := 1000 + i
		opts = append(opts, iceberg.AddPartitionFieldBySourceID(f.ID, name, tr, sch, &id))
	}
	spec, err := iceberg.NewPartitionSpecOpts(opts...)
	if err != nil {
		return iceberg.PartitionSpec{}, fmt.Errorf("partition_by: %w", err)
	}
	return spec, nil
}

func transformSuffix(tr iceberg.Transform) string {
	switch t := tr.(type) {
	case iceberg.BucketTransform:
		return "bucket"
	case iceberg.TruncateTransform:
		return "trunc"
	default:
		return t.String()
	}
}

func parseTransform(e string) (iceberg.Transform, string, error) {
	e = strings.TrimSpace(e)
	open := strings.IndexByte(e, '(')
	if open < 0 {
		if e == "" {
			return nil, "", fmt.Errorf("empty partition expression")
		}
		return iceberg.IdentityTransform{}, e, nil
	}
	if !strings.HasSuffix(e, ")") {
		return nil, "", fmt.Errorf("%q: missing closing parenthesis", e)
	}
	fn := strings.ToLower(strings.TrimSpace(e[:open]))
	args := strings.Split(e[open+1:len(e)-1], ",")
	for i := range args {
		args[i] = strings.TrimSpace(args[i])
	}
	one := func() (string, error) {
		if len(args) != 1 || args[0] == "" {
			return "", fmt.Errorf("%q: %s takes one column", e, fn)
		}
		return args[0], nil
	}
	switch fn {
	case "identity", "year", "month", "day", "hour":
		col, err := one()
		if err != nil {
			return nil, "", err
		}
		tr, err := iceberg.ParseTransform(fn)
		return tr, col, err
	case "bucket", "truncate":
		if len(args) != 2 {
			return nil, "", fmt.Errorf("%q: %s takes (N, column)", e, fn)
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n <= 0 {
			return nil, "", fmt.Errorf("%q: %s width must be a positive integer, got %q", e, fn, args[0])
		}
		if fn == "bucket" {
			return iceberg.BucketTransform{NumBuckets: n}, args[1], nil
		}
		return iceberg.TruncateTransform{Width: n}, args[1], nil
	default:
		return nil, "", fmt.Errorf("%q: unknown transform %q; allowed: identity, year, month, day, hour, bucket(N, col), truncate(W, col)", e, fn)
	}
}
