package upsert

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
)

// mix64 is a deterministic 64-bit hash for tests (FNV-1a, then the
// splitmix64 finalizer), so that layouts reproduce from the seed.
func mix64(k []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, b := range k {
		h ^= uint64(b)
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// testHashes are the hash functions the model tests run under: a good one
// and degenerate ones that defeat every part of the layout in turn.
var testHashes = []struct {
	name string
	fn   func([]byte) uint64
	// degenerate hashes make probing linear in the key count: the tests
	// keep their key universes small.
	degenerate bool
}{
	{"maphash", nil, false},
	{"mix64", mix64, false},
	{"constant", func([]byte) uint64 { return 0x5eed_1234_5678_9abc }, true},
	{"half-constant", func(k []byte) uint64 {
		if h := mix64(k); h&1 == 0 {
			return h
		}
		return 0xdead_beef_0000_0001
	}, true},
	// 16 distinct values, all in the low bits: no split ever helps, every
	// tag is the same.
	{"low-entropy", func(k []byte) uint64 { return mix64(k) & 0xf }, true},
	// Only the directory bits vary: splits work, but within a segment every
	// key has the same home slot and tag.
	{"top-bits-only", func(k []byte) uint64 { return mix64(k) & (0xff << 56) }, true},
	// Every key has the same tag: every probe compares key bytes.
	{"same-tag", func(k []byte) uint64 { return mix64(k) &^ (0xff << 32) }, false},
}

type model struct {
	m     map[string]Loc
	v     map[string]int64  // versions, for a versioned index
	files map[uint32]string // live file ids
}

// harness runs operations against an Index and a map model side by side.
type harness struct {
	t  testing.TB
	ix Store
	// mem is the in-memory index whose layout check verifies: ix itself,
	// or a Spilled's memory tier.
	mem   *Index
	mod   model
	live  []uint32 // live file ids, in creation order
	nfile int
	// versioned runs a versioned index (NewVersioned's), putting with
	// versions and checking them.
	versioned bool
	nput      int64
}

// versioned makes h's index a versioned one; it must be empty.
func (h *harness) makeVersioned() {
	h.mem.vlen = 8
	h.mem.dir[0].vlen = 8
	h.versioned = true
	h.mod.v = map[string]int64{}
}

func newHarness(t testing.TB, hash func([]byte) uint64, segSlots int) *harness {
	ix := newIndex(hash, segSlots)
	h := &harness{
		t:   t,
		ix:  ix,
		mem: ix,
		mod: model{m: map[string]Loc{}, files: map[uint32]string{}},
	}
	for range 3 {
		h.newFile()
	}
	return h
}

func (h *harness) newFile() uint32 {
	h.nfile++
	path := fmt.Sprintf("s3://bucket/table/data/%05d-file.parquet", h.nfile)
	id := h.ix.FileID(path)
	if id2 := h.ix.FileID(path); id2 != id {
		h.t.Fatalf("FileID not idempotent: %d then %d", id, id2)
	}
	if _, ok := h.mod.files[id]; ok {
		h.t.Fatalf("FileID(%q) reused live id %d", path, id)
	}
	if got := h.ix.FilePath(id); got != path {
		h.t.Fatalf("FilePath(%d) = %q, want %q", id, got, path)
	}
	h.mod.files[id] = path
	h.live = append(h.live, id)
	return id
}

func (h *harness) file(r uint64) uint32 {
	if len(h.live) == 0 {
		return h.newFile()
	}
	return h.live[r%uint64(len(h.live))]
}

func (h *harness) put(key []byte, loc Loc) {
	mold, mhad := h.mod.m[string(key)]
	if h.versioned {
		h.nput++
		v := h.nput*0x9e3779b9 - 1<<40 // negative and positive, distinct
		old, ov, had := h.ix.PutVersion(key, loc, v)
		if had != mhad || old != mold || (had && ov != h.mod.v[string(key)]) {
			h.t.Fatalf("PutVersion(%x, %v) = %v, %d, %v; model %v, %d, %v", key, loc, old, ov, had, mold, h.mod.v[string(key)], mhad)
		}
		h.mod.v[string(key)] = v
	} else if old, had := h.ix.Put(key, loc); had != mhad || old != mold {
		h.t.Fatalf("Put(%x, %v) = %v, %v; model %v, %v", key, loc, old, had, mold, mhad)
	}
	h.mod.m[string(key)] = loc
}

func (h *harness) get(key []byte) {
	loc, ok := h.ix.Get(key)
	mloc, mok := h.mod.m[string(key)]
	if ok != mok || loc != mloc {
		h.t.Fatalf("Get(%x) = %v, %v; model %v, %v", key, loc, ok, mloc, mok)
	}
	if h.versioned {
		_, v, _ := h.ix.GetVersion(key)
		if ok && v != h.mod.v[string(key)] {
			h.t.Fatalf("GetVersion(%x) = %d; model %d", key, v, h.mod.v[string(key)])
		}
	}
}

func (h *harness) del(key []byte) {
	loc, ok := h.ix.Delete(key)
	mloc, mok := h.mod.m[string(key)]
	if ok != mok || loc != mloc {
		h.t.Fatalf("Delete(%x) = %v, %v; model %v, %v", key, loc, ok, mloc, mok)
	}
	delete(h.mod.m, string(key))
}

func (h *harness) dropFile(id uint32) {
	want := 0
	for k, l := range h.mod.m {
		if l.File == id {
			delete(h.mod.m, k)
			want++
		}
	}
	if got := h.ix.DropFile(id); got != want {
		h.t.Fatalf("DropFile(%d) = %d, model %d", id, got, want)
	}
	if p := h.ix.FilePath(id); p != "" {
		h.t.Fatalf("FilePath(%d) = %q after DropFile", id, p)
	}
	if n := h.ix.DropFile(id); n != 0 {
		h.t.Fatalf("second DropFile(%d) = %d", id, n)
	}
	delete(h.mod.files, id)
	for i, f := range h.live {
		if f == id {
			h.live = append(h.live[:i], h.live[i+1:]...)
			break
		}
	}
}

// remap moves the keys of file src to file dst (a fresh file when dst is
// src), shifting positions by shift and dropping every mod-th position; it
// leaves other files alone.
func (h *harness) remap(src, dst uint32, shift, mod uint32) {
	fn := func(l Loc) (Loc, bool) {
		if l.File != src {
			return l, true
		}
		if mod > 0 && l.Pos%mod == 0 {
			return Loc{}, false
		}
		return Loc{File: dst, Pos: l.Pos + shift}, true
	}
	calls := 0
	h.ix.Remap(func(l Loc) (Loc, bool) {
		calls++
		return fn(l)
	})
	if calls != len(h.mod.m) {
		h.t.Fatalf("Remap called fn %d times for %d keys", calls, len(h.mod.m))
	}
	for k, l := range h.mod.m {
		if nl, keep := fn(l); keep {
			h.mod.m[k] = nl
		} else {
			delete(h.mod.m, k)
		}
	}
}

// check compares the whole index with the model and verifies the layout's
// invariants.
func (h *harness) check() {
	t, ix := h.t, h.ix
	t.Helper()
	if err := ix.Err(); err != nil {
		t.Fatal(err)
	}
	if ix.Len() != len(h.mod.m) {
		t.Fatalf("Len = %d, model %d", ix.Len(), len(h.mod.m))
	}
	seen := make(map[string]bool, len(h.mod.m))
	ix.Range(func(k []byte, l Loc) bool {
		if seen[string(k)] {
			t.Fatalf("Range yields %x twice", k)
		}
		seen[string(k)] = true
		if ml, ok := h.mod.m[string(k)]; !ok || ml != l {
			t.Fatalf("Range yields %x → %v; model %v, %v", k, l, ml, ok)
		}
		return true
	})
	if len(seen) != len(h.mod.m) {
		t.Fatalf("Range yields %d keys, model %d", len(seen), len(h.mod.m))
	}
	if h.versioned {
		// Every version survives the rebuilds and splits that moved it.
		for k := range h.mod.m {
			if _, v, _ := ix.GetVersion([]byte(k)); v != h.mod.v[k] {
				t.Fatalf("GetVersion(%x) = %d; model %d", k, v, h.mod.v[k])
			}
		}
	}
	perFile := map[uint32]int{}
	for _, l := range h.mod.m {
		perFile[l.File]++
	}
	for id := range h.mod.files {
		if got := ix.FileKeys(id); got != perFile[id] {
			t.Fatalf("FileKeys(%d) = %d, model %d", id, got, perFile[id])
		}
	}
	checkLayout(t, h.mem)
}

// checkLayout verifies the index's internal invariants.
func checkLayout(t testing.TB, ix *Index) {
	t.Helper()
	if len(ix.dir) != 1<<ix.depth || ix.shift != 64-uint(ix.depth) {
		t.Fatalf("directory: %d entries, depth %d, shift %d", len(ix.dir), ix.depth, ix.shift)
	}
	total := 0
	keys := make([]int, len(ix.files))
	for d := 0; d < len(ix.dir); {
		s := ix.dir[d]
		if s.depth > ix.depth {
			t.Fatalf("segment depth %d > directory depth %d", s.depth, ix.depth)
		}
		span := 1 << (ix.depth - s.depth)
		if d%span != 0 {
			t.Fatalf("segment at dir %d misaligned (span %d)", d, span)
		}
		for j := d; j < d+span; j++ {
			if ix.dir[j] != s {
				t.Fatalf("dir[%d] is not the segment of dir[%d]", j, d)
			}
		}
		n := len(s.slots)
		if n < minSegSlots || n&(n-1) != 0 || s.mask != uint64(n-1) || s.limit != n-n/8 {
			t.Fatalf("segment geometry: %d slots, mask %x, limit %d", n, s.mask, s.limit)
		}
		live, used, keyBytes := 0, 0, 0
		for i := range s.slots {
			sl := s.slots[i]
			switch tag := sl.ref & 0xff; {
			case tag == tagEmpty:
				if sl != (slot{}) {
					t.Fatalf("empty slot with content %+v", sl)
				}
			case tag == tagTomb:
				used++
			default:
				used++
				live++
				k := s.keyAt(sl.ref)
				keyBytes += len(k) + s.vlen
				hv := ix.hash(k)
				if tagOf(hv) != tag {
					t.Fatalf("key %x: tag %d, hash says %d", k, tag, tagOf(hv))
				}
				if ix.segOf(hv) != s {
					t.Fatalf("key %x is in the wrong segment", k)
				}
				if f := s.find(k, hv); f != i {
					t.Fatalf("key %x at slot %d, found at %d", k, i, f)
				}
				if int(sl.loc.File) >= len(ix.files) || !ix.files[sl.loc.File].live {
					t.Fatalf("key %x points into dead file %d", k, sl.loc.File)
				}
				keys[sl.loc.File]++
			}
		}
		if live != s.live || used != s.used || used > s.limit {
			t.Fatalf("segment counts: live %d/%d, used %d/%d, limit %d", live, s.live, used, s.used, s.limit)
		}
		if s.garbage != len(s.arena)-keyBytes {
			t.Fatalf("segment garbage %d, arena %d, live key bytes %d", s.garbage, len(s.arena), keyBytes)
		}
		total += live
		d += span
	}
	if total != ix.n {
		t.Fatalf("segments hold %d keys, Len %d", total, ix.n)
	}
	for id, f := range ix.files {
		if int(f.keys) != keys[id] {
			t.Fatalf("file %d: %d keys counted, %d in slots", id, f.keys, keys[id])
		}
		if f.live {
			if got, ok := ix.fileIDs[f.path]; !ok || got != uint32(id) {
				t.Fatalf("file %d (%q) missing from the intern map", id, f.path)
			}
		} else if f.path != "" || f.keys != 0 {
			t.Fatalf("dropped file %d still has %q, %d keys", id, f.path, f.keys)
		}
	}
}

// keyUniverse returns n distinct keys of mixed lengths: empty, short, the
// common 8 and 9 bytes, and a few long ones.
func keyUniverse(r *rand.Rand, n int) [][]byte {
	seen := map[string]bool{}
	var keys [][]byte
	for len(keys) < n {
		var l int
		switch x := r.IntN(100); {
		case x < 40:
			l = 8
		case x < 60:
			l = 9
		case x < 97:
			l = r.IntN(24)
		default:
			l = 100 + r.IntN(900)
		}
		k := make([]byte, l)
		for i := range k {
			k[i] = byte(r.IntN(4)) // a small alphabet: many shared prefixes
		}
		if l == 8 || l == 9 {
			binary.BigEndian.PutUint64(k, r.Uint64())
		}
		if !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
		}
	}
	return keys
}

func runModel(t *testing.T, h *harness, r *rand.Rand, keys [][]byte, ops int) {
	for op := range ops {
		k := keys[r.IntN(len(keys))]
		switch x := r.IntN(1000); {
		case x < 450:
			h.put(k, Loc{File: h.file(r.Uint64()), Pos: r.Uint32()})
		case x < 700:
			h.get(k)
		case x < 960:
			h.del(k)
		case x < 970:
			h.newFile()
		case x < 980:
			if len(h.live) > 1 {
				h.dropFile(h.file(r.Uint64()))
			}
		case x < 990:
			src := h.file(r.Uint64())
			dst := src
			if r.IntN(2) == 0 {
				dst = h.newFile()
			}
			h.remap(src, dst, r.Uint32N(100), r.Uint32N(4))
		default:
			if p, ok := h.ix.(interface{ Prefetch([][]byte) }); ok && r.IntN(2) == 0 {
				// What follows reads the file through the prefetched
				// entries, until the file changes.
				some := make([][]byte, 500)
				for i := range some {
					some[i] = keys[r.IntN(len(keys))]
				}
				p.Prefetch(some)
				continue
			}
			h.ix.Range(func([]byte, Loc) bool { return r.IntN(50) != 0 })
		}
		if op%20000 == 0 {
			h.check()
		}
	}
	h.check()
}

func TestIndexModel(t *testing.T) {
	for _, th := range testHashes {
		for _, segSlots := range []int{8, defaultSegSlots} {
			t.Run(fmt.Sprintf("%s/seg%d", th.name, segSlots), func(t *testing.T) {
				r := rand.New(rand.NewPCG(1, uint64(segSlots)))
				universe, ops := 30000, 150000
				if th.degenerate {
					universe, ops = 1000, 100000
				}
				if testing.Short() || raceDetector {
					// The index is used by one goroutine: the full model
					// runs without the race detector.
					ops /= 10
				}
				h := newHarness(t, th.fn, segSlots)
				runModel(t, h, r, keyUniverse(r, universe), ops)
			})
		}
	}
}

// TestIndexGrowShrink fills an index, empties most of it by every route,
// and refills it, checking the layout at each stage.
func TestIndexGrowShrink(t *testing.T) {
	for _, th := range testHashes {
		t.Run(th.name, func(t *testing.T) {
			n := 40000
			if th.degenerate {
				n = 600
			}
			r := rand.New(rand.NewPCG(7, 7))
			h := newHarness(t, th.fn, 64)
			keys := keyUniverse(r, n)
			f1, f2 := h.file(0), h.file(1)
			for i, k := range keys {
				h.put(k, Loc{File: []uint32{f1, f2}[i%2], Pos: uint32(i)})
			}
			h.check()
			full := h.ix.MemoryBytes()
			h.dropFile(f1)
			h.check()
			h.remap(f2, f2, 0, 3) // drop a third of the rest
			h.check()
			for _, k := range keys[:len(keys)*9/10] {
				h.del(k)
			}
			h.check()
			if th.fn == nil && h.ix.MemoryBytes() > full/2 {
				t.Errorf("MemoryBytes %d after removing most keys, %d full", h.ix.MemoryBytes(), full)
			}
			f3 := h.newFile()
			for i, k := range keys {
				h.put(k, Loc{File: f3, Pos: uint32(i)})
			}
			h.check()
		})
	}
}

func TestIndexBasics(t *testing.T) {
	ix := New()
	a := ix.FileID("a.parquet")
	b := ix.FileID("b.parquet")
	if a == b || ix.FileID("a.parquet") != a || ix.FilePath(b) != "b.parquet" {
		t.Fatal("file interning")
	}
	if _, ok := ix.Get([]byte("k")); ok {
		t.Fatal("Get on empty index")
	}
	if old, had := ix.Put([]byte("k"), Loc{a, 1}); had || old != (Loc{}) {
		t.Fatal("first Put reports an old location")
	}
	if old, had := ix.Put([]byte("k"), Loc{b, 7}); !had || old != (Loc{a, 1}) {
		t.Fatalf("overwrite returned %v, %v", old, had)
	}
	if ix.FileKeys(a) != 0 || ix.FileKeys(b) != 1 {
		t.Fatal("FileKeys after overwrite")
	}
	// The empty key is a key like any other.
	ix.Put(nil, Loc{a, 2})
	if l, ok := ix.Get([]byte{}); !ok || l != (Loc{a, 2}) {
		t.Fatal("empty key")
	}
	if ix.Len() != 2 {
		t.Fatalf("Len = %d", ix.Len())
	}
	if l, ok := ix.Delete([]byte("k")); !ok || l != (Loc{b, 7}) {
		t.Fatal("Delete")
	}
	if _, ok := ix.Delete([]byte("k")); ok {
		t.Fatal("second Delete")
	}
	if n := ix.DropFile(a); n != 1 || ix.Len() != 0 || ix.FilePath(a) != "" {
		t.Fatal("DropFile")
	}
	if a2 := ix.FileID("a.parquet"); a2 == a {
		t.Fatal("dropped file id reused")
	}
	checkLayout(t, ix)
}

func TestIndexMaxKeyLen(t *testing.T) {
	ix := New()
	f := ix.FileID("f")
	long := bytes.Repeat([]byte{7}, MaxKeyLen)
	ix.Put(long, Loc{f, 1})
	if l, ok := ix.Get(long); !ok || l != (Loc{f, 1}) {
		t.Fatal("MaxKeyLen key lost")
	}
	tooLong := append(long, 7)
	if _, ok := ix.Get(tooLong); ok {
		t.Fatal("Get of an over-long key found something")
	}
	mustPanic(t, "Put of an over-long key", func() { ix.Put(tooLong, Loc{f, 1}) })
	checkLayout(t, ix)
}

func TestIndexMisuse(t *testing.T) {
	ix := New()
	f := ix.FileID("f")
	ix.Put([]byte("a"), Loc{f, 0})
	ix.Put([]byte("b"), Loc{f, 1})
	mustPanic(t, "Put with unknown file", func() { ix.Put([]byte("c"), Loc{99, 0}) })
	mustPanic(t, "Put inside Range", func() {
		ix.Range(func([]byte, Loc) bool { ix.Put([]byte("c"), Loc{f, 2}); return true })
	})
	mustPanic(t, "Delete inside Remap", func() {
		ix.Remap(func(l Loc) (Loc, bool) { ix.Delete([]byte("a")); return l, true })
	})
	mustPanic(t, "Remap to unknown file", func() {
		ix.Remap(func(l Loc) (Loc, bool) { return Loc{File: 42}, true })
	})
	// The index is usable after the panics.
	ix.Put([]byte("c"), Loc{f, 2})
	n := 0
	ix.Range(func([]byte, Loc) bool { n++; return false })
	if n != 1 {
		t.Fatalf("Range did not stop: %d calls", n)
	}
	if ix.Len() != 3 {
		t.Fatalf("Len = %d", ix.Len())
	}
	checkLayout(t, ix)
}

func mustPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	fn()
}

