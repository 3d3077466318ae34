package upsert

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"slices"

	"github.com/google/uuid"
	"go.etcd.io/bbolt"
)

// Spilling: a key index larger than its memory budget.
//
// Spilled keeps an Index (the memory tier) under a budget in bytes. When
// the Index outgrows it, the keys of the oldest files (by the order the
// index learned of them, which is commit order) are moved to a bbolt file,
// half of the memory tier at a time, sorted by key and written in one
// transaction. A key lives in exactly one tier. A Get or Put looks in
// memory first; on a miss it asks a Bloom filter over the file's keys (10
// to 20 bits per key, seven probes: at most about 1% false positives; it
// is rebuilt from the file when it has taken as many keys as it was sized
// for), and only if the filter says maybe does it read the file. A key found in the file moves
// back to memory (it is being written, so it is hot again); its old entry
// is remembered in a small set (gone) and deleted from the file in one
// sorted batch when the set reaches 64k keys or before the file is
// scanned or written.
//
// The cost falls where late data is: a row whose key is new (most rows of
// most keyed tables) costs a filter probe, a row updating a key in memory
// costs nothing more, and a row updating a key on disk costs a B+tree
// lookup (a few microseconds from the page cache; a random read from the
// device when the file is larger than the page cache). A random bbolt
// write costs about 17 µs, which is why the file is written only in
// sorted batches.
//
// The file is not a persisted copy: it holds what the memory tier could
// not, no more durable than memory. It is written without fsync, lives in
// the node's data directory, and is removed by Close; a writer that starts
// rebuilds its index from the table as it always does (a leftover file of
// a killed process is removed by RemoveSpillFiles). What the index cannot
// afford to lose lives in the table.
//
// A read or write of the file that fails (a full disk, an I/O error) makes
// the index unreliable, because a key it failed to find may exist: Err
// reports the first such error, and the resolver then refuses the commit
// and rebuilds its index.

// spillPrefix and spillSuffix name a Spilled's file in its directory.
const (
	spillPrefix = "keys-"
	spillSuffix = ".bolt"
	// spillCheckEvery is how many inserts into the memory tier pass
	// between two checks of its size, at most: one per 64 KiB of budget,
	// so the tier overshoots the budget by a thousandth at most.
	spillCheckEvery = 1024
	// goneFlush is how many removed keys are batched before their entries
	// are deleted from the file.
	goneFlush = 1 << 16
)

var spillBucket = []byte("keys")

// SpillStats counts what a Spilled did.
type SpillStats struct {
	// Spills is how many times the memory tier was halved; SpilledKeys
	// the keys moved to the file in all of them.
	Spills, SpilledKeys int64
	// DiskKeys is the keys in the file now; FileBytes the file's size.
	DiskKeys  int
	FileBytes int64
	// DiskReads counts lookups that read the file (the filter said
	// maybe); DiskHits those that found the key.
	DiskReads, DiskHits int64
}

// Spilled is a key index that keeps at most about budget bytes in memory
// and the rest in a file; see the essay above. Like Index it belongs to one
// goroutine.
type Spilled struct {
	mem    *Index
	budget int64
	db     *bbolt.DB
	path   string
	vlen   int

	disk      int            // keys in the file, not counting gone
	diskFiles map[uint32]int // keys in the file by file id
	gone      map[string]struct{}
	goneBytes int64 // MemoryBytes' estimate of gone
	bloom     bloom
	// cache holds what Prefetch read from the file (nil: absent), kept
	// up to date by spills and deletes, dropped by DropFile and Remap.
	cache   map[string][]byte
	inserts int // since the last size check
	every   int // inserts between two size checks
	err     error
	stats   SpillStats
}

