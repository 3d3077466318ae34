package filter_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/timetravel/filter"
)

func col(name string) filter.Column  { return filter.Column{Name: name} }
func qcol(name string) filter.Column { return filter.Column{Name: name, Quoted: true} }
func str(s string) filter.Literal    { return filter.Literal{Kind: filter.KindString, Text: s} }
func integer(s string) filter.Literal {
	return filter.Literal{Kind: filter.KindInteger, Text: s}
}
func number(s string) filter.Literal { return filter.Literal{Kind: filter.KindNumber, Text: s} }
func boolean(b bool) filter.Literal {
	if b {
		return filter.Literal{Kind: filter.KindBool, Text: "TRUE"}
	}
	return filter.Literal{Kind: filter.KindBool, Text: "FALSE"}
}

func cmp(c string, op filter.Op, v filter.Literal) filter.Compare {
	return filter.Compare{Column: col(c), Op: op, Value: v}
}

// eq is c = <integer v>, for trees whose shape is what matters.
func eq(c string, v int) filter.Compare { return cmp(c, filter.Eq, integer(fmt.Sprint(v))) }

func and(l, r filter.Expr) filter.And { return filter.And{Left: l, Right: r} }
func or(l, r filter.Expr) filter.Or   { return filter.Or{Left: l, Right: r} }
func not(x filter.Expr) filter.Not    { return filter.Not{X: x} }

