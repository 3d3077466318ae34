package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/floelake/floe/internal/gen"
)

// TestMetricsCountIngest: once a node has committed every record, its
// /metrics must account for them: records consumed, dead letters, and rows
// committed per table. The metrics are the node's own (not the process's),
// so they count exactly this node's work, run after run (go test -count=N).
func TestMetricsCountIngest(t *testing.T) {
	const topic, records = "clicks", 20_000
	_, addr := startBroker(t, topic, 4)
	s := newSetup(t, addr, topic)
	s.HTTPAddr = "127.0.0.1:0"
	cfg := s.config(t)

	n := startNode(t, cfg, testLogger(t, "node"))
	var stats gen.ProducerStats
	if err := produce(context.Background(), newProducer(t, addr), topic, records, 0, 41, &stats); err != nil {
		t.Fatalf("produce: %v", err)
	}
	want := producedOf(&stats)
	p := n.n.Pipelines()[0]
	waitFor(t, 2*time.Minute, "the node to commit every record", func() (bool, string) {
		st := p.Stats()
		return st.Committed+st.DeadLettersCommitted == want.Records,
			fmt.Sprintf("stats %+v, want committed+dead-letters = %d", st, want.Records)
	})
	waitFor(t, 30*time.Second, "the operations endpoint", func() (bool, string) {
		return n.n.Addr() != "", "no address yet"
	})

	metrics := scrape(t, "http://"+n.n.Addr()+"/metrics")
	st := p.Stats()
	checks := []struct {
		series string
		want   int64
	}{
		{fmt.Sprintf(`floe_ingest_records_total{pipeline=%q}`, s.Pipeline), st.RecordsIn},
		{fmt.Sprintf(`floe_ingest_dead_letters_total{pipeline=%q}`, s.Pipeline), st.DeadLetters},
		{fmt.Sprintf(`floe_commit_records_total{table=%q}`, s.Table), want.Records - want.Malformed},
		{fmt.Sprintf(`floe_commit_records_total{table=%q}`, s.Table+"__dlq"), want.Malformed},
	}
	if st.RecordsIn != want.Records || st.DeadLetters != want.Malformed {
		t.Errorf("stats: %d records in, %d dead letters; want %d and %d", st.RecordsIn, st.DeadLetters, want.Records, want.Malformed)
	}
	for _, c := range checks {
		got, ok := metrics[c.series]
		switch {
		case !ok:
			t.Errorf("/metrics has no series %s (want %d)", c.series, c.want)
		case got != float64(c.want):
			t.Errorf("/metrics: %s = %v, want %d", c.series, got, c.want)
		}
	}
	n.stop(t)
	checkExactlyOnce(t, cfg, want)
}

// scrape reads a Prometheus text exposition into series → value, failing
// the test if it cannot.
func scrape(t testing.TB, url string) map[string]float64 {
	t.Helper()
	m, err := readMetrics(url)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
