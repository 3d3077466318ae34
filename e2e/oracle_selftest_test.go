package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/fileio"
	"github.com/floelake/floe/internal/gen"
)

// TestIndependentChecksCatchTampering proves that the oracle's pruned scans
// and ClickHouse checks (oracle_independent_test.go) can fail, and fail for
// the right reason. It ingests a few thousand records, checks the real
// tables with the whole oracle, then commits copies of the table that
// reference the same Parquet files with one thing wrong, the way a buggy
// writer would have committed them, and requires each fault to be named:
//
//   - one file's upper bound of ts below its real maximum, or one file's
//     day partition value one day off: filtered scans skip the file, in
//     iceberg-go and in ClickHouse;
//   - one file's record count inflated: the snapshot summary's total no
//     longer matches the rows ClickHouse reads;
//   - one file left out, or one file committed twice: some offsets are in
//     no table, or twice;
//   - a commit whose floe.offsets claim records its files do not hold;
//   - a row whose string column is not UTF-8.
//
// An untampered copy must pass every check.
func TestIndependentChecksCatchTampering(t *testing.T) {
	const topic = "clicks"
	ctx := context.Background()
	_, addr := startBroker(t, topic, 2)
	s := newSetup(t, addr, topic)
	cfg := s.config(t)
	n := startNode(t, cfg, testLogger(t, "node"))
	cl := newProducer(t, addr)
	var stats gen.ProducerStats
	p := n.n.Pipelines()[0]
	// Three batches, each committed before the next: several files per day.
	for i := range 3 {
		if err := produce(ctx, cl, topic, 2_000, 0, int64(91+i), &stats); err != nil {
			t.Fatalf("produce: %v", err)
		}
		want := stats.Produced.Load()
		waitFor(t, time.Minute, fmt.Sprintf("batch %d to be committed", i+1), func() (bool, string) {
			st := p.Stats()
			return st.Committed+st.DeadLettersCommitted == want, fmt.Sprintf("stats %+v, want %d", st, want)
		})
	}
	n.stop(t)
	orig := checkExactlyOnce(t, cfg, producedOf(&stats))
	if t.Failed() {
		t.FailNow()
	}

	pc := cfg.Pipelines[0]
	ends := mustEndOffsets(t, addr, topic)
	src, err := readTopic(ctx, addr, topic, ends)
	if err != nil {
		t.Fatal(err)
	}
	cat := openCatalog(t, cfg)
	dlq, err := cat.LoadTable(ctx, catalog.Ident(pc.DeadLetter()))
	if err != nil {
		t.Fatal(err)
	}
	dlqRows := countRows(t, dlq)
	tasks, err := orig.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var files []iceberg.DataFile
	for _, task := range tasks {
		files = append(files, task.File)
	}
	// Largest first, so "one file" is one that matters.
	slices.SortFunc(files, func(a, b iceberg.DataFile) int { return int(b.Count() - a.Count()) })
	if len(files) < 3 {
		t.Fatalf("precondition: want at least 3 data files, the table has %d", len(files))
	}
	spec, sch := orig.Spec(), orig.Schema()
	tsField, ok := sch.FindFieldByName("ts")
	if !ok {
		t.Fatal("no ts column")
	}
	tsID := tsField.ID
	partID := spec.Field(0).FieldID

	// The ts median, where pruneCases cuts (ts >= median): a file holding
	// rows from the median on loses them to that scan when its upper bound
	// drops below the median. Preferably a file whose bounds straddle the
	// median, so that the wrong upper bound is still above its lower one.
	rows := scanRows(t, orig)
	tss := make([]int64, len(rows))
	for i, r := range rows {
		tss[i] = r.ts
	}
	slices.Sort(tss)
	median := tss[len(tss)/2]
	lowered := -1
	for i, f := range files {
		lo, hi := tsBound(f.LowerBoundValues()[tsID]), tsBound(f.UpperBoundValues()[tsID])
		if hi >= median && (lowered < 0 || lo < median) {
			lowered = i
			if lo < median {
				break
			}
		}
	}
	if lowered < 0 {
		t.Fatalf("precondition: no data file has a ts upper bound at or above the median %d", median)
	}

	chdbDir := requireChdb(t)
	offsets := commit.Offsets{topic: ends}.Encode()
	floeProps := iceberg.Properties{commit.PropPipeline: pc.Name, commit.PropOffsets: offsets}
	others := func(i int) []iceberg.DataFile {
		return slices.Concat(files[:i], files[i+1:])
	}

	type tamperCase struct {
		name    string
		commits func(tbl *table.Table) [][]iceberg.DataFile // each commit's files
		props   []iceberg.Properties                        // each commit's snapshot properties (default none)
		// want lists text each check's problems must contain (none: no
		// problems at all).
		wantPruned, wantCH []string
	}
	cases := []tamperCase{
		{
			name:    "untampered",
			commits: func(*table.Table) [][]iceberg.DataFile { return [][]iceberg.DataFile{files} },
		},
		{
			name: "upper_bound",
			commits: func(*table.Table) [][]iceberg.DataFile {
				f := editDataFile(t, files[lowered], spec, sch, func(r map[string]json.RawMessage) {
					setMapEntry(t, r, "upper", tsID, binary.LittleEndian.AppendUint64(nil, uint64(median-1)))
				})
				return [][]iceberg.DataFile{append(others(lowered), f)}
			},
			wantPruned: []string{"the scan ts >= ", " missing"},
			wantCH:     []string{"WHERE ts >= fromUnixTimestamp64Micro(toInt64(" + strconv.FormatInt(median, 10) + ")"},
		},
		{
			name: "partition_value",
			commits: func(*table.Table) [][]iceberg.DataFile {
				f := editDataFile(t, files[0], spec, sch, func(r map[string]json.RawMessage) {
					day := int32(binary.LittleEndian.Uint32(mapEntry(t, r, "partition", partID)))
					setMapEntry(t, r, "partition", partID, binary.LittleEndian.AppendUint32(nil, uint32(day+1)))
				})
				return [][]iceberg.DataFile{append(others(0), f)}
			},
			wantPruned: []string{"the scan ts in day ", " missing"},
			wantCH:     []string{"WHERE ts >= ", " AND ts <= "},
		},
		{
			name: "record_count",
			commits: func(*table.Table) [][]iceberg.DataFile {
				f := editDataFile(t, files[0], spec, sch, func(r map[string]json.RawMessage) {
					r["records"] = json.RawMessage(strconv.FormatInt(files[0].Count()+1000, 10))
				})
				return [][]iceberg.DataFile{append(others(0), f)}
			},
			wantCH: []string{"count() = ", "(the current snapshot's summary)"},
		},
		{
			name:    "file_left_out",
			commits: func(*table.Table) [][]iceberg.DataFile { return [][]iceberg.DataFile{others(0)} },
			wantCH:  []string{"offsets are not exactly once in exactly one table", ": 0 table rows, 0 dead-letter rows"},
		},
		{
			name:    "file_twice",
			commits: func(*table.Table) [][]iceberg.DataFile { return [][]iceberg.DataFile{files, files[:1]} },
			wantCH:  []string{"offsets are not exactly once in exactly one table", ": 2 table rows, 0 dead-letter rows"},
		},
		{
			// Three commits that each claim every offset: the middle one
			// holds only the first two files.
			name: "offsets_ahead_of_data",
			commits: func(*table.Table) [][]iceberg.DataFile {
				return [][]iceberg.DataFile{files[:1], files[1:2], files[2:]}
			},
			props:  []iceberg.Properties{floeProps, floeProps, floeProps},
			wantCH: []string{"at snapshot ", "of the current rows below those offsets"},
		},
		{
			name: "invalid_utf8",
			commits: func(tbl *table.Table) [][]iceberg.DataFile {
				return [][]iceberg.DataFile{append(slices.Clone(files), writeRow(t, tbl, files[0], tsID, "\xff\xfe not UTF-8", ends[0]))}
			},
			wantCH: []string{"1 rows have invalid UTF-8 in the string column event_id"},
		},
	}

	// The copies, and what the oracle does with iceberg-go on them.
	reads := make([]independentRead, len(cases))
	t.Run("iceberg-go", func(t *testing.T) {
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tbl, _, err := catalog.EnsureTable(ctx, cat, catalog.Ident("e2e.tampered_"+tc.name), sch, spec, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !tbl.Schema().Equals(sch) || !tbl.Spec().Equals(spec) {
					t.Fatalf("precondition: the copy's schema or spec differs from the table's:\n%s %s\n%s %s", tbl.Schema(), tbl.Spec(), sch, spec)
				}
				for j, fs := range tc.commits(tbl) {
					var props iceberg.Properties
					if j < len(tc.props) {
						props = tc.props[j]
					}
					tx := tbl.NewTransaction()
					if err := tx.AddDataFiles(ctx, fs, props, table.WithoutDuplicateCheck()); err != nil {
						t.Fatalf("commit %d: %v", j+1, err)
					}
					if tbl, err = tx.Commit(ctx); err != nil {
						t.Fatalf("commit %d: %v", j+1, err)
					}
				}
				rows := scanRows(t, tbl)
				pcs, pruned, err := checkPrunedScans(ctx, tbl, rows)
				if err != nil {
					t.Fatal(err)
				}
				expectProblems(t, "pruned scans", pruned, tc.wantPruned)
				reads[i] = independentRead{
					pipeline: pc.Name, topic: topic, main: tbl, dlq: dlq, storage: cfg.Storage,
					ends: ends, src: src, mainRows: int64(len(rows)), dlqRows: dlqRows, cases: pcs,
				}
			})
		}
	})
	if t.Failed() || chdbDir == "" {
		return
	}

	// All copies in one ClickHouse session.
	summaries, problems, err := checkWithClickHouse(ctx, chdbDir, reads...)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("clickhouse", func(t *testing.T) {
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Log(summaries[i])
				expectProblems(t, "ClickHouse", problems[i], tc.wantCH)
			})
		}
	})
}

