package filter

import (
	"errors"
	"fmt"
	"strings"

	"github.com/apache/iceberg-go"
)

// Bind turns a parsed filter into an unbound iceberg-go expression over
// the schema's top-level columns, each literal converted to its column's
// type. The result binds with iceberg.BindExpr(sch, expr, true), so it
// can be given to a scan with table.WithRowFilter.
//
// The result has no NOT in it: NOT is carried down to the predicates,
// which are inverted (= becomes !=, < becomes >=, IN becomes NOT IN, AND
// becomes OR), and each NOT IN is joined by an IS NOT NULL on its column.
// That gives the filter SQL's null semantics in an iceberg-go scan; the
// package documentation explains why.
//
// Its errors name the column and say what is wrong: a column that does
// not exist, a column that cannot be filtered, or a literal that the
// column's type cannot hold.
func Bind(e Expr, sch *iceberg.Schema) (iceberg.BooleanExpression, error) {
	if sch == nil {
		return nil, errors.New("filter: there is no schema to bind the filter to")
	}
	return (&binder{sch: sch}).bind(e, false)
}

type binder struct {
	sch *iceberg.Schema
}

// bind binds e, or NOT e when negate is set.
func (b *binder) bind(e Expr, negate bool) (iceberg.BooleanExpression, error) {
	switch e := value(e).(type) {
	case And:
		return b.both(e.Left, e.Right, negate, !negate)
	case Or:
		return b.both(e.Left, e.Right, negate, negate)
	case Not:
		return b.bind(e.X, !negate)
	case Compare:
		op := e.Op
		if negate {
			op = op.inverse()
		}
		return b.predicate(e.Column, pred{op: op, lits: []Literal{e.Value}})
	case In:
		if len(e.Values) == 0 {
			return nil, fmt.Errorf("filter: the IN list for column %q is empty", e.Column.Name)
		}
		return b.predicate(e.Column, pred{set: true, negated: e.Negated != negate, lits: e.Values})
	case IsNull:
		return b.isNull(e.Column, e.Negated != negate)
	case nil:
		return nil, errors.New("filter: the filter is missing an operand")
	default:
		return nil, fmt.Errorf("filter: cannot bind a %T", e)
	}
}

// both binds l and r, each negated when negate is set, and joins them
// with AND when and is set, with OR otherwise.
func (b *binder) both(l, r Expr, negate, and bool) (iceberg.BooleanExpression, error) {
	left, err := b.bind(l, negate)
	if err != nil {
		return nil, err
	}
	right, err := b.bind(r, negate)
	if err != nil {
		return nil, err
	}
	if and {
		return iceberg.NewAnd(left, right), nil
	}
	return iceberg.NewOr(left, right), nil
}

func (b *binder) isNull(c Column, negated bool) (iceberg.BooleanExpression, error) {
	f, err := b.column(c)
	if err != nil {
		return nil, err
	}
	if !bindable(f.Type) {
		return nil, notFilterable(f)
	}
	ref := iceberg.Reference(f.Name)
	if negated {
		return iceberg.NotNull(ref), nil
	}
	return iceberg.IsNull(ref), nil
}

// bindable reports whether iceberg-go can bind a reference to a column
// of type t.
func bindable(t iceberg.Type) bool {
	switch t.(type) {
	case iceberg.BooleanType, iceberg.Int32Type, iceberg.Int64Type, iceberg.Float32Type, iceberg.Float64Type,
		iceberg.DecimalType, iceberg.StringType, iceberg.UUIDType, iceberg.DateType, iceberg.TimeType,
		iceberg.TimestampType, iceberg.TimestampTzType, iceberg.TimestampNsType, iceberg.TimestampTzNsType,
		iceberg.BinaryType, iceberg.FixedType:
		return true
	}
	return false
}

// column finds the top-level field a column names. An unquoted name
// that matches no field exactly matches the one field whose name differs
// only in case.
func (b *binder) column(c Column) (iceberg.NestedField, error) {
	fields := b.sch.Fields()
	var folded []iceberg.NestedField
	for _, f := range fields {
		if f.Name == c.Name {
			return b.topLevel(f)
		}
		if strings.EqualFold(f.Name, c.Name) {
			folded = append(folded, f)
		}
	}
	switch {
	case len(folded) == 1 && !c.Quoted:
		return b.topLevel(folded[0])
	case len(folded) > 1 && !c.Quoted:
		return iceberg.NestedField{}, fmt.Errorf("filter: the column name %s matches %s; quote the one you mean",
			c.Name, fieldList(folded, " and "))
	case len(folded) > 0:
		return iceberg.NestedField{}, fmt.Errorf("filter: no column %q; did you mean %s? (a quoted name must match exactly)",
			c.Name, fieldList(folded, " or "))
	}
	return iceberg.NestedField{}, fmt.Errorf("filter: no column %q (the columns are %s)", c.Name, fieldList(fields, ", "))
}

// topLevel checks that iceberg-go, which looks fields up by dotted path,
// resolves f's name to f itself.
func (b *binder) topLevel(f iceberg.NestedField) (iceberg.NestedField, error) {
	g, ok := b.sch.FindFieldByName(f.Name)
	switch {
	case !ok:
		return iceberg.NestedField{}, fmt.Errorf(
			"filter: column %q cannot be filtered: iceberg-go cannot look columns up by name in this schema (do two fields have the same dotted name?)", f.Name)
	case g.ID != f.ID:
		return iceberg.NestedField{}, fmt.Errorf("filter: column %q cannot be filtered: a nested field has the same dotted name", f.Name)
	}
	return f, nil
}

// fieldList lists fields as the filter language writes their names, the
// first 50 of them.
func fieldList(fs []iceberg.NestedField, sep string) string {
	const maxListed = 50
	names := make([]string, 0, min(len(fs), maxListed))
	for i, f := range fs {
		if i == maxListed {
			break
		}
		names = append(names, Column{Name: f.Name}.String())
	}
	s := strings.Join(names, sep)
	if len(fs) > maxListed {
		s += fmt.Sprintf(" and %d more", len(fs)-maxListed)
	}
	if len(fs) == 0 {
		s = "none"
	}
	return s
}

func notFilterable(f iceberg.NestedField) error {
	switch t := f.Type.(type) {
	case *iceberg.StructType, *iceberg.ListType, *iceberg.MapType:
		return fmt.Errorf("filter: column %q is a %s; only columns of primitive types can be filtered", f.Name, t.Type())
	case iceberg.BinaryType, iceberg.FixedType:
		return fmt.Errorf("filter: column %q is %s; binary and fixed columns cannot be compared (IS NULL and IS NOT NULL work on them)",
			f.Name, t)
	}
	return fmt.Errorf("filter: column %q is %s; columns of that type cannot be filtered", f.Name, f.Type)
}
