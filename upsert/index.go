package upsert

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"unsafe"
)

// Loc is where a key's current row lives: a data file (an id from
// Index.FileID) and the row's zero-based position in that file.
type Loc struct {
	File uint32
	Pos  uint32
}

// MaxKeyLen is the longest key the index holds, in bytes. Put panics on a
// longer key; KeyEncoder.AppendKey refuses to produce one (ErrKeyTooLong).
const MaxKeyLen = 1<<16 - 1

// Store is what the table writer needs from a key index. Index is the
// in-memory implementation; Spilled keeps an Index within a memory budget
// and moves the keys beyond it to a file (spill.go).
type Store interface {
	FileID(path string) uint32
	FilePath(id uint32) string
	FileKeys(id uint32) int
	Put(key []byte, loc Loc) (old Loc, had bool)
	Get(key []byte) (Loc, bool)
	PutVersion(key []byte, loc Loc, v int64) (old Loc, oldV int64, had bool)
	GetVersion(key []byte) (Loc, int64, bool)
	Versioned() bool
	Delete(key []byte) (Loc, bool)
	DropFile(id uint32) int
	Remap(fn func(Loc) (Loc, bool))
	Range(fn func(key []byte, loc Loc) bool)
	Len() int
	MemoryBytes() int64
	// Err is the first error of a store that keeps keys outside memory,
	// after which it must not be trusted.
	Err() error
	Close() error
}

var (
	_ Store = (*Index)(nil)
	_ Store = (*Spilled)(nil)
)

const (
	// Slot tags: the low byte of slot.ref. Live slots carry 2..255, derived
	// from the key's hash.
	tagEmpty = 0
	tagTomb  = 1

	minSegSlots     = 8
	defaultSegSlots = 1 << 14 // 256 KiB of slots: a rebuild or split moves at most 14336 keys
	maxDepth        = 32      // directory bits; beyond this segments only grow

	lenShift = 8
	offShift = 24
	maxOff   = 1<<(64-offShift) - 1
)

// slot is one entry of a segment's open-addressing table: 16 bytes, four to
// a cache line.
//
//	ref bits 0-7    tag: 0 empty, 1 tombstone, 2..255 live (8 bits of the hash)
//	ref bits 8-23   key length
//	ref bits 24-63  key offset in the segment's arena
type slot struct {
	ref uint64
	loc Loc
}

// segment is an open-addressing table with linear probing over its own key
// arena. At most 7/8 of its slots are occupied (live or tombstone), so a
// probe always ends at an empty slot.
type segment struct {
	slots   []slot
	arena   []byte // entries back to back (a key, then vlen value bytes); deleted ones stay as garbage
	vlen    int    // value bytes after each key: 0, or 8 for a versioned index
	mask    uint64
	limit   int   // most occupied slots before the segment must grow
	used    int   // live + tombstones
	live    int   // live keys
	garbage int   // arena bytes no live slot refers to
	depth   uint8 // hash bits (from the top) all its keys share
}

type fileEntry struct {
	path string
	keys uint32 // live keys pointing into the file
	live bool   // false once dropped
}

// Index maps encoded keys to the location of their current row. See the
// package documentation for its layout.
//
// An Index is not safe for concurrent use: the table writer owns it on one
// goroutine. Callbacks passed to Range and Remap must not modify it (it
// panics if they do).
type Index struct {
	dir   []*segment // 1<<depth entries; a segment of depth d fills 1<<(depth-d) of them
	depth uint8
	shift uint // 64-depth: dir index of hash h is h>>shift
	n     int

	seed     maphash.Seed
	hashFn   func([]byte) uint64 // tests inject degenerate hashes; nil: maphash
	segSlots int                 // a segment needing more slots splits instead
	vlen     int                 // 8 for a versioned index (NewVersioned), else 0

	files     []fileEntry
	fileIDs   map[string]uint32
	pathBytes int

	busy int // > 0 inside Range and Remap callbacks
}

// New returns an empty Index.
func New() *Index {
	return newIndex(nil, defaultSegSlots)
}

// NewVersioned returns an empty Index that keeps a version (an int64)
// with every key: PutVersion and GetVersion. It costs 8 bytes more per key.
func NewVersioned() *Index {
	ix := newIndex(nil, defaultSegSlots)
	ix.vlen = 8
	ix.dir[0].vlen = 8
	return ix
}

