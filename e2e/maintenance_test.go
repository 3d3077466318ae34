package e2e

// Table maintenance (compaction, snapshot expiry, orphan cleanup) as floe
// processes run it beside their table writers, checked from outside: the
// test process loads the tables from the catalog, reads snapshots back
// against a model, lists the files under the tables' locations, and lets
// ClickHouse read the compacted and expired tables.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/gen"
	"github.com/floelake/floe/internal/procrig"
)

// ---------------------------------------------------------------------------
// Configuration

// maintenanceYAML is a configuration's maintenance section, each task's
// settings in YAML flow style.
func maintenanceYAML(compaction, expiry, orphans string) string {
	return "maintenance:\n  compaction: " + compaction + "\n  expiry: " + expiry + "\n  orphans: " + orphans + "\n"
}

const (
	// fastCompaction looks at the files every 300ms and compacts two files
	// of one size tier into one, up to 1MiB (the smallest target allowed):
	// with 200ms commits of a few hundred records, nearly every run
	// commits a rewrite.
	fastCompaction = "{enabled: true, every: 300ms, target_file_size: 1MiB, fan_in: 2, max_small_files: 8, max_bytes_per_run: 4MiB}"
	// disabled turns a task off.
	disabled = "{enabled: false}"
)

// startCleanProducer is startProducer without malformed records: every
// offset of the topic is a row of the table, so the rows of a snapshot are
// known from its offsets alone.
func startCleanProducer(t testing.TB, broker, topic string, minRecords, chunk int64, rate int, seed int64) *producer {
	return runProducer(t, broker, minRecords, func(ctx context.Context, cl *kgo.Client, i int64, stats *gen.ProducerStats) error {
		return gen.Produce(ctx, cl, gen.ProducerConfig{
			Topic: topic, Kind: gen.Clicks, Rate: rate, Limit: chunk,
			Gen: gen.Config{Seed: seed + i, MalformedRate: -1},
		}, stats)
	})
}

