package filter

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/iceberg-go"
	"github.com/google/uuid"
)

// pred is a comparison (op) or an IN list (set) awaiting its column's
// type.
type pred struct {
	op      Op
	set     bool
	negated bool
	lits    []Literal
}

// predicate binds a comparison or IN list on column c, converting the
// literals to the column's type.
func (b *binder) predicate(c Column, p pred) (iceberg.BooleanExpression, error) {
	f, err := b.column(c)
	if err != nil {
		return nil, err
	}
	ref := iceberg.Reference(f.Name)
	switch t := f.Type.(type) {
	case iceberg.BooleanType:
		return build(ref, p, checked(f, toBool))
	case iceberg.Int32Type:
		return build(ref, p, checked(f, toInt32))
	case iceberg.Int64Type:
		return build(ref, p, checked(f, toInt64))
	case iceberg.Float32Type:
		return build(ref, p, checked(f, toFloat32))
	case iceberg.Float64Type:
		return build(ref, p, checked(f, toFloat64))
	case iceberg.DecimalType:
		return build(ref, p, checked(f, decimalOf(t)))
	case iceberg.StringType:
		return build(ref, p, checked(f, toString))
	case iceberg.UUIDType:
		return build(ref, p, checked(f, toUUID))
	case iceberg.DateType:
		return build(ref, p, checked(f, toDate))
	case iceberg.TimeType:
		return build(ref, p, checked(f, toTime))
	case iceberg.TimestampType, iceberg.TimestampTzType:
		return build(ref, p, checked(f, toTimestamp))
	case iceberg.TimestampNsType, iceberg.TimestampTzNsType:
		return build(ref, p, checked(f, toTimestampNano))
	}
	return nil, notFilterable(f)
}

