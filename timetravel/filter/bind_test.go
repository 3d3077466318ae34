package filter_test

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/iceberg-go"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/timetravel/filter"
)

// bindSchema has a column of every type.
func bindSchema() *iceberg.Schema {
	opt := func(id int, name string, t iceberg.Type) iceberg.NestedField {
		return iceberg.NestedField{ID: id, Name: name, Type: t}
	}
	return iceberg.NewSchema(0,
		opt(1, "b", iceberg.PrimitiveTypes.Bool),
		opt(2, "i", iceberg.PrimitiveTypes.Int32),
		opt(3, "amount", iceberg.PrimitiveTypes.Int64),
		opt(4, "f", iceberg.PrimitiveTypes.Float32),
		opt(5, "d", iceberg.PrimitiveTypes.Float64),
		opt(6, "price", iceberg.DecimalTypeOf(9, 2)),
		opt(7, "s", iceberg.PrimitiveTypes.String),
		opt(8, "u", iceberg.PrimitiveTypes.UUID),
		opt(9, "dt", iceberg.PrimitiveTypes.Date),
		opt(10, "tm", iceberg.PrimitiveTypes.Time),
		opt(11, "ts", iceberg.PrimitiveTypes.Timestamp),
		opt(12, "tz", iceberg.PrimitiveTypes.TimestampTz),
		opt(13, "tsn", iceberg.PrimitiveTypes.TimestampNs),
		opt(14, "tzn", iceberg.PrimitiveTypes.TimestampTzNs),
		opt(15, "bin", iceberg.PrimitiveTypes.Binary),
		opt(16, "fx", iceberg.FixedTypeOf(4)),
		opt(17, "addr", &iceberg.StructType{FieldList: []iceberg.NestedField{opt(18, "city", iceberg.PrimitiveTypes.String)}}),
		opt(19, "tags", &iceberg.ListType{ElementID: 20, Element: iceberg.PrimitiveTypes.String}),
		opt(21, "attrs", &iceberg.MapType{KeyID: 22, KeyType: iceberg.PrimitiveTypes.String, ValueID: 23,
			ValueType: iceberg.PrimitiveTypes.String, ValueRequired: true}),
		opt(24, "my col", iceberg.PrimitiveTypes.String),
		opt(25, "Upper", iceberg.PrimitiveTypes.String),
		opt(26, "Case", iceberg.PrimitiveTypes.String),
		opt(27, "CASE", iceberg.PrimitiveTypes.String),
		iceberg.NestedField{ID: 28, Name: "req", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		opt(29, "v", iceberg.VariantType{}),
	)
}

func ref(name string) iceberg.Reference { return iceberg.Reference(name) }

func micros(s string) iceberg.Timestamp {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return iceberg.Timestamp(t.UnixMicro())
}

func nanos(s string) iceberg.TimestampNano {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return iceberg.TimestampNano(t.UnixNano())
}

func dec(unscaled int64) iceberg.Decimal {
	return iceberg.Decimal{Val: decimal128.FromI64(unscaled), Scale: 2}
}

func clock(h, m, s, us int64) iceberg.Time {
	return iceberg.Time(((h*60+m)*60+s)*1_000_000 + us)
}

func TestBind(t *testing.T) {
	u := uuid.MustParse("f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
	notIn := func(e iceberg.BooleanExpression, c string) iceberg.BooleanExpression {
		return iceberg.NewAnd(e, iceberg.NotNull(ref(c)))
	}
	tests := []struct {
		src  string
		want iceberg.BooleanExpression
	}{
		// Every operator.
		{`i = 1`, iceberg.EqualTo(ref("i"), int32(1))},
		{`i != 1`, iceberg.NotEqualTo(ref("i"), int32(1))},
		{`i <> 1`, iceberg.NotEqualTo(ref("i"), int32(1))},
		{`i < 1`, iceberg.LessThan(ref("i"), int32(1))},
		{`i <= 1`, iceberg.LessThanEqual(ref("i"), int32(1))},
		{`i > 1`, iceberg.GreaterThan(ref("i"), int32(1))},
		{`i >= 1`, iceberg.GreaterThanEqual(ref("i"), int32(1))},

		// Every type.
		{`b = TRUE`, iceberg.EqualTo(ref("b"), true)},
		{`b != false`, iceberg.NotEqualTo(ref("b"), false)},
		{`i = -2147483648`, iceberg.EqualTo(ref("i"), int32(math.MinInt32))},
		{`i = 2147483647`, iceberg.EqualTo(ref("i"), int32(math.MaxInt32))},
		{`i = 5.0`, iceberg.EqualTo(ref("i"), int32(5))},
		{`i = 5e2`, iceberg.EqualTo(ref("i"), int32(500))},
		{`i = +7`, iceberg.EqualTo(ref("i"), int32(7))},
		{`amount = -9223372036854775808`, iceberg.EqualTo(ref("amount"), int64(math.MinInt64))},
		{`amount = 9223372036854775807`, iceberg.EqualTo(ref("amount"), int64(math.MaxInt64))},
		{`amount = 1.2e3`, iceberg.EqualTo(ref("amount"), int64(1200))},
		{`f = 1.5`, iceberg.EqualTo(ref("f"), float32(1.5))},
		{`f = 0.1`, iceberg.EqualTo(ref("f"), float32(0.1))},
		{`f = 3`, iceberg.EqualTo(ref("f"), float32(3))},
		{`d = -2e3`, iceberg.EqualTo(ref("d"), -2000.0)},
		{`d = 0.1`, iceberg.EqualTo(ref("d"), 0.1)},
		{`d = 42`, iceberg.EqualTo(ref("d"), 42.0)},
		{`d = 1e308`, iceberg.EqualTo(ref("d"), 1e308)},
		{`price = 12.34`, iceberg.EqualTo(ref("price"), dec(1234))},
		{`price = 12.3`, iceberg.EqualTo(ref("price"), dec(1230))},
		{`price = 12`, iceberg.EqualTo(ref("price"), dec(1200))},
		{`price = -0.01`, iceberg.EqualTo(ref("price"), dec(-1))},
		{`price = 1.5e2`, iceberg.EqualTo(ref("price"), dec(15000))},
		{`price = 1234567.89`, iceberg.EqualTo(ref("price"), dec(123456789))},
		{`price = 12.3400`, iceberg.EqualTo(ref("price"), dec(1234))},
		{`s = 'it''s'`, iceberg.EqualTo(ref("s"), "it's")},
		{`s >= ''`, iceberg.GreaterThanEqual(ref("s"), "")},
		{`u = 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6'`, iceberg.EqualTo(ref("u"), u)},
		{`u = 'F81D4FAE7DEC11D0A76500A0C91E6BF6'`, iceberg.EqualTo(ref("u"), u)},
		{`dt = '2026-01-02'`, iceberg.EqualTo(ref("dt"), iceberg.Date(20455))},
		{`dt = '1970-01-01'`, iceberg.EqualTo(ref("dt"), iceberg.Date(0))},
		{`dt < '1969-12-31'`, iceberg.LessThan(ref("dt"), iceberg.Date(-1))},
		{`tm = '03:04:05'`, iceberg.EqualTo(ref("tm"), clock(3, 4, 5, 0))},
		{`tm = '23:59:59.999999'`, iceberg.EqualTo(ref("tm"), clock(23, 59, 59, 999999))},
		{`tm = '00:00:00.5'`, iceberg.EqualTo(ref("tm"), clock(0, 0, 0, 500000))},
		{`ts = '2026-01-02 03:04:05'`, iceberg.EqualTo(ref("ts"), micros("2026-01-02T03:04:05Z"))},
		{`ts = '2026-01-02 03:04:05.123456'`, iceberg.EqualTo(ref("ts"), micros("2026-01-02T03:04:05.123456Z"))},
		{`ts = '2026-01-02T03:04:05'`, iceberg.EqualTo(ref("ts"), micros("2026-01-02T03:04:05Z"))},
		{`ts = '2026-01-02T03:04:05.5Z'`, iceberg.EqualTo(ref("ts"), micros("2026-01-02T03:04:05.5Z"))},
		{`ts = '2026-01-02T05:04:05+02:00'`, iceberg.EqualTo(ref("ts"), micros("2026-01-02T03:04:05Z"))},
		{`ts = '2026-01-02'`, iceberg.EqualTo(ref("ts"), micros("2026-01-02T00:00:00Z"))},
		{`tz = '2026-01-02 03:04:05-01:30'`, iceberg.EqualTo(ref("tz"), micros("2026-01-02T04:34:05Z"))},
		{`tz > '1960-01-01T00:00:00Z'`, iceberg.GreaterThan(ref("tz"), micros("1960-01-01T00:00:00Z"))},
		{`tsn = '2026-01-02 03:04:05.123456789'`, iceberg.EqualTo(ref("tsn"), nanos("2026-01-02T03:04:05.123456789Z"))},
		{`tzn = '2026-01-02T03:04:05.000000001Z'`, iceberg.EqualTo(ref("tzn"), nanos("2026-01-02T03:04:05.000000001Z"))},

		// Lists.
		{`i IN (1, 2, 3)`, iceberg.IsIn(ref("i"), int32(1), int32(2), int32(3))},
		{`i IN (1)`, iceberg.EqualTo(ref("i"), int32(1))},
		{`s IN ('a', 'a', 'b')`, iceberg.IsIn(ref("s"), "a", "b")},
		{`price IN (1, 2.5)`, iceberg.IsIn(ref("price"), dec(100), dec(250))},
		{`i NOT IN (1, 2)`, notIn(iceberg.NotIn(ref("i"), int32(1), int32(2)), "i")},
		{`s NOT IN ('a')`, notIn(iceberg.NotEqualTo(ref("s"), "a"), "s")},

		// Null tests, on any primitive column.
		{`s IS NULL`, iceberg.IsNull(ref("s"))},
		{`s IS NOT NULL`, iceberg.NotNull(ref("s"))},
		{`bin IS NULL`, iceberg.IsNull(ref("bin"))},
		{`fx IS NOT NULL`, iceberg.NotNull(ref("fx"))},
		{`req IS NULL`, iceberg.IsNull(ref("req"))},

		// NOT is carried down to the predicates.
		{`NOT i = 1`, iceberg.NotEqualTo(ref("i"), int32(1))},
		{`NOT i != 1`, iceberg.EqualTo(ref("i"), int32(1))},
		{`NOT i < 1`, iceberg.GreaterThanEqual(ref("i"), int32(1))},
		{`NOT i <= 1`, iceberg.GreaterThan(ref("i"), int32(1))},
		{`NOT i > 1`, iceberg.LessThanEqual(ref("i"), int32(1))},
		{`NOT i >= 1`, iceberg.LessThan(ref("i"), int32(1))},
		{`NOT NOT i = 1`, iceberg.EqualTo(ref("i"), int32(1))},
		{`NOT i IN (1, 2)`, notIn(iceberg.NotIn(ref("i"), int32(1), int32(2)), "i")},
		{`NOT i NOT IN (1, 2)`, iceberg.IsIn(ref("i"), int32(1), int32(2))},
		{`NOT s IS NULL`, iceberg.NotNull(ref("s"))},
		{`NOT s IS NOT NULL`, iceberg.IsNull(ref("s"))},
		{`NOT (i = 1 AND s = 'x')`, iceberg.NewOr(iceberg.NotEqualTo(ref("i"), int32(1)), iceberg.NotEqualTo(ref("s"), "x"))},
		{`NOT (i = 1 OR s = 'x')`, iceberg.NewAnd(iceberg.NotEqualTo(ref("i"), int32(1)), iceberg.NotEqualTo(ref("s"), "x"))},
		{`NOT (i = 1 AND NOT s = 'x')`, iceberg.NewOr(iceberg.NotEqualTo(ref("i"), int32(1)), iceberg.EqualTo(ref("s"), "x"))},

		// AND and OR.
		{`i = 1 AND s = 'x' OR b = TRUE`, iceberg.NewOr(
			iceberg.NewAnd(iceberg.EqualTo(ref("i"), int32(1)), iceberg.EqualTo(ref("s"), "x")),
			iceberg.EqualTo(ref("b"), true))},

		// Column names.
		{`"my col" = 'x'`, iceberg.EqualTo(ref("my col"), "x")},
		{`upper = 'x'`, iceberg.EqualTo(ref("Upper"), "x")},
		{`UPPER = 'x'`, iceberg.EqualTo(ref("Upper"), "x")},
		{`"Upper" = 'x'`, iceberg.EqualTo(ref("Upper"), "x")},
		{`Case = 'x'`, iceberg.EqualTo(ref("Case"), "x")},
		{`"CASE" = 'x'`, iceberg.EqualTo(ref("CASE"), "x")},
	}
	sch := bindSchema()
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := filter.Parse(tt.src)
			require.NoError(t, err)
			got, err := filter.Bind(e, sch)
			require.NoError(t, err)
			assert.True(t, tt.want.Equals(got), "got  %s\nwant %s", got, tt.want)
			requireBindsWithTypes(t, sch, got)
		})
	}
}

