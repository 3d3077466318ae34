package upsert

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// newSpilledHarness is a model harness over a Spilled whose memory budget
// makes it spill every few inserts.
func newSpilledHarness(t *testing.T, budget int64, versioned bool) (*harness, *Spilled) {
	s, err := NewSpilled(t.TempDir(), budget, versioned)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h := &harness{t: t, ix: s, mem: s.mem, mod: model{m: map[string]Loc{}, files: map[uint32]string{}}}
	if versioned {
		h.versioned = true
		h.mod.v = map[string]int64{}
	}
	for range 3 {
		h.newFile()
	}
	return h, s
}

// TestSpilledModel runs the index model against a Spilled small enough
// that most keys live in its file: every operation must answer as a map
// does, whichever tier holds the key, across spills, moves back to memory,
// drops, remaps and filter rebuilds.
func TestSpilledModel(t *testing.T) {
	for _, versioned := range []bool{false, true} {
		for _, budget := range []int64{1, 128 << 10} {
			t.Run(fmt.Sprintf("versioned=%v/budget=%d", versioned, budget), func(t *testing.T) {
				r := rand.New(rand.NewPCG(3, uint64(budget)))
				h, s := newSpilledHarness(t, budget, versioned)
				ops := 60000
				if budget == 1 {
					ops = 6000 // a transaction per insert
				}
				if testing.Short() || raceDetector {
					ops /= 4
				}
				runModel(t, h, r, keyUniverse(r, 20000), ops)
				st := s.Stats()
				if st.Spills == 0 || st.DiskHits == 0 || st.DiskKeys == 0 {
					t.Fatalf("the model did not exercise the file: %+v", st)
				}
				if s.Err() != nil {
					t.Fatal(s.Err())
				}
				t.Logf("%+v, memory tier %d keys, %d bytes", st, s.mem.Len(), s.MemoryBytes())
			})
		}
	}
}

// TestSpilledKeepsTheBudget fills a Spilled far beyond its budget: the
// memory tier stays near the budget, every key is still found, and new
// keys rarely read the file (the filter answers for them).
func TestSpilledKeepsTheBudget(t *testing.T) {
	const budget = 1 << 20
	n := 200_000
	if testing.Short() || raceDetector {
		n = 50_000
	}
	s, err := NewSpilled(t.TempDir(), budget, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := func(i int) []byte { return fmt.Appendf(nil, "key-%09d", i) }
	files := make([]uint32, 0, n/10_000+1)
	for i := 0; i < n; i++ {
		if i%10_000 == 0 {
			files = append(files, s.FileID(fmt.Sprintf("f%d", i/10_000)))
		}
		if _, had := s.Put(key(i), Loc{File: files[len(files)-1], Pos: uint32(i % 10_000)}); had {
			t.Fatalf("key %d had a row", i)
		}
		if mb := s.mem.MemoryBytes(); mb > 2*budget {
			t.Fatalf("memory tier at %d bytes after %d keys, budget %d", mb, i+1, budget)
		}
	}
	st := s.Stats()
	if st.DiskKeys < n/2 || st.FileBytes == 0 {
		t.Fatalf("%d keys but %+v", n, st)
	}
	// New keys: the file was read for a few percent of them at most.
	if st.DiskReads > int64(n)/20 {
		t.Fatalf("%d file reads for %d new keys", st.DiskReads, n)
	}
	if s.Len() != n {
		t.Fatalf("Len = %d, want %d", s.Len(), n)
	}
	for i := 0; i < n; i += 7 {
		loc, ok := s.Get(key(i))
		if !ok || loc.Pos != uint32(i%10_000) || s.FilePath(loc.File) != fmt.Sprintf("f%d", i/10_000) {
			t.Fatalf("Get(key %d) = %v, %v", i, loc, ok)
		}
	}
	// An update of a spilled key returns its row and brings it back.
	if old, had := s.Put(key(0), Loc{File: files[len(files)-1], Pos: 1}); !had || old != (Loc{File: files[0], Pos: 0}) {
		t.Fatalf("update of a spilled key: %v, %v", old, had)
	}
	if s.Len() != n {
		t.Fatalf("Len = %d after an update, want %d", s.Len(), n)
	}
	t.Logf("%d keys: %+v; memory %d bytes", n, st, s.MemoryBytes())
}

// TestSpilledFailure: a file that can no longer be read makes the index
// report an error rather than answer that a key is absent.
func TestSpilledFailure(t *testing.T) {
	s, err := NewSpilled(t.TempDir(), 1, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := s.FileID("f")
	for i := range 100 {
		s.Put(fmt.Appendf(nil, "k%d", i), Loc{File: f, Pos: uint32(i)})
	}
	if s.Stats().DiskKeys == 0 {
		t.Fatal("nothing spilled")
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	s.db.Close()
	for i := range 100 {
		s.Get(fmt.Appendf(nil, "k%d", i))
	}
	if s.Err() == nil {
		t.Fatal("no error after the file was closed under the index")
	}
}

// TestRemoveSpillFiles removes what a killed process left, and only that.
func TestRemoveSpillFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := NewSpilled(dir, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(other, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	left := s.path
	s.db.Close() // a process killed: the file stays
	if err := RemoveSpillFiles(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatalf("%s still there: %v", left, err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatal(err)
	}
	s2, err := NewSpilled(dir, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	path := s2.path
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("Close left %s: %v", path, err)
	}
}