// expectProblems requires every wanted text in one of the problems, or no
// problems when nothing is wanted.
func expectProblems(t *testing.T, check string, problems, want []string) {
	t.Helper()
	all := strings.Join(problems, "\n")
	if len(want) == 0 {
		if len(problems) > 0 {
			t.Errorf("%s: want no problems, got:\n%s", check, all)
		}
		return
	}
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("%s: want a problem containing %q, got:\n%s", check, w, all)
		}
	}
	if !t.Failed() {
		t.Logf("%s found, as it must:\n%s", check, all)
	}
}

// scanRows is the oracle's unfiltered scan for the pruned scans.
func scanRows(t *testing.T, tbl *table.Table) []scanRow {
	t.Helper()
	at, err := tbl.Scan(table.WithSelectedFields(scanRowColumns...)).ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	var rows []scanRow
	if err := eachRow(at, scanRowColumns, func(cols []arrow.Array, i int) { rows = append(rows, scanRowOf(cols, i)) }); err != nil {
		t.Fatal(err)
	}
	return rows
}

func countRows(t *testing.T, tbl *table.Table) int64 {
	t.Helper()
	at, err := tbl.Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	return at.NumRows()
}

// tsBound decodes a timestamp bound (Iceberg's single-value serialization:
// 8-byte little-endian microseconds).
func tsBound(b []byte) int64 {
	if len(b) != 8 {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(b))
}

