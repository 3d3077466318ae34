package filter

import "strings"

// Expr is a parsed filter: And, Or, Not, Compare, In or IsNull.
//
// String returns the filter in a canonical form that Parse accepts and
// that parses back to an equal tree: keywords in upper case, one space
// between tokens, "<>" written "!=", and parentheses only where the
// tree's shape needs them.
type Expr interface {
	String() string
}

// And is true when both sides are true.
type And struct {
	Left, Right Expr
}

// Or is true when either side is true.
type Or struct {
	Left, Right Expr
}

// Not negates its operand.
type Not struct {
	X Expr
}

// Compare compares a column with a literal: Column Op Value.
type Compare struct {
	Column Column
	Op     Op
	Value  Literal
}

// In tests a column's membership in a list of literals; Negated makes it
// NOT IN.
type In struct {
	Column  Column
	Negated bool
	Values  []Literal
}

// IsNull tests a column for null; Negated makes it IS NOT NULL.
type IsNull struct {
	Column  Column
	Negated bool
}

// Op is a comparison operator.
type Op int

// The comparison operators. "<>" parses as Ne.
const (
	Eq Op = iota // =
	Ne           // !=
	Lt           // <
	Le           // <=
	Gt           // >
	Ge           // >=
)

// inverse is the operator that is true exactly when o is false, for
// operands that are not null.
func (o Op) inverse() Op {
	switch o {
	case Eq:
		return Ne
	case Ne:
		return Eq
	case Lt:
		return Ge
	case Le:
		return Gt
	case Gt:
		return Le
	case Ge:
		return Lt
	}
	return o
}

var opText = [...]string{Eq: "=", Ne: "!=", Lt: "<", Le: "<=", Gt: ">", Ge: ">="}

// String returns the operator's symbol, or "?" for a value that is none
// of the constants.
func (o Op) String() string {
	if o < 0 || int(o) >= len(opText) {
		return "?"
	}
	return opText[o]
}

// Column names a top-level column. A quoted column (written "name") must
// match the schema's name exactly; an unquoted one matches regardless of
// case when exactly one column has that name in some case.
type Column struct {
	Name   string
	Quoted bool
}

// String returns the name as the filter language writes it: bare when
// it was bare and is a plain identifier that is not a keyword, in
// double quotes (with "" for a quote) otherwise.
func (c Column) String() string {
	if !c.Quoted && isPlainIdent(c.Name) && !isKeyword(c.Name) {
		return c.Name
	}
	return `"` + strings.ReplaceAll(c.Name, `"`, `""`) + `"`
}

// Kind says what sort of literal a Literal is.
type Kind int

// The kinds of literal.
const (
	KindString  Kind = iota // 'text'
	KindInteger             // 42, -7, +3
	KindNumber              // 1.5, -2e3: a number with a point or an exponent
	KindBool                // TRUE, FALSE
)

// Literal is a constant in a filter. Text holds its value: a string's
// characters (without the quotes, each doubled quote made one), a number
// exactly as written, or "TRUE" or "FALSE".
type Literal struct {
	Kind Kind
	Text string
}

// String returns the literal as the filter language writes it.
func (l Literal) String() string {
	if l.Kind == KindString {
		return "'" + strings.ReplaceAll(l.Text, "'", "''") + "'"
	}
	return l.Text
}

// String renders the AND, parenthesizing an OR on the left and an AND
// or OR on the right.
func (e And) String() string { return render(e) }

// String renders the OR, parenthesizing an OR on the right.
func (e Or) String() string { return render(e) }

// String renders the NOT, parenthesizing an AND or OR operand.
func (e Not) String() string { return render(e) }

// String renders the comparison: column, operator, literal.
func (e Compare) String() string {
	return e.Column.String() + " " + e.Op.String() + " " + e.Value.String()
}

// String renders the list as column [NOT] IN (literal, ...).
func (e In) String() string {
	var b strings.Builder
	b.WriteString(e.Column.String())
	if e.Negated {
		b.WriteString(" NOT")
	}
	b.WriteString(" IN (")
	for i, v := range e.Values {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v.String())
	}
	b.WriteString(")")
	return b.String()
}

// String renders column IS [NOT] NULL.
func (e IsNull) String() string {
	if e.Negated {
		return e.Column.String() + " IS NOT NULL"
	}
	return e.Column.String() + " IS NULL"
}

// render writes a tree out in one buffer, as concatenating the strings
// of the nodes would take time quadratic in the length of a chain.
func render(e Expr) string {
	var b strings.Builder
	write(&b, e)
	return b.String()
}

func write(b *strings.Builder, e Expr) {
	switch e := value(e).(type) {
	case And:
		writeWrapped(b, e.Left, isOr(e.Left))
		b.WriteString(" AND ")
		writeWrapped(b, e.Right, isOr(e.Right) || isAnd(e.Right))
	case Or:
		write(b, e.Left)
		b.WriteString(" OR ")
		writeWrapped(b, e.Right, isOr(e.Right))
	case Not:
		b.WriteString("NOT ")
		writeWrapped(b, e.X, isOr(e.X) || isAnd(e.X))
	case nil:
		b.WriteString("<nil>")
	default:
		b.WriteString(e.String())
	}
}

// writeWrapped writes e, in parentheses when wrap is set: where its
// shape would otherwise parse differently.
func writeWrapped(b *strings.Builder, e Expr, wrap bool) {
	if wrap {
		b.WriteByte('(')
	}
	write(b, e)
	if wrap {
		b.WriteByte(')')
	}
}

func isOr(e Expr) bool {
	_, ok := value(e).(Or)
	return ok
}

func isAnd(e Expr) bool {
	_, ok := value(e).(And)
	return ok
}

// value returns the node a pointer node points to (nil for a nil
// pointer), and any other expression as it is, so that trees built by
// hand with pointers render and bind as trees of values do.
func value(e Expr) Expr {
	switch e := e.(type) {
	case *And:
		return deref(e)
	case *Or:
		return deref(e)
	case *Not:
		return deref(e)
	case *Compare:
		return deref(e)
	case *In:
		return deref(e)
	case *IsNull:
		return deref(e)
	}
	return e
}

func deref[T Expr](p *T) Expr {
	if p == nil {
		return nil
	}
	return *p
}

// keywords are the reserved words; a column with one of these names must
// be quoted.
var keywords = []string{"AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE"}

func isKeyword(s string) bool {
	for _, k := range keywords {
		if strings.EqualFold(s, k) {
			return true
		}
	}
	return false
}

// isPlainIdent reports whether s is [A-Za-z_][A-Za-z0-9_]*.
func isPlainIdent(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return false
		}
	}
	return true
}

func isIdentStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
