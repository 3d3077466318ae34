package transform

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest/transform/dedup"
	"github.com/floelake/floe/internal/fileio"
)

// DedupSchema is the layout of the files workers write the keys they kept
// in: one row, one binary cell holding dedup.Encode's bytes.
var DedupSchema = iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "keys", Type: iceberg.PrimitiveTypes.Binary, Required: true})

// IsDedupFile reports whether path is a dedup state file a worker wrote
// for the table at location (never committed as data: the stage lists it
// in the manifest instead).
func IsDedupFile(location, path string) bool {
	return strings.HasPrefix(path, strings.TrimSuffix(location, "/")+"/"+DedupDir+"/") && strings.HasSuffix(path, ".parquet")
}

// DedupStage is the table writer's part of a pipeline that drops
// duplicates (a commit.Stage): at every commit it lists the files of kept
// keys the workers wrote for the segment in a new manifest, drops the
// files past the horizon, merges small files into bigger ones, and writes
// the manifest; the commit references it as floe.dedup. Between commits it
// keeps the manifest, never the keys, in memory; a merge holds the keys of
// the files it merges while it runs.
type DedupStage struct {
	pipeline string
	horizon  int64
	sig      string
	log      *slog.Logger
	mem      memory.Allocator

	man *dedup.Manifest
	// loaded is the floe.dedup man was read from, or the manifest the last
	// Apply wrote once that landed; pending is what the last Apply wrote.
	loaded     string
	pending    *dedup.Manifest
	pendingLoc string

	// merges counts the merges of the pending Apply.
	merges  int64
	table   string
	metrics DedupMetrics
}

// DedupMetrics observes a DedupStage (internal/metrics.Set implements it).
type DedupMetrics interface {
	// DedupCommit is called for every commit that changed the manifest:
	// the files and keys it lists, and the merges the commit made.
	DedupCommit(table string, files, keys, merges int64)
}

// Observe makes the stage report to m under table's name.
func (s *DedupStage) Observe(table string, m DedupMetrics) { s.table, s.metrics = table, m }

// NewDedupStage makes the table writer's stage of a program that drops
// duplicates.
func (p *Program) NewDedupStage(pipeline string, log *slog.Logger) (*DedupStage, error) {
	if p.dedup == nil {
		return nil, errors.New("transform: the program has no dedup")
	}
	return &DedupStage{pipeline: pipeline, horizon: p.dedup.horizon, sig: p.DedupSignature(), log: log, mem: memory.DefaultAllocator}, nil
}

var _ commit.Stage = (*DedupStage)(nil)

// Apply implements commit.Stage: the segment's files without its dedup
// files, and the new manifest as Dedup (none when the segment has no
// dedup file: the commit carries the table's forward).
func (s *DedupStage) Apply(ctx context.Context, base *table.Table, seg commit.Segment) (commit.Segment, error) {
	out := seg
	out.Files = nil
	var deltas []iceberg.DataFile
	for _, f := range seg.Files {
		if IsDedupFile(base.Location(), f.FilePath()) {
			deltas = append(deltas, f)
		} else {
			out.Files = append(out.Files, f)
		}
	}
	if len(deltas) == 0 {
		return out, nil
	}
	info, err := fileio.InfoFromTable(ctx, base)
	if err != nil {
		return seg, err
	}
	fs := info.FS
	if cur := commit.TableDedup(base, s.pipeline); s.man == nil || cur != s.loaded {
		if s.man, err = ReadDedupManifest(fs, cur, s.sig, s.log); err != nil {
			return seg, err
		}
		s.loaded = cur
	}
	m := s.man.Clone()
	s.merges = 0
	for _, f := range deltas {
		secs, err := ReadDedupFile(ctx, fs, f.FilePath(), s.mem)
		if errors.Is(err, iofs.ErrNotExist) {
			s.log.Error("a dedup state file of the segment is gone; its keys are forgotten, so duplicates of them may pass once", "file", f.FilePath())
			continue
		}
		if err != nil {
			return seg, err
		}
		m.Add(f.FilePath(), 0, secs)
	}
	m.Expire(s.horizon)
	loc := strings.TrimSuffix(info.Location, "/")
	for {
		files, level := m.Compaction()
		if files == nil {
			break
		}
		var secs []dedup.Section
		var paths []string
		for _, f := range files {
			fsecs, err := ReadDedupFile(ctx, fs, f.Path, s.mem)
			if errors.Is(err, iofs.ErrNotExist) {
				s.log.Error("a dedup state file the manifest lists is gone; its keys are forgotten, so duplicates of them may pass once", "file", f.Path)
			} else if err != nil {
				return seg, err
			}
			secs = append(secs, fsecs...)
			paths = append(paths, f.Path)
		}
		merged := dedup.Merge(s.horizon, secs, m.Clocks)
		path := fmt.Sprintf("%s/%s/%s-L%d-%s.bin", loc, DedupDir, s.pipeline, level, uuid.NewString())
		if err := fileio.WriteBlob(fs, path, dedup.Encode(merged)); err != nil {
			return seg, err
		}
		m.Replace(paths, path, level, merged)
		s.merges++
	}
	b, err := m.Marshal()
	if err != nil {
		return seg, err
	}
	out.Dedup = fmt.Sprintf("%s/%s/%s-dedup-%s.json", loc, StateDir, s.pipeline, uuid.NewString())
	if err := fileio.WriteBlob(fs, out.Dedup, b); err != nil {
		return seg, err
	}
	s.pending, s.pendingLoc = m, out.Dedup
	return out, nil
}

