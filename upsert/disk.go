package upsert

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DiskStore is a key index kept in a bbolt file instead of the heap: the
// key set can outgrow memory (the operating system's page cache holds the
// hot part of the file), and it survives a restart, tagged with the
// snapshot it reflects.
//
// It has Index's methods, with the same meaning, and a transaction around
// them: every change since the last Commit is in one bbolt write
// transaction, which Commit makes durable together with the snapshot id
// the index then reflects, and Rollback discards. So a resolver that
// resolves a commit, then learns that it did not land, rolls back instead
// of rebuilding; and a writer that starts on a table whose head is the
// stored snapshot (Snapshot) uses the file as it is.
//
// Layout: bucket "keys" maps each encoded key to its location (file id and
// position, 8 bytes) and, for a versioned store, its version (8 more);
// bucket "files" maps a file id (4 bytes, big-endian) to its path and the
// number of keys whose row lives there; bucket "meta" holds the snapshot
// id, the key count and the next file id. The file table is also kept in
// memory (a few bytes per data file, not per key), so FileID, FilePath and
// FileKeys never read the file.
//
// Keys are limited to bbolt's 32768 bytes (MaxDiskKeyLen); Put panics on a
// longer one, as Index does beyond MaxKeyLen.
type DiskStore struct {
	db        *bolt.DB
	versioned bool
	// tx is the open write transaction, begun by the first change.
	tx *bolt.Tx

	// The state as of the last Commit (or open) and as changed since.
	committed, cur storeState
}

// storeState is what the store keeps in memory besides the keys.
type storeState struct {
	n        int
	snapshot int64
	nextFile uint32
	files    map[uint32]*diskFile
	ids      map[string]uint32
}

type diskFile struct {
	path string
	keys int
}

// MaxDiskKeyLen is the longest key a DiskStore holds.
const MaxDiskKeyLen = bolt.MaxKeySize

var (
	bucketKeys  = []byte("keys")
	bucketFiles = []byte("files")
	bucketMeta  = []byte("meta")
	metaState   = []byte("state")
	metaKind    = []byte("kind")
)

// OpenDiskStore opens (or creates) the store in the file at path. A
// versioned store keeps a version with every key (PutVersion). An existing
// file made for the other kind is an error.
func OpenDiskStore(path string, versioned bool) (*DiskStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("upsert: open the key index file %s: %w", path, err)
	}
	s := &DiskStore{db: db, versioned: versioned}
	kind := []byte{0}
	if versioned {
		kind[0] = 1
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKeys, bucketFiles, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if k := meta.Get(metaKind); k == nil {
			if err := meta.Put(metaKind, kind); err != nil {
				return err
			}
		} else if k[0] != kind[0] {
			return fmt.Errorf("the file holds a key index made %s versions", map[bool]string{true: "with", false: "without"}[k[0] == 1])
		}
		return nil
	})
	if err == nil {
		err = s.load()
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("upsert: key index file %s: %w", path, err)
	}
	return s, nil
}

// load reads the committed state.
func (s *DiskStore) load() error {
	st := storeState{files: map[uint32]*diskFile{}, ids: map[string]uint32{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(metaState); v != nil {
			if len(v) != 20 {
				return errors.New("malformed state record")
			}
			st.snapshot = int64(binary.BigEndian.Uint64(v))
			st.n = int(binary.BigEndian.Uint64(v[8:]))
			st.nextFile = binary.BigEndian.Uint32(v[16:])
		}
		return tx.Bucket(bucketFiles).ForEach(func(k, v []byte) error {
			if len(k) != 4 || len(v) < 8 {
				return errors.New("malformed file record")
			}
			id := binary.BigEndian.Uint32(k)
			f := &diskFile{keys: int(binary.BigEndian.Uint64(v)), path: string(v[8:])}
			st.files[id] = f
			st.ids[f.path] = id
			return nil
		})
	})
	if err != nil {
		return err
	}
	s.committed = st
	s.cur = st.clone()
	return nil
}

func (st storeState) clone() storeState {
	out := st
	out.files = make(map[uint32]*diskFile, len(st.files))
	out.ids = make(map[string]uint32, len(st.ids))
	for id, f := range st.files {
		c := *f
		out.files[id] = &c
		out.ids[f.path] = id
	}
	return out
}

// Close closes the file, discarding uncommitted changes.
func (s *DiskStore) Close() error {
	s.Rollback()
	return s.db.Close()
}

// Path is the store's file.
func (s *DiskStore) Path() string { return s.db.Path() }

// Snapshot returns the snapshot id stored by the last Commit (0: none).
func (s *DiskStore) Snapshot() int64 { return s.committed.snapshot }

// write returns the open write transaction, beginning one if needed.
func (s *DiskStore) write() *bolt.Tx {
	if s.tx == nil {
		tx, err := s.db.Begin(true)
		if err != nil {
			panic(fmt.Sprintf("upsert: key index file %s: %v", s.db.Path(), err))
		}
		s.tx = tx
	}
	return s.tx
}

