package timetravel

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/table/dv"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/fileio"
)

// The state of a snapshot as Changes needs it: its manifests, its live
// delete files indexed by what they apply to, and (on demand) its live
// data files.

// changesEntry is a live file of a snapshot and its data sequence number.
type changesEntry struct {
	df  iceberg.DataFile
	seq int64
	// key identifies a delete file: its path, and for a deletion vector
	// (one blob of a Puffin file that may hold several) the blob's offset.
	key string
}

type changesState struct {
	snap *table.Snapshot // nil: before the first snapshot
	// dataManifests are its data manifests by path; deleteManifests the
	// paths of its delete manifests.
	dataManifests   map[string]iceberg.ManifestFile
	deleteManifests map[string]bool
	// deletes are its live delete files by key; posByRef the
	// position-delete files that name one data file, by that file;
	// posOther those that may name several; dvByRef the deletion vectors
	// by data file; eq the equality-delete files.
	deletes  map[string]changesEntry
	posByRef map[string][]changesEntry
	posOther []changesEntry
	dvByRef  map[string]changesEntry
	eq       []changesEntry
	// data are the live data files by path, once dataOf has read them.
	data map[string]changesEntry
}

// state returns the state of snapshot id.
func (r *changesRun) state(id int64) (*changesState, error) {
	if st, ok := r.states[id]; ok {
		return st, nil
	}
	snap := r.meta.SnapshotByID(id)
	mans, err := snap.Manifests(r.fs)
	if err != nil {
		return nil, fmt.Errorf("timetravel: the manifests of snapshot %d of %s: %w", id, r.name, err)
	}
	st := &changesState{
		snap:            snap,
		dataManifests:   map[string]iceberg.ManifestFile{},
		deleteManifests: map[string]bool{},
		deletes:         map[string]changesEntry{},
		posByRef:        map[string][]changesEntry{},
		dvByRef:         map[string]changesEntry{},
	}
	for _, m := range mans {
		if m.ManifestContent() != iceberg.ManifestContentDeletes {
			st.dataManifests[m.FilePath()] = m
			continue
		}
		st.deleteManifests[m.FilePath()] = true
		entries, err := r.entries(m)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			st.deletes[e.key] = e
			switch {
			case e.df.ContentType() == iceberg.EntryContentEqDeletes:
				st.eq = append(st.eq, e)
			case table.IsDeletionVector(e.df):
				if ref := e.df.ReferencedDataFile(); ref != nil {
					st.dvByRef[*ref] = e
				}
			default:
				if ref, ok := commit.DeletedFile(e.df); ok {
					st.posByRef[ref] = append(st.posByRef[ref], e)
				} else {
					st.posOther = append(st.posOther, e)
				}
			}
		}
	}
	r.states[id] = st
	return st, nil
}

// forget drops what the snapshot after id cannot need: the states of
// other snapshots (the next one's parent is id), and the manifests and
// delete files id does not hold (a later snapshot holds them again only
// if it brings back an older one's, and then they are read again).
func (r *changesRun) forget(id int64) {
	clear(r.fileStats)
	st := r.states[id]
	for k := range r.states {
		if k != id {
			delete(r.states, k)
		}
	}
	if st == nil {
		return
	}
	for path := range r.manifests {
		if _, ok := st.dataManifests[path]; !ok && !st.deleteManifests[path] {
			delete(r.manifests, path)
		}
	}
	for key := range r.posFiles {
		if _, ok := st.deletes[key]; !ok {
			delete(r.posFiles, key)
		}
	}
	for key := range r.dvs {
		if _, ok := st.deletes[key]; !ok {
			delete(r.dvs, key)
		}
	}
	for key := range r.eqKeys {
		if _, ok := st.deletes[key]; !ok {
			delete(r.eqKeys, key)
		}
	}
}

// schemaOf returns the schema snapshot s was written with.
func (r *changesRun) schemaOf(s *table.Snapshot) *iceberg.Schema {
	if sch, ok := r.schemas[s.SnapshotID]; ok {
		return sch
	}
	sch := changesSchemaOf(r.meta, s)
	r.schemas[s.SnapshotID] = sch
	return sch
}

