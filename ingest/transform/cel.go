package transform

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
	"github.com/apache/iceberg-go"
	"github.com/google/uuid"

	"github.com/floelake/floe/ingest/decode"
)

// celIdent is what a CEL variable name may be.
var celIdent = regexp.MustCompile(`^[_a-zA-Z][_a-zA-Z0-9]*$`)

// celReserved are words CEL does not take as variable names.
var celReserved = []string{
	"false", "in", "null", "true", "as", "break", "const", "continue", "else", "for", "function", "if",
	"import", "let", "loop", "package", "namespace", "return", "var", "void", "while",
}

// variable is an input column as expressions see it.
type variable struct {
	col int // top-level column of the input schema
	typ iceberg.Type
}

// celType is the CEL type of an input column, or nil when expressions
// cannot read it (struct, list and map columns, for now).
func celType(f iceberg.NestedField) *cel.Type {
	var t *cel.Type
	nullable := false
	switch f.Type.(type) {
	case iceberg.BooleanType:
		t, nullable = cel.BoolType, true
	case iceberg.Int32Type, iceberg.Int64Type:
		t, nullable = cel.IntType, true
	case iceberg.Float32Type, iceberg.Float64Type, iceberg.DecimalType:
		t, nullable = cel.DoubleType, true
	case iceberg.StringType, iceberg.UUIDType:
		t, nullable = cel.StringType, true
	case iceberg.BinaryType, iceberg.FixedType:
		t, nullable = cel.BytesType, true
	case iceberg.DateType, iceberg.TimestampType, iceberg.TimestampTzType, iceberg.TimestampNsType, iceberg.TimestampTzNsType:
		t = cel.TimestampType
	case iceberg.TimeType:
		t = cel.DurationType
	default:
		return nil
	}
	if nullable && !f.Required {
		// A null of an optional column compares with null (x == null) and
		// makes arithmetic fail, rather than failing to type-check.
		return cel.NullableType(t)
	}
	return t
}

// newEnv declares the input columns expressions can read, with the CEL
// standard library and the strings and math extensions.
func newEnv(in *iceberg.Schema) (*cel.Env, map[string]variable, error) {
	vars := map[string]variable{}
	opts := []cel.EnvOption{ext.Strings(), ext.Math()}
	for i, f := range in.Fields() {
		if !celIdent.MatchString(f.Name) || slices.Contains(celReserved, f.Name) {
			continue
		}
		t := celType(f)
		if t == nil {
			continue
		}
		vars[f.Name] = variable{col: i, typ: f.Type}
		opts = append(opts, cel.Variable(f.Name, t))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("transform: %w", err)
	}
	return env, vars, nil
}

// activation resolves the input columns of the decoder's last parsed row.
type activation struct {
	vars map[string]variable
	row  cellRow
}

// cellRow is a decoded row, column by column.
type cellRow interface{ Cell(i int) decode.Cell }

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) ResolveName(name string) (any, bool) {
	v, ok := a.vars[name]
	if !ok {
		return nil, false
	}
	return celValue(a.row.Cell(v.col), v.typ), true
}

func (a *activation) Parent() interpreter.Activation { return nil }

// celValue converts a decoded cell of type t to CEL.
func celValue(c decode.Cell, t iceberg.Type) ref.Val {
	if c.Null {
		return types.NullValue
	}
	switch t := t.(type) {
	case iceberg.BooleanType:
		return types.Bool(c.Int != 0)
	case iceberg.Int32Type, iceberg.Int64Type:
		return types.Int(c.Int)
	case iceberg.Float32Type, iceberg.Float64Type:
		return types.Double(c.Float)
	case iceberg.DecimalType:
		return types.Double(c.Dec.ToFloat64(int32(t.Scale())))
	case iceberg.StringType:
		return types.String(c.Bytes)
	case iceberg.UUIDType:
		u, _ := uuid.FromBytes(c.Bytes)
		return types.String(u.String())
	case iceberg.BinaryType, iceberg.FixedType:
		return types.Bytes(slices.Clone(c.Bytes))
	case iceberg.DateType:
		return types.Timestamp{Time: time.Unix(c.Int*86400, 0).UTC()}
	case iceberg.TimestampType, iceberg.TimestampTzType:
		return types.Timestamp{Time: time.UnixMicro(c.Int).UTC()}
	case iceberg.TimestampNsType, iceberg.TimestampTzNsType:
		return types.Timestamp{Time: time.Unix(0, c.Int).UTC()}
	case iceberg.TimeType:
		return types.Duration{Duration: time.Duration(c.Int) * time.Microsecond}
	}
	return types.NewErr("column type %s cannot be read", t)
}

