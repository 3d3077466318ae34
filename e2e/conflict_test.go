package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/iceberg-go"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/metrics"
)

// TestStaleBaseCommitIsAConflict: when another writer moved the table since
// a committer loaded it, the real SQL catalog rejects the commit (its base
// assertion fails) and nothing lands. That is the "conflict" class of
// commit/errors.go, not "unknown" (an outcome that may have landed), and
// floe_commit_failures_total must say so: operators alert on unknown
// outcomes. The scenario is what TestTwoNodesOneTable does with whole
// nodes, made deterministic with two committers.
func TestStaleBaseCommitIsAConflict(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, catalog.Config{Type: "sql", Name: "floe", URI: "sqlite://" + filepath.Join(dir, "catalog.db")},
		catalog.StorageConfig{}, filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	const name = "e2e.stale_base"
	ident := catalog.Ident(name)
	if _, _, err := catalog.EnsureTable(ctx, cat, ident, ingest.DeadLetterSchema(), *iceberg.UnpartitionedSpec, nil); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	cfg := commit.Config{Pipeline: "p", Table: ident, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		Logger: testLogger(t, "committers"), Metrics: m}
	seg := func(from, to int64) commit.Segment {
		s := commit.Segment{From: commit.Offsets{}, To: commit.Offsets{}}
		s.From.Set("t", 0, from)
		s.To.Set("t", 0, to)
		return s
	}
	current, err := commit.New(ctx, cat, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := current.Commit(ctx, seg(0, 10)); err != nil {
		t.Fatalf("first commit: %v", err)
	}
	// The zombie loads the table at the first snapshot; then the current
	// writer moves on.
	zombie, err := commit.New(ctx, cat, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := current.Commit(ctx, seg(10, 20)); err != nil {
		t.Fatalf("second commit: %v", err)
	}

	failures := func(class string) float64 { return m.Sum("floe_commit_failures_total", "table", name, "class", class) }
	conflicts := func() float64 { return failures(commit.ClassConflict) }
	unknowns := func() float64 { return failures(commit.ClassUnknown) }
	c0, u0 := conflicts(), unknowns()

	// The zombie still holds the base before that commit; its segment
	// overlaps: the catalog must reject it and the committer must then find
	// the overlap (fatal) without committing anything.
	_, err = zombie.Commit(ctx, seg(10, 30))
	if err == nil {
		t.Fatal("a commit on a stale base with an overlapping segment succeeded")
	}
	t.Logf("zombie's commit: %v", err)
	if got := commit.Classify(err); got != commit.ClassFatal {
		t.Errorf("final error classified %q, want %q (offset overlap)", got, commit.ClassFatal)
	}
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tbl.Metadata().Snapshots()); n != 2 {
		t.Errorf("the table has %d snapshots, want 2: the stale commit must not land", n)
	}
	if dc, du := conflicts()-c0, unknowns()-u0; dc != 1 || du != 0 {
		t.Errorf("the rejected stale-base attempt was counted as floe_commit_failures_total{class=%q} +%v and {class=%q} +%v; want conflict +1, unknown +0",
			commit.ClassConflict, dc, commit.ClassUnknown, du)
	}
}
