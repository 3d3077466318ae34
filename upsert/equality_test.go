package upsert_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/iceberg-go"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/testutil"
	"github.com/floelake/floe/maintain"
	"github.com/floelake/floe/upsert"
)

// randomRound returns n events for keys k000..k(keys-1): upserts moving
// between regions, a tenth of them deletes, and applies them to want.
func randomRound(rng *rand.Rand, kt *keyedTable, round, n, keys int, want map[string]int64) []event {
	regions := []string{"eu", "us", "ap"}
	evs := make([]event, n)
	for i := range evs {
		e := event{key: fmt.Sprintf("k%03d", rng.IntN(keys)), value: int64(round*1000 + i),
			region: regions[rng.IntN(len(regions))], offset: kt.next + int64(i)}
		if rng.IntN(10) == 0 {
			e.del = true
			delete(want, e.key)
		} else {
			want[e.key] = e.value
		}
		evs[i] = e
	}
	return evs
}

// deleteFiles counts the delete files that apply to the table's live data
// files, by kind.
func (k *keyedTable) deleteFiles() (pos, dvs, eq int) {
	k.t.Helper()
	tasks, err := k.load().Scan().PlanFiles(k.ctx)
	if err != nil {
		k.t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, task := range tasks {
		for _, list := range [][]iceberg.DataFile{task.DeleteFiles, task.DeletionVectorFiles, task.EqualityDeleteFiles} {
			for _, d := range list {
				id := d.FilePath()
				if ref := d.ReferencedDataFile(); ref != nil {
					id += "#" + *ref
				}
				if seen[id] {
					continue
				}
				seen[id] = true
				switch {
				case d.ContentType() == iceberg.EntryContentEqDeletes:
					eq++
				case d.FileFormat() == iceberg.PuffinFile:
					dvs++
				default:
					pos++
				}
			}
		}
	}
	return pos, dvs, eq
}

// removeObsolete does what the table writer does before a commit: it
// removes the delete files the resolver says are obsolete. It returns how
// many.
func (k *keyedTable) removeObsolete(res *upsert.Resolver) int {
	k.t.Helper()
	c, err := commit.New(k.ctx, k.cat, commit.Config{Pipeline: "p", Table: k.ident})
	if err != nil {
		k.t.Fatal(err)
	}
	files, err := res.Obsolete(k.ctx, c.Table())
	if err != nil {
		k.t.Fatal(err)
	}
	if len(files) == 0 {
		return 0
	}
	base := c.Table().CurrentSnapshot().SnapshotID
	r, err := c.RemoveDeletes(k.ctx, base, files)
	if err != nil {
		res.Abandon()
		k.t.Fatal(err)
	}
	res.Moved(base, r.SnapshotID)
	return len(files)
}

// TestEqualityDeleteMode: with delete_mode: equality the resolver keeps no
// index; every snapshot still holds the newest row of every key, whatever
// partition its older row was in, and deleted keys are gone. Rows of a key
// repeated within a commit are resolved by position.
func TestEqualityDeleteMode(t *testing.T) {
	for _, version := range []int{2, 3} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			kt := newKeyedTable(t, version)
			rng := rand.New(rand.NewPCG(uint64(version), 21))
			res, err := upsert.NewResolver([]string{"id"}, nil, upsert.EqualityDeletes())
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int64{}
			for round := range 10 {
				kt.commit(res, randomRound(rng, kt, round, 50, 60, want))
				kt.requireRows(want)
			}
			st := res.Stats()
			if st.Keys != 0 || st.Rebuilds != 0 || st.EqualityCommits != 10 || st.EqualityKeys == 0 {
				t.Fatalf("stats %+v: want no index and 10 commits by equality", st)
			}
			if _, _, eq := kt.deleteFiles(); eq == 0 {
				t.Fatal("no equality deletes apply to the table")
			}
			// A compaction of every file folds the equality deletes into
			// its output, and removes them: they apply to nothing left.
			c, err := commit.New(kt.ctx, kt.cat, commit.Config{Pipeline: "p", Table: kt.ident})
			if err != nil {
				t.Fatal(err)
			}
			c.UseRowDeltas(res)
			sum, err := maintain.New("db.t", testutil.Direct{C: c}, maintain.DefaultConfig(), nil, nil).Compact(kt.ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Snapshot == 0 || sum.EqualityDeletesRemoved != 9 {
				t.Fatalf("compaction %+v: want it committed, removing the 9 equality-delete files", sum)
			}
			kt.requireRows(want)
			kt.commit(res, randomRound(rng, kt, 20, 50, 60, want))
			kt.requireRows(want)
			if _, err := upsert.NewResolver([]string{"id"}, nil, upsert.EqualityDeletes(), upsert.Version("v")); err == nil {
				t.Fatal("equality deletes with a version column were accepted")
			}
		})
	}
}

