package dedup

import (
	"encoding/binary"
	"runtime"
	"testing"
)

// BenchmarkCheck measures a check of a new key and reports the memory a
// partition holds per key (heap growth over 1M keys, after a GC).
func BenchmarkCheck(b *testing.B) {
	b.Run("new-keys", func(b *testing.B) {
		p := NewPartition("t/0", 1<<62)
		var h Hasher
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			h.Reset()
			h.Int(int64(i))
			p.Check(h.Sum(), int64(i))
		}
	})
	b.Run("memory", func(b *testing.B) {
		const n = 1 << 20
		for b.Loop() {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			p := NewPartition("t/0", 1<<62)
			var k Key
			for i := range n {
				binary.LittleEndian.PutUint64(k[:], uint64(i)*0x9e3779b97f4a7c15)
				p.Check(k, int64(i))
			}
			Delta([]*Partition{p}) // the segment's list of added keys goes with its file
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/key")
			runtime.KeepAlive(p)
		}
	})
}