// TestIndexRangeKeysAreSafe checks that appending to a key Range yields
// cannot overwrite the next key in the arena.
func TestIndexRangeKeysAreSafe(t *testing.T) {
	ix := newIndex(mix64, 8)
	f := ix.FileID("f")
	var want []string
	for i := range 100 {
		k := fmt.Appendf(nil, "key-%d", i)
		ix.Put(k, Loc{f, uint32(i)})
		want = append(want, string(k))
	}
	ix.Range(func(k []byte, _ Loc) bool {
		_ = append(k, "XXXXXXXX"...)
		return true
	})
	var got []string
	ix.Range(func(k []byte, _ Loc) bool { got = append(got, string(k)); return true })
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatal("keys changed by appending to a Range key")
	}
}

// TestIndexMemoryAccounting checks that MemoryBytes stays within the 48
// bytes per key target for 8-byte keys through several waves of segment
// splits, from 10000 keys on (below that, fixed costs dominate). Heap
// measurements are in BenchmarkIndexScale.
func TestIndexMemoryAccounting(t *testing.T) {
	ix := newIndex(mix64, defaultSegSlots) // deterministic split points
	f := ix.FileID("f")
	var k [8]byte
	worst := 0.0
	for i := range 300_000 {
		key8(k[:], i)
		ix.Put(k[:], Loc{f, uint32(i)})
		if n := i + 1; n >= 10000 && n%500 == 0 {
			per := float64(ix.MemoryBytes()) / float64(n)
			worst = max(worst, per)
			if per > targetBytesPerKey {
				t.Fatalf("%d keys: MemoryBytes %.1f bytes per key, target %d", n, per, targetBytesPerKey)
			}
		}
	}
	t.Logf("at most %.1f accounted bytes per 8-byte key", worst)
}

