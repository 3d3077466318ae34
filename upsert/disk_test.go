package upsert

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// diskModel is what a DiskStore must hold: key → (location, version), and
// the files with their key counts.
type diskModel struct {
	keys  map[string]Loc
	vers  map[string]int64
	files map[uint32]string
	n     map[uint32]int
}

func newDiskModel() diskModel {
	return diskModel{keys: map[string]Loc{}, vers: map[string]int64{}, files: map[uint32]string{}, n: map[uint32]int{}}
}

func (m diskModel) clone() diskModel {
	return diskModel{keys: maps.Clone(m.keys), vers: maps.Clone(m.vers), files: maps.Clone(m.files), n: maps.Clone(m.n)}
}

// check compares the store with the model, key by key and file by file.
func (m diskModel) check(t *testing.T, s *DiskStore, when string) {
	t.Helper()
	if s.Len() != len(m.keys) {
		t.Fatalf("%s: Len %d, want %d", when, s.Len(), len(m.keys))
	}
	seen := 0
	s.Range(func(k []byte, loc Loc) bool {
		seen++
		if want, ok := m.keys[string(k)]; !ok || want != loc {
			t.Fatalf("%s: key %q at %v, want %v (present %v)", when, k, loc, want, ok)
		}
		return true
	})
	if seen != len(m.keys) {
		t.Fatalf("%s: Range saw %d keys, want %d", when, seen, len(m.keys))
	}
	for k, want := range m.keys {
		loc, v, ok := s.GetVersion([]byte(k))
		if !ok || loc != want || v != m.vers[k] {
			t.Fatalf("%s: Get %q = %v %d %v, want %v %d", when, k, loc, v, ok, want, m.vers[k])
		}
	}
	for id, path := range m.files {
		if s.FilePath(id) != path || s.FileKeys(id) != m.n[id] {
			t.Fatalf("%s: file %d is %q with %d keys, want %q with %d", when, id, s.FilePath(id), s.FileKeys(id), path, m.n[id])
		}
		if s.FileID(path) != id {
			t.Fatalf("%s: FileID(%q) = %d, want %d", when, path, s.FileID(path), id)
		}
	}
}

// TestDiskStoreAgainstAModel runs random puts, deletes, file drops,
// commits, rollbacks and reopenings against a model: after every step the
// store holds what the model does, a rollback returns to the last commit,
// and a reopened file holds the last commit and its snapshot id.
func TestDiskStoreAgainstAModel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	s, err := OpenDiskStore(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	rng := rand.New(rand.NewPCG(5, 9))
	m, committed := newDiskModel(), newDiskModel()
	var snapshot int64
	var live []uint32
	newFile := func() uint32 {
		p := fmt.Sprintf("s3://b/t/data/f-%d.parquet", rng.Int64())
		id := s.FileID(p)
		m.files[id] = p
		live = append(live, id)
		return id
	}
	// backToCommitted makes the model the last commit's.
	backToCommitted := func() {
		m = committed.clone()
		// Sorted: the steps that follow are the same on every run.
		live = slices.Sorted(maps.Keys(m.files))
		if len(live) == 0 {
			newFile()
		}
	}
	newFile()
	for step := range 4000 {
		key := []byte(fmt.Sprintf("key-%d", rng.IntN(500)))
		switch op := rng.IntN(100); {
		case op < 55:
			id := live[rng.IntN(len(live))]
			loc, v := Loc{File: id, Pos: uint32(rng.IntN(1 << 20))}, rng.Int64N(1000)-500
			old, oldV, had := s.PutVersion(key, loc, v)
			want, wantHad := m.keys[string(key)]
			if had != wantHad || had && (old != want || oldV != m.vers[string(key)]) {
				t.Fatalf("step %d: PutVersion returned %v %d %v, want %v %d %v", step, old, oldV, had, want, m.vers[string(key)], wantHad)
			}
			if had {
				m.n[want.File]--
			}
			m.keys[string(key)], m.vers[string(key)] = loc, v
			m.n[id]++
		case op < 70:
			old, had := s.Delete(key)
			want, wantHad := m.keys[string(key)]
			if had != wantHad || had && old != want {
				t.Fatalf("step %d: Delete returned %v %v, want %v %v", step, old, had, want, wantHad)
			}
			if had {
				m.n[want.File]--
				delete(m.keys, string(key))
				delete(m.vers, string(key))
			}
		case op < 74:
			newFile()
		case op < 77 && len(live) > 1:
			i := rng.IntN(len(live))
			id := live[i]
			live = append(live[:i], live[i+1:]...)
			want := m.n[id]
			if got := s.DropFile(id); got != want {
				t.Fatalf("step %d: DropFile(%d) dropped %d keys, want %d", step, id, got, want)
			}
			for k, loc := range m.keys {
				if loc.File == id {
					delete(m.keys, k)
					delete(m.vers, k)
				}
			}
			delete(m.files, id)
			delete(m.n, id)
		case op < 88:
			snapshot = rng.Int64()
			if err := s.Commit(snapshot); err != nil {
				t.Fatal(err)
			}
			committed = m.clone()
		case op < 95:
			s.Rollback()
			backToCommitted()
		default:
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err = OpenDiskStore(path, true); err != nil {
				t.Fatal(err)
			}
			if s.Snapshot() != snapshot {
				t.Fatalf("step %d: reopened at snapshot %d, want %d", step, s.Snapshot(), snapshot)
			}
			backToCommitted()
		}
		m.check(t, s, fmt.Sprintf("step %d", step))
	}
	if _, err := OpenDiskStore(filepath.Join(t.TempDir(), "x.db"), false); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := OpenDiskStore(path, false); err == nil {
		t.Fatal("a versioned key index file opened as unversioned")
	}
	if s, err = OpenDiskStore(path, true); err != nil {
		t.Fatal(err)
	}
}