func newIndex(hash func([]byte) uint64, segSlots int) *Index {
	if segSlots < minSegSlots || segSlots&(segSlots-1) != 0 {
		panic("upsert: segment size must be a power of two >= 8")
	}
	ix := &Index{
		seed:     maphash.MakeSeed(),
		hashFn:   hash,
		segSlots: segSlots,
		fileIDs:  make(map[string]uint32),
		shift:    64,
	}
	ix.dir = []*segment{newSegment(minSegSlots, 0, 0, 0)}
	return ix
}

func newSegment(slots int, arenaCap int, depth uint8, vlen int) *segment {
	return &segment{
		vlen:  vlen,
		slots: make([]slot, slots),
		arena: make([]byte, 0, arenaCap),
		mask:  uint64(slots - 1),
		limit: slots - slots/8,
		depth: depth,
	}
}

// slotsFor is the table size a segment rebuilt with n live keys gets: the
// smallest power of two at least minSegSlots that keeps it at most 3/4 full,
// so at least 1/8 of it is free before it has to grow again.
func slotsFor(n int) int {
	c := minSegSlots
	for n*4 > c*3 {
		c <<= 1
	}
	return c
}

func (ix *Index) hash(key []byte) uint64 {
	if ix.hashFn != nil {
		return ix.hashFn(key)
	}
	return maphash.Bytes(ix.seed, key)
}

// tagOf derives a slot tag (2..255) from bits 32-39 of the hash: bits the
// directory (top) and the slot index (bottom) use last.
func tagOf(h uint64) uint64 {
	t := (h >> 32) & 0xff
	if t < 2 {
		t += 2
	}
	return t
}

func (s *segment) keyAt(ref uint64) []byte {
	off := ref >> offShift
	n := (ref >> lenShift) & 0xffff
	return s.arena[off : off+n : off+n]
}

// valAt returns the value bytes stored after the key of ref.
func (s *segment) valAt(ref uint64) []byte {
	off := ref>>offShift + (ref>>lenShift)&0xffff
	return s.arena[off : off+uint64(s.vlen) : off+uint64(s.vlen)]
}

func (s *segment) equal(ref uint64, key []byte) bool {
	if int((ref>>lenShift)&0xffff) != len(key) {
		return false
	}
	off := ref >> offShift
	return string(s.arena[off:off+uint64(len(key))]) == string(key)
}

// find returns the slot holding key, or -1.
func (s *segment) find(key []byte, h uint64) int {
	tag := tagOf(h)
	i := h & s.mask
	for {
		ref := s.slots[i].ref
		switch ref & 0xff {
		case tagEmpty:
			return -1
		case tag:
			if s.equal(ref, key) {
				return int(i)
			}
		}
		i = (i + 1) & s.mask
	}
}

// fill stores key, its value and loc in slot i, appending key and value
// (vlen bytes; zeros if val is nil) to the arena.
func (s *segment) fill(i int, h uint64, key, val []byte, loc Loc) {
	off := len(s.arena)
	if uint64(off) > maxOff {
		panic("upsert: segment key arena exceeds 1 TiB")
	}
	s.arena = append(s.arena, key...)
	if s.vlen > 0 {
		if val == nil {
			s.arena = append(s.arena, make([]byte, s.vlen)...)
		} else {
			s.arena = append(s.arena, val[:s.vlen]...)
		}
	}
	s.slots[i] = slot{ref: uint64(off)<<offShift | uint64(len(key))<<lenShift | tagOf(h), loc: loc}
}

// place inserts a key known to be absent into a segment without tombstones
// (one being built); the caller has sized it.
func (s *segment) place(h uint64, key, val []byte, loc Loc) {
	i := h & s.mask
	for s.slots[i].ref&0xff != tagEmpty {
		i = (i + 1) & s.mask
	}
	s.fill(int(i), h, key, val, loc)
	s.used++
	s.live++
}

// kill turns live slot i into a tombstone, or into an empty slot when the
// next slot is empty (no probe runs through it), taking preceding
// tombstones with it.
func (s *segment) kill(i int) {
	ref := s.slots[i].ref
	s.garbage += int((ref>>lenShift)&0xffff) + s.vlen
	s.live--
	if s.slots[(uint64(i)+1)&s.mask].ref&0xff != tagEmpty {
		s.slots[i] = slot{ref: tagTomb}
		return
	}
	j := uint64(i)
	for {
		s.slots[j] = slot{}
		s.used--
		j = (j - 1) & s.mask
		if s.slots[j].ref&0xff != tagTomb {
			return
		}
	}
}

// untidy reports whether a segment has enough dead weight (tombstones or
// arena garbage) that rebuilding it pays.
func (s *segment) untidy() bool {
	return s.garbage*2 > len(s.arena) || (s.used-s.live)*4 > len(s.slots)
}