// NewSpilled returns an empty index (versioned or not) that keeps about
// budget bytes in memory and spills the rest to a new file in dir (the
// system's temporary directory if dir is "").
func NewSpilled(dir string, budget int64, versioned bool) (*Spilled, error) {
	if budget <= 0 {
		return nil, fmt.Errorf("upsert: a spilled index needs a positive memory budget, got %d", budget)
	}
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("upsert: key index directory: %w", err)
	}
	path := filepath.Join(dir, spillPrefix+uuid.NewString()+spillSuffix)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{NoSync: true, NoFreelistSync: true, NoGrowSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("upsert: key index file: %w", err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket(spillBucket)
		return err
	}); err != nil {
		db.Close()
		os.Remove(path)
		return nil, fmt.Errorf("upsert: key index file: %w", err)
	}
	s := &Spilled{mem: New(), budget: budget, db: db, path: path, diskFiles: map[uint32]int{}, gone: map[string]struct{}{},
		every: int(min(max(budget>>16, 1), spillCheckEvery))}
	if versioned {
		s.mem = NewVersioned()
		s.vlen = 8
	}
	s.bloom = newBloom(0)
	return s, nil
}

// RemoveSpillFiles removes the files Spilled indexes left in dir: those of
// a process that was killed. Call it before any Spilled of dir is made.
func RemoveSpillFiles(dir string) error {
	m, err := filepath.Glob(filepath.Join(dir, spillPrefix+"*"+spillSuffix))
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range m {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close closes and removes the file, and lets go of the memory.
func (s *Spilled) Close() error {
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	s.mem, s.bloom, s.cache, s.gone, s.diskFiles, s.disk = New(), newBloom(0), nil, nil, nil, 0
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// Err returns the first error reading or writing the file, after which the
// index must not be trusted.
func (s *Spilled) Err() error { return s.err }

func (s *Spilled) fail(err error) {
	if s.err == nil && err != nil {
		s.err = fmt.Errorf("upsert: key index file %s: %w", s.path, err)
	}
}

// Stats returns what the index has spilled and read back.
func (s *Spilled) Stats() SpillStats {
	st := s.stats
	st.DiskKeys = s.disk
	if s.db != nil {
		if fi, err := os.Stat(s.path); err == nil {
			st.FileBytes = fi.Size()
		}
	}
	return st
}

func (s *Spilled) Versioned() bool           { return s.vlen == 8 }
func (s *Spilled) Len() int                  { return s.mem.Len() + s.disk }
func (s *Spilled) FileID(path string) uint32 { return s.mem.FileID(path) }
func (s *Spilled) FilePath(id uint32) string { return s.mem.FilePath(id) }
func (s *Spilled) FileKeys(id uint32) int    { return s.mem.FileKeys(id) + s.diskFiles[id] }

// MemoryBytes is the memory tier's bytes, the filter's, and an estimate of
// the removed keys waiting to be deleted from the file.
func (s *Spilled) MemoryBytes() int64 {
	return s.mem.MemoryBytes() + int64(len(s.bloom.bits))*8 + s.goneBytes
}

// Get returns the location of key's current row.
func (s *Spilled) Get(key []byte) (Loc, bool) {
	if loc, ok := s.mem.Get(key); ok {
		return loc, true
	}
	loc, _, ok := s.read(key)
	return loc, ok
}

// GetVersion is Get for a versioned index.
func (s *Spilled) GetVersion(key []byte) (Loc, int64, bool) {
	if loc, v, ok := s.mem.GetVersion(key); ok {
		return loc, v, true
	}
	return s.read(key)
}

// Put sets key's location and returns the previous one.
func (s *Spilled) Put(key []byte, loc Loc) (Loc, bool) {
	if old, had := s.mem.Put(key, loc); had {
		return old, true
	}
	// The file's entry is taken before a spill can write the new one.
	old, _, had := s.take(key)
	s.inserted()
	return old, had
}

// PutVersion is Put for a versioned index.
func (s *Spilled) PutVersion(key []byte, loc Loc, v int64) (Loc, int64, bool) {
	if old, ov, had := s.mem.PutVersion(key, loc, v); had {
		return old, ov, true
	}
	old, ov, had := s.take(key)
	s.inserted()
	return old, ov, had
}

// Delete removes key and returns its location.
func (s *Spilled) Delete(key []byte) (Loc, bool) {
	if loc, had := s.mem.Delete(key); had {
		return loc, true
	}
	loc, _, had := s.take(key)
	return loc, had
}

// read looks key up in the file.
func (s *Spilled) read(key []byte) (loc Loc, v int64, ok bool) {
	if s.disk == 0 || s.err != nil || !s.bloom.has(key) {
		return Loc{}, 0, false
	}
	if _, g := s.gone[string(key)]; g {
		return Loc{}, 0, false
	}
	if val, hit := s.cache[string(key)]; hit {
		if val == nil {
			return Loc{}, 0, false
		}
		s.stats.DiskHits++
		loc, v, ok = decodeSpilled(val)
		return loc, v, ok
	}
	s.stats.DiskReads++
	err := s.db.View(func(tx *bbolt.Tx) error {
		val := tx.Bucket(spillBucket).Get(key)
		if val == nil {
			return nil
		}
		loc, v, ok = decodeSpilled(val)
		return nil
	})
	if err != nil {
		s.fail(err)
		return Loc{}, 0, false
	}
	if ok {
		s.stats.DiskHits++
	}
	return loc, v, ok
}

// Prefetch reads the entries of those of keys that may be in the file, in
// key order and one read transaction, for the Gets and Puts that follow:
// a commit's keys cost a pass over the file's B+tree instead of a
// transaction each. Prefetch(nil) drops what the last call read.
func (s *Spilled) Prefetch(keys [][]byte) {
	s.cache = nil
	if len(keys) == 0 || s.disk == 0 || s.err != nil {
		return
	}
	var want []string
	for _, k := range keys {
		if !s.bloom.has(k) {
			continue
		}
		if _, g := s.gone[string(k)]; g {
			continue
		}
		if _, in := s.mem.Get(k); in {
			continue
		}
		want = append(want, string(k))
	}
	if len(want) == 0 {
		return
	}
	slices.Sort(want)
	want = slices.Compact(want)
	cache := make(map[string][]byte, len(want))
	s.stats.DiskReads += int64(len(want))
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(spillBucket).Cursor()
		for _, k := range want {
			// Keys ascend: seek forward from the cursor's page.
			fk, v := c.Seek([]byte(k))
			if fk != nil && string(fk) == k {
				cache[k] = slices.Clone(v)
			} else {
				cache[k] = nil
			}
		}
		return nil
	})
	if err != nil {
		s.fail(err)
		return
	}
	s.cache = cache
}

// take removes key from the file, returning its entry.
func (s *Spilled) take(key []byte) (Loc, int64, bool) {
	loc, v, ok := s.read(key)
	if !ok {
		return Loc{}, 0, false
	}
	s.gone[string(key)] = struct{}{}
	s.goneBytes += int64(len(key)) + 48
	s.disk--
	s.decFile(loc.File)
	if len(s.gone) >= goneFlush {
		s.flushGone()
	}
	return loc, v, true
}

func (s *Spilled) decFile(id uint32) {
	if s.diskFiles[id]--; s.diskFiles[id] <= 0 {
		delete(s.diskFiles, id)
	}
}

// flushGone deletes the removed keys' entries from the file.
func (s *Spilled) flushGone() {
	if len(s.gone) == 0 || s.err != nil {
		return
	}
	keys := make([]string, 0, len(s.gone))
	for k := range s.gone {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, ok := s.cache[k]; ok {
			s.cache[k] = nil
		}
	}
	s.fail(s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(spillBucket)
		for _, k := range keys {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	}))
	clear(s.gone)
	s.goneBytes = 0
}

