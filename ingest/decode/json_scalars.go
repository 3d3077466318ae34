package decode

import (
	"encoding/base64"
	"math"
	"math/bits"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// Exact parsers for JSON numbers, decimals and UUIDs: never through
// float64, never rounding.

// base64Strict refuses non-zero padding bits, which would otherwise be dropped silently.
var base64Strict = base64.StdEncoding.Strict()

// mulAdd returns a*m + b for m > 0 and 0 <= b < m, reporting overflow.
func mulAdd(a, m, b int64) (int64, bool) {
	if a >= 0 {
		if a > (math.MaxInt64-b)/m {
			return 0, false
		}
		return a*m + b, true
	}
	// Rewritten as (a+1)*m - (m-b) so that math.MinInt64 itself stays reachable.
	if a+1 < math.MinInt64/m {
		return 0, false
	}
	r := (a + 1) * m
	if r < math.MinInt64+(m-b) {
		return 0, false
	}
	return r - (m - b), true
}

// parseJSONInt parses the text of a JSON number as an integer without going through float64.
// integral is false for numbers with a fraction or an exponent (1.0 and 1e3 included); fits is
// false when the integer does not fit an int64.
func parseJSONInt(s []byte) (v int64, integral, fits bool) {
	i := 0
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		i = 1
	}
	var u uint64
	digits := len(s) - i
	for ; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false, false
		}
		u = u*10 + uint64(c) // cannot wrap for the <= 19 digits accepted below
	}
	if digits == 0 {
		return 0, false, false
	}
	if digits > 19 {
		return 0, true, false
	}
	if neg {
		if u > 1<<63 {
			return 0, true, false
		}
		return -int64(u), true, true
	}
	if u > math.MaxInt64 {
		return 0, true, false
	}
	return int64(u), true, true
}

type decResult uint8

const (
	decOK decResult = iota
	decSyntax
	decScale
	decPrecision
)

func isDigit(c byte) bool { return c-'0' <= 9 }

// parseDecimal parses s exactly (never through float64) into an unscaled value at the given scale.
// It accepts an optional sign, digits with an optional '.', and an optional exponent. Fraction
// digits beyond the scale are an error unless they are zeros, so the value is never rounded.
func parseDecimal(s []byte, precision, scale int) (decimal128.Num, decResult) {
	i := 0
	neg := false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	intStart := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[intStart:i]
	var fracPart []byte
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		fracPart = s[fs:i]
	}
	if len(intPart)+len(fracPart) == 0 {
		return decimal128.Num{}, decSyntax
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		es := i
		for i < len(s) && isDigit(s[i]) {
			if exp < 1e6 { // far beyond any precision; only needs to stay saturated
				exp = exp*10 + int(s[i]-'0')
			}
			i++
		}
		if i == es {
			return decimal128.Num{}, decSyntax
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return decimal128.Num{}, decSyntax
	}

	// The value is digits × 10^(exp - len(frac)) where digits = int ++ frac; at the target scale
	// the unscaled value is digits × 10^shift.
	nd := len(intPart) + len(fracPart)
	digit := func(k int) byte {
		if k < len(intPart) {
			return intPart[k] - '0'
		}
		return fracPart[k-len(intPart)] - '0'
	}
	first := 0
	for first < nd && digit(first) == 0 {
		first++
	}
	if first == nd {
		return decimal128.Num{}, decOK
	}
	last := nd // digits in [first, last) are kept
	shift := scale + exp - len(fracPart)
	if shift < 0 {
		drop := -shift
		if drop > last-first {
			return decimal128.Num{}, decScale
		}
		for k := last - drop; k < last; k++ {
			if digit(k) != 0 {
				return decimal128.Num{}, decScale
			}
		}
		last -= drop
		shift = 0
	}
	if last-first+shift > precision {
		return decimal128.Num{}, decPrecision
	}
	var hi, lo uint64
	mulAdd10 := func(d uint64) {
		h, l := bits.Mul64(lo, 10)
		var carry uint64
		lo, carry = bits.Add64(l, d, 0)
		hi = hi*10 + h + carry
	}
	for k := first; k < last; k++ {
		mulAdd10(uint64(digit(k)))
	}
	for ; shift > 0; shift-- {
		mulAdd10(0)
	}
	if neg {
		lo = ^lo + 1
		hi = ^hi
		if lo == 0 {
			hi++
		}
	}
	return decimal128.New(int64(hi), lo), decOK
}

// parseUUID decodes the canonical 8-4-4-4-12 hex form into dst.
func parseUUID(dst, s []byte) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	for j, p := range uuidHexPos {
		hi, lo := unhex(s[p]), unhex(s[p+1])
		if hi > 15 || lo > 15 {
			return false
		}
		dst[j] = hi<<4 | lo
	}
	return true
}

// uuidHexPos are the offsets of the 16 hex byte pairs in the canonical form.
var uuidHexPos = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

func unhex(c byte) byte {
	switch {
	case c-'0' <= 9:
		return c - '0'
	case c-'a' <= 5:
		return c - 'a' + 10
	case c-'A' <= 5:
		return c - 'A' + 10
	}
	return 255
}