// metricSample reads one sample ("name{labels}") of the /metrics of the
// node at addr; an absent sample is 0.
func metricSample(addr, sample string) (float64, error) {
	m, err := readMetrics("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	return m[sample], nil
}

// maintSample names a per-table maintenance series; task "" for those
// without a task label.
func maintSample(name, tableName, task string) string {
	if task == "" {
		return fmt.Sprintf("%s{table=%q}", name, tableName)
	}
	return fmt.Sprintf("%s{table=%q,task=%q}", name, tableName, task)
}

// counters sums samples of a node's /metrics over its incarnations: a
// SIGKILLed process takes its counters with it, so the last values read
// from each incarnation are added up.
type counters struct {
	addr      string
	samples   []string
	done, now map[string]float64
}

func newCounters(addr string, samples ...string) *counters {
	return &counters{addr: addr, samples: samples, done: map[string]float64{}, now: map[string]float64{}}
}

// read reads the running incarnation's values (nothing while it does not
// answer).
func (c *counters) read() {
	m, err := readMetrics("http://" + c.addr + "/metrics")
	if err != nil {
		return
	}
	for _, s := range c.samples {
		c.now[s] = m[s]
	}
}

// restarted starts a new incarnation.
func (c *counters) restarted() {
	for s, v := range c.now {
		c.done[s] += v
	}
	clear(c.now)
}

func (c *counters) total(sample string) float64 { return c.done[sample] + c.now[sample] }

// ---------------------------------------------------------------------------
// Snapshots against the model

// summaryOffsets returns the floe.offsets of topic that a snapshot's
// summary carries for the pipeline.
func summaryOffsets(s *table.Snapshot, pipeline, topic string) (map[int32]int64, bool, error) {
	if s == nil || s.Summary == nil || s.Summary.Properties[commit.PropPipeline] != pipeline {
		return nil, false, nil
	}
	v, ok := s.Summary.Properties[commit.PropOffsets]
	if !ok {
		return nil, false, nil
	}
	off, err := commit.ParseOffsets(v)
	if err != nil {
		return nil, false, fmt.Errorf("snapshot %d: %w", s.SnapshotID, err)
	}
	return off[topic], true, nil
}

// offsetRows reads the Kafka partition and offset of every row of the
// table at snapshot id; rows without them are under partition -1.
func offsetRows(ctx context.Context, tbl *table.Table, id int64) (map[int32][]int64, error) {
	cols := []string{"_kafka_partition", "_kafka_offset"}
	at, err := tbl.Scan(table.WithSnapshotID(id), table.WithSelectedFields(cols...)).ToArrowTable(ctx)
	if err != nil {
		return nil, err
	}
	defer at.Release()
	out := map[int32][]int64{}
	err = eachRow(at, cols, func(c []arrow.Array, i int) {
		if c[0].IsNull(i) || c[1].IsNull(i) {
			out[-1] = append(out[-1], -1)
			return
		}
		p := c[0].(*array.Int32).Value(i)
		out[p] = append(out[p], c[1].(*array.Int64).Value(i))
	})
	return out, err
}

// modelProblems compares rows with the model of a snapshot whose offsets
// are off: for every partition, exactly the offsets below off, each once.
func modelProblems(rows map[int32][]int64, off map[int32]int64) []string {
	var probs []string
	parts := map[int32]bool{}
	for p := range rows {
		parts[p] = true
	}
	for p := range off {
		parts[p] = true
	}
	for _, p := range slices.Sorted(maps.Keys(parts)) {
		os := rows[p]
		if p < 0 {
			probs = append(probs, fmt.Sprintf("%d rows without a Kafka partition or offset", len(os)))
			continue
		}
		end := off[p]
		seen := make([]uint8, max(end, 0))
		var beyond, dups []int64
		for _, o := range os {
			if o < 0 || o >= end {
				beyond = append(beyond, o)
				continue
			}
			if seen[o] > 0 {
				dups = append(dups, o)
			}
			if seen[o] < 255 {
				seen[o]++
			}
		}
		var missing []string
		nmissing := 0
		for o := int64(0); o < end; o++ {
			if seen[o] != 0 {
				continue
			}
			from := o
			for o+1 < end && seen[o+1] == 0 {
				o++
			}
			nmissing += int(o - from + 1)
			if len(missing) < 5 {
				missing = append(missing, fmt.Sprintf("%d..%d", from, o))
			}
		}
		if nmissing > 0 {
			probs = append(probs, fmt.Sprintf("partition %d: %d offsets below %d missing (%s)", p, nmissing, end, strings.Join(missing, " ")))
		}
		if len(dups) > 0 {
			probs = append(probs, fmt.Sprintf("partition %d: %d rows duplicate another (offsets %v)", p, len(dups), dups[:min(len(dups), 5)]))
		}
		if len(beyond) > 0 {
			probs = append(probs, fmt.Sprintf("partition %d: %d rows at offsets outside [0, %d) (%v)", p, len(beyond), end, beyond[:min(len(beyond), 5)]))
		}
	}
	return probs
}

// snapWatch follows one table's snapshots from the test process. Each poll
// notes the snapshots the table retains that it has not seen, counting
// them by operation, and can read back against the model every new
// replace snapshot (a compaction) and the current snapshot when it is new.
type snapWatch struct {
	cat                   *catalog.Catalog
	name, pipeline, topic string

	tbl     *table.Table              // as of the last poll (nil before the table exists)
	ops     map[int64]table.Operation // every snapshot seen, by id
	checked map[int64]bool            // snapshots read back
	offsets map[int32]int64           // the current offsets at the last poll
	appends int                       // append snapshots seen: ingest commits
	replace int                       // replace snapshots seen: compactions
	checks  int                       // snapshots read back against the model
	gone    int                       // snapshots expired before they could be read back
	failing time.Time                 // since when loads fail (zero: the last one worked)
	lastErr error                     // the last load error
	maxKept int                       // the most snapshots retained at once
}

func newSnapWatch(cat *catalog.Catalog, name, pipeline, topic string) *snapWatch {
	return &snapWatch{cat: cat, name: name, pipeline: pipeline, topic: topic,
		ops: map[int64]table.Operation{}, checked: map[int64]bool{}}
}

// poll loads the table and notes its new snapshots. With check it reads
// back the new replace snapshots and the current one, and checks that a
// replace snapshot carries its parent's offsets (a compaction moves no
// offset) and that the current offsets never go back. It returns the
// violations; a table that cannot be loaded is not one (loaded reports
// whether it was), the caller bounds how long that may last.
func (w *snapWatch) poll(ctx context.Context, check bool) (problems []string, loaded bool) {
	tbl, err := w.cat.LoadTable(ctx, catalog.Ident(w.name))
	if err != nil {
		if w.failing.IsZero() {
			w.failing = time.Now()
		}
		w.lastErr = err
		return nil, false
	}
	w.failing, w.lastErr = time.Time{}, nil
	w.tbl = tbl
	meta := tbl.Metadata()
	w.maxKept = max(w.maxKept, len(meta.Snapshots()))
	var toCheck []int64
	for _, s := range meta.Snapshots() {
		if _, ok := w.ops[s.SnapshotID]; ok {
			continue
		}
		var op table.Operation
		if s.Summary != nil {
			op = s.Summary.Operation
		}
		w.ops[s.SnapshotID] = op
		switch op {
		case table.OpAppend:
			w.appends++
		case table.OpReplace:
			w.replace++
			off, ok, err := summaryOffsets(&s, w.pipeline, w.topic)
			switch {
			case err != nil:
				problems = append(problems, err.Error())
			case !ok:
				problems = append(problems, fmt.Sprintf("replace snapshot %d carries no floe.offsets of pipeline %s", s.SnapshotID, w.pipeline))
			case s.ParentSnapshotID != nil:
				parent := meta.SnapshotByID(*s.ParentSnapshotID)
				if parent == nil {
					break // expired already
				}
				poff, _, err := summaryOffsets(parent, w.pipeline, w.topic)
				if err != nil {
					problems = append(problems, err.Error())
				} else if !maps.Equal(off, poff) {
					problems = append(problems, fmt.Sprintf("replace snapshot %d has offsets %s, its parent %d (%s) %s: a compaction moved the offsets",
						s.SnapshotID, fmtOffsets(off), parent.SnapshotID, parent.Summary.Operation, fmtOffsets(poff)))
				}
			}
			toCheck = append(toCheck, s.SnapshotID)
		default:
			problems = append(problems, fmt.Sprintf("snapshot %d has operation %q, want append or replace", s.SnapshotID, op))
		}
	}
	var curOff map[int32]int64
	cur := meta.CurrentSnapshot()
	if cur != nil {
		off, id, found, err := commit.TableOffsets(tbl, w.pipeline)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("offsets of the current snapshot %d: %v", cur.SnapshotID, err))
		case !found:
			problems = append(problems, fmt.Sprintf("the current snapshot %d has no floe.offsets in its lineage", cur.SnapshotID))
		case id != cur.SnapshotID:
			problems = append(problems, fmt.Sprintf("the current snapshot %d carries no floe.offsets (they come from %d)", cur.SnapshotID, id))
		default:
			curOff = off[w.topic]
			for p, v := range w.offsets {
				if curOff[p] < v {
					problems = append(problems, fmt.Sprintf("the committed offset of partition %d went back from %d to %d (current snapshot %d)", p, v, curOff[p], cur.SnapshotID))
				}
			}
			w.offsets = curOff
			toCheck = append(toCheck, cur.SnapshotID)
		}
	}
	if !check {
		return problems, true
	}
	for _, id := range toCheck {
		if w.checked[id] {
			continue
		}
		w.checked[id] = true
		off := curOff
		if cur == nil || id != cur.SnapshotID {
			off, _, _ = summaryOffsets(meta.SnapshotByID(id), w.pipeline, w.topic)
		}
		rows, err := offsetRows(ctx, tbl, id)
		if err != nil {
			// Expiry may have removed the snapshot (and its files) since the
			// load: then it is gone, not broken.
			again, lerr := w.cat.LoadTable(ctx, catalog.Ident(w.name))
			if lerr == nil && again.Metadata().SnapshotByID(id) == nil {
				w.gone++
				continue
			}
			if lerr == nil {
				rows, err = offsetRows(ctx, again, id)
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("snapshot %d (%s) is retained but cannot be read: %v", id, w.ops[id], err))
				continue
			}
		}
		w.checks++
		for _, p := range modelProblems(rows, off) {
			problems = append(problems, fmt.Sprintf("snapshot %d (%s, offsets %s): %s", id, w.ops[id], fmtOffsets(off), p))
		}
	}
	return problems, true
}

// ---------------------------------------------------------------------------
// Files

// bareLoc drops the scheme of a local location.
func bareLoc(loc string) string { return strings.TrimPrefix(loc, "file://") }