// inserted counts a key added to the memory tier and spills when the tier
// has outgrown the budget.
func (s *Spilled) inserted() {
	if s.inserts++; s.inserts < s.every {
		return
	}
	s.inserts = 0
	if s.mem.MemoryBytes() > s.budget {
		s.spill()
	}
}

type spilledEntry struct {
	off, n int
	loc    Loc
	v      uint64
}

// spill moves about half of the memory tier's keys, those of its oldest
// files, to the file.
func (s *Spilled) spill() {
	if s.err != nil {
		return
	}
	target := s.mem.Len() / 2
	if target == 0 {
		return
	}
	pick := make([]bool, len(s.mem.files))
	for id, acc := 0, 0; id < len(s.mem.files) && acc < target; id++ {
		if k := int(s.mem.files[id].keys); k > 0 {
			pick[id] = true
			acc += k
		}
	}
	var buf []byte
	var ents []spilledEntry
	// bbolt takes keys of 1 to MaxKeySize (32 KiB) bytes; the empty key
	// (which KeyEncoder never makes) and longer ones stay in memory.
	fits := func(k []byte) bool { return len(k) > 0 && len(k) <= bbolt.MaxKeySize }
	s.mem.Extract(func(k []byte, l Loc) bool { return fits(k) && pick[l.File] }, func(key []byte, loc Loc, v uint64) {
		ents = append(ents, spilledEntry{off: len(buf), n: len(key), loc: loc, v: v})
		buf = append(buf, key...)
	})
	key := func(e spilledEntry) []byte { return buf[e.off : e.off+e.n] }
	slices.SortFunc(ents, func(a, b spilledEntry) int { return bytes.Compare(key(a), key(b)) })
	s.flushGone()
	// bbolt keeps the key and value slices until the transaction ends.
	w := 8 + s.vlen
	vals := make([]byte, len(ents)*w)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(spillBucket)
		for i, e := range ents {
			val := vals[i*w : (i+1)*w : (i+1)*w]
			encodeSpilled(val, e.loc, e.v, s.vlen)
			if err := b.Put(key(e), val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.fail(err)
		return
	}
	for i, e := range ents {
		s.diskFiles[e.loc.File]++
		if _, ok := s.cache[string(key(e))]; ok {
			s.cache[string(key(e))] = vals[i*w : (i+1)*w : (i+1)*w]
		}
	}
	s.disk += len(ents)
	s.stats.Spills++
	s.stats.SpilledKeys += int64(len(ents))
	if s.disk > s.bloom.capacity || s.bloom.added+len(ents) > s.bloom.capacity {
		s.rebuildBloom()
		return
	}
	for _, e := range ents {
		s.bloom.add(key(e))
	}
}

// rebuildBloom sizes the filter for twice the file's keys and fills it
// from the file, forgetting the keys that have left it. Between two
// rebuilds the filter holds at most its capacity in keys (those that left
// the file included), so it keeps at least 10 bits per key.
func (s *Spilled) rebuildBloom() {
	s.flushGone()
	s.bloom = newBloom(2 * s.disk)
	s.fail(s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(spillBucket).ForEach(func(k, _ []byte) error {
			s.bloom.add(k)
			return nil
		})
	}))
}

