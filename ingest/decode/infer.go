package decode

import (
	"errors"
	"fmt"

	"github.com/apache/iceberg-go"
	"github.com/valyala/fastjson"
)

type inferKind uint8

// The order matters only for readability of inferKindNames.
const (
	ikNull inferKind = iota
	ikBool
	ikLong
	ikDouble
	ikString
	ikDate
	ikTimestamp
	ikTimestampTz
	ikStruct
	ikList
)

var inferKindNames = [...]string{
	ikNull: "null", ikBool: "boolean", ikLong: "long", ikDouble: "double", ikString: "string",
	ikDate: "date", ikTimestamp: "timestamp", ikTimestampTz: "timestamptz", ikStruct: "struct", ikList: "list",
}

type inferred struct {
	kind   inferKind
	fields []*inferField // struct, in first-seen order
	index  map[string]int
	elem   *inferred // list
}

type inferField struct {
	name string
	t    *inferred
}

// InferOptions adjust InferSchema.
type InferOptions struct {
	// ConflictsAsString infers a field whose samples disagree in a way no
	// Iceberg type takes both (a number and a string, an object and a
	// list) as a string instead of failing; decode with
	// StringsTakeAnyJSON so such a column takes every value as its JSON
	// text.
	ConflictsAsString bool
}

// InferSchema infers an Iceberg schema (fresh field ids from 1, all fields optional, fields in first-seen
// order) from sample JSON records. metaColumns lists the _kafka_* columns to append at the end.
//
// Integral numbers infer long and other numbers double, a field seen as both is double. Strings
// infer timestamptz when they are RFC 3339 timestamps with an offset, timestamp without one, date
// for "YYYY-MM-DD", and string otherwise; a field whose strings disagree is a string. Objects infer
// structs, arrays lists. A field that is only ever null (or a list only ever empty) is a string.
// A field that is only ever an empty object is left out: Parquet cannot store a struct without
// fields, and the decoder ignores fields the schema does not have. Any other disagreement between
// samples is an error naming the field, unless opts.ConflictsAsString: inference does not guess
// unless asked, the schema belongs in the config then. Top-level fields named like the Kafka metadata columns are skipped, since the decoder never
// fills those from JSON.
func InferSchema(samples [][]byte, metaColumns []string, opts InferOptions) (*iceberg.Schema, error) {
	if len(samples) == 0 {
		return nil, errors.New("ingest: schema inference needs at least one sample record")
	}
	seenMeta := make(map[string]bool, len(metaColumns))
	for _, name := range metaColumns {
		if _, ok := kafkaMetaColumns[name]; !ok {
			return nil, fmt.Errorf("ingest: %q is not a Kafka metadata column (want one of _kafka_topic, _kafka_partition, _kafka_offset, _kafka_timestamp, _kafka_key)", name)
		}
		if seenMeta[name] {
			return nil, fmt.Errorf("ingest: Kafka metadata column %q is listed twice", name)
		}
		seenMeta[name] = true
	}

	var (
		scan jsonScanner
		p    fastjson.Parser
		root = &inferred{kind: ikStruct, index: map[string]int{}}
	)
	for i, sample := range samples {
		if err := scan.check(sample); err != nil {
			return nil, fmt.Errorf("ingest: sample %d: %w", i, err)
		}
		v, err := p.ParseBytes(sample)
		if err != nil {
			return nil, fmt.Errorf("ingest: sample %d: record is not a JSON object: %w", i, err)
		}
		if v.Type() != fastjson.TypeObject {
			return nil, fmt.Errorf("ingest: sample %d: record is not a JSON object: got %s", i, snippet(v))
		}
		obj, _ := v.Object()
		var ierr error
		obj.Visit(func(key []byte, fv *fastjson.Value) {
			if ierr != nil {
				return
			}
			if _, reserved := kafkaMetaColumns[string(key)]; reserved {
				return
			}
			ierr = root.field(string(key)).observe(string(key), fv, i, opts)
		})
		if ierr != nil {
			return nil, ierr
		}
	}

	// Ids are assigned the way Iceberg assigns fresh ids: all fields of a struct first, then the
	// insides of each, so the top-level columns are 1..n.
	if !root.storable() {
		return nil, errors.New("ingest: the sample records have no fields to infer a schema from")
	}
	var meta []iceberg.NestedField
	for _, name := range metaColumns {
		meta = append(meta, iceberg.NestedField{Name: name, Type: kafkaMetaColumns[name].typ})
	}
	nextID := 0
	next := func() int { nextID++; return nextID }
	return iceberg.NewSchema(0, root.icebergFields(next, meta...)...), nil
}

func (t *inferred) field(name string) *inferred {
	if i, ok := t.index[name]; ok {
		return t.fields[i].t
	}
	f := &inferField{name: name, t: &inferred{}}
	t.index[name] = len(t.fields)
	t.fields = append(t.fields, f)
	return f.t
}