// FuzzIndexOps decodes bytes into a sequence of index operations and checks
// each against a map model, then the whole layout.
func FuzzIndexOps(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{2, 0, 0, 1, 0, 0, 1, 1, 0, 1, 2, 4, 1, 2, 5, 0, 6, 0, 1, 2, 3})
	f.Add(bytes.Repeat([]byte{3, 1, 0, 7, 0}, 60))
	f.Add(bytes.Repeat([]byte{1, 2, 9, 0, 1, 2, 4, 5, 6}, 50))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		th := testHashes[int(data[0])%len(testHashes)]
		h := newHarness(t, th.fn, 8<<(data[1]%4))
		if data[1]&4 != 0 {
			h.makeVersioned()
		}
		data = data[2:]
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		key := func() []byte {
			b := next()
			k := make([]byte, b%12)
			for i := range k {
				k[i] = b>>4 + byte(i&1)
			}
			return k
		}
		for len(data) > 0 {
			switch next() % 8 {
			case 0, 1, 2:
				k := key()
				h.put(k, Loc{File: h.file(uint64(next())), Pos: uint32(next())})
			case 3:
				h.get(key())
			case 4:
				h.del(key())
			case 5:
				if len(h.live) > 1 {
					h.dropFile(h.file(uint64(next())))
				}
			case 6:
				src := h.file(uint64(next()))
				dst := src
				if p := next(); p&1 == 1 {
					dst = h.newFile()
				}
				h.remap(src, dst, uint32(next()%4), uint32(next()%3))
			case 7:
				h.newFile()
			}
		}
		h.check()
	})
}
