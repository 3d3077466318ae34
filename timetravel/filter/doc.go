// Package filter is the row filter language of time-travel queries: the
// text given to --where, parsed by Parse into a small tree (Expr) and
// turned by Bind into an iceberg-go expression over a table's schema, to
// be pushed into the scan with table.WithRowFilter.
//
//	amount >= 100 AND status NOT IN ('void', 'test') OR "customer id" IS NULL
//
// # Grammar
//
// Keywords (AND, OR, NOT, IN, IS, NULL, TRUE, FALSE) are reserved and
// case-insensitive; whitespace between tokens is free.
//
//	expr      := or
//	or        := and ('OR' and)*
//	and       := unary ('AND' unary)*
//	unary     := 'NOT' unary | primary
//	primary   := '(' expr ')' | predicate
//	predicate := column op literal
//	           | column ['NOT'] 'IN' '(' literal (',' literal)* ')'
//	           | column 'IS' ['NOT'] 'NULL'
//	op        := '=' | '!=' | '<>' | '<' | '<=' | '>' | '>='
//	column    := [A-Za-z_][A-Za-z0-9_]* | '"' name '"'
//	literal   := string | integer | number | 'TRUE' | 'FALSE'
//	string    := "'" chars "'"               -- a quote inside is doubled: 'it''s'
//	integer   := [+-]? digit+
//	number    := [+-]? digit+ ('.' digit+)? ([eE] [+-]? digit+)?
//
// So NOT binds tighter than AND, and AND tighter than OR; AND and OR
// associate to the left. A column is on the left of a comparison and a
// literal on the right: there are no column-to-column comparisons, no
// arithmetic and no functions. There is no NULL literal: x = NULL is an
// error that points to x IS NULL.
//
// A column names a top-level column of the table; nested fields cannot be
// filtered. A bare name matches a column regardless of case when exactly
// one column has that name in some case, and an exact match always wins.
// A double-quoted name (with "" for a quote inside it) matches exactly,
// and is how to name a column that is a keyword, has a space or a dot in
// it, or is not ASCII:
//
//	"order id" = 7 AND "select" = TRUE AND "Ünits" > 0
//
// Expr.String writes a tree back in a canonical form that Parse accepts
// and that parses to the same tree.
//
// # Types
//
// Bind converts each literal to the type of its column, exactly or not at
// all: a literal the column cannot hold is an error that names the column
// and says why. Each column type accepts:
//
//	boolean               TRUE, FALSE
//	int, long             integers, and numbers with a whole value (5.0, 1e3),
//	                      within the type's range
//	float, double         integers and numbers, rounded to the nearest value
//	                      of the type; beyond its range is an error
//	decimal(P, S)         integers and numbers with at most S digits after the
//	                      point and at most P digits in all
//	string                strings
//	uuid                  strings holding a UUID, 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6'
//	date                  strings 'YYYY-MM-DD'
//	time                  strings 'HH:MM:SS' with up to 6 fraction digits
//	timestamp,            strings in RFC 3339 ('2026-01-02T03:04:05.5Z',
//	timestamptz             '2026-01-02T05:04:05+02:00'), or without a zone,
//	                        which is read as UTC ('2026-01-02 03:04:05.123456',
//	                        '2026-01-02T03:04:05', '2026-01-02' for midnight);
//	                        a zone offset is applied, so the value is the
//	                        instant in UTC, for timestamp as for timestamptz;
//	                        at most 6 fraction digits
//	timestamp_ns,         as timestamp, with up to 9 fraction digits, between
//	timestamptz_ns          the years 1678 and 2262
//	binary, fixed         only IS NULL and IS NOT NULL
//
// Struct, list, map, variant and geospatial columns cannot be filtered,
// not even with IS NULL.
//
// # Nulls
//
// A filter has SQL's three-valued logic: a comparison or an IN list with
// a null column is unknown, NOT unknown is unknown, AND and OR follow
// Kleene's tables (false AND unknown is false, true OR unknown is true),
// and a scan returns a row only when the filter is true for it. So
// x != 1 and NOT x = 1 both leave out rows where x is null, and so do
// x NOT IN (1, 2) and NOT x IN (1, 2); x IS NULL is how to ask for them.
//
// Bind makes an iceberg-go scan behave this way, which it does not by
// itself. The scan evaluates a row filter with Arrow compute, which has
// the three-valued logic above for comparisons, NOT, AND and OR, but
// counts a null as simply not in an IN list: iceberg.NotIn(x, 1, 2) and
// NOT iceberg.IsIn(x, 1, 2) are true for a null x. And iceberg-go turns
// an IN list of one distinct value into = (NOT IN into !=), for which a
// null is not true, so without help x NOT IN (1) and x NOT IN (1, 2)
// would disagree about nulls. Bind therefore returns an expression
// without NOT: it carries each NOT down to the predicates, inverting
// them (= and !=, < and >=, > and <=, IN and NOT IN, IS NULL and IS NOT
// NULL, AND and OR), and joins every NOT IN with IS NOT NULL on its
// column. Without NOT, a predicate that is false where SQL would say
// unknown selects the same rows, so the scan returns what SQL would.
//
// iceberg-go's other evaluator, iceberg.ExpressionEvaluator, which works
// on single rows in memory, orders a null before every value instead
// (there null < 5 and null != 5 are true); it is not what a scan uses to
// select rows, and Bind does not cater for it.
//
// The language has no NaN literal. A NaN in a float or double column
// compares as Arrow compares it (it is neither less than, equal to nor
// greater than a number); since NOT is bound by inverting the operator,
// NOT f < 1 selects the rows f >= 1 does, and a NaN is in neither.
//
// # Limits
//
// Parse refuses, each with its own error: a filter longer than
// MaxSourceLen (64 KiB); parentheses and NOTs nested more than MaxDepth
// (64) deep; an IN list of more than MaxInList (10,000) literals. Long
// chains of AND and OR are not nesting and are limited only by the
// length of the filter.
//
// # Errors
//
// Parse reports a syntax error as an *Error holding the byte offset of
// the problem and a message that says what was expected and what was
// found; its Caret method draws the line of the filter with a caret under
// that offset:
//
//	filter: at 9: expected a literal after "=", got ")"
//	amount = )
//	         ^
//
// Bind's errors name the column and the problem:
//
//	filter: no column "amt" (the columns are id, amount, status)
//	filter: column "amount" is long; 'abc' is not a long
//	filter: column "qty" is int; 3000000000 is out of range for an int (-2147483648 to 2147483647)
//
// # Scans in iceberg-go v0.7.0
//
// Two faults of iceberg-go v0.7.0 make a scan skip rows that match a
// filter bound here. Its Parquet row-group filter takes a row group's
// count of non-null values for the count of all values, so a row group in
// which a column has exactly as many nulls as values looks all null, and
// is skipped for any predicate on that column that needs a value (=, <,
// IN, IS NOT NULL, ...). And when a string partition column is empty in
// some row, the manifest's partition summary has no lower bound, which
// its manifest filter takes to mean that the column has no values, so a
// comparison on that column skips the whole manifest. The tests pin both.
package filter