// requireBindsWithTypes binds expr as a scan would and checks that each
// literal has the Go type iceberg-go uses for its column's type.
func requireBindsWithTypes(t *testing.T, sch *iceberg.Schema, expr iceberg.BooleanExpression) {
	t.Helper()
	bound, err := iceberg.BindExpr(sch, expr, true)
	require.NoError(t, err)
	preds, err := iceberg.VisitExpr(bound, predicateCollector{})
	require.NoError(t, err)
	for _, p := range preds {
		want, ok := goTypes[reflect.TypeOf(p.Term().Type())]
		require.True(t, ok, "no Go type known for %s", p.Term().Type())
		for _, lit := range boundLiterals(p) {
			assert.Equal(t, want, reflect.TypeOf(lit.Any()), "literal %s of %s", lit, p)
		}
	}
}

var goTypes = map[reflect.Type]reflect.Type{
	reflect.TypeFor[iceberg.BooleanType]():       reflect.TypeFor[bool](),
	reflect.TypeFor[iceberg.Int32Type]():         reflect.TypeFor[int32](),
	reflect.TypeFor[iceberg.Int64Type]():         reflect.TypeFor[int64](),
	reflect.TypeFor[iceberg.Float32Type]():       reflect.TypeFor[float32](),
	reflect.TypeFor[iceberg.Float64Type]():       reflect.TypeFor[float64](),
	reflect.TypeFor[iceberg.DecimalType]():       reflect.TypeFor[iceberg.Decimal](),
	reflect.TypeFor[iceberg.StringType]():        reflect.TypeFor[string](),
	reflect.TypeFor[iceberg.UUIDType]():          reflect.TypeFor[uuid.UUID](),
	reflect.TypeFor[iceberg.DateType]():          reflect.TypeFor[iceberg.Date](),
	reflect.TypeFor[iceberg.TimeType]():          reflect.TypeFor[iceberg.Time](),
	reflect.TypeFor[iceberg.TimestampType]():     reflect.TypeFor[iceberg.Timestamp](),
	reflect.TypeFor[iceberg.TimestampTzType]():   reflect.TypeFor[iceberg.Timestamp](),
	reflect.TypeFor[iceberg.TimestampNsType]():   reflect.TypeFor[iceberg.TimestampNano](),
	reflect.TypeFor[iceberg.TimestampTzNsType](): reflect.TypeFor[iceberg.TimestampNano](),
	reflect.TypeFor[iceberg.BinaryType]():        reflect.TypeFor[[]byte](),
	reflect.TypeFor[iceberg.FixedType]():         reflect.TypeFor[[]byte](),
}

