package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/internal/gen"
)

// crashStep is one incarnation of floe in TestCrashRecovery: killed by the
// test at a random moment (failpoint == "") or crashed by a failpoint on
// its hit-th hit.
type crashStep struct {
	failpoint string
	hit       int
}

// TestCrashRecovery runs `floe serve` as a separate process while records
// stream in, and kills it with SIGKILL again and again: at random moments
// and, through failpoints, at every durable step of the write path. The
// last incarnation runs without faults until everything is committed and is
// stopped with SIGTERM; then the oracle must hold: nothing lost, nothing
// twice.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test takes about 40 seconds")
	}
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x666c6f65))

	const (
		topic      = "clicks"
		minRecords = 100_000
		rate       = 4_000 // records per second, so kills land mid-stream
		chunk      = 4_000
	)
	_, addr := startBroker(t, topic, 4)
	s := newSetup(t, addr, topic)
	cfg := s.config(t)
	cfgPath := s.writeConfig(t)
	bin := floeBinary(t)
	cat := openCatalog(t, cfg)

	// The producer: chunks of records (each with its own generator seed, so
	// event ids never repeat) at a bounded rate, until the kills are over
	// and at least minRecords were produced. Each chunk returns only once
	// all its records are acknowledged, so the counts are exact.
	var stats gen.ProducerStats
	var chaosOver atomic.Bool
	prodDone := make(chan error, 1)
	cl := newProducer(t, addr)
	prodCtx, stopProducing := context.WithCancel(context.Background())
	defer stopProducing()
	go func() {
		for i := int64(0); ; i++ {
			if prodCtx.Err() != nil || chaosOver.Load() && stats.Produced.Load() >= minRecords {
				prodDone <- nil
				return
			}
			if err := produce(prodCtx, cl, topic, chunk, rate, 1000+i, &stats); err != nil {
				prodDone <- err
				return
			}
		}
	}()

	progress := func() (main, dlq int64, snaps int) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for i, name := range []string{s.Table, s.Table + "__dlq"} {
			tbl, err := cat.LoadTable(ctx, catalog.Ident(name))
			if err != nil {
				continue // not created yet
			}
			snaps += len(tbl.Metadata().Snapshots())
			off, err := committedOffsets(ctx, cat, name, s.Pipeline, topic)
			if err != nil {
				t.Fatalf("read offsets of %s: %v", name, err)
			}
			if i == 0 {
				main = sum(off)
			} else {
				dlq = sum(off)
			}
		}
		return main, dlq, snaps
	}

	// The kill schedule: random kills between crashes at each failpoint.
	var steps []crashStep
	fps := []crashStep{
		{"fileio/after-write", 1 + rng.IntN(10)},
		{"commit/before-catalog", 1 + rng.IntN(4)},
		{"commit/after-catalog", 1 + rng.IntN(4)},
		{"fileio/after-close", 1 + rng.IntN(6)},
		{"commit/after-catalog", 1}, // the very first commit of an incarnation
		// The table holds the commit, the ledger was not told.
		{"writer/before-report", 1 + rng.IntN(4)},
		// The ledger accepted a segment, its proposer never heard back.
		{"cluster/after-propose", 1 + rng.IntN(4)},
	}
	for _, fp := range fps {
		steps = append(steps, crashStep{}, crashStep{}, fp)
	}
	steps = append(steps, crashStep{})

	for i, step := range steps {
		logPath := filepath.Join(s.Dir, fmt.Sprintf("floe-%02d.log", i))
		showLogOnFailure(t, logPath)
		main0, dlq0, snaps0 := progress()
		var env []string
		if step.failpoint != "" {
			env = append(env, fmt.Sprintf("FLOE_FAILPOINTS=%s=crash@%d", step.failpoint, step.hit))
		}
		proc := startFloe(t, bin, cfgPath, logPath, env...)

		if step.failpoint != "" {
			if !proc.Wait(2 * time.Minute) {
				t.Fatalf("incarnation %d: failpoint %s=crash@%d did not fire within 2 minutes", i, step.failpoint, step.hit)
			}
			if !proc.KilledBySIGKILL() {
				t.Fatalf("incarnation %d: floe exited with %s, want it killed by its failpoint %s", i, proc.State(), step.failpoint)
			}
			if want := "failpoint " + step.failpoint + ": crashing"; !strings.Contains(readFile(logPath), want) {
				t.Fatalf("incarnation %d: died of SIGKILL but its log lacks %q", i, want)
			}
		} else {
			var how string
			if rng.IntN(2) == 0 {
				d := time.Duration(500+rng.IntN(2500)) * time.Millisecond
				how = "after " + d.String()
				time.Sleep(d)
			} else {
				waitFor(t, 2*time.Minute, fmt.Sprintf("incarnation %d to commit something", i), func() (bool, string) {
					if proc.Exited() {
						t.Fatalf("incarnation %d exited by itself: %v", i, proc.Err())
					}
					m, d, _ := progress()
					return m > main0 || d > dlq0, fmt.Sprintf("committed offsets %d + %d dead-letter, %d + %d before", m, d, main0, dlq0)
				})
				d := time.Duration(rng.IntN(1000)) * time.Millisecond
				how = "once it committed, plus " + d.String()
				time.Sleep(d)
			}
			if err := proc.Kill(); err != nil {
				t.Fatalf("incarnation %d: %v", i, err)
			}
			step.failpoint = "SIGKILL " + how
		}

		main1, dlq1, snaps1 := progress()
		t.Logf("incarnation %2d: %-36s %s; committed offsets %d -> %d, dead-letter %d -> %d, %d new snapshots; %d produced so far",
			i, step.failpoint, crashDesc(step), main0, main1, dlq0, dlq1, snaps1-snaps0, stats.Produced.Load())
		// A crash before the catalog call leaves hit-1 commits; one after
		// it, hit commits: the catalog accepted the last one. The two
		// tables' writers commit concurrently, so the other table's attempt
		// may be in flight when the process dies: before the catalog call
		// (its hit counted, nothing landed) or after it (landed, its hit
		// not counted yet). (Unless an attempt failed and was retried,
		// which the log would show.)
		retried := strings.Contains(readFile(logPath), "commit attempt failed")
		if retried {
			t.Logf("incarnation %d: some commit attempts failed and were retried; not counting snapshots", i)
			step.failpoint = ""
		}
		added := snaps1 - snaps0
		switch step.failpoint {
		case "commit/before-catalog":
			if added > step.hit-1 || added < step.hit-2 {
				t.Errorf("incarnation %d: crashed before its commit attempt #%d, yet %d snapshots were added (want %d, or %d with the other table's attempt in flight)",
					i, step.hit, added, step.hit-1, step.hit-2)
			}
		case "commit/after-catalog":
			if added < step.hit || added > step.hit+1 {
				t.Errorf("incarnation %d: crashed after the catalog accepted commit attempt #%d, yet %d snapshots were added (want %d, or %d with the other table's attempt in flight)",
					i, step.hit, added, step.hit, step.hit+1)
			}
		}
	}
	chaosOver.Store(true)

	// The last incarnation runs without faults until it has committed every
	// record, then stops on SIGTERM.
	logPath := filepath.Join(s.Dir, "floe-final.log")
	showLogOnFailure(t, logPath)
	proc := startFloe(t, bin, cfgPath, logPath)
	select {
	case err := <-prodDone:
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("the producer did not finish within 3 minutes")
	}
	want := producedOf(&stats)
	ends := mustEndOffsets(t, addr, topic)
	t.Logf("produced %d records (%d malformed); end offsets %s", want.Records, want.Malformed, fmtOffsets(ends))
	waitFor(t, 3*time.Minute, "the last incarnation to commit every record", func() (bool, string) {
		if proc.Exited() {
			t.Fatalf("the last incarnation exited by itself: %v", proc.Err())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		off, err := committedOffsets(ctx, cat, s.Table, s.Pipeline, topic)
		return err == nil && reached(off, ends), fmt.Sprintf("table offsets %s (err %v), end offsets %s", fmtOffsets(off), err, fmtOffsets(ends))
	})
	stopGracefully(t, proc)
	checkExactlyOnce(t, cfg, want)
}

func crashDesc(s crashStep) string {
	if s.hit == 0 {
		return ""
	}
	return fmt.Sprintf("(crash@%d)", s.hit)
}
