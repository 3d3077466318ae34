package metrics_test

import (
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/metrics"
)

// A Set is what every package's hooks report to.
var (
	_ commit.Metrics  = (*metrics.Set)(nil)
	_ ingest.Metrics  = (*metrics.Set)(nil)
	_ cluster.Metrics = (*metrics.Set)(nil)
)

// touch calls every hook of s once.
func touch(s *metrics.Set) {
	s.SnapshotCommitted("ns.t", 10, 2, 30*time.Millisecond, time.Now().Add(-time.Second))
	s.CommitFailed("ns.t", commit.ClassConflict)
	s.LastSnapshot("ns.t", 42)
	s.PendingSegments("ns.t", 3)
	s.TableAdopted("ns.t")
	s.RecordsConsumed("p", 12, 2, 0, 0, 1200)
	s.ConsumerError("p", "transient")
	s.OffsetsSkipped("events", 1, 5)
	s.FileWriteFailed("p")
	s.LeadershipChanged(true)
	s.Members(3, 0)
	s.PartitionsOwned("p", 2)
	s.PipelineRestarted("p")
	s.SegmentProposed("p", "accepted")
	s.PartitionsMoved("p", 4)
	s.PartitionLag("events", 1, 7)
}

// TestSetsShareNothing: two Sets (two nodes in one process) keep separate
// values, including the unlabelled leader gauge.
func TestSetsShareNothing(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	touch(a)
	a.LeadershipChanged(true)
	b.LeadershipChanged(false)
	for _, c := range []struct {
		name   string
		labels []string
		a, b   float64
	}{
		{"floe_cluster_leader", nil, 1, 0},
		{"floe_cluster_leader_changes_total", nil, 2, 1},
		{"floe_ingest_records_total", []string{"pipeline", "p"}, 12, 0},
		{"floe_commit_snapshots_total", []string{"table", "ns.t"}, 1, 0},
		{"floe_commit_records_total", []string{"table", "ns.t"}, 10, 0},
		{"floe_cluster_pending_segments", []string{"table", "ns.t"}, 3, 0},
		{"floe_ingest_skipped_records_total", []string{"topic", "events", "partition", "1"}, 5, 0},
	} {
		if got := a.Sum(c.name, c.labels...); got != c.a {
			t.Errorf("a: %s%v = %v, want %v", c.name, c.labels, got, c.a)
		}
		if got := b.Sum(c.name, c.labels...); got != c.b {
			t.Errorf("b: %s%v = %v, want %v", c.name, c.labels, got, c.b)
		}
	}
	if a.Registry() == b.Registry() {
		t.Error("two Sets share a registry")
	}
}

// TestExposition: every floe metric is served under its documented name,
// beside the Go runtime and process collectors, and the gauges a stopped
// writer or pipeline reported are dropped.
func TestExposition(t *testing.T) {
	s := metrics.New()
	touch(s)
	body := scrape(t, s)
	want := []string{
		"floe_ingest_records_total", "floe_ingest_bytes_total", "floe_ingest_dead_letters_total",
		"floe_ingest_file_write_errors_total", "floe_ingest_lag_records", "floe_ingest_consumer_errors_total",
		"floe_ingest_skipped_records_total", "floe_ingest_pipeline_restarts_total",
		"floe_commit_records_total", "floe_commit_files_total", "floe_commit_snapshots_total",
		"floe_commit_failures_total", "floe_commit_duration_seconds", "floe_commit_freshness_seconds",
		"floe_commit_last_snapshot_id", "floe_commit_table_adoptions_total",
		"floe_cluster_leader", "floe_cluster_leader_changes_total", "floe_cluster_members",
		"floe_cluster_partitions_owned", "floe_cluster_pending_segments", "floe_cluster_segments_total",
		"floe_cluster_partition_moves_total",
		"go_goroutines", "process_start_time_seconds",
	}
	var got []string
	for _, line := range strings.Split(body, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			got = append(got, strings.Fields(name)[0])
		}
	}
	for _, name := range want {
		if !slices.Contains(got, name) {
			t.Errorf("/metrics does not serve %s", name)
		}
	}
	for _, series := range []string{
		`floe_commit_failures_total{class="conflict",table="ns.t"} 1`,
		`floe_commit_duration_seconds_count{table="ns.t"} 1`,
		`floe_commit_last_snapshot_id{table="ns.t"} 42`,
		`floe_cluster_members{state="alive"} 3`,
		`floe_cluster_members{state="dead"} 0`,
		`floe_ingest_lag_records{partition="1",topic="events"} 7`,
		`floe_cluster_segments_total{outcome="accepted",pipeline="p"} 1`,
	} {
		if !strings.Contains(body, series+"\n") {
			t.Errorf("/metrics has no line %s", series)
		}
	}
	if f := s.Sum("floe_commit_freshness_seconds", "table", "ns.t"); f < 1 || f > 60 {
		t.Errorf("freshness %v s, want the age of a record stamped a second ago", f)
	}

	s.WriterStopped("ns.t")
	s.PipelineStopped("p")
	body = scrape(t, s)
	for _, gone := range []string{`floe_cluster_pending_segments{table="ns.t"}`, `floe_cluster_partitions_owned{pipeline="p"}`} {
		if strings.Contains(body, gone) {
			t.Errorf("%s is still served after its writer or pipeline stopped", gone)
		}
	}
}

// TestSteppingDownDropsTheLeadersGauges: a member that stops leading no
// longer serves the gauges only the leader keeps current; its counters and
// its own gauges stay.
func TestSteppingDownDropsTheLeadersGauges(t *testing.T) {
	s := metrics.New()
	s.LeadershipChanged(true)
	touch(s)
	s.LeadershipChanged(false)
	body := scrape(t, s)
	for _, gone := range []string{"floe_cluster_members{", "floe_ingest_lag_records{", "floe_commit_last_snapshot_id{", "floe_commit_freshness_seconds{"} {
		if strings.Contains(body, gone) {
			t.Errorf("%s is still served after the member stopped leading", gone)
		}
	}
	for _, kept := range []string{
		"floe_cluster_leader 0\n", `floe_commit_snapshots_total{table="ns.t"} 1` + "\n",
		`floe_cluster_partitions_owned{pipeline="p"} 2` + "\n", `floe_ingest_records_total{pipeline="p"} 12` + "\n",
	} {
		if !strings.Contains(body, kept) {
			t.Errorf("/metrics lost %q when the member stopped leading", kept)
		}
	}
}

func scrape(t *testing.T, s *metrics.Set) string {
	t.Helper()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