func boundLiterals(p iceberg.BoundPredicate) []iceberg.Literal {
	switch p := p.(type) {
	case iceberg.BoundLiteralPredicate:
		return []iceberg.Literal{p.Literal()}
	case iceberg.BoundSetPredicate:
		return p.Literals().Members()
	}
	return nil
}

// predicateCollector lists the bound predicates of an expression.
type predicateCollector struct{}

func (predicateCollector) VisitTrue() []iceberg.BoundPredicate  { return nil }
func (predicateCollector) VisitFalse() []iceberg.BoundPredicate { return nil }
func (predicateCollector) VisitNot(c []iceberg.BoundPredicate) []iceberg.BoundPredicate {
	return c
}

func (predicateCollector) VisitAnd(l, r []iceberg.BoundPredicate) []iceberg.BoundPredicate {
	return append(l, r...)
}

func (predicateCollector) VisitOr(l, r []iceberg.BoundPredicate) []iceberg.BoundPredicate {
	return append(l, r...)
}

func (predicateCollector) VisitUnbound(p iceberg.UnboundPredicate) []iceberg.BoundPredicate {
	panic("unbound predicate " + p.String())
}

func (predicateCollector) VisitBound(p iceberg.BoundPredicate) []iceberg.BoundPredicate {
	return []iceberg.BoundPredicate{p}
}

