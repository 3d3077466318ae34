package dedup

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"testing"
)

func entries(ats ...int64) []Entry {
	out := make([]Entry, len(ats))
	for i, at := range ats {
		out[i] = Entry{Key: keyOf(i), At: at}
	}
	return out
}

// TestManifestAdd proves that Add lists a file with its parts' key counts
// and newest clocks, moves clocks forward only, and leaves out a file with
// no key while still moving the clocks of its sections.
func TestManifestAdd(t *testing.T) {
	m := NewManifest()
	m.Add("empty", 0, []Section{{ID: "a", Clock: 10}, {ID: "b", Clock: 7, Keys: []Entry{}}})
	if len(m.Files) != 0 {
		t.Fatalf("file with no keys listed: %+v", m.Files)
	}
	if want := map[string]int64{"a": 10, "b": 7}; !maps.Equal(m.Clocks, want) {
		t.Fatalf("clocks after a file with no keys: %v, want %v", m.Clocks, want)
	}
	m.Add("nothing", 0, nil)
	if len(m.Files) != 0 {
		t.Fatalf("file with no sections listed: %+v", m.Files)
	}

	m.Add("f1", 2, []Section{
		{ID: "a", Clock: 5, Keys: entries(3, 4)}, // older clock: a stays 10
		{ID: "c", Clock: 20},
		{ID: "b", Clock: 30, Keys: entries(25, 29, 12)},
		{ID: "a", Clock: 6, Keys: entries(6)},
	})
	want := File{Path: "f1", Level: 2, Parts: map[string]Part{
		"a": {Keys: 3, Newest: 6},
		"b": {Keys: 3, Newest: 29},
	}}
	if len(m.Files) != 1 || !reflect.DeepEqual(m.Files[0], want) {
		t.Fatalf("files %+v, want [%+v]", m.Files, want)
	}
	if want := map[string]int64{"a": 10, "b": 30, "c": 20}; !maps.Equal(m.Clocks, want) {
		t.Fatalf("clocks %v, want %v", m.Clocks, want)
	}
	m.Add("f2", 0, []Section{{ID: "a", Clock: NoClock, Keys: entries(NoClock)}})
	if len(m.Files) != 2 || m.Files[1].Parts["a"] != (Part{Keys: 1, Newest: NoClock}) {
		t.Fatalf("file with one key at NoClock: %+v", m.Files)
	}
	if got := m.Paths(); !slices.Equal(got, []string{"f1", "f2"}) {
		t.Fatalf("Paths = %v", got)
	}
}

// TestManifestExpire proves that Expire drops exactly the files whose
// every part's newest clock is below its partition's clock minus the
// horizon, keeps the others in order, and returns the dropped paths.
func TestManifestExpire(t *testing.T) {
	file := func(path string, parts map[string]int64) File {
		f := File{Path: path, Parts: map[string]Part{}}
		for id, newest := range parts {
			f.Parts[id] = Part{Keys: 1, Newest: newest}
		}
		return f
	}
	tests := []struct {
		name    string
		horizon int64
		clocks  map[string]int64
		files   []File
		gone    []string
	}{
		{
			name:    "boundary",
			horizon: 10,
			clocks:  map[string]int64{"a": 100},
			files:   []File{file("at cutoff", map[string]int64{"a": 90}), file("below", map[string]int64{"a": 89}), file("new", map[string]int64{"a": 100})},
			gone:    []string{"below"},
		},
		{
			name:    "one live part keeps the file",
			horizon: 10,
			clocks:  map[string]int64{"a": 100, "b": 1000},
			files: []File{
				file("a live", map[string]int64{"a": 95, "b": 10}),
				file("b live", map[string]int64{"a": 10, "b": 995}),
				file("both past", map[string]int64{"a": 89, "b": 989}),
				file("b at cutoff", map[string]int64{"a": 0, "b": 990}),
			},
			gone: []string{"both past"},
		},
		{
			name:    "each part against its own clock",
			horizon: 5,
			clocks:  map[string]int64{"a": 10, "b": 50},
			files:   []File{file("x", map[string]int64{"a": 40}), file("y", map[string]int64{"b": 40})},
			gone:    []string{"y"},
		},
		{
			name:    "horizon 0",
			horizon: 0,
			clocks:  map[string]int64{"a": 7},
			files:   []File{file("now", map[string]int64{"a": 7}), file("before", map[string]int64{"a": 6})},
			gone:    []string{"before"},
		},
		{
			name:    "clock near the int64 minimum",
			horizon: 100,
			clocks:  map[string]int64{"a": math.MinInt64 + 5},
			files:   []File{file("oldest", map[string]int64{"a": math.MinInt64})},
		},
		{
			name:    "several gone, order kept",
			horizon: 1,
			clocks:  map[string]int64{"a": 10},
			files: []File{
				file("g1", map[string]int64{"a": 1}), file("k1", map[string]int64{"a": 9}),
				file("g2", map[string]int64{"a": 2}), file("k2", map[string]int64{"a": 10}),
				file("g3", map[string]int64{"a": 8}),
			},
			gone: []string{"g1", "g2", "g3"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewManifest()
			m.Clocks = maps.Clone(tc.clocks)
			m.Files = slices.Clone(tc.files)
			gone := m.Expire(tc.horizon)
			if !slices.Equal(gone, tc.gone) {
				t.Fatalf("Expire returned %q, want %q", gone, tc.gone)
			}
			var kept []string
			for _, f := range tc.files {
				if !slices.Contains(tc.gone, f.Path) {
					kept = append(kept, f.Path)
				}
			}
			if got := m.Paths(); !slices.Equal(got, kept) && (len(got) != 0 || len(kept) != 0) {
				t.Fatalf("files left %q, want %q", got, kept)
			}
		})
	}
}