// tableRefs are the files a table's metadata names.
type tableRefs struct {
	// needed are the files a retained snapshot needs: the current
	// metadata file, every snapshot's manifest list and manifests, and the
	// data and delete files their entries hold (not DELETED ones).
	needed map[string]bool
	// named adds the files named only in passing: the metadata log and the
	// files of DELETED manifest entries.
	named map[string]bool
	// liveData are the current snapshot's data files.
	liveData map[string]bool
}

// referencedFiles walks the table's metadata, manifest lists and
// manifests.
func referencedFiles(ctx context.Context, tbl *table.Table) (tableRefs, error) {
	r := tableRefs{needed: map[string]bool{}, named: map[string]bool{}, liveData: map[string]bool{}}
	need := func(p string) { r.needed[bareLoc(p)] = true; r.named[bareLoc(p)] = true }
	need(tbl.MetadataLocation())
	for e := range tbl.Metadata().PreviousFiles() {
		r.named[bareLoc(e.MetadataFile)] = true
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return r, err
	}
	cur := tbl.CurrentSnapshot()
	for _, s := range tbl.Metadata().Snapshots() {
		need(s.ManifestList)
		mans, err := s.Manifests(fsys)
		if err != nil {
			return r, fmt.Errorf("snapshot %d: manifest list %s: %w", s.SnapshotID, s.ManifestList, err)
		}
		for _, m := range mans {
			need(m.FilePath())
			for e, err := range m.Entries(fsys, false) {
				if err != nil {
					return r, fmt.Errorf("snapshot %d: manifest %s: %w", s.SnapshotID, m.FilePath(), err)
				}
				p := bareLoc(e.DataFile().FilePath())
				r.named[p] = true
				if e.Status() == iceberg.EntryStatusDELETED {
					continue
				}
				r.needed[p] = true
				if cur != nil && s.SnapshotID == cur.SnapshotID && e.DataFile().ContentType() == iceberg.EntryContentData {
					r.liveData[p] = true
				}
			}
		}
	}
	return r, nil
}

// localFiles lists the files under a local table's location with their
// modification times.
func localFiles(tbl *table.Table) (map[string]time.Time, error) {
	dir, ok := catalog.LocalPath(tbl.Location())
	if !ok {
		return nil, fmt.Errorf("table location %s is not local", tbl.Location())
	}
	out := map[string]time.Time{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while listed
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		out[p] = info.ModTime()
		return nil
	})
	return out, err
}

// unreferenced lists the files under the table's location its metadata
// does not name, with their modification times.
func unreferenced(ctx context.Context, tbl *table.Table) (map[string]time.Time, tableRefs, error) {
	refs, err := referencedFiles(ctx, tbl)
	if err != nil {
		return nil, refs, err
	}
	files, err := localFiles(tbl)
	if err != nil {
		return nil, refs, err
	}
	for p := range files {
		if refs.named[p] {
			delete(files, p)
		}
	}
	return files, refs, nil
}

// liveDataFiles counts the current snapshot's data files, and those of
// them a replace snapshot (a compaction) added; ops knows the operations of
// snapshots the table may no longer retain.
func liveDataFiles(ctx context.Context, tbl *table.Table, ops map[int64]table.Operation) (live, compacted int, err error) {
	cur := tbl.CurrentSnapshot()
	if cur == nil {
		return 0, 0, nil
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return 0, 0, err
	}
	mans, err := cur.Manifests(fsys)
	if err != nil {
		return 0, 0, err
	}
	for _, m := range mans {
		for e, err := range m.Entries(fsys, true) {
			if err != nil {
				return 0, 0, err
			}
			if e.DataFile().ContentType() != iceberg.EntryContentData {
				continue
			}
			live++
			op, ok := ops[e.SnapshotID()]
			if s := tbl.Metadata().SnapshotByID(e.SnapshotID()); !ok && s != nil && s.Summary != nil {
				op = s.Summary.Operation
			}
			if op == table.OpReplace {
				compacted++
			}
		}
	}
	return live, compacted, nil
}