func TestBindResultHasNoNot(t *testing.T) {
	sch := bindSchema()
	e, err := filter.Parse(`NOT (NOT (i = 1 OR NOT s IN ('a', 'b')) AND NOT b IS NULL)`)
	require.NoError(t, err)
	got, err := filter.Bind(e, sch)
	require.NoError(t, err)
	assert.NotContains(t, got.String(), "Not(")
	want := iceberg.NewOr(
		iceberg.NewOr(iceberg.EqualTo(ref("i"), int32(1)),
			iceberg.NewAnd(iceberg.NotIn(ref("s"), "a", "b"), iceberg.NotNull(ref("s")))),
		iceberg.IsNull(ref("b")))
	assert.True(t, want.Equals(got), "got  %s\nwant %s", got, want)
}

func TestBindErrors(t *testing.T) {
	tests := []struct {
		src, msg string
	}{
		// Columns.
		{`x = 1`, `no column "x" (the columns are b, i, amount, f, d, price, s, u, dt, tm, ts, tz, tsn, tzn, bin, fx, addr, tags, attrs, "my col", Upper, Case, CASE, req, v)`},
		{`"upper" = 'x'`, `no column "upper"; did you mean Upper? (a quoted name must match exactly)`},
		{`case = 'x'`, `the column name case matches Case and CASE; quote the one you mean`},
		{`"case" = 'x'`, `no column "case"; did you mean Case or CASE? (a quoted name must match exactly)`},
		{`my_col = 'x'`, `no column "my_col" (the columns are`},
		{`addr = 'x'`, `column "addr" is a struct; only columns of primitive types can be filtered`},
		{`addr IS NULL`, `column "addr" is a struct; only columns of primitive types can be filtered`},
		{`tags IN ('x')`, `column "tags" is a list; only columns of primitive types can be filtered`},
		{`attrs IS NOT NULL`, `column "attrs" is a map; only columns of primitive types can be filtered`},
		{`"addr.city" = 'x'`, `no column "addr.city" (the columns are`},
		{`bin = 'x'`, `column "bin" is binary; binary and fixed columns cannot be compared (IS NULL and IS NOT NULL work on them)`},
		{`fx IN ('x')`, `column "fx" is fixed[4]; binary and fixed columns cannot be compared (IS NULL and IS NOT NULL work on them)`},
		{`v = 1`, `column "v" is variant; columns of that type cannot be filtered`},
		{`v IS NULL`, `column "v" is variant; columns of that type cannot be filtered`},

		// Literals the column cannot hold.
		{`amount = 'abc'`, `column "amount" is long; 'abc' is not a long`},
		{`amount = '12'`, `column "amount" is long; '12' is not a long (write numbers without quotes)`},
		{`amount = TRUE`, `column "amount" is long; TRUE is not a long`},
		{`amount = 1.5`, `column "amount" is long; 1.5 is not a whole number`},
		{`amount = 1e-3`, `column "amount" is long; 1e-3 is not a whole number`},
		{`amount = 9223372036854775808`, `column "amount" is long; 9223372036854775808 is out of range for a long (-9223372036854775808 to 9223372036854775807)`},
		{`amount = 1e19`, `column "amount" is long; 1e19 is out of range for a long (-9223372036854775808 to 9223372036854775807)`},
		{`amount = 1e999999`, `column "amount" is long; 1e999999 is out of range for a long (-9223372036854775808 to 9223372036854775807)`},
		{`i = 2147483648`, `column "i" is int; 2147483648 is out of range for an int (-2147483648 to 2147483647)`},
		{`i = -2147483649`, `column "i" is int; -2147483649 is out of range for an int (-2147483648 to 2147483647)`},
		{`i IN (1, 2, 3000000000)`, `column "i" is int; 3000000000 is out of range for an int (-2147483648 to 2147483647)`},
		{`i = 0.5`, `column "i" is int; 0.5 is not a whole number`},
		{`f = 1e39`, `column "f" is float; 1e39 is out of range for a float`},
		{`d = -1e309`, `column "d" is double; -1e309 is out of range for a double`},
		{`d = 'NaN'`, `column "d" is double; 'NaN' is not a double`},
		{`price = 1.234`, `column "price" is decimal(9, 2); 1.234 has more than 2 digits after the point`},
		{`price = 12345678`, `column "price" is decimal(9, 2); 12345678 does not fit decimal(9, 2): it has more than 9 digits in all`},
		{`price = 1e500`, `column "price" is decimal(9, 2); 1e500 does not fit decimal(9, 2)`},
		{`price = '1.5'`, `column "price" is decimal(9, 2); '1.5' is not a decimal(9, 2) (write numbers without quotes)`},
		{`b = 'true'`, `column "b" is boolean; 'true' is not a boolean (write TRUE or FALSE without quotes)`},
		{`b = 1`, `column "b" is boolean; 1 is not a boolean`},
		{`s = 5`, `column "s" is string; 5 is not a string (write it in single quotes: '5')`},
		{`s IN ('a', FALSE)`, `column "s" is string; FALSE is not a string (write it in single quotes: 'FALSE')`},
		{`u = 'abc'`, `column "u" is uuid; 'abc' is not a uuid (write it like 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6')`},
		{`u = 1`, `column "u" is uuid; 1 is not a uuid (write it in single quotes, like 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6')`},
		{`dt = '2026-13-01'`, `column "dt" is date; '2026-13-01' is not a date (write it like '2026-01-02')`},
		{`dt = '2026-01-02 03:04:05'`, `column "dt" is date; '2026-01-02 03:04:05' is not a date (write it like '2026-01-02')`},
		{`dt = 20260102`, `column "dt" is date; 20260102 is not a date (write it in single quotes, like '2026-01-02')`},
		{`tm = '25:00:00'`, `column "tm" is time; '25:00:00' is not a time (write it like '03:04:05' or '03:04:05.123456')`},
		{`tm = '03:04:05.1234567'`, `column "tm" is time; '03:04:05.1234567' is more precise than microseconds`},
		{`ts = 'yesterday'`, `column "ts" is timestamp; 'yesterday' is not a timestamp (write it like '2026-01-02 03:04:05', '2026-01-02T03:04:05.123456Z' or '2026-01-02')`},
		{`ts = '2026-01-02 03:04:05.0000001'`, `column "ts" is timestamp; '2026-01-02 03:04:05.0000001' is more precise than microseconds`},
		{`tz = 1767323045`, `column "tz" is timestamptz; 1767323045 is not a timestamptz (write it in single quotes, like '2026-01-02T03:04:05Z')`},
		{`tsn = '2263-01-01'`, `column "tsn" is timestamp_ns; '2263-01-01' is out of range for a timestamp_ns (years 1678 to 2262)`},
		{`s = 'x' AND amount = 'y'`, `column "amount" is long; 'y' is not a long`},
		{`s = '` + strings.Repeat("x", 100) + `' OR amount = '` + strings.Repeat("y", 100) + `'`,
			`column "amount" is long; '` + strings.Repeat("y", 37) + `...' is not a long`},
	}
	sch := bindSchema()
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := filter.Parse(tt.src)
			require.NoError(t, err)
			_, err = filter.Bind(e, sch)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "filter: "+tt.msg), "got  %s\nwant %s", err, tt.msg)
		})
	}
}

