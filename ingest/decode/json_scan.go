package decode

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
)

// A validating scan of the JSON grammar, run before fastjson (which accepts
// NaN, 1.2.3 and bad escapes), with encoding/json-style messages.

// maxJSONDepth bounds object/array nesting. fastjson refuses more than 300 levels; staying below
// that guarantees that every record the scanner accepts also parses.
const maxJSONDepth = 256

// jsonScanner checks a record against the JSON grammar (RFC 8259) without allocating. Its
// messages are worded like encoding/json's, plus the 0-based offset of the offending byte, so that
// dead-letter reasons read like what people know from Go tooling. (Where encoding/json blames an
// imaginary space for input that ends inside a number, literal or escape, this says
// "unexpected end of JSON input".)
type jsonScanner struct {
	b     []byte
	depth int
	// First failure.
	errAt  int
	errCtx string // "" means the input ended early
	// high collects the bytes of string contents; without a byte >= 0x80 every string is ASCII
	// and needs no UTF-8 check (escapes are decoded to valid UTF-8, surrogates are checked).
	high uint64
	// A problem encoding/json lets through but that would make fastjson unescape a string
	// lossily: an unpaired UTF-16 surrogate. Reported only if the grammar is otherwise fine.
	surrogateAt int
}

// strPlain marks the bytes a string can contain without a closer look.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (s *jsonScanner) check(b []byte) *DecodeError {
	s.b, s.depth, s.surrogateAt, s.high = b, 0, -1, 0
	i := s.value(s.skipWS(0))
	if i >= 0 {
		if i = s.skipWS(i); i < len(b) {
			i = s.fail(i, "after top-level value")
		}
	}
	if i < 0 {
		return s.syntaxError()
	}
	if s.surrogateAt >= 0 {
		return &DecodeError{Reason: fmt.Sprintf(
			"record is not a JSON object: unpaired UTF-16 surrogate in \\u escape in string literal (offset %d)", s.surrogateAt)}
	}
	return nil
}

func (s *jsonScanner) syntaxError() *DecodeError {
	if s.errCtx == "" {
		return &DecodeError{Reason: fmt.Sprintf("record is not a JSON object: unexpected end of JSON input (offset %d)", s.errAt)}
	}
	if s.errCtx == errTooDeep {
		return &DecodeError{Reason: fmt.Sprintf("record is not a JSON object: nesting deeper than %d levels (offset %d)", maxJSONDepth, s.errAt)}
	}
	return &DecodeError{Reason: fmt.Sprintf("record is not a JSON object: invalid character %s %s (offset %d)",
		quoteChar(s.b[s.errAt]), s.errCtx, s.errAt)}
}

const errTooDeep = "\x00too deep"

// allASCII reports whether the strings of the last checked input were pure ASCII.
func (s *jsonScanner) allASCII() bool { return s.high&swarHigh == 0 }

// quoteChar formats c like encoding/json does in its syntax errors.
func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	q := strconv.Quote(string(rune(c)))
	return "'" + q[1:len(q)-1] + "'"
}

func (s *jsonScanner) fail(i int, ctx string) int {
	s.errAt, s.errCtx = i, ctx
	return -1
}

func (s *jsonScanner) eof() int {
	s.errAt, s.errCtx = len(s.b), ""
	return -1
}

func (s *jsonScanner) skipWS(i int) int {
	// Compact JSON has no whitespace at all; keep that case inlinable.
	if i < len(s.b) && s.b[i] > ' ' {
		return i
	}
	return s.skipWSSlow(i)
}