// TestDiskStoreClear: Clear empties the store in the open transaction; a
// rollback brings the keys back, a commit makes it empty for good.
func TestDiskStoreClear(t *testing.T) {
	s, err := OpenDiskStore(filepath.Join(t.TempDir(), "index.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := s.FileID("a")
	for i := range 100 {
		s.Put([]byte(fmt.Sprint(i)), Loc{File: id, Pos: uint32(i)})
	}
	if err := s.Commit(7); err != nil {
		t.Fatal(err)
	}
	s.Clear()
	if s.Len() != 0 || s.FilePath(id) != "" {
		t.Fatalf("after Clear: %d keys, file %q", s.Len(), s.FilePath(id))
	}
	s.Rollback()
	if s.Len() != 100 || s.FileKeys(id) != 100 {
		t.Fatalf("after Rollback: %d keys, %d in the file", s.Len(), s.FileKeys(id))
	}
	s.Clear()
	if err := s.Commit(8); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get([]byte("5")); ok || s.Len() != 0 || s.Snapshot() != 8 {
		t.Fatalf("after Clear and Commit: %d keys, snapshot %d", s.Len(), s.Snapshot())
	}
	if s.FileID("b") == id {
		t.Fatal("a file id was reused")
	}
}

// BenchmarkDiskStore puts b.N random 16-byte keys into a store in
// commits of 20,000 (a quarter of them updates of earlier keys), and
// reports the file's bytes per key.
func BenchmarkDiskStore(b *testing.B) {
	path := filepath.Join(b.TempDir(), "index.db")
	s, err := OpenDiskStore(path, false)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	id := s.FileID("f")
	key := make([]byte, 16)
	var n int64
	b.ResetTimer()
	for i := range b.N {
		k := n
		if n > 0 && rng.IntN(4) == 0 {
			k = rng.Int64N(n)
		} else {
			n++
		}
		for j := range key {
			key[j] = byte((uint64(k)*0x9E3779B97F4A7C15)>>(j%8*8) ^ uint64(j))
		}
		s.Put(key, Loc{File: id, Pos: uint32(i)})
		if i%20000 == 19999 {
			if err := s.Commit(int64(i)); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.Commit(1); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if fi, err := os.Stat(path); err == nil && s.Len() > 0 {
		b.ReportMetric(float64(fi.Size())/float64(s.Len()), "file-B/key")
	}
	b.ReportMetric(float64(s.MemoryBytes())/float64(max(s.Len(), 1)), "heap-B/key")
}