// TestFallbackWhileRebuilding: a resolver taking over a table (a restart
// or a failover) does not make commits wait for its index: they delete by
// equality while the index is rebuilt in the background, and a compaction
// lands meanwhile. Once the rebuild is done, the journal of what landed
// since brings the index to the head; the next commit deletes by position
// the rows the equality deletes delete, and the equality-delete files are
// then removed. The table holds the newest row per key after every step.
func TestFallbackWhileRebuilding(t *testing.T) {
	for _, version := range []int{2, 3} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			kt := newKeyedTable(t, version)
			rng := rand.New(rand.NewPCG(uint64(version), 33))
			want := map[string]int64{}
			first, err := upsert.NewResolver([]string{"id"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for round := range 4 {
				kt.commit(first, randomRound(rng, kt, round, 40, 50, want))
			}
			kt.requireRows(want)

			gate := make(chan struct{})
			res, err := upsert.NewResolver([]string{"id"}, nil, upsert.HoldRebuilds(gate), upsert.RebuildWait(0))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			// A compaction planned before the takeover.
			rw := kt.compaction("eu")
			for round := 10; round < 13; round++ {
				kt.commit(res, randomRound(rng, kt, round, 40, 50, want))
				kt.requireRows(want)
			}
			// The compaction commits beside the equality deletes made
			// since its plan, which apply to its files as to the old.
			kt.commitRewrite(res, rw)
			kt.requireRows(want)
			kt.commit(res, randomRound(rng, kt, 13, 40, 50, want))
			kt.requireRows(want)
			if st := res.Stats(); st.EqualityCommits != 4 || st.Rebuilds != 0 {
				t.Fatalf("stats %+v: want 4 commits by equality while the rebuild was held", st)
			}
			if _, _, eq := kt.deleteFiles(); eq == 0 {
				t.Fatal("no equality deletes apply to the table")
			}

			// The rebuild finishes; the next commit adopts it.
			close(gate)
			res.SetRebuildWait(time.Hour)
			kt.commit(res, randomRound(rng, kt, 20, 40, 50, want))
			kt.requireRows(want)
			st := res.Stats()
			if st.EqualityCommits != 4 || st.Rebuilds != 1 || st.Keys != len(want) {
				t.Fatalf("stats %+v: want the index adopted at the head with %d keys", st, len(want))
			}
			// That commit deleted by position what the equality deletes
			// delete: they are obsolete, and removed.
			if n := kt.removeObsolete(res); n == 0 {
				t.Fatal("no equality-delete file was obsolete")
			}
			kt.requireRows(want)
			if _, _, eq := kt.deleteFiles(); eq != 0 {
				t.Fatalf("%d equality-delete files still apply", eq)
			}
			if n := kt.removeObsolete(res); n != 0 {
				t.Fatalf("%d more obsolete files", n)
			}
			for round := 30; round < 34; round++ {
				kt.commit(res, randomRound(rng, kt, round, 40, 50, want))
				kt.requireRows(want)
			}
			if st := res.Stats(); st.Rebuilds != 1 || st.EqualityCommits != 4 {
				t.Fatalf("stats %+v: the index was rebuilt again or fell back", st)
			}
		})
	}
}

// TestPositionModeTakesOverEqualityDeletes: a table written with
// delete_mode: equality, then with the default mode (the setting changed):
// the rebuild applies the equality deletes it finds, and they are turned
// into position deletes and removed.
func TestPositionModeTakesOverEqualityDeletes(t *testing.T) {
	for _, version := range []int{2, 3} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			kt := newKeyedTable(t, version)
			rng := rand.New(rand.NewPCG(uint64(version), 45))
			want := map[string]int64{}
			eq, err := upsert.NewResolver([]string{"id"}, nil, upsert.EqualityDeletes())
			if err != nil {
				t.Fatal(err)
			}
			for round := range 5 {
				kt.commit(eq, randomRound(rng, kt, round, 40, 40, want))
			}
			kt.requireRows(want)
			res, err := upsert.NewResolver([]string{"id"}, nil, upsert.RebuildWait(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			if n := kt.removeObsolete(res); n != 0 {
				t.Fatalf("%d files obsolete before the index was built", n)
			}
			kt.commit(res, randomRound(rng, kt, 10, 40, 40, want))
			kt.requireRows(want)
			// One per commit but the first, which had no older rows.
			if n := kt.removeObsolete(res); n != 4 {
				t.Fatalf("%d equality-delete files obsolete, want 4", n)
			}
			kt.requireRows(want)
			pos, dvs, eqFiles := kt.deleteFiles()
			if eqFiles != 0 || pos+dvs == 0 {
				t.Fatalf("deletes applying: %d position, %d vectors, %d equality", pos, dvs, eqFiles)
			}
			kt.commit(res, randomRound(rng, kt, 11, 40, 40, want))
			kt.requireRows(want)
		})
	}
}