// Commit makes every change since the last Commit durable, with snapshot
// as the snapshot the index reflects.
func (s *DiskStore) Commit(snapshot int64) error {
	tx := s.write()
	s.cur.snapshot = snapshot
	files := tx.Bucket(bucketFiles)
	// The file table is small: written as it changed.
	var k [4]byte
	for id := range s.committed.files {
		if _, ok := s.cur.files[id]; !ok {
			binary.BigEndian.PutUint32(k[:], id)
			if err := files.Delete(k[:]); err != nil {
				return s.fail(err)
			}
		}
	}
	for id, f := range s.cur.files {
		if old, ok := s.committed.files[id]; ok && *old == *f {
			continue
		}
		binary.BigEndian.PutUint32(k[:], id)
		v := make([]byte, 8+len(f.path))
		binary.BigEndian.PutUint64(v, uint64(f.keys))
		copy(v[8:], f.path)
		if err := files.Put(k[:], v); err != nil {
			return s.fail(err)
		}
	}
	var st [20]byte
	binary.BigEndian.PutUint64(st[:], uint64(snapshot))
	binary.BigEndian.PutUint64(st[8:], uint64(s.cur.n))
	binary.BigEndian.PutUint32(st[16:], s.cur.nextFile)
	if err := tx.Bucket(bucketMeta).Put(metaState, st[:]); err != nil {
		return s.fail(err)
	}
	s.tx = nil
	if err := tx.Commit(); err != nil {
		s.cur = s.committed.clone()
		return fmt.Errorf("upsert: commit the key index file %s: %w", s.db.Path(), err)
	}
	s.committed = s.cur.clone()
	return nil
}

// fail rolls back after a failed Commit.
func (s *DiskStore) fail(err error) error {
	s.Rollback()
	return fmt.Errorf("upsert: commit the key index file %s: %w", s.db.Path(), err)
}

// Rollback discards every change since the last Commit.
func (s *DiskStore) Rollback() {
	if s.tx != nil {
		_ = s.tx.Rollback()
		s.tx = nil
	}
	// File ids handed out since are not handed out again.
	next := s.cur.nextFile
	s.cur = s.committed.clone()
	s.cur.nextFile = next
}

// Clear removes every key and file, as part of the open transaction.
func (s *DiskStore) Clear() {
	tx := s.write()
	for _, b := range [][]byte{bucketKeys, bucketFiles} {
		if err := tx.DeleteBucket(b); err != nil {
			panic(fmt.Sprintf("upsert: key index file %s: %v", s.db.Path(), err))
		}
		if _, err := tx.CreateBucket(b); err != nil {
			panic(fmt.Sprintf("upsert: key index file %s: %v", s.db.Path(), err))
		}
	}
	s.cur = storeState{files: map[uint32]*diskFile{}, ids: map[string]uint32{}, nextFile: s.cur.nextFile}
}

// Len returns the number of keys.
func (s *DiskStore) Len() int { return s.cur.n }

// MemoryBytes is what the store holds on the heap: its file table. The
// keys are in the file (and the page cache).
func (s *DiskStore) MemoryBytes() int64 {
	var b int64
	for _, f := range s.cur.files {
		b += int64(len(f.path)) + 48 + 48
	}
	return b
}

// FileID interns path and returns its id.
func (s *DiskStore) FileID(path string) uint32 {
	if id, ok := s.cur.ids[path]; ok {
		return id
	}
	if s.cur.nextFile == math.MaxUint32 {
		panic("upsert: file ids exhausted")
	}
	id := s.cur.nextFile
	s.cur.nextFile++
	s.cur.files[id] = &diskFile{path: path}
	s.cur.ids[path] = id
	return id
}

// FilePath returns the path of file id, or "" if id is unknown or dropped.
func (s *DiskStore) FilePath(id uint32) string {
	if f, ok := s.cur.files[id]; ok {
		return f.path
	}
	return ""
}

// FileKeys returns how many keys have their current row in file id.
func (s *DiskStore) FileKeys(id uint32) int {
	if f, ok := s.cur.files[id]; ok {
		return f.keys
	}
	return 0
}

// value layout: file id, position (4 bytes each, little-endian), then the
// version for a versioned store.
func (s *DiskStore) decode(v []byte) (Loc, int64) {
	loc := Loc{File: binary.LittleEndian.Uint32(v), Pos: binary.LittleEndian.Uint32(v[4:])}
	if s.versioned && len(v) >= 16 {
		return loc, int64(binary.LittleEndian.Uint64(v[8:]))
	}
	return loc, NoVersion
}

func (s *DiskStore) bucket() *bolt.Bucket {
	if s.tx != nil {
		return s.tx.Bucket(bucketKeys)
	}
	return nil
}