func TestParse(t *testing.T) {
	tests := []struct {
		src       string
		want      filter.Expr
		canonical string // "" when it is src itself
	}{
		// Every operator.
		{src: `a = 1`, want: eq("a", 1)},
		{src: `a != 1`, want: cmp("a", filter.Ne, integer("1"))},
		{src: `a <> 1`, want: cmp("a", filter.Ne, integer("1")), canonical: `a != 1`},
		{src: `a < 1`, want: cmp("a", filter.Lt, integer("1"))},
		{src: `a <= 1`, want: cmp("a", filter.Le, integer("1"))},
		{src: `a > 1`, want: cmp("a", filter.Gt, integer("1"))},
		{src: `a >= 1`, want: cmp("a", filter.Ge, integer("1"))},
		{src: `a>=1`, want: cmp("a", filter.Ge, integer("1")), canonical: `a >= 1`},
		{src: "a\t=\n\r 1 ", want: eq("a", 1), canonical: `a = 1`},

		// Precedence: NOT binds tighter than AND, AND tighter than OR.
		{src: `a = 1 OR b = 2 AND c = 3`, want: or(eq("a", 1), and(eq("b", 2), eq("c", 3)))},
		{src: `a = 1 AND b = 2 OR c = 3`, want: or(and(eq("a", 1), eq("b", 2)), eq("c", 3))},
		{src: `NOT a = 1 AND b = 2`, want: and(not(eq("a", 1)), eq("b", 2))},
		{src: `NOT a = 1 OR NOT b = 2 AND c = 3`, want: or(not(eq("a", 1)), and(not(eq("b", 2)), eq("c", 3)))},
		{src: `NOT NOT a = 1`, want: not(not(eq("a", 1)))},
		// AND and OR associate to the left.
		{src: `a = 1 AND b = 2 AND c = 3`, want: and(and(eq("a", 1), eq("b", 2)), eq("c", 3))},
		{src: `a = 1 OR b = 2 OR c = 3`, want: or(or(eq("a", 1), eq("b", 2)), eq("c", 3))},

		// Parentheses.
		{src: `(a = 1 OR b = 2) AND c = 3`, want: and(or(eq("a", 1), eq("b", 2)), eq("c", 3))},
		{src: `a = 1 AND (b = 2 AND c = 3)`, want: and(eq("a", 1), and(eq("b", 2), eq("c", 3)))},
		{src: `a = 1 OR (b = 2 OR c = 3)`, want: or(eq("a", 1), or(eq("b", 2), eq("c", 3)))},
		{src: `NOT (a = 1 AND b = 2)`, want: not(and(eq("a", 1), eq("b", 2)))},
		{src: `NOT (a = 1 OR b = 2)`, want: not(or(eq("a", 1), eq("b", 2)))},
		{src: `((a = 1))`, want: eq("a", 1), canonical: `a = 1`},
		{src: `(a = 1) AND (b = 2)`, want: and(eq("a", 1), eq("b", 2)), canonical: `a = 1 AND b = 2`},
		{src: `(a = 1 AND b = 2) OR c = 3`, want: or(and(eq("a", 1), eq("b", 2)), eq("c", 3)),
			canonical: `a = 1 AND b = 2 OR c = 3`},
		{src: `NOT (a = 1)`, want: not(eq("a", 1)), canonical: `NOT a = 1`},
		{src: `(NOT a = 1)`, want: not(eq("a", 1)), canonical: `NOT a = 1`},

		// IN and NOT IN.
		{src: `a IN (1)`, want: filter.In{Column: col("a"), Values: []filter.Literal{integer("1")}}},
		{src: `a IN (1, 'x', 2.5, TRUE)`, want: filter.In{Column: col("a"),
			Values: []filter.Literal{integer("1"), str("x"), number("2.5"), boolean(true)}}},
		{src: `a NOT IN ('x','y')`, want: filter.In{Column: col("a"), Negated: true, Values: []filter.Literal{str("x"), str("y")}},
			canonical: `a NOT IN ('x', 'y')`},
		{src: `NOT a IN (1)`, want: not(filter.In{Column: col("a"), Values: []filter.Literal{integer("1")}})},

		// IS NULL and IS NOT NULL.
		{src: `a IS NULL`, want: filter.IsNull{Column: col("a")}},
		{src: `a IS NOT NULL`, want: filter.IsNull{Column: col("a"), Negated: true}},
		{src: `NOT a IS NULL`, want: not(filter.IsNull{Column: col("a")})},

		// Keywords in any case.
		{src: `a is not null or b in (true, false) and not c not in (1)`,
			want: or(filter.IsNull{Column: col("a"), Negated: true}, and(
				filter.In{Column: col("b"), Values: []filter.Literal{boolean(true), boolean(false)}},
				not(filter.In{Column: col("c"), Negated: true, Values: []filter.Literal{integer("1")}}))),
			canonical: `a IS NOT NULL OR b IN (TRUE, FALSE) AND NOT c NOT IN (1)`},
		{src: `a = True`, want: cmp("a", filter.Eq, boolean(true)), canonical: `a = TRUE`},
		{src: `a = fAlSe`, want: cmp("a", filter.Eq, boolean(false)), canonical: `a = FALSE`},
		// A column name only starts like a keyword.
		{src: `nota = 1 AND orb = 2 OR isnull IS NULL`, want: or(and(eq("nota", 1), eq("orb", 2)), filter.IsNull{Column: col("isnull")})},

		// Quoted identifiers.
		{src: `"my col" = 1`, want: filter.Compare{Column: qcol("my col"), Value: integer("1")}},
		{src: `"say ""hi""" = 1`, want: filter.Compare{Column: qcol(`say "hi"`), Value: integer("1")}},
		{src: `"a" = 1`, want: filter.Compare{Column: qcol("a"), Value: integer("1")}},
		{src: `"and" IS NULL`, want: filter.IsNull{Column: qcol("and")}},
		{src: `"a.b" = 1`, want: filter.Compare{Column: qcol("a.b"), Value: integer("1")}},
		{src: `"naïve" = 1`, want: filter.Compare{Column: qcol("naïve"), Value: integer("1")}},
		{src: `_x9 = 1`, want: eq("_x9", 1)},

		// Strings.
		{src: `a = 'it''s'`, want: cmp("a", filter.Eq, str("it's"))},
		{src: `a = ''`, want: cmp("a", filter.Eq, str(""))},
		{src: `a = ''''`, want: cmp("a", filter.Eq, str("'"))},
		{src: `a = 'two "words"'`, want: cmp("a", filter.Eq, str(`two "words"`))},
		{src: "a = 'line\nbreak'", want: cmp("a", filter.Eq, str("line\nbreak"))},
		{src: `a = 'AND OR NOT ( ) ,'`, want: cmp("a", filter.Eq, str("AND OR NOT ( ) ,"))},
		{src: `a = 'ünïcødé ✓'`, want: cmp("a", filter.Eq, str("ünïcødé ✓"))},

		// Numbers.
		{src: `a = -5`, want: cmp("a", filter.Eq, integer("-5"))},
		{src: `a = +5`, want: cmp("a", filter.Eq, integer("+5"))},
		{src: `a=-5`, want: cmp("a", filter.Eq, integer("-5")), canonical: `a = -5`},
		{src: `a = 007`, want: cmp("a", filter.Eq, integer("007"))},
		{src: `a = 1.5`, want: cmp("a", filter.Eq, number("1.5"))},
		{src: `a = -2e3`, want: cmp("a", filter.Eq, number("-2e3"))},
		{src: `a = 2E+3`, want: cmp("a", filter.Eq, number("2E+3"))},
		{src: `a = 1.25e-10`, want: cmp("a", filter.Eq, number("1.25e-10"))},
		{src: `a = 99999999999999999999999999`, want: cmp("a", filter.Eq, integer("99999999999999999999999999"))},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := filter.Parse(tt.src)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			canonical := tt.canonical
			if canonical == "" {
				canonical = tt.src
			}
			assert.Equal(t, canonical, got.String())
			back, err := filter.Parse(got.String())
			require.NoError(t, err, "reparse %s", got)
			assert.Equal(t, got, back, "reparse %s", got)
		})
	}
}