// build makes the iceberg-go predicate p with the literals converted by
// conv.
func build[T iceberg.LiteralType](ref iceberg.Reference, p pred, conv func(Literal) (T, error)) (iceberg.BooleanExpression, error) {
	vals := make([]T, 0, len(p.lits))
	for _, l := range p.lits {
		v, err := conv(l)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
	switch {
	case p.set && p.negated:
		// iceberg-go's scan counts a null as not in the list; SQL does
		// not count it at all.
		return iceberg.NewAnd(iceberg.NotIn(ref, vals...), iceberg.NotNull(ref)), nil
	case p.set:
		return iceberg.IsIn(ref, vals...), nil
	}
	return compare(ref, p.op, vals[0])
}

func compare[T iceberg.LiteralType](ref iceberg.Reference, op Op, v T) (iceberg.BooleanExpression, error) {
	switch op {
	case Eq:
		return iceberg.EqualTo(ref, v), nil
	case Ne:
		return iceberg.NotEqualTo(ref, v), nil
	case Lt:
		return iceberg.LessThan(ref, v), nil
	case Le:
		return iceberg.LessThanEqual(ref, v), nil
	case Gt:
		return iceberg.GreaterThan(ref, v), nil
	case Ge:
		return iceberg.GreaterThanEqual(ref, v), nil
	}
	return nil, fmt.Errorf("filter: unknown comparison operator %d on column %q", int(op), string(ref))
}

// checked wraps a conversion's error with the column it was for:
// `column "amount" is long; 'abc' is not a long`.
func checked[T any](f iceberg.NestedField, conv func(Literal, iceberg.Type) (T, error)) func(Literal) (T, error) {
	return func(l Literal) (T, error) {
		v, err := conv(l, f.Type)
		if err != nil {
			return v, fmt.Errorf("filter: column %q is %s; %w", f.Name, f.Type, err)
		}
		return v, nil
	}
}

// notA says a literal is not a value of type t, with a hint where the
// literal looks like one written the wrong way.
func notA(l Literal, t iceberg.Type) error {
	msg := fmt.Sprintf("%s is not %s", shortLit(l), article(t))
	switch {
	case l.Kind == KindString && isNumeric(t) && isNumberText(l.Text):
		msg += " (write numbers without quotes)"
	case l.Kind == KindString && t.Equals(iceberg.PrimitiveTypes.Bool):
		msg += " (write TRUE or FALSE without quotes)"
	case l.Kind != KindString && !isNumeric(t) && !t.Equals(iceberg.PrimitiveTypes.Bool):
		msg += fmt.Sprintf(" (write it in single quotes, like %s)", example(t))
	}
	return errors.New(msg)
}

// example is a literal of type t, for hints.
func example(t iceberg.Type) string {
	switch t.(type) {
	case iceberg.UUIDType:
		return "'f81d4fae-7dec-11d0-a765-00a0c91e6bf6'"
	case iceberg.DateType:
		return "'2026-01-02'"
	case iceberg.TimeType:
		return "'03:04:05'"
	case iceberg.TimestampType, iceberg.TimestampNsType:
		return "'2026-01-02 03:04:05'"
	case iceberg.TimestampTzType, iceberg.TimestampTzNsType:
		return "'2026-01-02T03:04:05Z'"
	}
	return "'text'"
}

// shortLit renders a literal for a message, shortened when long.
func shortLit(l Literal) string {
	if l.Kind == KindString {
		return Literal{Kind: KindString, Text: shorten(l.Text)}.String()
	}
	return shorten(l.Text)
}

func article(t iceberg.Type) string {
	if t.Equals(iceberg.PrimitiveTypes.Int32) {
		return "an " + t.String()
	}
	return "a " + t.String()
}

func isNumeric(t iceberg.Type) bool {
	switch t.(type) {
	case iceberg.Int32Type, iceberg.Int64Type, iceberg.Float32Type, iceberg.Float64Type, iceberg.DecimalType:
		return true
	}
	return false
}

// isNumberText reports whether s would lex as a number.
func isNumberText(s string) bool {
	lx := lexer{src: s}
	t, err := lx.next()
	return err == nil && (t.kind == tInteger || t.kind == tNumber) && t.end == len(s)
}

func toBool(l Literal, t iceberg.Type) (bool, error) {
	if l.Kind != KindBool {
		return false, notA(l, t)
	}
	return l.Text == "TRUE", nil
}

func toString(l Literal, t iceberg.Type) (string, error) {
	if l.Kind != KindString {
		return "", fmt.Errorf("%s is not a string (write it in single quotes: '%s')", shortLit(l), shorten(l.Text))
	}
	return l.Text, nil
}

func toInt32(l Literal, t iceberg.Type) (int32, error) {
	n, err := wholeNumber(l, t, math.MinInt32, math.MaxInt32)
	return int32(n), err
}

func toInt64(l Literal, t iceberg.Type) (int64, error) {
	return wholeNumber(l, t, math.MinInt64, math.MaxInt64)
}

// wholeNumber is a numeric literal's value, which must be a whole number
// from lo to hi.
func wholeNumber(l Literal, t iceberg.Type, lo, hi int64) (int64, error) {
	if l.Kind != KindInteger && l.Kind != KindNumber {
		return 0, notA(l, t)
	}
	r, ok := exactValue(l.Text)
	if !ok {
		return 0, outOfRange(l, t, lo, hi)
	}
	if !r.IsInt() {
		return 0, fmt.Errorf("%s is not a whole number", shortLit(l))
	}
	n := r.Num()
	if !n.IsInt64() || n.Int64() < lo || n.Int64() > hi {
		return 0, outOfRange(l, t, lo, hi)
	}
	return n.Int64(), nil
}

func outOfRange(l Literal, t iceberg.Type, lo, hi int64) error {
	return fmt.Errorf("%s is out of range for %s (%d to %d)", shortLit(l), article(t), lo, hi)
}

// maxExponent bounds the exponents exactValue accepts: no column type
// holds a number beyond it exactly, and a larger one would cost time and
// memory to expand.
const maxExponent = 400

// exactValue is a number's exact value; ok is false when its exponent
// is beyond ±maxExponent.
func exactValue(text string) (_ *big.Rat, ok bool) {
	if i := strings.IndexAny(text, "eE"); i >= 0 {
		exp, err := strconv.Atoi(text[i+1:])
		if err != nil || exp > maxExponent || exp < -maxExponent {
			return nil, false
		}
	}
	return new(big.Rat).SetString(text)
}

func toFloat32(l Literal, t iceberg.Type) (float32, error) {
	v, err := float(l, t, 32)
	return float32(v), err
}

func toFloat64(l Literal, t iceberg.Type) (float64, error) {
	return float(l, t, 64)
}

// float is a numeric literal rounded to the nearest float of the given
// bit size.
func float(l Literal, t iceberg.Type, bits int) (float64, error) {
	if l.Kind != KindInteger && l.Kind != KindNumber {
		return 0, notA(l, t)
	}
	v, err := strconv.ParseFloat(l.Text, bits)
	if err != nil || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s is out of range for %s", shortLit(l), article(t))
	}
	return v, nil
}

