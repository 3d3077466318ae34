package filter

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF     tokKind = iota
	tIdent           // a bare identifier or keyword; val is the text
	tQIdent          // a double-quoted identifier; val is the name
	tString          // a single-quoted string; val is its characters
	tInteger         // val is the text
	tNumber          // with a point or exponent; val is the text
	tOp              // val is =, !=, <>, <, <=, > or >=
	tLParen
	tRParen
	tComma
)

// token is one lexeme: src[pos:end] is its source text.
type token struct {
	kind     tokKind
	pos, end int
	val      string
}

// lexer splits a filter into tokens, one at a time.
type lexer struct {
	src string
	pos int
}

func (lx *lexer) next() (token, error) {
	lx.skipSpace()
	start := lx.pos
	if start >= len(lx.src) {
		return token{kind: tEOF, pos: start, end: start}, nil
	}
	c := lx.src[start]
	switch {
	case c == '(':
		return lx.single(tLParen), nil
	case c == ')':
		return lx.single(tRParen), nil
	case c == ',':
		return lx.single(tComma), nil
	case c == '=' || c == '!' || c == '<' || c == '>':
		return lx.operator()
	case c == '\'':
		return lx.quoted('\'', tString)
	case c == '"':
		return lx.quoted('"', tQIdent)
	case isDigit(c) || (c == '+' || c == '-') && isDigit(lx.peek(1)):
		return lx.number()
	case isIdentStart(c):
		return lx.ident(), nil
	}
	return token{}, lx.badChar(start)
}

func (lx *lexer) peek(off int) byte {
	if i := lx.pos + off; i < len(lx.src) {
		return lx.src[i]
	}
	return 0
}

func (lx *lexer) skipSpace() {
	for lx.pos < len(lx.src) && strings.IndexByte(" \t\n\r\f\v", lx.src[lx.pos]) >= 0 {
		lx.pos++
	}
}

func (lx *lexer) single(k tokKind) token {
	lx.pos++
	return token{kind: k, pos: lx.pos - 1, end: lx.pos, val: lx.src[lx.pos-1 : lx.pos]}
}

func (lx *lexer) operator() (token, error) {
	start := lx.pos
	two := ""
	if start+2 <= len(lx.src) {
		two = lx.src[start : start+2]
	}
	n := 1
	switch two {
	case "==":
		return token{}, errAt(start, `use "=" to compare, not "=="`)
	case "!=", "<=", ">=", "<>":
		n = 2
	default:
		if lx.src[start] == '!' {
			return token{}, errAt(start, `unexpected "!"; did you mean "!="? (negation is NOT)`)
		}
	}
	lx.pos += n
	return token{kind: tOp, pos: start, end: lx.pos, val: lx.src[start:lx.pos]}, nil
}

// quoted reads a string or quoted identifier; a doubled quote stands for
// one quote.
func (lx *lexer) quoted(q byte, k tokKind) (token, error) {
	start := lx.pos
	var b strings.Builder
	i := start + 1
	for {
		j := strings.IndexByte(lx.src[i:], q)
		if j < 0 {
			return token{}, errAt(start, unterminated(q))
		}
		b.WriteString(lx.src[i : i+j])
		i += j + 1
		if i < len(lx.src) && lx.src[i] == q {
			b.WriteByte(q)
			i++
			continue
		}
		break
	}
	lx.pos = i
	if k == tQIdent && b.Len() == 0 {
		return token{}, errAt(start, `a quoted column name cannot be empty`)
	}
	return token{kind: k, pos: start, end: i, val: b.String()}, nil
}

func unterminated(q byte) string {
	if q == '\'' {
		return "unterminated string: no closing ' (write a ' inside a string as '')"
	}
	return `unterminated quoted name: no closing " (write a " inside a name as "")`
}

// number reads [+-]?digits(.digits)?([eE][+-]?digits)?.
func (lx *lexer) number() (token, error) {
	start := lx.pos
	if c := lx.src[lx.pos]; c == '+' || c == '-' {
		lx.pos++
	}
	lx.digits()
	kind := tInteger
	if lx.peek(0) == '.' {
		lx.pos++
		if lx.digits() == 0 {
			return token{}, errAt(lx.pos, fmt.Sprintf("expected a digit after the point in %q", lx.src[start:lx.pos]))
		}
		kind = tNumber
	}
	if c := lx.peek(0); c == 'e' || c == 'E' {
		lx.pos++
		if c := lx.peek(0); c == '+' || c == '-' {
			lx.pos++
		}
		if lx.digits() == 0 {
			return token{}, errAt(lx.pos, fmt.Sprintf("expected a digit in the exponent of %q", lx.src[start:lx.pos]))
		}
		kind = tNumber
	}
	if c := lx.peek(0); c != 0 && (isIdentChar(c) || c == '.') {
		return token{}, errAt(lx.pos, fmt.Sprintf("malformed number: %q is followed by %q", lx.src[start:lx.pos], c))
	}
	return token{kind: kind, pos: start, end: lx.pos, val: lx.src[start:lx.pos]}, nil
}

func (lx *lexer) digits() int {
	n := 0
	for lx.pos < len(lx.src) && isDigit(lx.src[lx.pos]) {
		lx.pos++
		n++
	}
	return n
}

func (lx *lexer) ident() token {
	start := lx.pos
	for lx.pos < len(lx.src) && isIdentChar(lx.src[lx.pos]) {
		lx.pos++
	}
	return token{kind: tIdent, pos: start, end: lx.pos, val: lx.src[start:lx.pos]}
}

// badChar describes a character that starts no token.
func (lx *lexer) badChar(at int) error {
	c := lx.src[at]
	switch {
	case c == '&':
		return errAt(at, `unexpected "&"; write AND`)
	case c == '|':
		return errAt(at, `unexpected "|"; write OR`)
	case c == '.' && at > 0 && isIdentChar(lx.src[at-1]):
		return errAt(at, `unexpected "."; only top-level columns can be filtered (quote a name that contains a dot: "a.b")`)
	case c == '.' && at+1 < len(lx.src) && isDigit(lx.src[at+1]):
		return errAt(at, `a number needs a digit before its point (write 0.5, not .5)`)
	case c == '+' || c == '-':
		return errAt(at, fmt.Sprintf("expected a digit right after %q", c))
	}
	r, _ := utf8.DecodeRuneInString(lx.src[at:])
	return errAt(at, fmt.Sprintf("unexpected character %q", r))
}