// TestManifestCompaction proves that Compaction returns the first FanIn
// files of the lowest level that has at least FanIn files, with the next
// level, and nil when no level has that many.
func TestManifestCompaction(t *testing.T) {
	tests := []struct {
		name   string
		levels []int // level of each file, in list order
		want   []int // indexes of the files returned; nil: none
		level  int
	}{
		{"empty", nil, nil, 0},
		{"one short", []int{0, 0, 0, 0, 0, 0, 0}, nil, 0},
		{"exactly FanIn", []int{0, 0, 0, 0, 0, 0, 0, 0}, []int{0, 1, 2, 3, 4, 5, 6, 7}, 1},
		{"more than FanIn", []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, []int{0, 1, 2, 3, 4, 5, 6, 7}, 1},
		{"short everywhere", []int{0, 1, 0, 1, 2, 0, 1, 2, 0, 1, 0, 0, 1, 1, 0}, nil, 0},
		{"lowest full level, interleaved", []int{1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0}, []int{1, 4, 7, 10, 11, 12, 14, 15}, 1},
		{"upper level full first in list", []int{3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []int{8, 9, 10, 11, 12, 13, 14, 15}, 2},
		{"only a high level full", []int{0, 2, 2, 2, 2, 2, 2, 2, 0, 2}, []int{1, 2, 3, 4, 5, 6, 7, 9}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewManifest()
			for i, l := range tc.levels {
				m.Files = append(m.Files, File{Path: fmt.Sprint(i), Level: l, Parts: map[string]Part{"a": {Keys: 1}}})
			}
			files, level := m.Compaction()
			if tc.want == nil {
				if files != nil {
					t.Fatalf("Compaction = %+v, want nil", files)
				}
				return
			}
			var got []int
			for _, f := range files {
				var i int
				fmt.Sscan(f.Path, &i)
				got = append(got, i)
			}
			if !slices.Equal(got, tc.want) || level != tc.level {
				t.Fatalf("Compaction = files %v level %d, want files %v level %d", got, level, tc.want, tc.level)
			}
			if len(files) != FanIn {
				t.Fatalf("Compaction returned %d files, FanIn is %d", len(files), FanIn)
			}
		})
	}
}

// TestManifestReplace proves that Replace removes the old files and lists
// the new one at its level, moving clocks, and lists nothing when the
// merged sections hold no key.
func TestManifestReplace(t *testing.T) {
	m := NewManifest()
	for i := range 4 {
		m.Add(fmt.Sprint("f", i), 0, []Section{{ID: "a", Clock: int64(i), Keys: entries(int64(i))}})
	}
	m.Replace([]string{"f1", "f2"}, "g", 1, []Section{{ID: "a", Clock: 2, Keys: entries(2)}, {ID: "b", Clock: 50}})
	if got := m.Paths(); !slices.Equal(got, []string{"f0", "f3", "g"}) {
		t.Fatalf("files after Replace: %v", got)
	}
	if m.Files[2].Level != 1 || m.Files[2].Parts["a"] != (Part{Keys: 1, Newest: 2}) {
		t.Fatalf("replacement listed as %+v", m.Files[2])
	}
	if m.Clocks["b"] != 50 || m.Clocks["a"] != 3 {
		t.Fatalf("clocks after Replace: %v", m.Clocks)
	}
	m.Replace([]string{"f0", "g"}, "h", 2, []Section{{ID: "a", Clock: 3}})
	if got := m.Paths(); !slices.Equal(got, []string{"f3"}) {
		t.Fatalf("files after Replace by a file with no keys: %v", got)
	}
}

