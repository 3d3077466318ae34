package filter

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// caretContext is how many characters Caret shows on each side of the
// position on a long line.
const caretContext = 60

// Caret renders the line of src that holds the error's position, with a
// caret under the position on the line below:
//
//	amount = )
//	         ^
//
// A long line is cut to the part around the position, a tab is kept so
// that the caret lines up, and other unprintable characters show as "?".
// A position beyond src points just past its end.
func (e *Error) Caret(src string) string {
	pos := min(max(e.Pos, 0), len(src))
	start := strings.LastIndexByte(src[:pos], '\n') + 1
	end := len(src)
	if i := strings.IndexByte(src[pos:], '\n'); i >= 0 {
		end = pos + i
	}
	before := printable(src[start:pos])
	after := printable(strings.TrimSuffix(src[pos:end], "\r"))
	if len(before) > caretContext {
		before = append([]rune("..."), before[len(before)-caretContext:]...)
	}
	if len(after) > caretContext {
		after = append(after[:caretContext:caretContext], []rune("...")...)
	}
	var b strings.Builder
	b.WriteString(string(before))
	b.WriteString(string(after))
	b.WriteByte('\n')
	for _, r := range before {
		if r == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteByte('^')
	return b.String()
}

// printable returns s as runes, each invalid byte and unprintable
// character (other than tab) replaced by '?'.
func printable(s string) []rune {
	out := make([]rune, 0, len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		if r == utf8.RuneError && n == 1 || r != '\t' && !unicode.IsPrint(r) {
			r = '?'
		}
		out = append(out, r)
	}
	return out
}
