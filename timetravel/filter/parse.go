package filter

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The limits Parse enforces.
const (
	// MaxSourceLen is the longest filter, in bytes.
	MaxSourceLen = 64 << 10
	// MaxDepth is how deeply parentheses and NOTs may nest.
	MaxDepth = 64
	// MaxInList is the most literals an IN list may hold.
	MaxInList = 10000
)

// Error is a syntax error: Msg says what is wrong at byte offset Pos of
// the source.
type Error struct {
	Pos int
	Msg string
}

// Error returns "filter: at POS: MSG".
func (e *Error) Error() string { return fmt.Sprintf("filter: at %d: %s", e.Pos, e.Msg) }

func errAt(pos int, msg string) *Error { return &Error{Pos: pos, Msg: msg} }

// Parse parses a filter. Its errors are *Error.
func Parse(src string) (Expr, error) {
	if len(src) > MaxSourceLen {
		return nil, errAt(MaxSourceLen, fmt.Sprintf("the filter is %d bytes long; the limit is %d", len(src), MaxSourceLen))
	}
	if i := invalidUTF8At(src); i >= 0 {
		return nil, errAt(i, "the filter is not valid UTF-8")
	}
	p := &parser{lx: lexer{src: src}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tEOF {
		return nil, errAt(p.tok.pos, "the filter is empty")
	}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.trailing()
	}
	return e, nil
}

func invalidUTF8At(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// parser is a recursive-descent parser over a lexer; tok is the token
// under consideration and prev the one before it.
type parser struct {
	lx        lexer
	tok, prev token
	depth     int
}

func (p *parser) advance() error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.prev, p.tok = p.tok, t
	return nil
}

// keyword reports whether the current token is the keyword kw.
func (p *parser) keyword(kw string) bool {
	return p.tok.kind == tIdent && strings.EqualFold(p.tok.val, kw)
}

// enter counts one more level of nesting, failing beyond MaxDepth.
func (p *parser) enter() error {
	p.depth++
	if p.depth > MaxDepth {
		return errAt(p.tok.pos, fmt.Sprintf("the filter nests parentheses and NOTs more than %d deep", MaxDepth))
	}
	return nil
}

// or parses and ('OR' and)*.
func (p *parser) or() (Expr, error) {
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.keyword("OR") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		left = Or{Left: left, Right: right}
	}
	return left, nil
}

// and parses unary ('AND' unary)*.
func (p *parser) and() (Expr, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.keyword("AND") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		left = And{Left: left, Right: right}
	}
	return left, nil
}