func (s *jsonScanner) skipWSSlow(i int) int {
	b := s.b
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value scans the value starting at b[i] (not whitespace) and returns the index after it, or -1.
func (s *jsonScanner) value(i int) int {
	b := s.b
	if i >= len(b) {
		return s.eof()
	}
	switch c := b[i]; c {
	case '{':
		return s.object(i + 1)
	case '[':
		return s.array(i + 1)
	case '"':
		return s.str(i + 1)
	case 't':
		return s.literal(i, "true")
	case 'f':
		return s.literal(i, "false")
	case 'n':
		return s.literal(i, "null")
	default:
		if c == '-' || isDigit(c) {
			return s.number(i)
		}
		return s.fail(i, "looking for beginning of value")
	}
}

func (s *jsonScanner) object(i int) int {
	b := s.b
	if s.depth++; s.depth > maxJSONDepth {
		return s.fail(i-1, errTooDeep)
	}
	if i = s.skipWS(i); i >= len(b) {
		return s.eof()
	}
	if b[i] == '}' {
		s.depth--
		return i + 1
	}
	for {
		if b[i] != '"' {
			return s.fail(i, "looking for beginning of object key string")
		}
		if i = s.str(i + 1); i < 0 {
			return -1
		}
		if i = s.skipWS(i); i >= len(b) {
			return s.eof()
		}
		if b[i] != ':' {
			return s.fail(i, "after object key")
		}
		if i = s.value(s.skipWS(i + 1)); i < 0 {
			return -1
		}
		if i = s.skipWS(i); i >= len(b) {
			return s.eof()
		}
		switch b[i] {
		case ',':
			if i = s.skipWS(i + 1); i >= len(b) {
				return s.eof()
			}
		case '}':
			s.depth--
			return i + 1
		default:
			return s.fail(i, "after object key:value pair")
		}
	}
}

func (s *jsonScanner) array(i int) int {
	b := s.b
	if s.depth++; s.depth > maxJSONDepth {
		return s.fail(i-1, errTooDeep)
	}
	if i = s.skipWS(i); i >= len(b) {
		return s.eof()
	}
	if b[i] == ']' {
		s.depth--
		return i + 1
	}
	for {
		if i = s.value(i); i < 0 {
			return -1
		}
		if i = s.skipWS(i); i >= len(b) {
			return s.eof()
		}
		switch b[i] {
		case ',':
			i = s.skipWS(i + 1)
		case ']':
			s.depth--
			return i + 1
		default:
			return s.fail(i, "after array element")
		}
	}
}

// str scans a string whose opening quote is at b[i-1].
func (s *jsonScanner) str(i int) int {
	b := s.b
	for {
		// Strings are most of a record's bytes: test eight at a time for the three kinds of byte
		// that need a closer look (SWAR; the byte loop below finds which one it was).
		for {
			if i+8 > len(b) {
				for i < len(b) && strPlain[b[i]] {
					s.high |= uint64(b[i])
					i++
				}
				break
			}
			x := binary.LittleEndian.Uint64(b[i:])
			if m := swarLess(x, 0x20) | swarZero(x^(swarOnes*'"')) | swarZero(x^(swarOnes*'\\')); m != 0 {
				// Borrows only run towards higher bytes, so the lowest flag is exact.
				n := bits.TrailingZeros64(m) >> 3
				s.high |= x & (1<<(n*8) - 1)
				i += n
				break
			}
			s.high |= x
			i += 8
		}
		if i >= len(b) {
			return s.eof()
		}
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			esc := i
			i++
			if i >= len(b) {
				return s.eof()
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				r, next := s.hex4(i + 1)
				if next < 0 {
					return -1
				}
				i = next
				switch {
				case r >= 0xDC00 && r <= 0xDFFF:
					s.surrogate(esc)
				case r >= 0xD800 && r <= 0xDBFF:
					// Must be followed directly by an escaped low surrogate.
					if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
						r2, next := s.hex4(i + 2)
						if next < 0 {
							return -1
						}
						if r2 < 0xDC00 || r2 > 0xDFFF {
							s.surrogate(esc)
						}
						i = next
					} else {
						s.surrogate(esc)
					}
				}
			default:
				return s.fail(i, "in string escape code")
			}
		default: // a control character
			return s.fail(i, "in string literal")
		}
	}
}

const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
)

// swarZero is non-zero iff some byte of x is zero.
func swarZero(x uint64) uint64 { return (x - swarOnes) & ^x & swarHigh }

// swarLess is non-zero iff some byte of x is less than n (n <= 128).
func swarLess(x uint64, n uint64) uint64 { return (x - swarOnes*n) & ^x & swarHigh }

func (s *jsonScanner) surrogate(at int) {
	if s.surrogateAt < 0 {
		s.surrogateAt = at
	}
}

// hex4 reads the four hex digits of a \u escape starting at b[i].
func (s *jsonScanner) hex4(i int) (rune, int) {
	b := s.b
	var r rune
	for k := 0; k < 4; k++ {
		if i+k >= len(b) {
			return 0, s.eof()
		}
		h := unhex(b[i+k])
		if h > 15 {
			return 0, s.fail(i+k, `in \u hexadecimal character escape`)
		}
		r = r<<4 | rune(h)
	}
	return r, i + 4
}

func (s *jsonScanner) number(i int) int {
	b := s.b
	if b[i] == '-' {
		if i++; i >= len(b) {
			return s.eof()
		}
		if !isDigit(b[i]) {
			return s.fail(i, "in numeric literal")
		}
	}
	if b[i] == '0' {
		i++
	} else {
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && b[i] == '.' {
		if i++; i >= len(b) {
			return s.eof()
		}
		if !isDigit(b[i]) {
			return s.fail(i, "after decimal point in numeric literal")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		if i++; i >= len(b) {
			return s.eof()
		}
		if b[i] == '+' || b[i] == '-' {
			if i++; i >= len(b) {
				return s.eof()
			}
		}
		if !isDigit(b[i]) {
			return s.fail(i, "in exponent of numeric literal")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i
}

func (s *jsonScanner) literal(i int, lit string) int {
	b := s.b
	for k := 1; k < len(lit); k++ {
		if i+k >= len(b) {
			return s.eof()
		}
		if b[i+k] != lit[k] {
			return s.fail(i+k, "in literal "+lit+" (expecting "+quoteChar(lit[k])+")")
		}
	}
	return i + len(lit)
}