// TestStringOfBuiltTrees renders trees that Parse would not build from
// minimal source, each in a form that parses back to the same tree.
func TestStringOfBuiltTrees(t *testing.T) {
	tests := []struct {
		tree filter.Expr
		want string
	}{
		{and(or(eq("a", 1), eq("b", 2)), or(eq("c", 3), eq("d", 4))), `(a = 1 OR b = 2) AND (c = 3 OR d = 4)`},
		{or(and(eq("a", 1), eq("b", 2)), and(eq("c", 3), eq("d", 4))), `a = 1 AND b = 2 OR c = 3 AND d = 4`},
		{not(not(and(eq("a", 1), not(eq("b", 2))))), `NOT NOT (a = 1 AND NOT b = 2)`},
		{filter.Compare{Column: col("in"), Value: str("x")}, `"in" = 'x'`},
		{filter.Compare{Column: col("my col"), Value: str("x")}, `"my col" = 'x'`},
		{filter.Compare{Column: col("Ab_1"), Value: str("x")}, `Ab_1 = 'x'`},
		{filter.Compare{Column: col(`"`), Value: str("'")}, `"""" = ''''`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.tree.String())
			back, err := filter.Parse(tt.tree.String())
			require.NoError(t, err)
			assert.Equal(t, tt.tree.String(), back.String())
		})
	}
	assert.Equal(t, "?", filter.Op(42).String())

	// Pointer nodes render as the nodes they point to; missing operands
	// show as <nil>.
	a1, b2 := eq("a", 1), eq("b", 2)
	assert.Equal(t, "(a = 1 OR b = 2) AND NOT <nil>",
		filter.And{Left: &filter.Or{Left: &a1, Right: b2}, Right: &filter.Not{X: (*filter.Compare)(nil)}}.String())
	assert.Equal(t, "<nil> OR <nil>", filter.Or{}.String())
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		src string
		pos int
		msg string
	}{
		{``, 0, `the filter is empty`},
		{"  \n ", 4, `the filter is empty`},
		{`a = )`, 4, `expected a literal after "=", got ")"`},
		{`amount >= `, 10, `expected a literal after ">=", got the end of the filter`},
		{`(a = 1`, 6, `expected ")" to close the "(" at 0, got the end of the filter`},
		{`((a = 1) OR b = 2`, 17, `expected ")" to close the "(" at 0, got the end of the filter`},
		{`a = 1)`, 5, `unbalanced ")": there is no "(" for it to close`},
		{`a = 1 b = 2`, 6, `expected AND, OR or the end of the filter, got the name b`},
		{`a = 1 AND`, 9, `expected a condition (a column name, "(" or NOT) after "AND", got the end of the filter`},
		{`a = 1 OR OR b = 1`, 9, `expected a condition (a column name, "(" or NOT) after "OR", got OR`},
		{`()`, 1, `expected a condition (a column name, "(" or NOT) after "(", got ")"`},
		{`a = 'abc`, 4, `unterminated string: no closing ' (write a ' inside a string as '')`},
		{`a = 'it's'`, 8, `expected AND, OR or the end of the filter, got the name s; a ' inside a string is written ''`},
		{`a IN ('it's')`, 10, `expected "," or ")" in the IN list, got the name s; a ' inside a string is written ''`},
		{`a = 'it''s`, 4, `unterminated string: no closing ' (write a ' inside a string as '')`},
		{`"my col = 1`, 0, `unterminated quoted name: no closing " (write a " inside a name as "")`},
		{`"" = 1`, 0, `a quoted column name cannot be empty`},
		{`a = NULL`, 4, `a comparison with NULL is never true; write a IS NULL`},
		{`a <> null`, 5, `a comparison with NULL is never true; write a IS NOT NULL`},
		{`a < NULL`, 4, `a comparison with NULL is never true; test for null with a IS NULL or a IS NOT NULL`},
		{`a IN (1, NULL)`, 9, `NULL cannot be in an IN list; add OR a IS NULL`},
		{`a IN ()`, 6, `an IN list needs at least one value`},
		{`a IN (1,)`, 8, `expected a literal after ",", got ")"`},
		{`a IN (1 2)`, 8, `expected "," or ")" in the IN list, got the number 2`},
		{`a IN 1`, 5, `expected "(" after "IN", got the number 1`},
		{`a IN (1`, 7, `expected "," or ")" in the IN list, got the end of the filter`},
		{`a NOT 1`, 6, `expected IN after "NOT", got the number 1`},
		{`a IS 1`, 5, `expected NULL or NOT NULL after IS, got the number 1`},
		{`a IS NOT TRUE`, 9, `expected NULL or NOT NULL after IS, got TRUE`},
		{`a`, 1, `expected an operator (=, !=, <>, <, <=, >, >=), IN, NOT IN or IS after the column a, got the end of the filter`},
		{`a LIKE 'x'`, 2, `expected an operator (=, !=, <>, <, <=, >, >=), IN, NOT IN or IS after the column a, got the name LIKE`},
		{`= 1`, 0, `expected a condition (a column name, "(" or NOT), got "="`},
		{`1 = a`, 0, `expected a condition (a column name, "(" or NOT), got the number 1; the column comes first, as in x = 1`},
		{`true = a`, 0, `expected a condition (a column name, "(" or NOT), got TRUE; a column named true must be quoted: "true"`},
		{`a == 1`, 2, `use "=" to compare, not "=="`},
		{`a ! 1`, 2, `unexpected "!"; did you mean "!="? (negation is NOT)`},
		{`a = 1 && b = 2`, 6, `unexpected "&"; write AND`},
		{`a = 1 || b = 2`, 6, `unexpected "|"; write OR`},
		{`a.b = 1`, 1, `unexpected "."; only top-level columns can be filtered (quote a name that contains a dot: "a.b")`},
		{`a = .5`, 4, `a number needs a digit before its point (write 0.5, not .5)`},
		{`a = 1.`, 6, `expected a digit after the point in "1."`},
		{`a = 1e`, 6, `expected a digit in the exponent of "1e"`},
		{`a = 1e+`, 7, `expected a digit in the exponent of "1e+"`},
		{`a = 12abc`, 6, `malformed number: "12" is followed by 'a'`},
		{`a = 1.2.3`, 7, `malformed number: "1.2" is followed by '.'`},
		{`a = - 1`, 4, `expected a digit right after '-'`},
		{`a = "x"`, 4, `expected a literal after "=", got the name "x"; a string takes single quotes: 'x'`},
		{`a = b`, 4, `expected a literal after "=", got the name b; a column cannot be compared with a column (for the string, write 'b')`},
		{`a = 1 § 2`, 6, `unexpected character '§'`},
		{"a = '\xff'", 5, `the filter is not valid UTF-8`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			_, err := filter.Parse(tt.src)
			var perr *filter.Error
			require.True(t, errors.As(err, &perr), "want a *filter.Error, got %v", err)
			assert.Equal(t, tt.msg, perr.Msg)
			assert.Equal(t, tt.pos, perr.Pos, "position of %q", perr.Msg)
			assert.Equal(t, fmt.Sprintf("filter: at %d: %s", tt.pos, tt.msg), err.Error())
		})
	}
}