// unary parses 'NOT' unary | '(' or ')' | predicate.
func (p *parser) unary() (Expr, error) {
	switch {
	case p.keyword("NOT"):
		if err := p.enter(); err != nil {
			return nil, err
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		p.depth--
		return Not{X: x}, nil
	case p.tok.kind == tLParen:
		return p.group()
	}
	return p.predicate()
}

func (p *parser) group() (Expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	open := p.tok.pos
	if err := p.advance(); err != nil {
		return nil, err
	}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tRParen {
		return nil, errAt(p.tok.pos, fmt.Sprintf(`expected ")" to close the "(" at %d, got %s`, open, describe(p.tok)))
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	p.depth--
	return e, nil
}

// predicate parses column op literal, column [NOT] IN (...) and
// column IS [NOT] NULL.
func (p *parser) predicate() (Expr, error) {
	col, err := p.column()
	if err != nil {
		return nil, err
	}
	switch {
	case p.tok.kind == tOp:
		return p.compare(col)
	case p.keyword("IN"):
		return p.in(col, false)
	case p.keyword("NOT"):
		if err := p.advance(); err != nil {
			return nil, err
		}
		if !p.keyword("IN") {
			return nil, errAt(p.tok.pos, fmt.Sprintf("expected IN after %s, got %s", quoteTok(p.prev), describe(p.tok)))
		}
		return p.in(col, true)
	case p.keyword("IS"):
		return p.isNull(col)
	}
	return nil, errAt(p.tok.pos, fmt.Sprintf("expected an operator (=, !=, <>, <, <=, >, >=), IN, NOT IN or IS after the column %s, got %s",
		col, describe(p.tok)))
}

func (p *parser) column() (Column, error) {
	t := p.tok
	switch {
	case t.kind == tQIdent:
		return Column{Name: t.val, Quoted: true}, p.advance()
	case t.kind == tIdent && !isKeyword(t.val):
		return Column{Name: t.val}, p.advance()
	}
	msg := "expected a condition (a column name, \"(\" or NOT)" + p.after() + ", got " + describe(t)
	switch t.kind {
	case tIdent:
		if !strings.EqualFold(t.val, "AND") && !strings.EqualFold(t.val, "OR") {
			msg += fmt.Sprintf(`; a column named %s must be quoted: "%s"`, t.val, t.val)
		}
	case tString, tInteger, tNumber:
		msg += "; the column comes first, as in x = 1"
	}
	return Column{}, errAt(t.pos, msg)
}

func (p *parser) compare(col Column) (Expr, error) {
	op := parseOp(p.tok.val)
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.keyword("NULL") {
		return nil, errAt(p.tok.pos, nullCompare(col, op))
	}
	lit, err := p.literal()
	if err != nil {
		return nil, err
	}
	return Compare{Column: col, Op: op, Value: lit}, nil
}

func parseOp(s string) Op {
	switch s {
	case "!=", "<>":
		return Ne
	case "<":
		return Lt
	case "<=":
		return Le
	case ">":
		return Gt
	case ">=":
		return Ge
	}
	return Eq
}

func nullCompare(col Column, op Op) string {
	switch op {
	case Eq:
		return fmt.Sprintf("a comparison with NULL is never true; write %s IS NULL", col)
	case Ne:
		return fmt.Sprintf("a comparison with NULL is never true; write %s IS NOT NULL", col)
	}
	return fmt.Sprintf("a comparison with NULL is never true; test for null with %s IS NULL or %s IS NOT NULL", col, col)
}

// literal parses a string, number, TRUE or FALSE.
func (p *parser) literal() (Literal, error) {
	t := p.tok
	var lit Literal
	switch {
	case t.kind == tString:
		lit = Literal{Kind: KindString, Text: t.val}
	case t.kind == tInteger:
		lit = Literal{Kind: KindInteger, Text: t.val}
	case t.kind == tNumber:
		lit = Literal{Kind: KindNumber, Text: t.val}
	case p.keyword("TRUE"), p.keyword("FALSE"):
		lit = Literal{Kind: KindBool, Text: strings.ToUpper(t.val)}
	default:
		return Literal{}, errAt(t.pos, "expected a literal"+p.after()+", got "+describe(t)+literalHint(t))
	}
	return lit, p.advance()
}

func literalHint(t token) string {
	switch {
	case t.kind == tQIdent:
		return fmt.Sprintf("; a string takes single quotes: '%s'", strings.ReplaceAll(t.val, "'", "''"))
	case t.kind == tIdent && !isKeyword(t.val):
		return fmt.Sprintf("; a column cannot be compared with a column (for the string, write '%s')", t.val)
	}
	return ""
}

func (p *parser) in(col Column, negated bool) (Expr, error) {
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind != tLParen {
		return nil, errAt(p.tok.pos, fmt.Sprintf(`expected "(" after %s, got %s`, quoteTok(p.prev), describe(p.tok)))
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tRParen {
		return nil, errAt(p.tok.pos, "an IN list needs at least one value")
	}
	var vals []Literal
	for {
		if len(vals) == MaxInList {
			return nil, errAt(p.tok.pos, fmt.Sprintf("an IN list holds at most %d values", MaxInList))
		}
		if p.keyword("NULL") {
			return nil, errAt(p.tok.pos, fmt.Sprintf("NULL cannot be in an IN list; add OR %s IS NULL", col))
		}
		lit, err := p.literal()
		if err != nil {
			return nil, err
		}
		vals = append(vals, lit)
		switch p.tok.kind {
		case tComma:
			if err := p.advance(); err != nil {
				return nil, err
			}
			continue
		case tRParen:
			return In{Column: col, Negated: negated, Values: vals}, p.advance()
		}
		return nil, errAt(p.tok.pos, fmt.Sprintf(`expected "," or ")" in the IN list, got %s%s`, describe(p.tok), p.quoteHint()))
	}
}

func (p *parser) isNull(col Column) (Expr, error) {
	if err := p.advance(); err != nil {
		return nil, err
	}
	negated := p.keyword("NOT")
	if negated {
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	if !p.keyword("NULL") {
		return nil, errAt(p.tok.pos, fmt.Sprintf("expected NULL or NOT NULL after IS, got %s", describe(p.tok)))
	}
	return IsNull{Column: col, Negated: negated}, p.advance()
}

// trailing describes the token that stands where the filter should end.
func (p *parser) trailing() error {
	if p.tok.kind == tRParen {
		return errAt(p.tok.pos, `unbalanced ")": there is no "(" for it to close`)
	}
	return errAt(p.tok.pos, fmt.Sprintf("expected AND, OR or the end of the filter, got %s%s", describe(p.tok), p.quoteHint()))
}

// quoteHint suggests doubling a quote when the current token follows a
// string with no space between them, as in 'it's'.
func (p *parser) quoteHint() string {
	if p.prev.kind == tString && p.tok.pos == p.prev.end && p.tok.kind != tEOF {
		return "; a ' inside a string is written ''"
	}
	return ""
}

// after returns ` after "TOKEN"` naming the previous token, or "" at the
// start of the filter.
func (p *parser) after() string {
	if p.prev.end == 0 {
		return ""
	}
	return " after " + quoteTok(p.prev)
}

// quoteTok returns a token's source text in double quotes, shortened
// when long.
func quoteTok(t token) string {
	return fmt.Sprintf("%q", shorten(t.val))
}

// describe names a token for an error message.
func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "the end of the filter"
	case tString:
		return "the string " + Literal{Kind: KindString, Text: shorten(t.val)}.String()
	case tInteger, tNumber:
		return "the number " + shorten(t.val)
	case tQIdent:
		return "the name " + Column{Name: shorten(t.val), Quoted: true}.String()
	case tIdent:
		if isKeyword(t.val) {
			return strings.ToUpper(t.val)
		}
		return "the name " + shorten(t.val)
	}
	return fmt.Sprintf("%q", t.val)
}

// shorten cuts s to at most 40 runes, marking a cut with "...".
func shorten(s string) string {
	const maxRunes = 40
	if utf8.RuneCountInString(s) <= maxRunes {
		return s
	}
	return string([]rune(s)[:maxRunes-3]) + "..."
}