// DropFile removes every key whose row lives in file id and forgets the
// file. Keys of the file in the file cost a scan of it; a compaction has
// normally moved them all (Rewritten) before it drops the file.
func (s *Spilled) DropFile(id uint32) int {
	n := 0
	if s.diskFiles[id] > 0 && s.err == nil {
		s.flushGone()
		s.cache = nil
		var drop [][]byte
		s.fail(s.db.View(func(tx *bbolt.Tx) error {
			return tx.Bucket(spillBucket).ForEach(func(k, v []byte) error {
				if loc, _, _ := decodeSpilled(v); loc.File == id {
					drop = append(drop, slices.Clone(k))
				}
				return nil
			})
		}))
		s.fail(s.db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(spillBucket)
			for _, k := range drop {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		}))
		n = len(drop)
		s.disk -= n
		delete(s.diskFiles, id)
	}
	return n + s.mem.DropFile(id)
}

// Remap passes every key's location through fn, in both tiers.
func (s *Spilled) Remap(fn func(Loc) (Loc, bool)) {
	s.mem.Remap(fn)
	if s.disk == 0 || s.err != nil {
		return
	}
	s.flushGone()
	s.cache = nil
	type change struct {
		key  []byte
		val  []byte // nil: delete
		from Loc
		to   Loc
	}
	var changes []change
	s.fail(s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(spillBucket).ForEach(func(k, v []byte) error {
			loc, ver, _ := decodeSpilled(v)
			nl, keep := fn(loc)
			switch {
			case !keep:
				changes = append(changes, change{key: slices.Clone(k), from: loc})
			case nl != loc:
				s.mem.checkFile(nl.File)
				val := make([]byte, 8+s.vlen)
				encodeSpilled(val, nl, uint64(ver), s.vlen)
				changes = append(changes, change{key: slices.Clone(k), val: val, from: loc, to: nl})
			}
			return nil
		})
	}))
	s.fail(s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(spillBucket)
		for _, c := range changes {
			s.decFile(c.from.File)
			if c.val == nil {
				s.disk--
				if err := b.Delete(c.key); err != nil {
					return err
				}
				continue
			}
			s.diskFiles[c.to.File]++
			if err := b.Put(c.key, c.val); err != nil {
				return err
			}
		}
		return nil
	}))
}

