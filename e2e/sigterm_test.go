package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floelake/floe/internal/gen"
	"github.com/floelake/floe/internal/testutil"
)

// fetchWatch records, from the broker's side, the offset each partition's
// consumer asked for last. A franz-go consumer sends its next fetch only
// after the previous response was drained by PollRecords, so a fetch at a
// partition's end offset means every record before it was handed to floe.
// The tests that use it have one topic and one consumer.
type fetchWatch struct {
	mu   sync.Mutex
	next map[int32]int64
}

func watchFetches(c *kfake.Cluster) *fetchWatch {
	w := &fetchWatch{next: map[int32]int64{}}
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.FetchRequest)
		w.mu.Lock()
		for _, tp := range r.Topics {
			for _, p := range tp.Partitions {
				// Fetch sessions leave out partitions whose offset did
				// not change, so the last one seen is the current one.
				w.next[p.Partition] = p.FetchOffset
			}
		}
		w.mu.Unlock()
		return nil, nil, false // observe only
	})
	return w
}

// reset forgets the positions seen so far (before a new consumer starts).
func (w *fetchWatch) reset() {
	w.mu.Lock()
	w.next = map[int32]int64{}
	w.mu.Unlock()
}

func (w *fetchWatch) snapshot() map[int32]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[int32]int64, len(w.next))
	for p, o := range w.next {
		out[p] = o
	}
	return out
}

// TestSIGTERMFinalCommit: with a commit interval far longer than the test,
// only the commit floe makes on SIGTERM can commit anything. It must cover
// every record floe consumed, and the process must exit 0, on a local
// warehouse and on S3 (where the last files are still being uploaded when
// the signal arrives).
func TestSIGTERMFinalCommit(t *testing.T) {
	t.Run("local", func(t *testing.T) { testSIGTERMFinalCommit(t, false) })
	t.Run("s3", func(t *testing.T) { testSIGTERMFinalCommit(t, true) })
}

func testSIGTERMFinalCommit(t *testing.T, onS3 bool) {
	const topic, records = "clicks", 30_000
	_, addr := startBroker(t, topic, 4)
	s := newSetup(t, addr, topic)
	s.CommitInterval = 10 * time.Minute
	s.HTTPAddr = freeAddr(t)
	if onS3 {
		srv := testutil.StartS3(t)
		s.Warehouse = srv.Warehouse("wh")
		s.S3 = &s3Settings{Endpoint: srv.Endpoint, Region: srv.Region, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	}
	cfg := s.config(t)
	cfgPath := s.writeConfig(t)
	logPath := filepath.Join(s.Dir, "floe.log")
	showLogOnFailure(t, logPath)

	proc := startFloe(t, floeBinary(t), cfgPath, logPath)
	var stats gen.ProducerStats
	if err := produce(context.Background(), newProducer(t, addr), topic, records, 0, 31, &stats); err != nil {
		t.Fatalf("produce: %v", err)
	}
	want := producedOf(&stats)
	ends := mustEndOffsets(t, addr, topic)

	// Wait until floe's workers hold every record: a worker counts a
	// record in floe_ingest_records_total once it is in a file being
	// written, which the final commit covers.
	metricsURL := "http://" + s.HTTPAddr + "/metrics"
	series := fmt.Sprintf("floe_ingest_records_total{pipeline=%q}", s.Pipeline)
	waitFor(t, 2*time.Minute, "floe's workers to hold every record", func() (bool, string) {
		if proc.Exited() {
			t.Fatalf("floe exited early: %v", proc.Err())
		}
		m, err := readMetrics(metricsURL)
		if err != nil {
			return false, err.Error()
		}
		got, ok := m[series]
		return ok && got == float64(want.Records), fmt.Sprintf("%s = %v (present: %v), want %d", series, got, ok, want.Records)
	})

	// Nothing can be committed yet: the first interval commit is 10
	// minutes away.
	cat := openCatalog(t, cfg)
	off, err := committedOffsets(context.Background(), cat, s.Table, s.Pipeline, topic)
	if err != nil {
		t.Fatalf("read offsets: %v", err)
	}
	// Only the start offsets (0 on this fresh topic) may be recorded yet.
	for p, o := range off {
		if o != 0 {
			t.Fatalf("the table has offsets %s before SIGTERM (partition %d); the test needs a commit interval no commit happens in", fmtOffsets(off), p)
		}
	}

	stopGracefully(t, proc)
	waitTablesReach(t, cfg, ends, time.Minute)
	checkExactlyOnce(t, cfg, want)
}