// outKind is how a computed column's value is stored.
type outKind uint8

const (
	outLong outKind = iota + 1
	outInt
	outDouble
	outFloat
	outBool
	outString
	outBinary
	outTimestamp // micros
	outDate
)

// outTypes maps the type names a computed column may declare to their
// Iceberg types and storage.
var outTypes = map[string]struct {
	typ  iceberg.Type
	kind outKind
}{
	"long":        {iceberg.PrimitiveTypes.Int64, outLong},
	"int":         {iceberg.PrimitiveTypes.Int32, outInt},
	"double":      {iceberg.PrimitiveTypes.Float64, outDouble},
	"float":       {iceberg.PrimitiveTypes.Float32, outFloat},
	"boolean":     {iceberg.PrimitiveTypes.Bool, outBool},
	"string":      {iceberg.PrimitiveTypes.String, outString},
	"binary":      {iceberg.PrimitiveTypes.Binary, outBinary},
	"timestamp":   {iceberg.PrimitiveTypes.Timestamp, outTimestamp},
	"timestamptz": {iceberg.PrimitiveTypes.TimestampTz, outTimestamp},
	"date":        {iceberg.PrimitiveTypes.Date, outDate},
}

// outTypeNames lists outTypes' names for messages.
const outTypeNames = "boolean, int, long, float, double, string, binary, date, timestamp or timestamptz"

// defaultOutType is the column type of an expression of CEL kind k.
func defaultOutType(k types.Kind) (string, bool) {
	switch k {
	case types.IntKind, types.UintKind:
		return "long", true
	case types.DoubleKind:
		return "double", true
	case types.BoolKind:
		return "boolean", true
	case types.StringKind:
		return "string", true
	case types.BytesKind:
		return "binary", true
	case types.TimestampKind:
		return "timestamptz", true
	}
	return "", false
}

// accepts reports whether a column stored as o takes expressions of CEL
// kind k (dyn is checked when it is evaluated).
func (o outKind) accepts(k types.Kind) bool {
	if k == types.DynKind || k == types.NullTypeKind {
		return true
	}
	switch o {
	case outLong, outInt:
		return k == types.IntKind || k == types.UintKind
	case outDouble, outFloat:
		return k == types.DoubleKind || k == types.IntKind || k == types.UintKind
	case outBool:
		return k == types.BoolKind
	case outString:
		return k == types.StringKind
	case outBinary:
		return k == types.BytesKind || k == types.StringKind
	case outTimestamp, outDate:
		return k == types.TimestampKind
	}
	return false
}

// cell converts a computed value to the cell of a column stored as o; arena
// holds the bytes of strings and binaries until the next row.
func (o outKind) cell(v ref.Val, arena []byte) (decode.Cell, []byte, error) {
	if v == types.NullValue {
		return decode.Cell{Null: true}, arena, nil
	}
	bad := func() (decode.Cell, []byte, error) {
		return decode.Cell{}, arena, fmt.Errorf("the expression gave %s %v, which the column cannot hold", v.Type().TypeName(), v.Value())
	}
	var c decode.Cell
	switch o {
	case outLong, outInt:
		switch x := v.(type) {
		case types.Int:
			c.Int = int64(x)
		case types.Uint:
			if uint64(x) > math.MaxInt64 {
				return bad()
			}
			c.Int = int64(x)
		default:
			return bad()
		}
		if o == outInt && (c.Int < math.MinInt32 || c.Int > math.MaxInt32) {
			return decode.Cell{}, arena, fmt.Errorf("%d does not fit the int column", c.Int)
		}
	case outDouble, outFloat:
		switch x := v.(type) {
		case types.Double:
			c.Float = float64(x)
		case types.Int:
			c.Float = float64(x)
		case types.Uint:
			c.Float = float64(x)
		default:
			return bad()
		}
	case outBool:
		x, ok := v.(types.Bool)
		if !ok {
			return bad()
		}
		if x {
			c.Int = 1
		}
	case outString, outBinary:
		start := len(arena)
		switch x := v.(type) {
		case types.String:
			arena = append(arena, x...)
		case types.Bytes:
			if o == outString {
				return bad()
			}
			arena = append(arena, x...)
		default:
			return bad()
		}
		c.Bytes = arena[start:len(arena):len(arena)]
	case outTimestamp, outDate:
		x, ok := v.(types.Timestamp)
		if !ok {
			return bad()
		}
		c.Int = x.UnixMicro()
		if o == outDate {
			c.Int = floorDiv(x.Unix(), 86400)
		}
	}
	return c, arena, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
