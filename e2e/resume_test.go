package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/floelake/floe/internal/gen"
)

// TestStartLatestResumesFromTableOffsets: `start: latest` applies only to a
// partition no table has offsets for (docs/exactly-once.md, rule 1). floe records the
// resolved start in both tables before consuming; here the process is killed
// right after the first of those two commits (commit/after-catalog=crash@1),
// so the table has offsets and the dead-letter table has none. The next
// incarnation must start both tables at the table's offsets, not at a
// "latest" resolved again: the records produced while floe was down,
// malformed ones included, are all ingested.
func TestStartLatestResumesFromTableOffsets(t *testing.T) {
	const topic, batch = "clicks", 5_000
	broker, addr := startBroker(t, topic, 2)
	fetches := watchFetches(broker)
	s := newSetup(t, addr, topic)
	s.Start = "latest"
	cfg := s.config(t)
	cfgPath := s.writeConfig(t)
	bin := floeBinary(t)
	cat := openCatalog(t, cfg)
	cl := newProducer(t, addr)
	ctx := context.Background()
	var stats gen.ProducerStats
	positioned := func() (bool, string) {
		got := fetches.snapshot()
		return len(got) == 2, fmt.Sprintf("fetch positions %s", fmtOffsets(got))
	}

	// Incarnation 1 starts on the empty topic (latest = 0) and dies right
	// after the catalog accepted its first commit: the table's start.
	log1 := filepath.Join(s.Dir, "floe-1.log")
	showLogOnFailure(t, log1)
	p1 := startFloe(t, bin, cfgPath, log1, "FLOE_FAILPOINTS=commit/after-catalog=crash@1")
	if !p1.Wait(2*time.Minute) || !p1.KilledBySIGKILL() {
		t.Fatalf("incarnation 1 was not killed by its failpoint (exited: %v %s)", p1.Exited(), p1.State())
	}
	mainOff, err := committedOffsets(ctx, cat, s.Table, s.Pipeline, topic)
	if err != nil {
		t.Fatal(err)
	}
	dlqOff, err := committedOffsets(ctx, cat, s.Table+"__dlq", s.Pipeline, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(mainOff) == 0 || len(dlqOff) != 0 {
		t.Fatalf("precondition: want offsets in the table only, have table %s, dead-letter %s", fmtOffsets(mainOff), fmtOffsets(dlqOff))
	}

	// Produced while floe is down, with malformed records: a dead-letter
	// table started at a "latest" resolved now would lose those.
	if err := produce(ctx, cl, topic, batch, 0, 52, &stats); err != nil {
		t.Fatalf("produce: %v", err)
	}
	whileDown := mustEndOffsets(t, addr, topic)

	// Incarnation 2, and a third batch once it fetches.
	fetches.reset()
	log2 := filepath.Join(s.Dir, "floe-2.log")
	showLogOnFailure(t, log2)
	p2 := startFloe(t, bin, cfgPath, log2)
	waitFor(t, time.Minute, "incarnation 2 to start fetching", positioned)
	from := fetches.snapshot()
	t.Logf("table offsets after the crash %s; end offsets when incarnation 2 started %s; it fetched from %s",
		fmtOffsets(mainOff), fmtOffsets(whileDown), fmtOffsets(from))
	// No check on the fetch positions themselves: the first fetch may be
	// done before they are sampled. The oracle below is the proof: a skipped
	// record would be missing from both tables.
	if err := produceClean(ctx, cl, topic, batch, 53, &stats); err != nil {
		t.Fatalf("produce: %v", err)
	}
	want := producedOf(&stats)
	ends := mustEndOffsets(t, addr, topic)
	waitFor(t, 2*time.Minute, "incarnation 2 to commit up to the end", func() (bool, string) {
		if p2.Exited() {
			t.Fatalf("incarnation 2 exited by itself: %v", p2.Err())
		}
		off, err := committedOffsets(ctx, cat, s.Table, s.Pipeline, topic)
		return err == nil && reached(off, ends), fmt.Sprintf("table offsets %s (err %v), end offsets %s", fmtOffsets(off), err, fmtOffsets(ends))
	})
	if err := p2.Stop(90 * time.Second); err != nil {
		t.Fatalf("incarnation 2: %v", err)
	}
	checkExactlyOnce(t, cfg, want)
}