func TestBindBuiltTrees(t *testing.T) {
	sch := bindSchema()
	tests := []struct {
		name string
		tree filter.Expr
		msg  string
	}{
		{"nil", nil, "filter: the filter is missing an operand"},
		{"nil operand", filter.And{Left: eq("i", 1)}, "filter: the filter is missing an operand"},
		{"nil pointer", (*filter.Not)(nil), "filter: the filter is missing an operand"},
		{"empty IN", filter.In{Column: col("i")}, `filter: the IN list for column "i" is empty`},
		{"unknown operator", filter.Compare{Column: col("i"), Op: filter.Op(99), Value: integer("1")},
			`filter: unknown comparison operator 99 on column "i"`},
		{"foreign node", foreign{}, "filter: cannot bind a filter_test.foreign"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := filter.Bind(tt.tree, sch)
			require.EqualError(t, err, tt.msg)
		})
	}

	got, err := filter.Bind(&filter.Not{X: &filter.Compare{Column: col("i"), Value: integer("1")}}, sch)
	require.NoError(t, err)
	assert.True(t, iceberg.NotEqualTo(ref("i"), int32(1)).Equals(got), "got %s", got)

	_, err = filter.Bind(eq("i", 1), nil)
	require.EqualError(t, err, "filter: there is no schema to bind the filter to")
}

type foreign struct{}

func (foreign) String() string { return "?" }

// TestBindDottedName binds a top-level column with a dot in its name,
// and refuses to bind in a schema where such a name is also the path of
// a nested field, which iceberg-go cannot look names up in.
func TestBindDottedName(t *testing.T) {
	bind := func(sch *iceberg.Schema, src string) (iceberg.BooleanExpression, error) {
		e, err := filter.Parse(src)
		require.NoError(t, err)
		return filter.Bind(e, sch)
	}
	str := iceberg.PrimitiveTypes.String
	sch := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "c.d", Type: str})
	got, err := bind(sch, `"c.d" = 'x'`)
	require.NoError(t, err)
	requireBindsWithTypes(t, sch, got)

	clash := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "a", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{{ID: 2, Name: "b", Type: str}}}},
		iceberg.NestedField{ID: 3, Name: "a.b", Type: str},
		iceberg.NestedField{ID: 4, Name: "c", Type: str},
	)
	for _, name := range []string{"a.b", "c"} {
		_, err = bind(clash, `"`+name+`" = 'x'`)
		require.EqualError(t, err, `filter: column "`+name+`" cannot be filtered: iceberg-go cannot look columns up by name in this schema (do two fields have the same dotted name?)`)
	}
}