func sampleManifest() *Manifest {
	m := NewManifest()
	m.Add("s3://b/dedup/0.fldd", 0, []Section{
		{ID: "orders/0", Clock: 1_700_000_000_000_001, Keys: entries(1_700_000_000_000_000, math.MaxInt64)},
		{ID: "orders/1", Clock: NoClock, Keys: entries(NoClock)},
	})
	m.Add("s3://b/dedup/1.fldd", 3, []Section{{ID: "orders/2", Clock: -7, Keys: entries(-8)}})
	m.Add("s3://b/dedup/2.fldd", 0, []Section{{ID: "ünïcode \"q\"", Clock: 9}})
	return m
}

// TestManifestMarshalRoundTrip proves that ParseManifest reads back what
// Marshal wrote, int64 extremes included, for a filled and an empty
// manifest.
func TestManifestMarshalRoundTrip(t *testing.T) {
	for _, m := range []*Manifest{sampleManifest(), NewManifest()} {
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		got, err := ParseManifest(b)
		if err != nil {
			t.Fatalf("ParseManifest(%s): %v", b, err)
		}
		if !manifestsEqual(got, m) {
			t.Fatalf("ParseManifest(Marshal(%+v)) = %+v", m, got)
		}
		if got.Clocks == nil {
			t.Fatalf("parsed manifest has nil clocks")
		}
	}
}

// TestParseManifestRejects proves that ParseManifest refuses bad JSON and
// any version but its own, and gives a manifest without clocks a usable
// clock map.
func TestParseManifestRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ``},
		{"not JSON", `dedup`},
		{"truncated", `{"version":1,"clocks":{}`},
		{"wrong type", `{"version":"1"}`},
		{"clock not an integer", `{"version":1,"clocks":{"a":1.5}}`},
		{"version 0", `{"version":0,"clocks":{},"files":[]}`},
		{"no version", `{"clocks":{},"files":[]}`},
		{"version 2", `{"version":2,"clocks":{},"files":[]}`},
		{"version -1", `{"version":-1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if m, err := ParseManifest([]byte(tc.in)); err == nil {
				t.Fatalf("ParseManifest(%q) = %+v, want an error", tc.in, m)
			}
		})
	}
	m, err := ParseManifest([]byte(`{"version":1}`))
	if err != nil {
		t.Fatalf("ParseManifest of a bare version 1: %v", err)
	}
	m.Add("f", 0, []Section{{ID: "a", Clock: 4, Keys: entries(4)}})
	if m.Clocks["a"] != 4 || len(m.Files) != 1 {
		t.Fatalf("manifest parsed without clocks does not take a file: %+v", m)
	}
}

// TestManifestCloneIsDeep proves that changing a clone's clocks, files,
// or a file's parts leaves the original as it was, and the other way round.
func TestManifestCloneIsDeep(t *testing.T) {
	orig := sampleManifest()
	snapshot, _ := orig.Marshal()
	c := orig.Clone()
	if !manifestsEqual(c, orig) {
		t.Fatalf("Clone = %+v, want %+v", c, orig)
	}
	c.Clocks["orders/0"] = 1
	c.Clocks["new"] = 2
	c.Files[0].Parts["orders/0"] = Part{Keys: 99, Newest: 99}
	c.Files[0].Parts["added"] = Part{}
	delete(c.Files[1].Parts, "orders/2")
	c.Files[0].Path = "changed"
	c.Files[1].Level = 7
	c.Add("more", 0, []Section{{ID: "orders/0", Clock: math.MaxInt64, Keys: entries(5)}})
	c.Expire(0)
	if after, _ := orig.Marshal(); string(after) != string(snapshot) {
		t.Fatalf("changing the clone changed the original:\nbefore %s\nafter  %s", snapshot, after)
	}

	c2 := orig.Clone()
	orig.Files[0].Parts["orders/1"] = Part{Keys: 5}
	orig.Clocks["orders/2"] = 100
	if c2.Files[0].Parts["orders/1"] == (Part{Keys: 5}) || c2.Clocks["orders/2"] == 100 {
		t.Fatalf("changing the original changed the clone: %+v", c2)
	}
}

// manifestsEqual compares manifests; nil and empty file lists and part
// maps are equal.
func manifestsEqual(a, b *Manifest) bool {
	if a.Version != b.Version || !maps.Equal(a.Clocks, b.Clocks) || len(a.Files) != len(b.Files) {
		return false
	}
	for i := range a.Files {
		fa, fb := a.Files[i], b.Files[i]
		if fa.Path != fb.Path || fa.Level != fb.Level || !maps.Equal(fa.Parts, fb.Parts) {
			return false
		}
	}
	return true
}