// observe merges one JSON value, seen at path in sample, into t.
func (t *inferred) observe(path string, v *fastjson.Value, sample int, opts InferOptions) error {
	var k inferKind
	switch v.Type() {
	case fastjson.TypeNull:
		return nil
	case fastjson.TypeTrue, fastjson.TypeFalse:
		k = ikBool
	case fastjson.TypeNumber:
		k = ikDouble
		if _, integral, fits := parseJSONInt(v.MarshalTo(nil)); integral && fits {
			k = ikLong
		}
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		k = ikString
		if _, ok := parseDate(b); ok {
			k = ikDate
		} else if _, _, zoned, ok := parseTimestamp(b); ok {
			k = ikTimestamp
			if zoned {
				k = ikTimestampTz
			}
		}
	case fastjson.TypeObject:
		k = ikStruct
	case fastjson.TypeArray:
		k = ikList
	}

	merged, ok := mergeKinds(t.kind, k)
	if !ok && !opts.ConflictsAsString {
		return fmt.Errorf("ingest: cannot infer a type for field %q: seen as %s and as %s (sample %d: %s); declare the table schema in the config, or set infer_conflicts: string",
			path, inferKindNames[t.kind], inferKindNames[k], sample, snippet(v))
	}
	if !ok || (t.kind == ikString && opts.ConflictsAsString) {
		// A string column takes any value as its JSON text: what is
		// inside an object or a list no longer matters.
		t.kind, t.fields, t.index, t.elem = ikString, nil, nil, nil
		return nil
	}
	t.kind = merged

	switch k {
	case ikStruct:
		if t.index == nil {
			t.index = map[string]int{}
		}
		obj, _ := v.Object()
		var err error
		obj.Visit(func(key []byte, fv *fastjson.Value) {
			if err == nil {
				err = t.field(string(key)).observe(path+"."+string(key), fv, sample, opts)
			}
		})
		return err
	case ikList:
		if t.elem == nil {
			t.elem = &inferred{}
		}
		arr, _ := v.Array()
		for _, e := range arr {
			if err := t.elem.observe(path+"[]", e, sample, opts); err != nil {
				return err
			}
		}
	}
	return nil
}

func mergeKinds(have, seen inferKind) (inferKind, bool) {
	stringy := func(k inferKind) bool { return k == ikString || k == ikDate || k == ikTimestamp || k == ikTimestampTz }
	switch {
	case have == ikNull || have == seen:
		return seen, true
	case (have == ikLong && seen == ikDouble) || (have == ikDouble && seen == ikLong):
		return ikDouble, true
	case (have == ikTimestamp && seen == ikTimestampTz) || (have == ikTimestampTz && seen == ikTimestamp):
		// The decoder reads a missing offset as UTC, so timestamptz takes both.
		return ikTimestampTz, true
	case stringy(have) && stringy(seen):
		return ikString, true
	}
	return have, false
}

// icebergFields converts a struct's fields, dropping the ones without a storable type, and
// appends the primitive fields in extra (which get their ids with the struct's own fields).
func (t *inferred) icebergFields(next func() int, extra ...iceberg.NestedField) []iceberg.NestedField {
	var kept []*inferField
	for _, f := range t.fields {
		if f.t.storable() {
			kept = append(kept, f)
		}
	}
	fields := make([]iceberg.NestedField, len(kept), len(kept)+len(extra))
	for i, f := range kept {
		fields[i] = iceberg.NestedField{ID: next(), Name: f.name}
	}
	for _, f := range extra {
		f.ID = next()
		fields = append(fields, f)
	}
	for i, f := range kept {
		fields[i].Type = f.t.icebergType(next)
	}
	return fields
}

func (t *inferred) storable() bool {
	switch t.kind {
	case ikStruct:
		for _, f := range t.fields {
			if f.t.storable() {
				return true
			}
		}
		return false
	case ikList:
		return t.elem == nil || t.elem.storable()
	}
	return true
}

func (t *inferred) icebergType(next func() int) iceberg.Type {
	switch t.kind {
	case ikBool:
		return iceberg.PrimitiveTypes.Bool
	case ikLong:
		return iceberg.PrimitiveTypes.Int64
	case ikDouble:
		return iceberg.PrimitiveTypes.Float64
	case ikDate:
		return iceberg.PrimitiveTypes.Date
	case ikTimestamp:
		return iceberg.PrimitiveTypes.Timestamp
	case ikTimestampTz:
		return iceberg.PrimitiveTypes.TimestampTz
	case ikStruct:
		return &iceberg.StructType{FieldList: t.icebergFields(next)}
	case ikList:
		elem := t.elem
		if elem == nil {
			elem = &inferred{}
		}
		id := next()
		return &iceberg.ListType{ElementID: id, Element: elem.icebergType(next)}
	}
	return iceberg.PrimitiveTypes.String // null-only
}