// editDataFile rewrites a data file's manifest entry through floe's data
// file codec (the form the cluster ledger carries): edit gets its JSON
// record, whose maps are keyed by field id and hold base64 bytes.
func editDataFile(t *testing.T, f iceberg.DataFile, spec iceberg.PartitionSpec, sch *iceberg.Schema, edit func(map[string]json.RawMessage)) iceberg.DataFile {
	t.Helper()
	b, err := fileio.EncodeDataFiles([]iceberg.DataFile{f})
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]json.RawMessage
	if err := json.Unmarshal(b, &recs); err != nil || len(recs) != 1 {
		t.Fatalf("decode %s: %v", b, err)
	}
	edit(recs[0])
	if b, err = json.Marshal(recs); err != nil {
		t.Fatal(err)
	}
	out, err := fileio.DecodeDataFiles(b, spec, sch)
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

func mapEntry(t *testing.T, r map[string]json.RawMessage, field string, id int) []byte {
	t.Helper()
	var m map[string][]byte
	if err := json.Unmarshal(r[field], &m); err != nil {
		t.Fatalf("%s: %v", field, err)
	}
	v, ok := m[strconv.Itoa(id)]
	if !ok {
		t.Fatalf("%s has no entry for field %d: %s", field, id, r[field])
	}
	return v
}

func setMapEntry(t *testing.T, r map[string]json.RawMessage, field string, id int, v []byte) {
	t.Helper()
	var m map[string][]byte
	if err := json.Unmarshal(r[field], &m); err != nil {
		t.Fatalf("%s: %v", field, err)
	}
	m[strconv.Itoa(id)] = v
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	r[field] = b
}

// writeRow writes a data file holding one row with the given event id, in
// like's partition (at its lowest ts) and at Kafka partition 0 offset
// offset, and returns it.
func writeRow(t *testing.T, tbl *table.Table, like iceberg.DataFile, tsID int, eventID string, offset int64) iceberg.DataFile {
	t.Helper()
	ctx := context.Background()
	info, err := fileio.InfoFromTable(ctx, tbl)
	if err != nil {
		t.Fatal(err)
	}
	rb := array.NewRecordBuilder(memory.DefaultAllocator, info.ArrowSchema)
	defer rb.Release()
	for i, f := range info.ArrowSchema.Fields() {
		b := rb.Field(i)
		switch f.Name {
		case "event_id":
			b.(*array.StringBuilder).Append(eventID)
		case "ts":
			b.(*array.TimestampBuilder).Append(arrow.Timestamp(tsBound(like.LowerBoundValues()[tsID])))
		case "_kafka_partition":
			b.(*array.Int32Builder).Append(0)
		case "_kafka_offset":
			b.(*array.Int64Builder).Append(offset)
		default:
			b.AppendNull()
		}
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	w := fileio.NewWriter(info, like.Partition(), fileio.Options{})
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	out, err := w.Close(ctx)
	if err != nil || len(out) != 1 {
		t.Fatalf("write a data file: %v (%d files)", err, len(out))
	}
	return out[0]
}
