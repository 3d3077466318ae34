package dedup

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Manifest lists the files that hold a table's dedup state as of one
// commit, and every partition's clock. A commit references its manifest
// as floe.dedup; the manifest and the deltas of segments accepted after
// that commit rebuild the state at any later offset (Load).
//
// Files are tiered: a delta a worker wrote is level 0; FanIn files of a
// level are merged into one of the next (Compaction), so a partition's
// keys are rewritten about log_FanIn(commits) times, and the list stays
// short. A file whose keys are all past the horizon is dropped (Expire).
type Manifest struct {
	Version int `json:"version"`
	// Key says what the keys are hashes of (the dedup's key expressions):
	// the state of another key is no state for this one.
	Key string `json:"key,omitempty"`
	// Clocks holds every partition's clock (newest Kafka timestamp, µs).
	Clocks map[string]int64 `json:"clocks"`
	Files  []File           `json:"files"`
}

// File is one state file of a manifest.
type File struct {
	Path  string          `json:"path"`
	Level int             `json:"level"`
	Parts map[string]Part `json:"parts"`
}

// Part is what a file holds of one partition: the number of keys and the
// newest clock among them (NoClock: none).
type Part struct {
	Keys   int   `json:"keys"`
	Newest int64 `json:"newest"`
}

// Dir is where a table's dedup state files go, under its location.
const Dir = "state/dedup"

// FanIn is the number of files of a level merged into one of the next.
const FanIn = 8

const manifestVersion = 1

// NewManifest returns an empty manifest.
func NewManifest() *Manifest {
	return &Manifest{Version: manifestVersion, Clocks: map[string]int64{}}
}

// ParseManifest reads a manifest Marshal wrote.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("dedup: manifest: %w", err)
	}
	if m.Version != manifestVersion {
		return nil, fmt.Errorf("dedup: manifest version %d, this floe reads %d", m.Version, manifestVersion)
	}
	if m.Clocks == nil {
		m.Clocks = map[string]int64{}
	}
	return &m, nil
}

// Marshal encodes the manifest.
func (m *Manifest) Marshal() ([]byte, error) { return json.Marshal(m) }

// Clone returns a deep copy.
func (m *Manifest) Clone() *Manifest {
	c := &Manifest{Version: m.Version, Key: m.Key, Clocks: make(map[string]int64, len(m.Clocks)), Files: make([]File, len(m.Files))}
	for k, v := range m.Clocks {
		c.Clocks[k] = v
	}
	for i, f := range m.Files {
		parts := make(map[string]Part, len(f.Parts))
		for k, v := range f.Parts {
			parts[k] = v
		}
		c.Files[i] = File{Path: f.Path, Level: f.Level, Parts: parts}
	}
	return c
}

// Paths returns the paths of the manifest's files.
func (m *Manifest) Paths() []string {
	out := make([]string, len(m.Files))
	for i, f := range m.Files {
		out[i] = f.Path
	}
	return out
}

// Add lists the file at path holding sections, at level, and moves the
// clocks of its partitions forward. A file with no key is not listed (its
// clocks are what it contributes).
func (m *Manifest) Add(path string, level int, sections []Section) {
	f := File{Path: path, Level: level, Parts: map[string]Part{}}
	keys := 0
	for _, s := range sections {
		if c, ok := m.Clocks[s.ID]; !ok || s.Clock > c {
			m.Clocks[s.ID] = s.Clock
		}
		newest := int64(NoClock)
		for _, e := range s.Keys {
			newest = max(newest, e.At)
		}
		if len(s.Keys) > 0 {
			p, ok := f.Parts[s.ID]
			if !ok {
				p.Newest = NoClock
			}
			p.Keys += len(s.Keys)
			p.Newest = max(p.Newest, newest)
			f.Parts[s.ID] = p
		}
		keys += len(s.Keys)
	}
	if keys > 0 {
		m.Files = append(m.Files, f)
	}
}

// Expire drops the files whose every key is past the horizon of its
// partition's clock, and returns their paths.
func (m *Manifest) Expire(horizon int64) []string {
	var gone []string
	m.Files = slices.DeleteFunc(m.Files, func(f File) bool {
		for id, p := range f.Parts {
			if p.Newest >= cutoff(m.Clocks[id], horizon) {
				return false
			}
		}
		gone = append(gone, f.Path)
		return true
	})
	return gone
}

// Compaction returns the files to merge next into one file of level+1:
// FanIn files of the lowest level that has that many, or nil.
func (m *Manifest) Compaction() (files []File, level int) {
	count := map[int]int{}
	lowest := -1
	for _, f := range m.Files {
		count[f.Level]++
		if count[f.Level] >= FanIn && (lowest < 0 || f.Level < lowest) {
			lowest = f.Level
		}
	}
	if lowest < 0 {
		return nil, 0
	}
	for _, f := range m.Files {
		if f.Level == lowest && len(files) < FanIn {
			files = append(files, f)
		}
	}
	return files, lowest + 1
}

// Replace removes the files at old and lists the file at path holding
// sections, at level, in their place.
func (m *Manifest) Replace(old []string, path string, level int, sections []Section) {
	m.Files = slices.DeleteFunc(m.Files, func(f File) bool { return slices.Contains(old, f.Path) })
	m.Add(path, level, sections)
}
