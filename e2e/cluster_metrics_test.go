package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/gen"
)

// TestClusterMembersInOneProcessKeepTheirOwnMetrics runs three cluster
// members in this process, as `floe quickstart --nodes 3` does: three nodes,
// each with its raft, cluster API and operations endpoint on 127.0.0.1.
// Each member's /metrics must describe that member alone: floe_cluster_leader
// is 1 on the leader and 0 on the others, every member counts the records it
// consumed itself and the segments it proposed, and the leader's duties
// (members judged, commits) show only on members that led.
func TestClusterMembersInOneProcessKeepTheirOwnMetrics(t *testing.T) {
	const topic, pipeline = "clicks", "clicks"
	_, broker := startBroker(t, topic, 6)
	s := newSetup(t, broker, topic)
	s.CommitInterval = 300 * time.Millisecond
	s.Warehouse = "file://" + filepath.Join(s.Dir, "warehouse")
	base := s.config(t)

	ids := []string{"n1", "n2", "n3"}
	nodes := map[string]*runningNode{}
	var join []string
	for _, id := range ids {
		cfg := base
		cfg.Node.DataDir = filepath.Join(s.Dir, id)
		cfg.Node.HTTPAddr = "127.0.0.1:0"
		cfg.Cluster = cluster.Config{
			Enabled: true, NodeID: id, RaftAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0", Join: join,
			HeartbeatInterval: conf.Duration(300 * time.Millisecond), DeadAfter: conf.Duration(3 * time.Second),
		}
		n := startNode(t, cfg, testLogger(t, id))
		nodes[id] = n
		if join == nil {
			join = []string{n.n.Cluster().APIAddr()}
		}
	}
	leader := func() string {
		for _, id := range ids {
			if nodes[id].n.Cluster().IsLeader() {
				return id
			}
		}
		return ""
	}
	waitFor(t, time.Minute, "partitions spread over three members", func() (bool, string) {
		l := leader()
		if l == "" {
			return false, "no leader"
		}
		owners := map[string]int{}
		for _, o := range nodes[l].n.Cluster().Ledger().Assignment(pipeline) {
			owners[o.Owner]++
		}
		return owners["n1"] == 2 && owners["n2"] == 2 && owners["n3"] == 2, fmt.Sprint(owners)
	})

	var stats gen.ProducerStats
	if err := produce(context.Background(), newProducer(t, broker), topic, 20_000, 0, 83, &stats); err != nil {
		t.Fatalf("produce: %v", err)
	}
	waitTablesReach(t, base, mustEndOffsets(t, broker, topic), 2*time.Minute)

	scrapeAll := func() map[string]map[string]float64 {
		out := map[string]map[string]float64{}
		for _, id := range ids {
			addr := nodes[id].n.Addr()
			if addr == "" {
				t.Fatalf("%s has no operations endpoint", id)
			}
			out[id] = scrape(t, "http://"+addr+"/metrics")
		}
		return out
	}

	// The leader gauge: 1 on the raft leader, 0 on the two others.
	waitFor(t, 30*time.Second, "floe_cluster_leader = 1 on the leader alone", func() (bool, string) {
		l, all := leader(), scrapeAll()
		ok := l != ""
		state := ""
		for _, id := range ids {
			v, has := all[id]["floe_cluster_leader"]
			want := 0.0
			if id == l {
				want = 1
			}
			ok = ok && has && v == want
			state += fmt.Sprintf("%s=%v ", id, v)
		}
		return ok, state + "(raft leader " + l + ")"
	})

	l, all := leader(), scrapeAll()
	var consumed float64
	for _, id := range ids {
		m := all[id]
		// Counters: what this member did, not what the three did.
		own := nodes[id].n.Pipelines()[0].Stats().RecordsIn
		got := m[fmt.Sprintf("floe_ingest_records_total{pipeline=%q}", pipeline)]
		if own == 0 || got != float64(own) {
			t.Errorf("%s: floe_ingest_records_total = %v, want the %d records it consumed itself", id, got, own)
		}
		consumed += got
		if got := m[fmt.Sprintf("floe_cluster_segments_total{outcome=\"accepted\",pipeline=%q}", pipeline)]; got == 0 {
			t.Errorf("%s: floe_cluster_segments_total{outcome=\"accepted\"} = 0: it consumed records and proposed no segment", id)
		}
		// Gauges: the partitions this member owns.
		owned := len(nodes[id].n.Cluster().Ledger().Owned(pipeline, id))
		if got := m[fmt.Sprintf("floe_cluster_partitions_owned{pipeline=%q}", pipeline)]; got != float64(owned) {
			t.Errorf("%s: floe_cluster_partitions_owned = %v, want %d", id, got, owned)
		}
		// The leader's duties show only where they ran.
		if m["floe_cluster_leader_changes_total"] > 0 {
			continue
		}
		for _, series := range []string{
			`floe_cluster_members{state="alive"}`,
			fmt.Sprintf("floe_commit_snapshots_total{table=%q}", s.Table),
		} {
			if v, has := m[series]; has {
				t.Errorf("%s never led, yet its /metrics has %s %v", id, series, v)
			}
		}
	}
	if want := float64(producedOf(&stats).Records); consumed < want {
		t.Errorf("the members counted %v records consumed in all, want at least the %v produced", consumed, want)
	}
	if l != "" {
		if v := all[l][`floe_cluster_members{state="alive"}`]; v != 3 {
			t.Errorf("the leader %s counts %v live members, want 3", l, v)
		}
	}

	// Stop them together: the leader keeps its quorum for the final commits.
	for _, n := range nodes {
		n.cancel()
	}
	for id, n := range nodes {
		if err := <-n.done; err != nil {
			t.Errorf("%s: %v", id, err)
		}
		n.done <- nil // for the cleanup
	}
}