// missingFiles returns the files a table needs that do not exist.
func missingFiles(refs tableRefs) []string {
	var out []string
	for p := range refs.needed {
		if _, err := os.Stat(p); err != nil {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func fewNames(ps []string) string {
	if len(ps) > 5 {
		return strings.Join(ps[:5], ", ") + fmt.Sprintf(", ... (%d in all)", len(ps))
	}
	return strings.Join(ps, ", ")
}

// ---------------------------------------------------------------------------
// Tests

// TestMaintenanceUnderKills runs one `floe serve` with maintenance as
// aggressive as it gets (compaction every 300ms, two files at a time;
// expiry every 500ms keeping every snapshot of the last 2 seconds and one
// per second of the last 10; orphan cleanup every second with a 3-second
// grace), 200ms commits and a steady stream of records, and SIGKILLs and
// restarts it at random moments, some of them right after a compaction
// committed. The test process follows the table all along: every
// compaction it sees and every new current snapshot must read back as
// exactly the records below the snapshot's floe.offsets, each once; a
// compaction carries its parent's offsets; the committed offsets never go
// back. It runs until at least 200 commits and 50 compactions were seen,
// then the usual oracle must hold.
func TestMaintenanceUnderKills(t *testing.T) {
	if testing.Short() {
		t.Skip("the maintenance kill test takes about a minute")
	}
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6d61696e74))
	const (
		topic          = "clicks"
		rate           = 1_500 // records per second
		minCommits     = 200
		minCompactions = 50
		minKills       = 6
	)
	_, addr := startBroker(t, topic, 3)
	s := newSetup(t, addr, topic)
	s.CommitInterval = 200 * time.Millisecond
	s.HTTPAddr = freeAddr(t)
	s.Extra = maintenanceYAML(fastCompaction,
		"{enabled: true, every: 500ms, keep: [{every: 0s, for: 2s}, {every: 1s, for: 10s}]}",
		"{enabled: true, every: 1s, grace: 3s}")
	cfg := s.config(t)
	cfgPath := s.writeConfig(t)
	bin := floeBinary(t)
	cat := openCatalog(t, cfg)
	prod := startCleanProducer(t, addr, topic, 0, 3_000, rate, 7_000)
	w := newSnapWatch(cat, s.Table, s.Pipeline, topic)
	compactions := maintSample("floe_maintenance_runs_total", s.Table, "compaction")
	expiries := maintSample("floe_maintenance_runs_total", s.Table, "expiry")
	orphans := maintSample("floe_maintenance_orphan_files_total", s.Table, "")
	failures := []string{
		maintSample("floe_maintenance_failures_total", s.Table, "compaction"),
		maintSample("floe_maintenance_failures_total", s.Table, "expiry"),
		maintSample("floe_maintenance_failures_total", s.Table, "orphans"),
	}
	metrics := newCounters(s.HTTPAddr, append([]string{compactions, expiries, orphans}, failures...)...)

	// poll follows the table once, failing the test on a violation or on a
	// table that cannot be loaded for 30 seconds once it exists.
	poll := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		problems, loaded := w.poll(ctx, true)
		if len(problems) > 0 {
			t.Fatalf("after %d commits and %d compactions seen:\n  %s", w.appends, w.replace, strings.Join(problems, "\n  "))
		}
		notYet := w.tbl == nil && errors.Is(w.lastErr, icecat.ErrNoSuchTable)
		if !loaded && !notYet && time.Since(w.failing) > 30*time.Second {
			t.Fatalf("could not load %s for 30 seconds: %v", s.Table, w.lastErr)
		}
	}

	inc := 0
	launch := func() *procrig.Proc {
		logPath := filepath.Join(s.Dir, fmt.Sprintf("floe-%02d.log", inc))
		showLogOnFailure(t, logPath)
		return startFloe(t, bin, cfgPath, logPath)
	}
	// Each incarnation is killed either at a random moment or right
	// after the test sees a compaction it committed (within 300ms).
	type plan struct {
		afterCompaction bool
		at              time.Time // a random moment; for afterCompaction, the latest
		replacesBefore  int
		killAt          time.Time // afterCompaction: set once a compaction is seen
	}
	newPlan := func() plan {
		if rng.IntN(3) == 0 {
			return plan{afterCompaction: true, at: time.Now().Add(8 * time.Second), replacesBefore: w.replace}
		}
		return plan{at: time.Now().Add(time.Duration(500+rng.IntN(3500)) * time.Millisecond)}
	}

	start := time.Now()
	// About a minute on an idle machine; the deadline leaves room for a
	// loaded one, where each incarnation gets less done.
	deadline := start.Add(5 * time.Minute)
	proc := launch()
	incStart := time.Now()
	pl := newPlan()
	var kills int
	for {
		poll()
		if proc.Exited() {
			t.Fatalf("incarnation %d exited by itself: %s", inc, proc.State())
		}
		metrics.read()
		if w.appends >= minCommits && w.replace >= minCompactions && kills >= minKills {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %d commits, %d compactions and %d kills seen, want at least %d, %d and %d",
				time.Since(start).Round(time.Second), w.appends, w.replace, kills, minCommits, minCompactions, minKills)
		}
		now := time.Now()
		if pl.afterCompaction && pl.killAt.IsZero() && w.replace > pl.replacesBefore && now.Sub(incStart) > time.Second {
			pl.killAt = now.Add(time.Duration(rng.IntN(300)) * time.Millisecond)
		}
		due := now.After(pl.at) || !pl.killAt.IsZero() && now.After(pl.killAt)
		if !due {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if err := proc.Kill(); err != nil {
			t.Fatalf("incarnation %d: %v", inc, err)
		}
		kills++
		metrics.restarted()
		how := "at a random moment"
		if pl.afterCompaction {
			how = "after a compaction"
			if pl.killAt.IsZero() {
				how = "no compaction within 8s"
			}
		}
		t.Logf("incarnation %2d: SIGKILL %-24s after %5s; seen so far: %d commits, %d compactions (metric: %.0f), %d snapshots read back, %d expired first, offsets %s",
			inc, how, time.Since(incStart).Round(10*time.Millisecond), w.appends, w.replace, metrics.total(compactions), w.checks, w.gone, fmtOffsets(w.offsets))
		inc++
		proc = launch()
		incStart = time.Now()
		pl = newPlan()
	}

	// The last incarnation commits every record.
	want := prod.finish(t, time.Minute)
	ends := mustEndOffsets(t, addr, topic)
	waitFor(t, 2*time.Minute, "the last incarnation to commit every record", func() (bool, string) {
		poll()
		if proc.Exited() {
			t.Fatalf("the last incarnation exited by itself: %s", proc.State())
		}
		return reached(w.offsets, ends), fmt.Sprintf("table offsets %s, end offsets %s", fmtOffsets(w.offsets), fmtOffsets(ends))
	})
	metrics.read()
	kept := len(w.tbl.Metadata().Snapshots())
	stopGracefully(t, proc)
	poll()
	t.Logf("%d incarnations in %s: %d commits and %d compactions seen, %d snapshots read back against the model, %d expired before they could be; at most %d snapshots retained at once, %d at the end",
		inc+1, time.Since(start).Round(time.Second), w.appends, w.replace, w.checks, w.gone, w.maxKept, kept)
	t.Logf("/metrics summed over the incarnations: %.0f compactions, %.0f expiries that removed snapshots, %.0f orphan files removed; failed runs: %.0f compaction, %.0f expiry, %.0f orphan cleanup",
		metrics.total(compactions), metrics.total(expiries), metrics.total(orphans), metrics.total(failures[0]), metrics.total(failures[1]), metrics.total(failures[2]))
	if metrics.total(expiries) == 0 {
		t.Errorf("no expiry removed a snapshot in any incarnation")
	}
	if kept > 60 {
		t.Errorf("%d snapshots retained at the end: expiry (every 500ms, keeping 10 seconds) should keep a few dozen at most", kept)
	}
	checkExactlyOnce(t, cfg, want)
}