func TestLimits(t *testing.T) {
	t.Run("source length", func(t *testing.T) {
		src := "a = '" + strings.Repeat("x", filter.MaxSourceLen-6) + "'"
		require.Len(t, src, filter.MaxSourceLen)
		_, err := filter.Parse(src)
		require.NoError(t, err)
		_, err = filter.Parse(src + " ")
		requireSyntaxError(t, err, filter.MaxSourceLen, "the filter is 65537 bytes long; the limit is 65536")
	})
	t.Run("nesting of parentheses", func(t *testing.T) {
		nest := func(n int) string { return strings.Repeat("(", n) + "a = 1" + strings.Repeat(")", n) }
		_, err := filter.Parse(nest(filter.MaxDepth))
		require.NoError(t, err)
		_, err = filter.Parse(nest(filter.MaxDepth + 1))
		requireSyntaxError(t, err, filter.MaxDepth, "the filter nests parentheses and NOTs more than 64 deep")
	})
	t.Run("nesting of NOTs", func(t *testing.T) {
		_, err := filter.Parse(strings.Repeat("NOT ", filter.MaxDepth) + "a = 1")
		require.NoError(t, err)
		_, err = filter.Parse(strings.Repeat("NOT ", filter.MaxDepth+1) + "a = 1")
		requireSyntaxError(t, err, 4*filter.MaxDepth, "the filter nests parentheses and NOTs more than 64 deep")
	})
	t.Run("nesting of both", func(t *testing.T) {
		_, err := filter.Parse(strings.Repeat("NOT (", filter.MaxDepth/2) + "a = 1" + strings.Repeat(")", filter.MaxDepth/2))
		require.NoError(t, err)
		_, err = filter.Parse(strings.Repeat("NOT (", filter.MaxDepth/2) + "NOT a = 1" + strings.Repeat(")", filter.MaxDepth/2))
		requireSyntaxError(t, err, 5*filter.MaxDepth/2, "the filter nests parentheses and NOTs more than 64 deep")
	})
	t.Run("long chains are not nesting", func(t *testing.T) {
		src := "a = 1" + strings.Repeat(" AND a = 1 OR a = 1", 1000)
		e, err := filter.Parse(src)
		require.NoError(t, err)
		back, err := filter.Parse(e.String())
		require.NoError(t, err)
		require.Equal(t, e, back)
	})
	t.Run("IN list", func(t *testing.T) {
		list := func(n int) string { return "a IN (" + strings.TrimSuffix(strings.Repeat("1,", n), ",") + ")" }
		e, err := filter.Parse(list(filter.MaxInList))
		require.NoError(t, err)
		require.Len(t, e.(filter.In).Values, filter.MaxInList)
		_, err = filter.Parse(list(filter.MaxInList + 1))
		requireSyntaxError(t, err, 6+2*filter.MaxInList, "an IN list holds at most 10000 values")
	})
}

