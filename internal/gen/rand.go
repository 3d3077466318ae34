package gen

import "math/bits"

// rng is wyrand: a few nanoseconds per draw, no allocation, and a fixed
// algorithm, so a seed keeps producing the same data across Go releases
// (math/rand's sources make no such promise for every helper).
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(r.s, r.s^0xe7037ed1a0b428db)
	return hi ^ lo
}

// uintn returns a value in [0, n) by multiply-shift; the bias is below
// n/2^64, irrelevant for test data.
func (r *rng) uintn(n uint64) uint64 {
	hi, _ := bits.Mul64(r.next(), n)
	return hi
}

func (r *rng) intn(n int) int { return int(r.uintn(uint64(n))) }

// float returns a value in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) * 0x1p-53 }

// chance reports true with the probability th was built from.
func (r *rng) chance(th uint64) bool { return r.next()>>11 < th }

func probThreshold(p float64) uint64 {
	if p <= 0 {
		return 0
	}
	if p >= 1 {
		return 1 << 53
	}
	return uint64(p * (1 << 53))
}

// mix64 is the splitmix64 finalizer. It is a bijection on uint64, which is
// what makes ids derived from distinct counters distinct.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// table is a precomputed weighted choice: 256 slots filled in proportion
// to the weights, so a draw is one random byte and an index.
type table[T any] struct {
	vals  []T
	slots [256]uint8
}

func newTable[T any](vals []T, weights []int) *table[T] {
	if len(vals) != len(weights) || len(vals) == 0 || len(vals) > 256 {
		panic("gen: bad weighted table")
	}
	total := 0
	for _, w := range weights {
		total += w
	}
	t := &table[T]{vals: vals}
	// Cumulative rounding gives every slot an owner and keeps each value's
	// share within one slot of its weight.
	slot := 0
	cum := 0
	for i, w := range weights {
		cum += w
		end := (cum*256 + total/2) / total
		if i == len(weights)-1 {
			end = 256
		}
		if end <= slot && slot < 256 {
			end = slot + 1 // never drop a value entirely
		}
		for ; slot < end && slot < 256; slot++ {
			t.slots[slot] = uint8(i)
		}
	}
	return t
}

func (t *table[T]) pick(r *rng) T { return t.vals[t.slots[r.next()>>56]] }

// pickIndex is pick for tables whose values index a parallel slice.
func (t *table[T]) pickIndex(r *rng) int { return int(t.slots[r.next()>>56]) }