// entries returns the live entries of manifest m.
func (r *changesRun) entries(m iceberg.ManifestFile) ([]changesEntry, error) {
	if es, ok := r.manifests[m.FilePath()]; ok {
		return es, nil
	}
	es, err := m.FetchEntries(r.fs, true)
	if err != nil {
		return nil, fmt.Errorf("timetravel: read manifest %s: %w", m.FilePath(), err)
	}
	out := make([]changesEntry, 0, len(es))
	for _, e := range es {
		df := e.DataFile()
		key := df.FilePath()
		if off := df.ContentOffset(); off != nil && table.IsDeletionVector(df) {
			key += "@" + strconv.FormatInt(*off, 10)
		}
		out = append(out, changesEntry{df: df, seq: e.SequenceNum(), key: key})
	}
	r.manifests[m.FilePath()] = out
	return out, nil
}

// dataDiff returns the data files live in p and not in s (removed) and
// live in s and not in p (added). Only the manifests one of them has and
// the other does not are read: a manifest both list holds the same files
// in both.
func (r *changesRun) dataDiff(p, s *changesState) (removed, added map[string]changesEntry, err error) {
	only := func(a, b *changesState) (map[string]changesEntry, error) {
		out := map[string]changesEntry{}
		for path, m := range a.dataManifests {
			if _, ok := b.dataManifests[path]; ok {
				continue
			}
			es, err := r.entries(m)
			if err != nil {
				return nil, err
			}
			for _, e := range es {
				out[e.df.FilePath()] = e
			}
		}
		return out, nil
	}
	pOnly, err := only(p, s)
	if err != nil {
		return nil, nil, err
	}
	sOnly, err := only(s, p)
	if err != nil {
		return nil, nil, err
	}
	removed, added = map[string]changesEntry{}, map[string]changesEntry{}
	for path, e := range pOnly {
		if _, ok := sOnly[path]; !ok {
			removed[path] = e
		}
	}
	for path, e := range sOnly {
		if _, ok := pOnly[path]; !ok {
			added[path] = e
		}
	}
	return removed, added, nil
}

// dataOf returns the live data files of st by path.
func (r *changesRun) dataOf(st *changesState) (map[string]changesEntry, error) {
	if st.data != nil {
		return st.data, nil
	}
	data := map[string]changesEntry{}
	for _, m := range st.dataManifests {
		es, err := r.entries(m)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			data[e.df.FilePath()] = e
		}
	}
	st.data = data
	return data, nil
}

// namedFiles returns the data files a position-delete file or deletion
// vector names.
func (r *changesRun) namedFiles(d changesEntry) ([]string, error) {
	if table.IsDeletionVector(d.df) {
		if ref := d.df.ReferencedDataFile(); ref != nil {
			return []string{*ref}, nil
		}
		return nil, fmt.Errorf("timetravel: deletion vector %s names no data file", d.df.FilePath())
	}
	if ref, ok := commit.DeletedFile(d.df); ok {
		return []string{ref}, nil
	}
	byFile, err := r.posFile(d)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(byFile))
	for path := range byFile {
		out = append(out, path)
	}
	return out, nil
}

// posFile reads a position-delete file: positions by data file.
func (r *changesRun) posFile(d changesEntry) (map[string][]int64, error) {
	if m, ok := r.posFiles[d.key]; ok {
		return m, nil
	}
	m, err := fileio.ReadPositionDeletes(r.ctx, r.fs, d.df.FilePath(), r.mem)
	if err != nil {
		return nil, fmt.Errorf("timetravel: %w", err)
	}
	r.posFiles[d.key] = m
	return m, nil
}

// changesPositions are the deleted positions of one data file: a deletion
// vector, or the union of position-delete files. The nil value is empty.
type changesPositions struct {
	bm *dv.RoaringPositionBitmap
}

func (c *changesPositions) has(pos int64) bool {
	return c != nil && c.bm != nil && pos >= 0 && c.bm.Contains(uint64(pos))
}

func (c *changesPositions) empty() bool {
	return c == nil || c.bm == nil || c.bm.IsEmpty()
}

func (c *changesPositions) each(fn func(int64)) {
	if c.empty() {
		return
	}
	for p := range c.bm.Positions() {
		fn(int64(p))
	}
}