func requireSyntaxError(t *testing.T, err error, pos int, msg string) {
	t.Helper()
	var perr *filter.Error
	require.True(t, errors.As(err, &perr), "want a *filter.Error, got %v", err)
	require.Equal(t, msg, perr.Msg)
	require.Equal(t, pos, perr.Pos)
}

func TestCaret(t *testing.T) {
	tests := []struct {
		name, src string
		pos       int
		want      string
	}{
		{"one line", `amount = )`, 9, "amount = )\n         ^"},
		{"at the end", `a =`, 3, "a =\n   ^"},
		{"second line", "a = 1 AND\nb = )\nc = 3", 14, "b = )\n    ^"},
		{"at a line break", "a = 1\n", 5, "a = 1\n     ^"},
		{"crlf", "a = 1 AND\r\nb = )\r\n", 15, "b = )\n    ^"},
		{"tabs", "\ta =\t)", 5, "\ta =\t)\n\t   \t^"},
		{"wide characters", `"naïve ✓" = )`, 15, "\"naïve ✓\" = )\n            ^"},
		{"unprintable", "a = \x01 )", 6, "a = ? )\n      ^"},
		{"beyond the end", `a`, 7, "a\n ^"},
		{"before the start", `a`, -3, "a\n^"},
		{"long line", strings.Repeat("x", 100) + " = )" + strings.Repeat("y", 100), 103,
			"..." + strings.Repeat("x", 57) + " = )" + strings.Repeat("y", 59) + "...\n" + strings.Repeat(" ", 63) + "^"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, (&filter.Error{Pos: tt.pos}).Caret(tt.src))
		})
	}

	// The caret of a parse error points at the offending token.
	src := "a = 1 AND\n  b IN ()"
	_, err := filter.Parse(src)
	var perr *filter.Error
	require.True(t, errors.As(err, &perr))
	assert.Equal(t, "  b IN ()\n        ^", perr.Caret(src))
}