// TestAggressiveExpiryAfterCompaction: a table compacted while records
// stream in, then expired down to its current snapshot by a restart with
// expiry keeping nothing else (keep: every snapshot of the last
// millisecond). The files only the expired snapshots referenced are
// deleted, the current ones are not; a SIGKILLed and restarted floe finds
// its offsets on the cut history and ingests what comes next, nothing
// twice and nothing lost, and the snapshots stay few.
func TestAggressiveExpiryAfterCompaction(t *testing.T) {
	const topic = "clicks"
	_, addr := startBroker(t, topic, 3)
	s := newSetup(t, addr, topic)
	s.CommitInterval = 200 * time.Millisecond
	s.HTTPAddr = freeAddr(t)
	s.Extra = maintenanceYAML(fastCompaction, disabled, disabled)
	cfg := s.config(t)
	cfgPath := s.writeConfig(t)
	bin := floeBinary(t)
	cat := openCatalog(t, cfg)
	cl := newProducer(t, addr)
	ctx := context.Background()
	var stats gen.ProducerStats
	tables := []string{s.Table, s.Table + "__dlq"}
	began := time.Now()

	// 1. Ingest with compaction and no expiry: the history grows.
	log1 := filepath.Join(s.Dir, "floe-1.log")
	showLogOnFailure(t, log1)
	p1 := startFloe(t, bin, cfgPath, log1)
	if err := produce(ctx, cl, topic, 20_000, 5_000, 300, &stats); err != nil {
		t.Fatalf("produce: %v", err)
	}
	waitTablesReach(t, cfg, mustEndOffsets(t, addr, topic), 2*time.Minute)
	t.Logf("%s: 20000 records committed", time.Since(began).Round(10*time.Millisecond))
	w := newSnapWatch(cat, s.Table, s.Pipeline, topic)
	waitFor(t, time.Minute, "three compactions", func() (bool, string) {
		problems, _ := w.poll(ctx, false)
		if len(problems) > 0 {
			t.Fatalf("%s", strings.Join(problems, "\n"))
		}
		return w.replace >= 3, fmt.Sprintf("%d compactions, %d commits seen (load error: %v)", w.replace, w.appends, w.lastErr)
	})
	if err := p1.Kill(); err != nil {
		t.Fatal(err)
	}
	// What the history references before expiry: the files of expired
	// snapshots that the current one does not need must go.
	before := map[string]tableRefs{}
	for _, name := range tables {
		tbl := mustLoad(t, cat, name)
		refs, err := referencedFiles(ctx, tbl)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		before[name] = refs
		t.Logf("%s before expiry: %d snapshots, %d live data files, %d files referenced", name, len(tbl.Metadata().Snapshots()), len(refs.liveData), len(refs.needed))
	}
	if n := len(mustLoad(t, cat, s.Table).Metadata().Snapshots()); n < 10 {
		t.Fatalf("precondition: %s has %d snapshots before expiry, want a history of at least 10", s.Table, n)
	}

	// 2. Restart with expiry keeping only what it must.
	s.Extra = maintenanceYAML(fastCompaction, "{enabled: true, every: 300ms, keep: [{every: 0s, for: 1ms}]}", disabled)
	cfgPath = s.writeConfig(t)
	expired := func(what string) {
		t.Helper()
		var last string
		defer func() { t.Logf("%s: %s: %s", time.Since(began).Round(10*time.Millisecond), what, last) }()
		waitFor(t, time.Minute, what, func() (bool, string) {
			var state []string
			done := true
			for _, name := range tables {
				tbl, err := cat.LoadTable(ctx, catalog.Ident(name))
				if err != nil {
					return false, err.Error()
				}
				refs, err := referencedFiles(ctx, tbl)
				if err != nil {
					// An expiry deleted files under the walk: try again.
					return false, fmt.Sprintf("%s: %v", name, err)
				}
				var left []string
				for p := range before[name].needed {
					if refs.named[p] {
						continue
					}
					if _, err := os.Stat(p); err == nil {
						left = append(left, p)
					}
				}
				n := len(tbl.Metadata().Snapshots())
				if n > 2 || len(left) > 0 {
					done = false
				}
				state = append(state, fmt.Sprintf("%s: %d snapshots, %d files of expired snapshots still there (%s)", name, n, len(left), fewNames(left)))
			}
			last = strings.Join(state, "; ")
			return done, last
		})
	}
	log2 := filepath.Join(s.Dir, "floe-2.log")
	showLogOnFailure(t, log2)
	p2 := startFloe(t, bin, cfgPath, log2)
	expired("expiry to keep at most 2 snapshots of each table and delete the files only the others referenced")
	runs, err := metricSample(s.HTTPAddr, maintSample("floe_maintenance_runs_total", s.Table, "expiry"))
	if err != nil || runs < 1 {
		t.Errorf("floe_maintenance_runs_total of expiry: %v (err %v), want at least 1", runs, err)
	}
	for _, name := range tables {
		tbl := mustLoad(t, cat, name)
		refs, err := referencedFiles(ctx, tbl)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if miss := missingFiles(refs); len(miss) > 0 {
			t.Fatalf("%s after expiry: %d files the table references do not exist: %s", name, len(miss), fewNames(miss))
		}
	}
	if err := p2.Kill(); err != nil {
		t.Fatal(err)
	}

	// 3. SIGKILLed, restarted, and more records: read from the table's
	// offsets, nothing twice, nothing lost.
	log3 := filepath.Join(s.Dir, "floe-3.log")
	showLogOnFailure(t, log3)
	p3 := startFloe(t, bin, cfgPath, log3)
	if err := produce(ctx, cl, topic, 10_000, 5_000, 301, &stats); err != nil {
		t.Fatalf("produce: %v", err)
	}
	want := producedOf(&stats)
	waitTablesReach(t, cfg, mustEndOffsets(t, addr, topic), 2*time.Minute)
	t.Logf("%s: 10000 more records committed after the restart", time.Since(began).Round(10*time.Millisecond))
	expired("expiry to bring each table back to at most 2 snapshots")
	stopGracefully(t, p3)
	for _, name := range tables {
		if n := len(mustLoad(t, cat, name).Metadata().Snapshots()); n > 3 {
			t.Errorf("%s has %d snapshots after a graceful stop, want at most 3 (expiry kept 2, the final commit may add one)", name, n)
		}
	}
	checkExactlyOnce(t, cfg, want)
}