// decimalOf converts numeric literals to the decimal type t, exactly:
// a literal with more digits after the point than t's scale, or more
// digits in all than its precision, is an error.
func decimalOf(dt iceberg.DecimalType) func(Literal, iceberg.Type) (iceberg.Decimal, error) {
	return func(l Literal, t iceberg.Type) (iceberg.Decimal, error) {
		if l.Kind != KindInteger && l.Kind != KindNumber {
			return iceberg.Decimal{}, notA(l, t)
		}
		r, ok := exactValue(l.Text)
		if !ok {
			return iceberg.Decimal{}, fmt.Errorf("%s does not fit %s", shortLit(l), t)
		}
		scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt(pow10(dt.Scale())))
		if !scaled.IsInt() {
			return iceberg.Decimal{}, fmt.Errorf("%s has more than %d digits after the point", shortLit(l), dt.Scale())
		}
		unscaled := scaled.Num()
		if new(big.Int).Abs(unscaled).Cmp(pow10(dt.Precision())) >= 0 {
			return iceberg.Decimal{}, fmt.Errorf("%s does not fit %s: it has more than %d digits in all", shortLit(l), t, dt.Precision())
		}
		return iceberg.Decimal{Val: decimal128.FromBigInt(unscaled), Scale: dt.Scale()}, nil
	}
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

func toUUID(l Literal, t iceberg.Type) (uuid.UUID, error) {
	if l.Kind != KindString {
		return uuid.UUID{}, notA(l, t)
	}
	u, err := uuid.Parse(l.Text)
	if err != nil {
		return uuid.UUID{}, fmt.Errorf("%s is not a uuid (write it like %s)", shortLit(l), example(t))
	}
	return u, nil
}

func toDate(l Literal, t iceberg.Type) (iceberg.Date, error) {
	if l.Kind != KindString {
		return 0, notA(l, t)
	}
	d, err := time.Parse(time.DateOnly, l.Text)
	if err != nil {
		return 0, fmt.Errorf("%s is not a date (write it like %s)", shortLit(l), example(t))
	}
	return iceberg.Date(d.Unix() / 86400), nil
}

func toTime(l Literal, t iceberg.Type) (iceberg.Time, error) {
	if l.Kind != KindString {
		return 0, notA(l, t)
	}
	// A fraction after the seconds is accepted without being in the
	// layout.
	v, err := time.Parse(time.TimeOnly, l.Text)
	if err != nil {
		return 0, fmt.Errorf("%s is not a time (write it like '03:04:05' or '03:04:05.123456')", shortLit(l))
	}
	if v.Nanosecond()%1000 != 0 {
		return 0, fmt.Errorf("%s is more precise than microseconds", shortLit(l))
	}
	day := time.Date(v.Year(), v.Month(), v.Day(), 0, 0, 0, 0, time.UTC)
	return iceberg.Time(v.Sub(day).Microseconds()), nil
}

// timestampLayouts are the forms a timestamp literal may take, tried in
// order. A fraction after the seconds is accepted by each layout that
// has seconds; one without a zone is UTC.
var timestampLayouts = []string{
	time.RFC3339,
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
	time.DateOnly,
}

func parseTimestamp(l Literal, t iceberg.Type) (time.Time, error) {
	if l.Kind != KindString {
		return time.Time{}, notA(l, t)
	}
	for _, layout := range timestampLayouts {
		if v, err := time.Parse(layout, l.Text); err == nil {
			return v, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s is not %s (write it like '2026-01-02 03:04:05', '2026-01-02T03:04:05.123456Z' or '2026-01-02')",
		shortLit(l), article(t))
}

func toTimestamp(l Literal, t iceberg.Type) (iceberg.Timestamp, error) {
	v, err := parseTimestamp(l, t)
	if err != nil {
		return 0, err
	}
	if v.Nanosecond()%1000 != 0 {
		return 0, fmt.Errorf("%s is more precise than microseconds", shortLit(l))
	}
	return iceberg.Timestamp(v.UnixMicro()), nil
}

// The instants a nanosecond timestamp can hold.
var (
	minNano = time.Unix(0, math.MinInt64)
	maxNano = time.Unix(0, math.MaxInt64)
)

func toTimestampNano(l Literal, t iceberg.Type) (iceberg.TimestampNano, error) {
	v, err := parseTimestamp(l, t)
	if err != nil {
		return 0, err
	}
	if v.Before(minNano) || v.After(maxNano) {
		return 0, fmt.Errorf("%s is out of range for %s (years 1678 to 2262)", shortLit(l), article(t))
	}
	return iceberg.TimestampNano(v.UnixNano()), nil
}