// posDeleted returns the positions of data file e that the position
// deletes and deletion vector of st delete: the vector if one applies
// (it replaces position-delete files, as in iceberg-go's reader), else
// every position-delete file with a sequence number at least e's.
func (r *changesRun) posDeleted(st *changesState, e *changesEntry) (*changesPositions, error) {
	path := e.df.FilePath()
	if d, ok := st.dvByRef[path]; ok && (d.seq < 0 || e.seq <= d.seq) {
		if c, ok := r.dvs[d.key]; ok {
			return c, nil
		}
		bm, err := dv.ReadDV(r.fs, d.df)
		if err != nil {
			return nil, fmt.Errorf("timetravel: read the deletion vector of %s: %w", path, err)
		}
		c := &changesPositions{bm: bm}
		r.dvs[d.key] = c
		return c, nil
	}
	var out *changesPositions
	apply := func(d changesEntry) error {
		if d.seq >= 0 && e.seq >= 0 && d.seq < e.seq {
			return nil
		}
		byFile, err := r.posFile(d)
		if err != nil {
			return err
		}
		for _, pos := range byFile[path] {
			if out == nil {
				out = &changesPositions{bm: dv.NewRoaringPositionBitmap()}
			}
			out.bm.Set(uint64(pos))
		}
		return nil
	}
	for _, d := range st.posByRef[path] {
		if err := apply(d); err != nil {
			return nil, err
		}
	}
	for _, d := range st.posOther {
		if d.df.SpecID() != e.df.SpecID() || !changesSamePartition(r.metaOf(d).partition, r.metaOf(*e).partition) || !changesMayName(r.metaOf(d), path) {
			continue
		}
		if err := apply(d); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// changesFilePathField is the field id of a position-delete file's file_path.
const changesFilePathField = 2147483546

// changesMayName says whether position-delete file d may name path, by its
// file_path bounds.
func changesMayName(d *changesFileMeta, path string) bool {
	lo, hi := d.lo[changesFilePathField], d.hi[changesFilePathField]
	return (lo == nil || string(lo) <= path) && (hi == nil || path <= string(hi))
}

func changesSamePartition(a, b map[int]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// eqFor returns the equality deletes of st that apply to data file e.
func (r *changesRun) eqFor(st *changesState, e *changesEntry) []changesEntry {
	var out []changesEntry
	for _, d := range st.eq {
		if r.eqApplies(d, *e) {
			out = append(out, d)
		}
	}
	return out
}

// eqApplies says whether equality delete d applies to data file e: a
// higher sequence number, the same partition or a global (unpartitioned)
// delete, and key bounds that may meet.
func (r *changesRun) eqApplies(d, e changesEntry) bool {
	if d.seq <= e.seq {
		return false
	}
	spec := r.meta.PartitionSpecByID(int(d.df.SpecID()))
	db, eb := r.metaOf(d), r.metaOf(e)
	if spec != nil && !spec.IsUnpartitioned() &&
		(d.df.SpecID() != e.df.SpecID() || !changesSamePartition(db.partition, eb.partition)) {
		return false
	}
	return !changesDisjoint(r.schemaOf(r.to), d.df.EqualityFieldIDs(), db, eb)
}

// changesFileMeta is what Changes reads of a file's metadata to match
// delete files with data files (iceberg-go copies it on every call).
type changesFileMeta struct {
	partition map[int]any
	lo, hi    map[int][]byte
	nulls     map[int]int64
}

func newChangesFileMeta(df iceberg.DataFile) *changesFileMeta {
	return &changesFileMeta{partition: df.Partition(), lo: df.LowerBoundValues(), hi: df.UpperBoundValues(), nulls: df.NullValueCounts()}
}

// metaOf returns the metadata of e, read once per snapshot.
func (r *changesRun) metaOf(e changesEntry) *changesFileMeta {
	key := e.key
	if key == "" {
		key = e.df.FilePath()
	}
	if st, ok := r.fileStats[key]; ok {
		return st
	}
	st := newChangesFileMeta(e.df)
	r.fileStats[key] = st
	return st
}

// changesDisjoint says whether the key bounds of an equality delete on
// the fields ids (d) and of a data file (f) show that no row of f has a
// key the delete lists: some key column holds no null in the delete and
// the two files' ranges of it do not meet. Only integer and string
// columns are compared; anything else may meet.
func changesDisjoint(sch *iceberg.Schema, ids []int, d, f *changesFileMeta) bool {
	for _, id := range ids {
		if n, ok := d.nulls[id]; !ok || n != 0 {
			continue
		}
		field, ok := sch.FindFieldByID(id)
		if !ok {
			continue
		}
		var less func(a, b []byte) (bool, bool)
		switch field.Type.(type) {
		case iceberg.Int32Type, iceberg.Int64Type, iceberg.DateType, iceberg.TimeType, iceberg.TimestampType, iceberg.TimestampTzType:
			less = func(a, b []byte) (bool, bool) {
				x, ok1 := changesInt(a)
				y, ok2 := changesInt(b)
				return x < y, ok1 && ok2
			}
		case iceberg.StringType:
			less = func(a, b []byte) (bool, bool) { return bytes.Compare(a, b) < 0, true }
		default:
			continue
		}
		if d.lo[id] == nil || d.hi[id] == nil || f.lo[id] == nil || f.hi[id] == nil {
			continue
		}
		if lt, ok := less(d.hi[id], f.lo[id]); ok && lt {
			return true
		}
		if lt, ok := less(f.hi[id], d.lo[id]); ok && lt {
			return true
		}
	}
	return false
}

// changesInt decodes an integer bound (4 or 8 bytes, little-endian).
func changesInt(b []byte) (int64, bool) {
	switch len(b) {
	case 4:
		return int64(int32(binary.LittleEndian.Uint32(b))), true
	case 8:
		return int64(binary.LittleEndian.Uint64(b)), true
	}
	return 0, false
}

// changesKeyScan reads the key columns of files: the top-level columns of
// a set of field ids, in the schema of one snapshot (to's when it has
// them), so that data files and equality-delete files read to the same
// Arrow types.
type changesKeyScan struct {
	sig  string
	scan *table.Scan
	// names of the columns by field id.
	names map[int]string
}

// keyScan returns the reader of the columns ids, in the schema of to, or
// of s or p if to lacks one of them.
func (r *changesRun) keyScan(ids map[int]bool, p, s *table.Snapshot) (*changesKeyScan, error) {
	sorted := make([]int, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	for _, snap := range []*table.Snapshot{r.to, s, p} {
		if snap == nil {
			continue
		}
		sch := r.schemaOf(snap)
		sig := fmt.Sprint(snap.SnapshotID, sch.ID, sorted)
		if ks, ok := r.keyScans[sig]; ok {
			return ks, nil
		}
		names := map[int]string{}
		top := map[int]string{}
		for _, f := range sch.Fields() {
			top[f.ID] = f.Name
		}
		for _, id := range sorted {
			if n, ok := top[id]; ok {
				names[id] = n
			}
		}
		if len(names) < len(sorted) {
			continue
		}
		cols := make([]string, 0, len(sorted))
		for _, id := range sorted {
			cols = append(cols, names[id])
		}
		ks := &changesKeyScan{sig: sig, names: names,
			scan: r.tbl.Scan(table.WithSnapshotID(snap.SnapshotID), table.WithSelectedFields(cols...))}
		r.keyScans[sig] = ks
		return ks, nil
	}
	return nil, fmt.Errorf("timetravel: equality deletes of %s on fields %v: not all are top-level columns of the schema of snapshot %d", r.name, sorted, r.to.SnapshotID)
}

// changesRow is one row of the key columns a changesKeyScan read.
type changesRow struct {
	cols map[int]arrow.Array
	i    int
}

// key encodes the row's values of the fields ids.
func (r changesRow) key(buf []byte, ids []int) []byte {
	for _, id := range ids {
		buf = changesAppendValue(buf, r.cols[id], r.i)
	}
	return buf
}

// read calls fn for every row of df with its position.
func (ks *changesKeyScan) read(ctx context.Context, df iceberg.DataFile, fn func(pos int64, row changesRow)) error {
	_, recs, err := ks.scan.ReadTasks(ctx, []table.FileScanTask{{File: df}})
	if err != nil {
		return fmt.Errorf("timetravel: read the key columns of %s: %w", df.FilePath(), err)
	}
	var pos int64
	for rec, err := range recs {
		if err != nil {
			return fmt.Errorf("timetravel: read the key columns of %s: %w", df.FilePath(), err)
		}
		row := changesRow{cols: map[int]arrow.Array{}}
		for id, name := range ks.names {
			if i := rec.Schema().FieldIndices(name); len(i) == 1 {
				row.cols[id] = rec.Column(i[0])
			}
		}
		for i := range int(rec.NumRows()) {
			row.i = i
			fn(pos, row)
			pos++
		}
		rec.Release()
	}
	if pos != df.Count() {
		return fmt.Errorf("timetravel: read %d rows of %s, whose manifest entry says %d", pos, df.FilePath(), df.Count())
	}
	return nil
}

// changesAppendValue appends row i of a to a key: a tag (null or not) and
// the value, length-prefixed where its length varies. A missing column
// (a is nil) reads as null.
func changesAppendValue(b []byte, a arrow.Array, i int) []byte {
	if a == nil || a.IsNull(i) {
		return append(b, 0)
	}
	b = append(b, 1)
	switch a := a.(type) {
	case *array.Int64:
		return binary.BigEndian.AppendUint64(b, uint64(a.Value(i)))
	case *array.Int32:
		return binary.BigEndian.AppendUint64(b, uint64(int64(a.Value(i))))
	case *array.String:
		v := a.Value(i)
		return append(binary.AppendUvarint(b, uint64(len(v))), v...)
	case *array.Binary:
		v := a.Value(i)
		return append(binary.AppendUvarint(b, uint64(len(v))), v...)
	default:
		v := a.ValueStr(i)
		return append(binary.AppendUvarint(b, uint64(len(v))), v...)
	}
}

// changesEqSet is the keys one equality-delete file lists, on the field
// ids ids; slot numbers the distinct lists of ids of one reading, so that
// a row's key on them is encoded once.
type changesEqSet struct {
	ids  []int
	slot int
	keys map[string]struct{}
}

// eqSets reads the keys of the equality-delete files ds, each in the
// schema keyScan picks for its fields. slots numbers the distinct lists
// of field ids.
func (r *changesRun) eqSets(ds []changesEntry, p, s *table.Snapshot, slots map[string]int) ([]changesEqSet, error) {
	out := make([]changesEqSet, 0, len(ds))
	for _, d := range ds {
		ids := d.df.EqualityFieldIDs()
		set := map[int]bool{}
		for _, id := range ids {
			set[id] = true
		}
		ks, err := r.keyScan(set, p, s)
		if err != nil {
			return nil, err
		}
		byScan := r.eqKeys[d.key]
		if byScan == nil {
			byScan = map[string]map[string]struct{}{}
			r.eqKeys[d.key] = byScan
		}
		keys, ok := byScan[ks.sig]
		if !ok {
			keys = map[string]struct{}{}
			var buf []byte
			err := ks.read(r.ctx, d.df, func(_ int64, row changesRow) {
				buf = row.key(buf[:0], ids)
				keys[string(buf)] = struct{}{}
			})
			if err != nil {
				return nil, err
			}
			byScan[ks.sig] = keys
		}
		sig := fmt.Sprint(ids)
		slot, ok := slots[sig]
		if !ok {
			slot = len(slots)
			slots[sig] = slot
		}
		out = append(out, changesEqSet{ids: ids, slot: slot, keys: keys})
	}
	return out, nil
}

// changesMatcher tells whether a row's key is in one of a list of sets,
// encoding the row's key on each list of field ids once.
type changesMatcher struct {
	keys [][]byte
	have []bool
}

func newChangesMatcher(slots int) *changesMatcher {
	return &changesMatcher{keys: make([][]byte, slots), have: make([]bool, slots)}
}

// reset starts a new row.
func (m *changesMatcher) reset() { clear(m.have) }

func (m *changesMatcher) match(sets []changesEqSet, row changesRow) bool {
	for _, s := range sets {
		if !m.have[s.slot] {
			m.keys[s.slot] = row.key(m.keys[s.slot][:0], s.ids)
			m.have[s.slot] = true
		}
		if _, ok := s.keys[string(m.keys[s.slot])]; ok {
			return true
		}
	}
	return false
}
