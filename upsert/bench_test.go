package upsert

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// targetBytesPerKey is the memory budget for 8-byte keys.
const targetBytesPerKey = 48

// key8 writes the i-th benchmark key: distinct 8-byte keys (multiplying by
// an odd constant is a bijection on uint64).
func key8(k []byte, i int) {
	binary.LittleEndian.PutUint64(k, uint64(i)*0x9e3779b97f4a7c15)
}

func BenchmarkIndexPut(b *testing.B) {
	b.Run("new-keys", func(b *testing.B) {
		ix := New()
		f := ix.FileID("f")
		var k [8]byte
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			key8(k[:], i)
			ix.Put(k[:], Loc{f, uint32(i)})
		}
	})
	b.Run("overwrite-1e6", func(b *testing.B) {
		const n = 1_000_000
		ix := New()
		f := ix.FileID("f")
		var k [8]byte
		for i := range n {
			key8(k[:], i)
			ix.Put(k[:], Loc{f, uint32(i)})
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			key8(k[:], i%n)
			ix.Put(k[:], Loc{f, uint32(i)})
		}
	})
}

func BenchmarkIndexGet(b *testing.B) {
	const n = 1_000_000
	ix := New()
	f := ix.FileID("f")
	var k [8]byte
	for i := range n {
		key8(k[:], i)
		ix.Put(k[:], Loc{f, uint32(i)})
	}
	b.Run("hit-1e6", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			key8(k[:], i%n)
			if _, ok := ix.Get(k[:]); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("miss-1e6", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			key8(k[:], n+i)
			if _, ok := ix.Get(k[:]); ok {
				b.Fatal("hit")
			}
		}
	})
}

func heapAlloc() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkIndexScale inserts 1e6 and 1e7 8-byte keys and reports memory
// per key (live heap growth and MemoryBytes), insert and Get times, and the
// slowest single Put (from a second, separately timed insertion run). Run
// it once per size:
//
//	go test -run '^$' -bench IndexScale -benchtime 1x ./upsert/
func BenchmarkIndexScale(b *testing.B) {
	for _, n := range []int{1_000_000, 10_000_000} {
		b.Run(fmt.Sprintf("keys=%.0e", float64(n)), func(b *testing.B) {
			for range b.N {
				scale(b, n)
			}
		})
	}
	b.Run("map-baseline/keys=1e6", func(b *testing.B) {
		const n = 1_000_000
		for range b.N {
			before := heapAlloc()
			m := make(map[string]Loc)
			var k [8]byte
			for i := range n {
				key8(k[:], i)
				m[string(k[:])] = Loc{0, uint32(i)}
			}
			per := float64(heapAlloc()-before) / n
			runtime.KeepAlive(m)
			b.ReportMetric(per, "heap-B/key")
			b.Logf("map[string]Loc baseline: %d keys, %.1f heap bytes/key (target for Index: %d)", n, per, targetBytesPerKey)
		}
	})
}

func scale(b *testing.B, n int) {
	var k [8]byte
	before := heapAlloc()
	ix := New()
	f := ix.FileID("s3://bucket/table/data/00000-0-0.parquet")
	start := time.Now()
	for i := range n {
		key8(k[:], i)
		ix.Put(k[:], Loc{f, uint32(i)})
	}
	putNs := float64(time.Since(start).Nanoseconds()) / float64(n)
	heapPer := float64(heapAlloc()-before) / float64(n)
	acctPer := float64(ix.MemoryBytes()) / float64(n)

	start = time.Now()
	for i := range n {
		key8(k[:], i)
		if _, ok := ix.Get(k[:]); !ok {
			b.Fatal("miss")
		}
	}
	getNs := float64(time.Since(start).Nanoseconds()) / float64(n)
	runtime.KeepAlive(ix)
	ix = nil
	heapAlloc()

	// Slowest single Put, timed one by one in a fresh index. The figure
	// includes whatever else stalls the goroutine: scheduling on a busy
	// machine, GC assists.
	ix2 := New()
	f = ix2.FileID("f")
	var worst time.Duration
	worstAt, over1ms := 0, 0
	t0 := time.Now()
	for i := range n {
		key8(k[:], i)
		ix2.Put(k[:], Loc{f, uint32(i)})
		t1 := time.Now()
		d := t1.Sub(t0)
		if d > worst {
			worst, worstAt = d, i
		}
		if d > time.Millisecond {
			over1ms++
		}
		t0 = t1
	}
	runtime.KeepAlive(ix2)

	b.ReportMetric(heapPer, "heap-B/key")
	b.ReportMetric(acctPer, "acct-B/key")
	b.ReportMetric(putNs, "put-ns/key")
	b.ReportMetric(getNs, "get-ns/key")
	b.ReportMetric(float64(worst.Microseconds()), "worst-put-µs")
	b.Logf("%d 8-byte keys: %.1f heap bytes/key, %.1f accounted bytes/key (target %d); put %.0f ns/key, get %.0f ns/key; slowest Put %v (key #%d), %d Puts over 1ms",
		n, heapPer, acctPer, targetBytesPerKey, putNs, getNs, worst, worstAt, over1ms)
}