// TestOrphansOfKilledWriter: a floe process SIGKILLed while it writes at a
// high rate, and another crashed right after closing a data file, leave
// files no snapshot references; a stray file an hour old is put beside
// them. A restart with orphan cleanup every 500ms and a 2-second grace
// removes them all, none before it was 2 seconds old, and never a file of
// its own writes in flight: the table reads back exactly once and every
// file it references exists.
func TestOrphansOfKilledWriter(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6f727068))
	const (
		topic = "clicks"
		grace = 2 * time.Second
	)
	_, addr := startBroker(t, topic, 3)
	s := newSetup(t, addr, topic)
	s.CommitInterval = time.Second
	s.HTTPAddr = freeAddr(t)
	s.Extra = maintenanceYAML(fastCompaction, disabled, disabled)
	cfg := s.config(t)
	cfgPath := s.writeConfig(t)
	bin := floeBinary(t)
	cat := openCatalog(t, cfg)
	ctx := context.Background()
	tables := []string{s.Table, s.Table + "__dlq"}
	prod := startProducer(t, addr, topic, 0, 10_000, 10_000, 400)

	// 1. SIGKILLed at a random moment once it has committed.
	log1 := filepath.Join(s.Dir, "floe-1.log")
	showLogOnFailure(t, log1)
	p1 := startFloe(t, bin, cfgPath, log1)
	waitFor(t, time.Minute, "the first incarnation to commit", func() (bool, string) {
		if p1.Exited() {
			t.Fatalf("incarnation 1 exited by itself: %s", p1.State())
		}
		off, err := committedOffsets(ctx, cat, s.Table, s.Pipeline, topic)
		return err == nil && sum(off) > 0, fmt.Sprintf("table offsets %s (err %v)", fmtOffsets(off), err)
	})
	time.Sleep(time.Duration(200+rng.IntN(1000)) * time.Millisecond)
	if err := p1.Kill(); err != nil {
		t.Fatal(err)
	}
	// 2. Crashed right after closing a data file, before proposing it.
	hit := 1 + rng.IntN(4)
	log2 := filepath.Join(s.Dir, "floe-2.log")
	showLogOnFailure(t, log2)
	p2 := startFloe(t, bin, cfgPath, log2, fmt.Sprintf("FLOE_FAILPOINTS=fileio/after-close=crash@%d", hit))
	if !p2.Wait(2*time.Minute) || !p2.KilledBySIGKILL() {
		t.Fatalf("incarnation 2 was not killed by its failpoint fileio/after-close=crash@%d (exited: %v, %s)", hit, p2.Exited(), p2.State())
	}

	// What they left: files under the tables' locations that no metadata
	// names, and a stray file an hour old.
	left := map[string]time.Time{}
	for _, name := range tables {
		tbl := mustLoad(t, cat, name)
		files, _, err := unreferenced(ctx, tbl)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: the killed writers left %d unreferenced files: %s", name, len(files), fewNames(slices.Sorted(maps.Keys(files))))
		maps.Copy(left, files)
	}
	if len(left) == 0 {
		t.Fatalf("precondition: the killed writers left no unreferenced file (the failpoint crashed right after closing one)")
	}
	mainTbl := mustLoad(t, cat, s.Table)
	dir, ok := catalog.LocalPath(mainTbl.Location())
	if !ok {
		t.Fatalf("table location %s is not local", mainTbl.Location())
	}
	stray := filepath.Join(dir, "data", "00000-0-stray-of-a-killed-writer.parquet")
	if err := os.WriteFile(stray, []byte("PAR1 cut short"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(stray, old, old); err != nil {
		t.Fatal(err)
	}
	left[stray] = old

	// 3. Restarted with orphan cleanup, records still streaming in.
	s.Extra = maintenanceYAML(fastCompaction, disabled, fmt.Sprintf("{enabled: true, every: 500ms, grace: %s}", grace))
	cfgPath = s.writeConfig(t)
	log3 := filepath.Join(s.Dir, "floe-3.log")
	showLogOnFailure(t, log3)
	p3Start := time.Now()
	p3 := startFloe(t, bin, cfgPath, log3)
	goneAt := map[string]time.Time{}
	waitFor(t, time.Minute, "orphan cleanup to remove every file the killed writers left and the stray file", func() (bool, string) {
		if p3.Exited() {
			t.Fatalf("incarnation 3 exited by itself: %s", p3.State())
		}
		now := time.Now()
		var still []string
		for p := range left {
			if _, ok := goneAt[p]; ok {
				continue
			}
			if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
				goneAt[p] = now
				continue
			}
			still = append(still, p)
		}
		slices.Sort(still)
		return len(still) == 0, fmt.Sprintf("%d of %d still there: %s", len(still), len(left), fewNames(still))
	})
	youngest := time.Duration(-1)
	for p, gone := range goneAt {
		// gone is when the test saw it gone, at or after its removal.
		age := gone.Sub(left[p])
		if age < grace {
			t.Errorf("%s was removed %s after it was last written, within the %s grace", p, age.Round(time.Millisecond), grace)
		}
		if youngest < 0 || age < youngest {
			youngest = age
		}
	}
	t.Logf("the %d files were all gone within %s of the restart; the youngest was %s old when seen gone (grace %s)",
		len(left), time.Since(p3Start).Round(100*time.Millisecond), youngest.Round(time.Millisecond), grace)
	var removed float64
	for _, name := range tables {
		v, err := metricSample(s.HTTPAddr, maintSample("floe_maintenance_orphan_files_total", name, ""))
		if err != nil {
			t.Fatal(err)
		}
		removed += v
	}
	if removed < float64(len(left)) {
		t.Errorf("floe_maintenance_orphan_files_total sums to %.0f over both tables, want at least the %d files removed", removed, len(left))
	}

	// Everything committed while orphan cleanup runs beside the writes,
	// then a graceful stop.
	want := prod.finish(t, time.Minute)
	waitTablesReach(t, cfg, mustEndOffsets(t, addr, topic), 2*time.Minute)
	time.Sleep(grace + time.Second) // orphan cleanup runs over the last commits' files
	failures, _ := metricSample(s.HTTPAddr, maintSample("floe_maintenance_failures_total", s.Table, "orphans"))
	stopped := time.Now()
	stopGracefully(t, p3)
	t.Logf("orphan files removed: %.0f (of which the killed writers' and the stray: %d); failed orphan cleanups of %s: %.0f", removed, len(left), s.Table, failures)

	for _, name := range tables {
		tbl := mustLoad(t, cat, name)
		files, refs, err := unreferenced(ctx, tbl)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if miss := missingFiles(refs); len(miss) > 0 {
			t.Errorf("%s: %d files the table references do not exist: %s", name, len(miss), fewNames(miss))
		}
		for p := range left {
			if refs.named[p] {
				t.Errorf("%s: %s, unreferenced when the killed writers were gone, is referenced now", name, p)
			}
		}
		// An unreferenced file older than the grace (with a few cleanup
		// runs of slack) when floe stopped should have been removed.
		var stale []string
		for p, mt := range files {
			if stopped.Sub(mt) > grace+3*time.Second {
				stale = append(stale, fmt.Sprintf("%s (%s old)", p, stopped.Sub(mt).Round(time.Millisecond)))
			}
		}
		slices.Sort(stale)
		if len(stale) > 0 {
			t.Errorf("%s: %d unreferenced files older than the grace were left: %s", name, len(stale), fewNames(stale))
		}
	}
	checkExactlyOnce(t, cfg, want)
}