// Committed implements commit.Stage.
func (s *DedupStage) Committed(int64) {
	if s.pending != nil {
		s.man, s.loaded = s.pending, s.pendingLoc
		keys := 0
		for _, f := range s.man.Files {
			for _, p := range f.Parts {
				keys += p.Keys
			}
		}
		if s.metrics != nil {
			s.metrics.DedupCommit(s.table, int64(len(s.man.Files)), int64(keys), s.merges)
		}
	}
	s.pending, s.pendingLoc = nil, ""
}

// Abandon implements commit.Stage: the manifest is read again from the
// table.
func (s *DedupStage) Abandon() {
	s.man, s.loaded, s.pending, s.pendingLoc = nil, "", nil, ""
}

// ReadDedupManifest reads the manifest at loc, for keys of signature sig
// (Program.DedupSignature). An empty loc is an empty manifest; so is a
// manifest that is gone or damaged, or of keys of another signature (the
// key changed), which is logged: dedup then starts over with no key
// remembered.
func ReadDedupManifest(fs iceio.IO, loc, sig string, log *slog.Logger) (*dedup.Manifest, error) {
	empty := dedup.NewManifest()
	empty.Key = sig
	if loc == "" {
		return empty, nil
	}
	b, err := readAll(fs, loc)
	if errors.Is(err, iofs.ErrNotExist) {
		log.Error("the dedup state manifest the table names is gone; dedup starts over with no key remembered, so duplicates within the horizon may pass once", "manifest", loc)
		return empty, nil
	}
	if err != nil {
		return nil, fmt.Errorf("transform: read the dedup state manifest %s: %w", loc, err)
	}
	m, err := dedup.ParseManifest(b)
	if err != nil {
		log.Error("the dedup state manifest the table names cannot be read; dedup starts over with no key remembered, so duplicates within the horizon may pass once", "manifest", loc, "err", err)
		return empty, nil
	}
	if m.Key != sig {
		log.Warn("the dedup key changed; dedup starts over with no key remembered", "was", m.Key, "now", sig)
		return empty, nil
	}
	return m, nil
}

// ReadDedupFile reads the sections of a dedup state file: one a worker
// wrote (Parquet) or one a merge wrote (raw).
func ReadDedupFile(ctx context.Context, fs iceio.IO, path string, mem memory.Allocator) ([]dedup.Section, error) {
	var blobs [][]byte
	if strings.HasSuffix(path, ".parquet") {
		var err error
		if blobs, err = fileio.ReadBinaryColumn(ctx, fs, path, DedupSchema.Field(0).Name, mem); err != nil {
			return nil, fmt.Errorf("transform: dedup state %s: %w", path, err)
		}
	} else {
		b, err := readAll(fs, path)
		if err != nil {
			return nil, fmt.Errorf("transform: dedup state %s: %w", path, err)
		}
		blobs = [][]byte{b}
	}
	var out []dedup.Section
	for _, b := range blobs {
		secs, err := dedup.Decode(b)
		if err != nil {
			return nil, fmt.Errorf("transform: dedup state %s: %w", path, err)
		}
		out = append(out, secs...)
	}
	return out, nil
}

func readAll(fs iceio.IO, path string) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
