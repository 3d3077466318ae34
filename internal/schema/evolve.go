package schema

import (
	"errors"
	"fmt"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// Schema evolution: records arrive with a writer schema (Avro or Protobuf,
// from a schema registry) that may be newer than the table's. Evolve plans
// the changes of the table's schema that let it take them; Stage hands the
// plan to iceberg-go's UpdateSchema, which commits it.
//
// Only changes that keep every existing file readable as it is are planned,
// and none that drops what a column holds: columns are added (always
// optional, since the rows already in the table have no value for them),
// widened (int to long, float to double, decimal precision, the promotions
// the Iceberg spec allows), or made optional (when the writer no longer
// sends a value). A column the writer lacks is never dropped: older writers
// still send it, and its data stays. Everything else (a type the table
// cannot read old files as, a column a key or a partition depends on) is an
// IncompatibleError, for an operator to decide.
//
// Columns are matched by name, case-sensitively, at every nesting level:
// the writer schema's field ids come from the mapping of a registry schema
// and mean nothing in the table. A list's element is addressed as
// <list>.element and a map's key and value as <map>.key and <map>.value,
// the names iceberg-go's UpdateSchema resolves them by.

// ChangeKind is the kind of a Change.
type ChangeKind uint8

const (
	// AddColumn adds an optional column of the writer's type.
	AddColumn ChangeKind = iota + 1
	// PromoteType widens a column's primitive type to the writer's.
	PromoteType
	// MakeOptional makes a required column (or list element, or map
	// value) optional.
	MakeOptional
)

// String names the kind, as Change.String starts with it.
func (k ChangeKind) String() string {
	switch k {
	case AddColumn:
		return "add column"
	case PromoteType:
		return "promote"
	case MakeOptional:
		return "make optional"
	}
	return fmt.Sprintf("ChangeKind(%d)", k)
}

// Change is one change of a table's schema.
type Change struct {
	Kind ChangeKind
	// Path is the column's path in the table. For AddColumn it is the new
	// column's path; its parent is a struct the table has (a struct column,
	// or the struct element of a list or value of a map).
	Path []string
	// Type is the new column's type (AddColumn) or the type a column is
	// widened to (PromoteType). A new column's nested fields keep the
	// writer's requiredness and ids; the ids are assigned afresh when the
	// change is applied.
	Type iceberg.Type
	// From is the column's type before a PromoteType.
	From iceberg.Type
	// Doc is the writer field's doc of an added column (may be empty).
	Doc string
}

// String describes the change for logs and messages:
// add column "a.b" long, promote "x" int to long, make "y" optional.
func (c Change) String() string {
	path := strings.Join(c.Path, ".")
	switch c.Kind {
	case AddColumn:
		return fmt.Sprintf("add column %q %s", path, typeString(c.Type))
	case PromoteType:
		return fmt.Sprintf("promote %q %s to %s", path, typeString(c.From), typeString(c.Type))
	case MakeOptional:
		return fmt.Sprintf("make %q optional", path)
	}
	return fmt.Sprintf("%s %q", c.Kind, path)
}

// IncompatibleError means the table's schema cannot be changed to take
// records of a writer schema without losing or misreading data: Path (a
// dot-joined column path) says where, Reason why. Nothing was changed; an
// operator must change the table or the writer.
type IncompatibleError struct {
	Path   string
	Reason string
}

// Error names the column and the reason, for an operator.
func (e *IncompatibleError) Error() string {
	return fmt.Sprintf("schema: column %q cannot take the writer's schema: %s", e.Path, e.Reason)
}

// kafkaPrefix starts the names of the columns floe fills from Kafka
// metadata (MetaColumns): never from a record, so never matched against a
// writer schema.
const kafkaPrefix = "_kafka_"

// Evolve plans the changes that let a table of schema tbl take records of
// writer. It returns nil when the table takes them as it is.
//
// fixed names top-level columns whose type and requiredness must not change
// (key columns, the version column, partition sources, Kafka metadata
// columns): the files and indexes built on them assume they stay as they
// are. A fixed column the writer would widen is incompatible; one the writer
// sends as optional where the table requires it changes nothing (a record
// without a value is refused when it is written); one the writer lacks while
// the table requires it is incompatible. The table's identifier fields are
// fixed whether listed or not.
//
// Top-level writer fields named _kafka_* are ignored, and so are the
// table's top-level _kafka_* columns: floe fills those from Kafka metadata.
//
// Changes come in a fixed order, depth first: at each level, those of the
// table's existing columns in the table's order (a column's own promotion
// and requiredness before its children's), then the writer's new columns in
// the writer's order. Applying them (Stage) and planning again yields no
// change.
//
// Every incompatibility found is reported, each an *IncompatibleError
// (joined with errors.Join when there are several); no change is returned
// then.
func Evolve(tbl, writer *iceberg.Schema, fixed []string) ([]Change, error) {
	if tbl == nil || writer == nil {
		return nil, errors.New("schema: evolve: nil schema")
	}
	p := &planner{fixed: map[string]bool{}}
	for _, name := range fixed {
		p.fixed[name] = true
	}
	for _, id := range tbl.IdentifierFieldIDs {
		if name, ok := tbl.FindColumnName(id); ok {
			p.fixed[name] = true
		}
	}
	p.structFields(nil, tbl.Fields(), writer.Fields(), true, false)
	if len(p.errs) == 1 {
		return nil, p.errs[0]
	}
	if len(p.errs) > 1 {
		return nil, errors.Join(p.errs...)
	}
	return p.changes, nil
}

type planner struct {
	fixed   map[string]bool
	changes []Change
	errs    []error
}

func (p *planner) fail(path []string, format string, args ...any) {
	p.errs = append(p.errs, &IncompatibleError{Path: strings.Join(path, "."), Reason: fmt.Sprintf(format, args...)})
}

// add records c; inFixed says c lies inside a fixed column, which must not
// change at all.
func (p *planner) add(c Change, inFixed bool) {
	if inFixed {
		p.fail(c.Path, "it lies in a key, version, partition source or Kafka metadata column, which cannot change (%s)", c)
		return
	}
	for _, name := range c.Path {
		if strings.Contains(name, ".") {
			// iceberg-go's UpdateSchema finds columns by their
			// dot-joined path, which a dot in a name makes ambiguous.
			p.fail(c.Path, "field name %q contains a dot, so the change (%s) cannot be addressed", name, c)
			return
		}
	}
	p.changes = append(p.changes, c)
}

// structFields plans the changes of one struct level: path is the
// struct's path (nil at the top level).
func (p *planner) structFields(path []string, tfields, wfields []iceberg.NestedField, top, inFixed bool) {
	byName := make(map[string]iceberg.NestedField, len(wfields))
	dup := map[string]bool{}
	for _, wf := range wfields {
		if top && strings.HasPrefix(wf.Name, kafkaPrefix) {
			continue
		}
		if _, ok := byName[wf.Name]; ok {
			if !dup[wf.Name] {
				p.fail(childPath(path, wf.Name), "the writer schema has more than one field of this name")
			}
			dup[wf.Name] = true
			continue
		}
		byName[wf.Name] = wf
	}
	have := make(map[string]bool, len(tfields))
	for _, tf := range tfields {
		have[tf.Name] = true
		if top && strings.HasPrefix(tf.Name, kafkaPrefix) {
			continue
		}
		if dup[tf.Name] {
			continue
		}
		fp := childPath(path, tf.Name)
		fixed := top && p.fixed[tf.Name]
		wf, ok := byName[tf.Name]
		if !ok {
			if tf.Required {
				if fixed {
					p.fail(fp, "the writer lacks this required column, a key, version, partition source or Kafka metadata column, which cannot be made optional")
				} else {
					p.add(Change{Kind: MakeOptional, Path: fp}, inFixed)
				}
			}
			continue
		}
		p.field(fp, tf.Type, tf.Required, wf.Type, wf.Required, fixed, inFixed)
	}
	for _, wf := range wfields {
		if have[wf.Name] || dup[wf.Name] || (top && strings.HasPrefix(wf.Name, kafkaPrefix)) {
			continue
		}
		p.add(Change{Kind: AddColumn, Path: childPath(path, wf.Name), Type: wf.Type, Doc: wf.Doc}, inFixed)
	}
}

// field plans the changes of a column (or list element, or map value) the
// table and the writer both have: its own type and requiredness first,
// then its children's. fixed says it is a fixed column itself, inFixed
// that it lies inside one.
func (p *planner) field(path []string, tt iceberg.Type, treq bool, wt iceberg.Type, wreq bool, fixed, inFixed bool) {
	switch t := tt.(type) {
	case *iceberg.StructType:
		w, ok := wt.(*iceberg.StructType)
		if !ok {
			p.fail(path, "the table has %s, the writer has %s", typeString(tt), typeString(wt))
			return
		}
		p.requiredness(path, treq, wreq, fixed, inFixed)
		p.structFields(path, t.FieldList, w.FieldList, false, fixed || inFixed)
	case *iceberg.ListType:
		w, ok := wt.(*iceberg.ListType)
		if !ok {
			p.fail(path, "the table has %s, the writer has %s", typeString(tt), typeString(wt))
			return
		}
		p.requiredness(path, treq, wreq, fixed, inFixed)
		p.field(childPath(path, "element"), t.Element, t.ElementRequired, w.Element, w.ElementRequired, false, fixed || inFixed)
	case *iceberg.MapType:
		w, ok := wt.(*iceberg.MapType)
		if !ok {
			p.fail(path, "the table has %s, the writer has %s", typeString(tt), typeString(wt))
			return
		}
		p.requiredness(path, treq, wreq, fixed, inFixed)
		if !sameType(t.KeyType, w.KeyType) {
			p.fail(childPath(path, "key"), "map keys cannot change: the table has %s, the writer has %s",
				typeString(t.KeyType), typeString(w.KeyType))
		}
		p.field(childPath(path, "value"), t.ValueType, t.ValueRequired, w.ValueType, w.ValueRequired, false, fixed || inFixed)
	default:
		if !p.primitive(path, tt, wt, fixed, inFixed) {
			return
		}
		p.requiredness(path, treq, wreq, fixed, inFixed)
	}
}

// requiredness plans a MakeOptional where the table requires a value the
// writer may leave out. A fixed column keeps its requiredness: the records
// without a value are refused one by one when they are written.
func (p *planner) requiredness(path []string, treq, wreq, fixed, inFixed bool) {
	if !treq || wreq || fixed {
		return
	}
	p.add(Change{Kind: MakeOptional, Path: path}, inFixed)
}

// primitive plans the type change of a column whose table type is not
// nested; false means the types are incompatible (reported).
func (p *planner) primitive(path []string, tt, wt iceberg.Type, fixed, inFixed bool) bool {
	if tt.Equals(wt) {
		return true
	}
	switch wt.(type) {
	case *iceberg.StructType, *iceberg.ListType, *iceberg.MapType:
		p.fail(path, "the table has %s, the writer has %s", typeString(tt), typeString(wt))
		return false
	}
	if readable(wt, tt) {
		// The writer's values fit the table's wider type as they are.
		return true
	}
	if readable(tt, wt) {
		if fixed {
			p.fail(path, "a key, version, partition source or Kafka metadata column cannot change type, and the writer has %s where the table has %s",
				typeString(wt), typeString(tt))
			return false
		}
		p.add(Change{Kind: PromoteType, Path: path, Type: wt, From: tt}, inFixed)
		return true
	}
	if td, ok := tt.(iceberg.DecimalType); ok {
		if wd, ok := wt.(iceberg.DecimalType); ok {
			if td.Scale() != wd.Scale() {
				p.fail(path, "a decimal's scale cannot change: the table has %s, the writer has %s", typeString(tt), typeString(wt))
			} else {
				p.fail(path, "a decimal's precision cannot exceed 38: the table has %s, the writer has %s", typeString(tt), typeString(wt))
			}
			return false
		}
	}
	p.fail(path, "the table has %s, the writer has %s; only int to long, float to double and a decimal's precision (same scale, at most 38) can widen",
		typeString(tt), typeString(wt))
	return false
}

// readable reports whether values of type from read as type to without
// loss under the Iceberg spec's type promotions: int as long, float as
// double, decimal(P,S) as decimal(P',S) for P <= P' <= 38. The promotions
// only format version 3 allows (date to timestamp, unknown to any type) are
// left out: they are not valid for every table floe writes.
func readable(from, to iceberg.Type) bool {
	switch f := from.(type) {
	case iceberg.Int32Type:
		_, ok := to.(iceberg.Int64Type)
		return ok
	case iceberg.Float32Type:
		_, ok := to.(iceberg.Float64Type)
		return ok
	case iceberg.DecimalType:
		t, ok := to.(iceberg.DecimalType)
		return ok && f.Scale() == t.Scale() && f.Precision() <= t.Precision() && t.Precision() <= 38
	}
	return false
}

// sameType reports whether a and b are the same type, nested fields
// compared by name, requiredness and type, ids ignored.
func sameType(a, b iceberg.Type) bool {
	switch at := a.(type) {
	case *iceberg.StructType:
		bt, ok := b.(*iceberg.StructType)
		if !ok || len(at.FieldList) != len(bt.FieldList) {
			return false
		}
		for i, af := range at.FieldList {
			bf := bt.FieldList[i]
			if af.Name != bf.Name || af.Required != bf.Required || !sameType(af.Type, bf.Type) {
				return false
			}
		}
		return true
	case *iceberg.ListType:
		bt, ok := b.(*iceberg.ListType)
		return ok && at.ElementRequired == bt.ElementRequired && sameType(at.Element, bt.Element)
	case *iceberg.MapType:
		bt, ok := b.(*iceberg.MapType)
		return ok && at.ValueRequired == bt.ValueRequired && sameType(at.KeyType, bt.KeyType) && sameType(at.ValueType, bt.ValueType)
	}
	return a.Equals(b)
}

// typeString renders t without field ids (a writer schema's mean nothing):
// struct<a: required int, b: optional list<long>>.
func typeString(t iceberg.Type) string {
	var b strings.Builder
	writeType(&b, t)
	return b.String()
}

func writeType(b *strings.Builder, t iceberg.Type) {
	switch t := t.(type) {
	case nil:
		b.WriteString("<none>")
	case *iceberg.StructType:
		b.WriteString("struct<")
		for i, f := range t.FieldList {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(f.Name)
			b.WriteString(": ")
			if f.Required {
				b.WriteString("required ")
			} else {
				b.WriteString("optional ")
			}
			writeType(b, f.Type)
		}
		b.WriteByte('>')
	case *iceberg.ListType:
		b.WriteString("list<")
		if t.ElementRequired {
			b.WriteString("required ")
		}
		writeType(b, t.Element)
		b.WriteByte('>')
	case *iceberg.MapType:
		b.WriteString("map<")
		writeType(b, t.KeyType)
		b.WriteString(", ")
		if t.ValueRequired {
			b.WriteString("required ")
		}
		writeType(b, t.ValueType)
		b.WriteByte('>')
	default:
		b.WriteString(t.String())
	}
}

func childPath(parent []string, name string) []string {
	out := make([]string, 0, len(parent)+1)
	return append(append(out, parent...), name)
}

// Stage adds changes, as Evolve planned them against u's table's current
// schema, to u: AddColumn as an optional column without a default,
// PromoteType and MakeOptional as column updates. u should be made case
// sensitive (Evolve matches names exactly) and without incompatible
// changes allowed, so that iceberg-go checks every promotion again. It
// returns u.
func Stage(u *table.UpdateSchema, changes []Change) *table.UpdateSchema {
	for _, c := range changes {
		switch c.Kind {
		case AddColumn:
			u.AddColumn(c.Path, c.Type, c.Doc, false, nil)
		case PromoteType:
			u.UpdateColumn(c.Path, table.ColumnUpdate{FieldType: iceberg.Optional[iceberg.Type]{Valid: true, Val: c.Type}})
		case MakeOptional:
			u.UpdateColumn(c.Path, table.ColumnUpdate{Required: iceberg.Optional[bool]{Valid: true, Val: false}})
		}
	}
	return u
}