// Range calls fn for every key until fn returns false: the memory tier's
// keys, then the file's. fn must not modify the index.
func (s *Spilled) Range(fn func(key []byte, loc Loc) bool) {
	more := true
	s.mem.Range(func(k []byte, l Loc) bool {
		more = fn(k, l)
		return more
	})
	if !more || s.disk == 0 || s.err != nil {
		return
	}
	s.flushGone()
	stop := errors.New("stop")
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(spillBucket).ForEach(func(k, v []byte) error {
			loc, _, _ := decodeSpilled(v)
			if !fn(k, loc) {
				return stop
			}
			return nil
		})
	})
	if err != stop {
		s.fail(err)
	}
}

func encodeSpilled(b []byte, loc Loc, v uint64, vlen int) {
	binary.LittleEndian.PutUint32(b, loc.File)
	binary.LittleEndian.PutUint32(b[4:], loc.Pos)
	if vlen > 0 {
		binary.LittleEndian.PutUint64(b[8:], v)
	}
}

func decodeSpilled(b []byte) (Loc, int64, bool) {
	if len(b) < 8 {
		return Loc{}, 0, false
	}
	loc := Loc{File: binary.LittleEndian.Uint32(b), Pos: binary.LittleEndian.Uint32(b[4:])}
	var v int64
	if len(b) >= 16 {
		v = int64(binary.LittleEndian.Uint64(b[8:]))
	}
	return loc, v, true
}

// bloom is a Bloom filter with 10 bits per key of its capacity and seven
// probes by double hashing.
type bloom struct {
	bits     []uint64
	m        uint64
	capacity int
	added    int
	seed     maphash.Seed
}

const bloomProbes = 7

func newBloom(capacity int) bloom {
	capacity = max(capacity, 1<<16)
	words := (capacity*10 + 63) / 64
	return bloom{bits: make([]uint64, words), m: uint64(words) * 64, capacity: capacity, seed: maphash.MakeSeed()}
}

func (b *bloom) add(key []byte) {
	h := maphash.Bytes(b.seed, key)
	step := h>>33 | 1
	for i := uint64(0); i < bloomProbes; i++ {
		p := (h + i*step) % b.m
		b.bits[p/64] |= 1 << (p % 64)
	}
	b.added++
}

func (b *bloom) has(key []byte) bool {
	h := maphash.Bytes(b.seed, key)
	step := h>>33 | 1
	for i := uint64(0); i < bloomProbes; i++ {
		p := (h + i*step) % b.m
		if b.bits[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}
