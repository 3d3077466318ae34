package window

import (
	"fmt"
	"testing"
)

func BenchmarkPartialsAddTumbling(b *testing.B) {
	aggs := Aggs{{Func: Count, Star: true}, {Func: Sum, In: KindInt}, {Func: Max, In: KindFloat}}
	p := NewPartials(Spec{Kind: Tumbling, Size: 60_000_000}, aggs)
	groups := make([]string, 100)
	for i := range groups {
		groups[i] = fmt.Sprint("group-", i)
	}
	vals := []Value{{}, {Int: 3}, {Float: 1.5}}
	b.ReportAllocs()
	ts := int64(1_700_000_000_000_000)
	for i := 0; b.Loop(); i++ {
		if err := p.Add(groups[i%len(groups)], ts+int64(i)*1000, vals); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPartialsAddSession(b *testing.B) {
	aggs := Aggs{{Func: Count, Star: true}, {Func: Sum, In: KindInt}}
	p := NewPartials(Spec{Kind: Session, Gap: 30_000_000}, aggs)
	groups := make([]string, 100)
	for i := range groups {
		groups[i] = fmt.Sprint("group-", i)
	}
	vals := []Value{{}, {Int: 3}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := p.Add(groups[i%len(groups)], int64(i)*1000, vals); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHLLAdd(b *testing.B) {
	for _, n := range []int{1000, 1 << 20} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var buf [8]byte
			b.ReportAllocs()
			h := NewHLL(14)
			for i := 0; b.Loop(); i++ {
				if i%n == 0 {
					h = NewHLL(14)
				}
				buf[0], buf[1], buf[2], buf[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
				h.AddBytes(buf[:])
			}
		})
	}
}