// TestClickHouseReadsCompactedTables: after compaction and expiry ran on
// both tables, ClickHouse reads them exactly as floe (iceberg-go) does, at
// the current snapshot and at every snapshot expiry kept (time travel):
// the same rows per Kafka partition, the same sum, minimum and maximum of
// their offsets; and count(), which ClickHouse answers from the snapshot
// summary, equals sum(1), which reads the data files, and the summary's
// total-records. A compaction's summary that miscounted would show here,
// in its own snapshot and in every one after it.
func TestClickHouseReadsCompactedTables(t *testing.T) {
	chdb := requireChdb(t)
	if chdb == "" {
		t.SkipNow()
	}
	const topic = "clicks"
	_, addr := startBroker(t, topic, 3)
	s := newSetup(t, addr, topic)
	s.CommitInterval = 200 * time.Millisecond
	s.HTTPAddr = freeAddr(t)
	s.Extra = maintenanceYAML(fastCompaction,
		"{enabled: true, every: 500ms, keep: [{every: 0s, for: 2s}, {every: 2s, for: 5m}]}",
		"{enabled: true, every: 1s, grace: 3s}")
	cfg := s.config(t)
	cfgPath := s.writeConfig(t)
	bin := floeBinary(t)
	cat := openCatalog(t, cfg)
	ctx := context.Background()
	var stats gen.ProducerStats

	logPath := filepath.Join(s.Dir, "floe.log")
	showLogOnFailure(t, logPath)
	proc := startFloe(t, bin, cfgPath, logPath)
	if err := produce(ctx, newProducer(t, addr), topic, 30_000, 5_000, 500, &stats); err != nil {
		t.Fatalf("produce: %v", err)
	}
	want := producedOf(&stats)
	waitTablesReach(t, cfg, mustEndOffsets(t, addr, topic), 2*time.Minute)
	w := newSnapWatch(cat, s.Table, s.Pipeline, topic)
	expirySample := maintSample("floe_maintenance_runs_total", s.Table, "expiry")
	waitFor(t, time.Minute, "compactions and an expiry", func() (bool, string) {
		if proc.Exited() {
			t.Fatalf("floe exited by itself: %s", proc.State())
		}
		problems, _ := w.poll(ctx, false)
		if len(problems) > 0 {
			t.Fatalf("%s", strings.Join(problems, "\n"))
		}
		expiries, err := metricSample(s.HTTPAddr, expirySample)
		return w.replace >= 5 && expiries >= 1, fmt.Sprintf("%d compactions seen, %v expiries (err %v)", w.replace, expiries, err)
	})
	// Time travel to a compaction needs one that expiry kept. Once the
	// records are in, only compactions commit to the table, so one kept
	// stays kept (the newest of its 2 seconds); there is usually one
	// already, else the next compaction is.
	keptReplace := func() bool {
		for _, sn := range w.tbl.Metadata().Snapshots() {
			if sn.Summary != nil && sn.Summary.Operation == table.OpReplace {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(15 * time.Second); !keptReplace() && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		w.poll(ctx, false)
	}
	stopGracefully(t, proc)
	w.poll(ctx, false)

	// The current snapshot reads files compactions wrote: the newest
	// compaction's are live until another compaction replaces them.
	live, compacted, err := liveDataFiles(ctx, mustLoad(t, cat, s.Table), w.ops)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d live data files, %d of them written by compactions, after %d commits and %d compactions seen", s.Table, live, compacted, w.appends, w.replace)
	if compacted == 0 {
		t.Errorf("%s: none of the current snapshot's %d data files was written by a compaction", s.Table, live)
	}

	// Both tables at every snapshot they kept, newest first.
	type at struct {
		name string
		tbl  *table.Table
		snap table.Snapshot
	}
	var ats []at
	replaces := 0
	for _, name := range []string{s.Table, s.Table + "__dlq"} {
		tbl := mustLoad(t, cat, name)
		snaps := slices.Clone(tbl.Metadata().Snapshots())
		slices.SortFunc(snaps, func(a, b table.Snapshot) int { return cmp.Compare(b.SequenceNumber, a.SequenceNumber) })
		for _, sn := range snaps {
			if sn.Summary != nil && sn.Summary.Operation == table.OpReplace {
				replaces++
			}
			ats = append(ats, at{name, tbl, sn})
		}
		t.Logf("%s keeps %d snapshots", name, len(snaps))
	}
	if replaces == 0 {
		t.Logf("no compaction among the snapshots expiry kept: time travel reads none, the current snapshot holds compacted files")
	}

	// floe's read: per partition, rows and the sum, minimum and maximum
	// of the offsets, as ClickHouse prints them.
	partCol := map[string][2]string{s.Table: {"_kafka_partition", "_kafka_offset"}, s.Table + "__dlq": {"partition", "offset"}}
	floeRead := func(a at) (string, int64) {
		cols := partCol[a.name]
		tbl, err := a.tbl.Scan(table.WithSnapshotID(a.snap.SnapshotID), table.WithSelectedFields(cols[0], cols[1])).ToArrowTable(ctx)
		if err != nil {
			t.Fatalf("%s at snapshot %d: %v", a.name, a.snap.SnapshotID, err)
		}
		defer tbl.Release()
		type agg struct{ n, sum, lo, hi int64 }
		per := map[int32]*agg{}
		var rows int64
		err = eachRow(tbl, cols[:], func(c []arrow.Array, i int) {
			rows++
			p, o := c[0].(*array.Int32).Value(i), c[1].(*array.Int64).Value(i)
			g := per[p]
			if g == nil {
				g = &agg{lo: o, hi: o}
				per[p] = g
			}
			g.n++
			g.sum += o
			g.lo, g.hi = min(g.lo, o), max(g.hi, o)
		})
		if err != nil {
			t.Fatalf("%s at snapshot %d: %v", a.name, a.snap.SnapshotID, err)
		}
		var b strings.Builder
		for _, p := range slices.Sorted(maps.Keys(per)) {
			g := per[p]
			fmt.Fprintf(&b, "%d:%d,%d,%d,%d ", p, g.n, g.sum, g.lo, g.hi)
		}
		return b.String(), rows
	}

	var stmts []string
	add := func(q string) int { stmts = append(stmts, q); return len(stmts) - 1 }
	type query struct{ count, sum1, agg int }
	queries := make([]query, len(ats))
	created := map[string]string{}
	for i, a := range ats {
		chName, ok := created[a.name]
		if !ok {
			chName = fmt.Sprintf("t%d", len(created))
			engine, err := icebergEngine(a.tbl, cfg.Storage)
			if err != nil {
				t.Fatal(err)
			}
			add(fmt.Sprintf("CREATE TABLE %s %s", chName, engine))
			created[a.name] = chName
		}
		settings := ""
		if cur := a.tbl.CurrentSnapshot(); cur == nil || cur.SnapshotID != a.snap.SnapshotID {
			settings = " SETTINGS iceberg_snapshot_id=" + strconv.FormatInt(a.snap.SnapshotID, 10)
		}
		cols := partCol[a.name]
		queries[i] = query{
			count: add("SELECT count() FROM " + chName + settings),
			sum1:  add("SELECT sum(1) FROM " + chName + settings),
			agg: add(fmt.Sprintf("SELECT `%[1]s`, sum(1), sum(`%[2]s`), min(`%[2]s`), max(`%[2]s`) FROM %[3]s GROUP BY `%[1]s` ORDER BY `%[1]s`%[4]s",
				cols[0], cols[1], chName, settings)),
		}
	}
	res, err := clickHouse(ctx, chdb, stmts)
	if err != nil {
		t.Fatal(err)
	}
	one := func(i int) string {
		if r := res[i].Rows; len(r) == 1 && len(r[0]) == 1 {
			return r[0][0]
		}
		return fmt.Sprintf("%q", res[i].Rows)
	}
	for i, a := range ats {
		q := queries[i]
		desc := fmt.Sprintf("%s at snapshot %d (%s, sequence number %d)", a.name, a.snap.SnapshotID, a.snap.Summary.Operation, a.snap.SequenceNumber)
		floeAgg, rows := floeRead(a)
		var chAgg strings.Builder
		for _, r := range res[q.agg].Rows {
			if len(r) != 5 {
				t.Fatalf("%s: %q returned %q", desc, stmts[q.agg], r)
			}
			fmt.Fprintf(&chAgg, "%s:%s,%s,%s,%s ", r[0], r[1], r[2], r[3], r[4])
		}
		if chAgg.String() != floeAgg {
			t.Errorf("%s: per partition rows,sum,min,max of offsets: ClickHouse %q, floe %q", desc, chAgg.String(), floeAgg)
		}
		n := strconv.FormatInt(rows, 10)
		if c, s1 := one(q.count), one(q.sum1); c != n || s1 != n {
			t.Errorf("%s: ClickHouse count() = %s (from the summary), sum(1) = %s (from the data files); floe reads %d rows", desc, c, s1, rows)
		}
		if tr := a.snap.Summary.Properties["total-records"]; tr != n {
			t.Errorf("%s: the summary's total-records is %q, floe reads %d rows", desc, tr, rows)
		}
	}
	t.Logf("ClickHouse read %d snapshots of the two tables (%d of them compactions) as floe does", len(ats), replaces)
	checkExactlyOnce(t, cfg, want)
}

// TestExpiryAfterCompactionReportsNoFalseFailures: expiry deletes the
// files only the snapshots it removes referenced, among them the files
// their manifests list as DELETED: the inputs of compactions. An earlier
// expiry deleted those already when it removed the snapshots that still
// read them; deleting them again must not be reported as a failure. Orphan
// cleanup is off, so nothing but expiry deletes a data file here.
func TestExpiryAfterCompactionReportsNoFalseFailures(t *testing.T) {
	const topic = "clicks"
	_, addr := startBroker(t, topic, 3)
	s := newSetup(t, addr, topic)
	s.CommitInterval = 200 * time.Millisecond
	s.HTTPAddr = freeAddr(t)
	s.Extra = maintenanceYAML(fastCompaction, "{enabled: true, every: 300ms, keep: [{every: 0s, for: 1ms}]}", disabled)
	cfg := s.config(t)
	cfgPath := s.writeConfig(t)
	bin := floeBinary(t)
	ctx := context.Background()
	var stats gen.ProducerStats

	logPath := filepath.Join(s.Dir, "floe.log")
	showLogOnFailure(t, logPath)
	proc := startFloe(t, bin, cfgPath, logPath)
	if err := produce(ctx, newProducer(t, addr), topic, 20_000, 5_000, 600, &stats); err != nil {
		t.Fatalf("produce: %v", err)
	}
	waitTablesReach(t, cfg, mustEndOffsets(t, addr, topic), 2*time.Minute)
	// The node's own counts: most compactions land while the records
	// stream in, and their snapshots expire within a millisecond, so a
	// watch of the table started now could miss them.
	compactionSample := maintSample("floe_maintenance_runs_total", s.Table, "compaction")
	expirySample := maintSample("floe_maintenance_runs_total", s.Table, "expiry")
	var compactions, expiries float64
	waitFor(t, time.Minute, "three compactions and five expiries", func() (bool, string) {
		if proc.Exited() {
			t.Fatalf("floe exited by itself: %s", proc.State())
		}
		compactions, _ = metricSample(s.HTTPAddr, compactionSample)
		expiries, _ = metricSample(s.HTTPAddr, expirySample)
		return compactions >= 3 && expiries >= 5, fmt.Sprintf("%v compactions, %v expiries", compactions, expiries)
	})
	stopGracefully(t, proc)
	checkExactlyOnce(t, cfg, producedOf(&stats))

	const warning = "could not delete every file of the expired snapshots"
	var reports, gone int
	var example string
	for _, line := range strings.Split(readFile(logPath), "\n") {
		if !strings.Contains(line, warning) {
			continue
		}
		reports++
		n := strings.Count(line, "no such file or directory")
		gone += n
		if n > 0 && example == "" {
			example = line
		}
	}
	t.Logf("%.0f expiries of %s; %d warnings %q naming %d files that did not exist", expiries, s.Table, reports, warning, gone)
	if gone > 0 {
		t.Errorf("expiry reported %d times (%d files in all) that it could not delete files of the snapshots it removed because they did not exist any more: "+
			"the files were deleted by an earlier expiry, nothing is left for orphan cleanup, and the warning is false; the first:\n%s", reports, gone, tail(example, 1))
	}
}