func (ix *Index) mutating() {
	if ix.busy > 0 {
		panic("upsert: Index modified inside a Range or Remap callback")
	}
}

func (ix *Index) segOf(h uint64) *segment {
	return ix.dir[h>>ix.shift]
}

// Len returns the number of keys.
func (ix *Index) Len() int { return ix.n }

// Get returns the location of key's current row.
func (ix *Index) Get(key []byte) (Loc, bool) {
	h := ix.hash(key)
	s := ix.segOf(h)
	if i := s.find(key, h); i >= 0 {
		return s.slots[i].loc, true
	}
	return Loc{}, false
}

// Put sets key's location and returns the previous one, if any: the row an
// upsert has to delete. loc.File must be a live id from FileID.
func (ix *Index) Put(key []byte, loc Loc) (old Loc, had bool) {
	old, _, had = ix.put(key, loc, nil)
	return old, had
}

// PutVersion is Put for a versioned index (NewVersioned): it stores v with
// the key and returns the previous version.
func (ix *Index) PutVersion(key []byte, loc Loc, v int64) (old Loc, oldV int64, had bool) {
	if ix.vlen != 8 {
		panic("upsert: PutVersion on an index made without versions")
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	old, ov, had := ix.put(key, loc, b[:])
	return old, int64(ov), had
}

// GetVersion is Get for a versioned index: the key's location and version.
func (ix *Index) GetVersion(key []byte) (Loc, int64, bool) {
	if ix.vlen != 8 {
		panic("upsert: GetVersion on an index made without versions")
	}
	h := ix.hash(key)
	s := ix.segOf(h)
	if i := s.find(key, h); i >= 0 {
		return s.slots[i].loc, int64(binary.LittleEndian.Uint64(s.valAt(s.slots[i].ref))), true
	}
	return Loc{}, 0, false
}

// put sets key's location and value (nil: zeros) and returns the previous
// location and, for a versioned index, value.
func (ix *Index) put(key []byte, loc Loc, val []byte) (old Loc, oldVal uint64, had bool) {
	ix.mutating()
	if len(key) > MaxKeyLen {
		panic(fmt.Sprintf("upsert: key of %d bytes exceeds MaxKeyLen", len(key)))
	}
	ix.checkFile(loc.File)
	h := ix.hash(key)
	tag := tagOf(h)
	for {
		s := ix.segOf(h)
		i := h & s.mask
		tomb := -1
	probe:
		for {
			sl := &s.slots[i]
			switch sl.ref & 0xff {
			case tagEmpty:
				break probe
			case tagTomb:
				if tomb < 0 {
					tomb = int(i)
				}
			case tag:
				if s.equal(sl.ref, key) {
					old := sl.loc
					sl.loc = loc
					ix.files[old.File].keys--
					ix.files[loc.File].keys++
					if s.vlen > 0 {
						v := s.valAt(sl.ref)
						oldVal = binary.LittleEndian.Uint64(v)
						if val == nil {
							clear(v)
						} else {
							copy(v, val)
						}
					}
					return old, oldVal, true
				}
			}
			i = (i + 1) & s.mask
		}
		switch {
		case tomb >= 0:
			s.fill(tomb, h, key, val, loc)
		case s.used < s.limit:
			s.fill(int(i), h, key, val, loc)
			s.used++
		default:
			ix.grow(s)
			continue
		}
		s.live++
		ix.n++
		ix.files[loc.File].keys++
		return Loc{}, 0, false
	}
}

// Delete removes key and returns its location.
func (ix *Index) Delete(key []byte) (Loc, bool) {
	ix.mutating()
	h := ix.hash(key)
	s := ix.segOf(h)
	i := s.find(key, h)
	if i < 0 {
		return Loc{}, false
	}
	loc := s.slots[i].loc
	s.kill(i)
	ix.n--
	ix.files[loc.File].keys--
	if s.garbage*2 > len(s.arena) {
		ix.rebuild(s)
	}
	return loc, true
}

// Range calls fn for every key until fn returns false, in no particular
// order. key aliases the index's memory: it is valid only during the call
// and must not be modified.
func (ix *Index) Range(fn func(key []byte, loc Loc) bool) {
	ix.busy++
	defer func() { ix.busy-- }()
	for d := 0; d < len(ix.dir); {
		s := ix.dir[d]
		for i := range s.slots {
			sl := &s.slots[i]
			if sl.ref&0xff >= 2 && !fn(s.keyAt(sl.ref), sl.loc) {
				return
			}
		}
		d += 1 << (ix.depth - s.depth)
	}
}

// Remap passes every key's location through fn in one pass: a key moves to
// the returned location, or is removed if fn returns false. Compaction uses
// it to carry keys from the files it rewrote to the files it wrote. fn must
// not use the index; it is called once per key.
func (ix *Index) Remap(fn func(Loc) (Loc, bool)) {
	ix.mutating()
	ix.busy++
	defer func() { ix.busy-- }()
	for d := 0; d < len(ix.dir); {
		s := ix.dir[d]
		for i := range s.slots {
			sl := &s.slots[i]
			if sl.ref&0xff < 2 {
				continue
			}
			old := sl.loc
			loc, keep := fn(old)
			switch {
			case !keep:
				s.kill(i)
				ix.n--
				ix.files[old.File].keys--
			case loc != old:
				ix.checkFile(loc.File)
				sl.loc = loc
				ix.files[old.File].keys--
				ix.files[loc.File].keys++
			}
		}
		if s.untidy() {
			ix.rebuild(s)
		}
		d += 1 << (ix.depth - s.depth)
	}
}

// DropFile removes every key whose row lives in file id and forgets the
// file: its path can be interned again, under a new id; ids are never
// reused. It returns the number of keys removed. The cost is a pass over
// the table unless the file holds no keys.
func (ix *Index) DropFile(id uint32) int {
	ix.mutating()
	if int(id) >= len(ix.files) || !ix.files[id].live {
		return 0
	}
	want := int(ix.files[id].keys)
	dropped := 0
	for d := 0; d < len(ix.dir) && dropped < want; {
		s := ix.dir[d]
		for i := range s.slots {
			sl := &s.slots[i]
			if sl.ref&0xff >= 2 && sl.loc.File == id {
				s.kill(i)
				dropped++
			}
		}
		if s.untidy() {
			ix.rebuild(s)
		}
		d += 1 << (ix.depth - s.depth)
	}
	ix.n -= dropped
	f := &ix.files[id]
	delete(ix.fileIDs, f.path)
	ix.pathBytes -= len(f.path)
	*f = fileEntry{}
	return dropped
}

// FileID interns path and returns its id.
func (ix *Index) FileID(path string) uint32 {
	if id, ok := ix.fileIDs[path]; ok {
		return id
	}
	if len(ix.files) == math.MaxUint32 {
		panic("upsert: file ids exhausted")
	}
	id := uint32(len(ix.files))
	ix.files = append(ix.files, fileEntry{path: path, live: true})
	ix.fileIDs[path] = id
	ix.pathBytes += len(path)
	return id
}

// FilePath returns the path of file id, or "" if id is unknown or dropped.
func (ix *Index) FilePath(id uint32) string {
	if int(id) >= len(ix.files) {
		return ""
	}
	return ix.files[id].path
}

// FileKeys returns how many keys have their current row in file id: the
// file's live rows, as far as the index knows.
func (ix *Index) FileKeys(id uint32) int {
	if int(id) >= len(ix.files) {
		return 0
	}
	return int(ix.files[id].keys)
}

func (ix *Index) checkFile(id uint32) {
	if int(id) >= len(ix.files) || !ix.files[id].live {
		panic(fmt.Sprintf("upsert: file id %d is unknown or dropped", id))
	}
}

// MemoryBytes accounts for the memory the index holds: slot tables, key
// arenas (by capacity), the segment directory, and the file table (the map
// at an estimated 48 bytes per entry).
func (ix *Index) MemoryBytes() int64 {
	const (
		segBytes  = int64(unsafe.Sizeof(segment{}))
		slotBytes = int64(unsafe.Sizeof(slot{}))
		fileBytes = int64(unsafe.Sizeof(fileEntry{}))
		mapEntry  = 48
	)
	b := int64(cap(ix.dir)) * 8
	for d := 0; d < len(ix.dir); {
		s := ix.dir[d]
		b += segBytes + int64(cap(s.slots))*slotBytes + int64(cap(s.arena))
		d += 1 << (ix.depth - s.depth)
	}
	b += int64(cap(ix.files))*fileBytes + int64(ix.pathBytes) + int64(len(ix.fileIDs))*mapEntry
	return b
}

// grow makes room in a full segment: a rebuild (which also clears
// tombstones and arena garbage, and doubles the table when the live keys
// need it), or, once the segment is at its maximum size, a split.
func (ix *Index) grow(s *segment) {
	if slotsFor(s.live+1) <= ix.segSlots || !ix.split(s) {
		ix.rebuild(s)
	}
}

// rebuild rehashes a segment's live keys into a table sized by slotsFor and
// a compacted arena.
func (ix *Index) rebuild(s *segment) {
	liveBytes := len(s.arena) - s.garbage
	ns := newSegment(slotsFor(s.live+1), liveBytes+liveBytes/8, s.depth, s.vlen)
	for i := range s.slots {
		ref := s.slots[i].ref
		if ref&0xff >= 2 {
			k := s.keyAt(ref)
			ns.place(ix.hash(k), k, s.valAt(ref), s.slots[i].loc)
		}
	}
	*s = *ns
}

// split replaces a segment by two of depth+1, dividing its keys by the next
// hash bit, doubling the directory if needed. It refuses (returning false)
// when one half would keep more than 3/4 of the keys: with a sound hash
// that happens only to tiny segments, by chance, and those then grow past
// the maximum size for a while; with a degenerate hash it happens
// every time and the segment keeps growing, which is still correct.
func (ix *Index) split(s *segment) bool {
	if s.depth >= maxDepth {
		return false
	}
	// Two passes over the keys, hashing each twice, rather than holding
	// the hashes: memory is the scarcer resource.
	bit := 63 - uint(s.depth)
	n1, bytes1 := 0, 0
	var prefix uint64 // the top s.depth bits all its keys share
	for i := range s.slots {
		ref := s.slots[i].ref
		if ref&0xff >= 2 {
			h := ix.hash(s.keyAt(ref))
			prefix = h >> (64 - uint(s.depth)) // 0 for depth 0
			if h>>bit&1 == 1 {
				n1++
				bytes1 += int((ref>>lenShift)&0xffff) + s.vlen
			}
		}
	}
	n0, bytes0 := s.live-n1, len(s.arena)-s.garbage-bytes1
	if max(n0, n1)*4 > s.live*3 {
		return false
	}
	if s.depth == ix.depth {
		nd := make([]*segment, 2*len(ix.dir))
		for i, p := range ix.dir {
			nd[2*i], nd[2*i+1] = p, p
		}
		ix.dir = nd
		ix.depth++
		ix.shift = 64 - uint(ix.depth)
	}
	a := newSegment(slotsFor(n0+1), bytes0+bytes0/8, s.depth+1, s.vlen)
	b := newSegment(slotsFor(n1+1), bytes1+bytes1/8, s.depth+1, s.vlen)
	for i := range s.slots {
		ref := s.slots[i].ref
		if ref&0xff < 2 {
			continue
		}
		k := s.keyAt(ref)
		if h := ix.hash(k); h>>bit&1 == 0 {
			a.place(h, k, s.valAt(ref), s.slots[i].loc)
		} else {
			b.place(h, k, s.valAt(ref), s.slots[i].loc)
		}
	}
	// The segment's directory entries are those whose top s.depth bits are
	// its keys' prefix: a contiguous run; the first half goes to a.
	span := 1 << (ix.depth - s.depth)
	start := int(prefix) * span
	for i := start; i < start+span/2; i++ {
		ix.dir[i] = a
	}
	for i := start + span/2; i < start+span; i++ {
		ix.dir[i] = b
	}
	return true
}

// Extract removes every key whose location pick selects and hands it to fn
// with its value (the version of a versioned index, else 0), in one pass.
// Segments that lose keys are rebuilt at the size their remaining keys
// need, so the memory goes back down (Delete alone leaves tombstones). fn
// must not use the index; key is valid only during the call.
func (ix *Index) Extract(pick func(key []byte, loc Loc) bool, fn func(key []byte, loc Loc, val uint64)) int {
	ix.mutating()
	ix.busy++
	defer func() { ix.busy-- }()
	n := 0
	for d := 0; d < len(ix.dir); {
		s := ix.dir[d]
		took := 0
		for i := range s.slots {
			sl := &s.slots[i]
			if sl.ref&0xff < 2 || !pick(s.keyAt(sl.ref), sl.loc) {
				continue
			}
			var v uint64
			if s.vlen > 0 {
				v = binary.LittleEndian.Uint64(s.valAt(sl.ref))
			}
			fn(s.keyAt(sl.ref), sl.loc, v)
			ix.files[sl.loc.File].keys--
			s.kill(i)
			took++
		}
		if took > 0 {
			ix.rebuild(s)
		}
		n += took
		d += 1 << (ix.depth - s.depth)
	}
	ix.n -= n
	return n
}

// Versioned reports whether the index keeps versions (NewVersioned).
func (ix *Index) Versioned() bool { return ix.vlen == 8 }

// Close releases what the index holds; an in-memory Index holds nothing
// but memory. It exists so that Index and Spilled are interchangeable.
func (ix *Index) Close() error { return nil }

// Err returns nil: an in-memory Index cannot fail.
func (ix *Index) Err() error { return nil }