// lookup reads key: from the open transaction, or a read of its own.
func (s *DiskStore) lookup(key []byte) (Loc, int64, bool) {
	var loc Loc
	var v int64
	found := false
	read := func(b *bolt.Bucket) {
		if val := b.Get(key); val != nil {
			loc, v = s.decode(val)
			found = true
		}
	}
	if b := s.bucket(); b != nil {
		read(b)
		return loc, v, found
	}
	_ = s.db.View(func(tx *bolt.Tx) error {
		read(tx.Bucket(bucketKeys))
		return nil
	})
	return loc, v, found
}

// Get returns the location of key's current row.
func (s *DiskStore) Get(key []byte) (Loc, bool) {
	loc, _, ok := s.lookup(key)
	return loc, ok
}

// GetVersion is Get for a versioned store: the location and version.
func (s *DiskStore) GetVersion(key []byte) (Loc, int64, bool) {
	if !s.versioned {
		panic("upsert: GetVersion on a key index made without versions")
	}
	return s.lookup(key)
}

// Put sets key's location and returns the previous one, if any.
func (s *DiskStore) Put(key []byte, loc Loc) (old Loc, had bool) {
	old, _, had = s.put(key, loc, NoVersion)
	return old, had
}

// PutVersion is Put for a versioned store.
func (s *DiskStore) PutVersion(key []byte, loc Loc, v int64) (old Loc, oldV int64, had bool) {
	if !s.versioned {
		panic("upsert: PutVersion on a key index made without versions")
	}
	return s.put(key, loc, v)
}

func (s *DiskStore) put(key []byte, loc Loc, v int64) (Loc, int64, bool) {
	if len(key) > MaxDiskKeyLen || len(key) == 0 {
		panic(fmt.Sprintf("upsert: a key of %d bytes cannot go into the key index file", len(key)))
	}
	f, ok := s.cur.files[loc.File]
	if !ok {
		panic(fmt.Sprintf("upsert: file id %d is unknown or dropped", loc.File))
	}
	b := s.write().Bucket(bucketKeys)
	var old Loc
	oldV, had := int64(0), false
	if val := b.Get(key); val != nil {
		old, oldV = s.decode(val)
		had = true
	}
	n := 8
	if s.versioned {
		n = 16
	}
	val := make([]byte, n)
	binary.LittleEndian.PutUint32(val, loc.File)
	binary.LittleEndian.PutUint32(val[4:], loc.Pos)
	if s.versioned {
		binary.LittleEndian.PutUint64(val[8:], uint64(v))
	}
	if err := b.Put(key, val); err != nil {
		panic(fmt.Sprintf("upsert: key index file %s: %v", s.db.Path(), err))
	}
	if had {
		if of, ok := s.cur.files[old.File]; ok {
			of.keys--
		}
	} else {
		s.cur.n++
	}
	f.keys++
	return old, oldV, had
}

// Delete removes key and returns the location it had.
func (s *DiskStore) Delete(key []byte) (Loc, bool) {
	if len(key) == 0 || len(key) > MaxDiskKeyLen {
		return Loc{}, false
	}
	b := s.write().Bucket(bucketKeys)
	val := b.Get(key)
	if val == nil {
		return Loc{}, false
	}
	old, _ := s.decode(val)
	if err := b.Delete(key); err != nil {
		panic(fmt.Sprintf("upsert: key index file %s: %v", s.db.Path(), err))
	}
	if f, ok := s.cur.files[old.File]; ok {
		f.keys--
	}
	s.cur.n--
	return old, true
}

// DropFile removes every key whose row lives in file id and forgets the
// file; ids are never reused. It returns the number of keys removed. The
// cost is a pass over the keys unless the file holds none.
func (s *DiskStore) DropFile(id uint32) int {
	f, ok := s.cur.files[id]
	if !ok {
		return 0
	}
	dropped := 0
	if f.keys > 0 {
		b := s.write().Bucket(bucketKeys)
		var doomed [][]byte
		_ = b.ForEach(func(k, v []byte) error {
			if loc, _ := s.decode(v); loc.File == id {
				doomed = append(doomed, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				panic(fmt.Sprintf("upsert: key index file %s: %v", s.db.Path(), err))
			}
		}
		dropped = len(doomed)
		s.cur.n -= dropped
	}
	delete(s.cur.ids, f.path)
	delete(s.cur.files, id)
	return dropped
}

// Range calls fn for every key (in the open transaction's view) until it
// returns false. key is valid only during the call.
func (s *DiskStore) Range(fn func(key []byte, loc Loc) bool) {
	visit := func(b *bolt.Bucket) {
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			loc, _ := s.decode(v)
			if !fn(k, loc) {
				return
			}
		}
	}
	if b := s.bucket(); b != nil {
		visit(b)
		return
	}
	_ = s.db.View(func(tx *bolt.Tx) error {
		visit(tx.Bucket(bucketKeys))
		return nil
	})
}
