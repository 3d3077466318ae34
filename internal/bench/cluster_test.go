package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/floelake/floe/cluster"
)

func TestSpreadOf(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		in          []time.Duration
		median, max time.Duration
		n, missed   int
	}{
		{in: nil},
		{in: []time.Duration{3 * s}, median: 3 * s, max: 3 * s, n: 1},
		{in: []time.Duration{5 * s, 1 * s, 3 * s}, median: 3 * s, max: 5 * s, n: 3},
		{in: []time.Duration{4 * s, 1 * s, 2 * s, 3 * s}, median: 2500 * time.Millisecond, max: 4 * s, n: 4},
		{in: []time.Duration{-1, 2 * s, -1}, median: 2 * s, max: 2 * s, n: 1, missed: 2},
		{in: []time.Duration{-1}, missed: 1},
	} {
		got := spreadOf(tc.in)
		if got.median != tc.median || got.max != tc.max || got.n != tc.n || got.missed != tc.missed {
			t.Errorf("spreadOf(%v) = %+v, want median %s max %s n %d missed %d", tc.in, got, tc.median, tc.max, tc.n, tc.missed)
		}
	}
	if s := spreadOf([]time.Duration{time.Second, 6 * time.Second}); s.within(5*time.Second) || !s.within(6*time.Second) {
		t.Errorf("within: %+v", s)
	}
	if s := spreadOf([]time.Duration{time.Second, -1}); s.within(time.Hour) {
		t.Error("a missed measurement must not count as within the target")
	}
	if got := spreadOf(nil).String(); got != "n/a" {
		t.Errorf("empty spread prints %q", got)
	}
	if got := spreadOf([]time.Duration{time.Second, -1}).String(); !strings.Contains(got, "1 not within") {
		t.Errorf("spread with a miss prints %q", got)
	}
}

func TestHealthy(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	started := map[string]time.Time{"n1": start, "n2": start, "n3": start.Add(10 * time.Second)}
	member := func(id string, hb time.Duration) cluster.MemberStatus {
		return cluster.MemberStatus{ID: id, Suffrage: "voter", Alive: true, LastHeartbeat: start.Add(hb)}
	}
	parts := func(owners ...string) []cluster.PartitionStatus {
		var ps []cluster.PartitionStatus
		for i, o := range owners {
			ps = append(ps, cluster.PartitionStatus{Topic: "t", Partition: int32(i), Owner: o})
		}
		return ps
	}
	good := cluster.Status{
		LeaderID:   "n1",
		Members:    []cluster.MemberStatus{member("n1", time.Second), member("n2", time.Second), member("n3", 11*time.Second)},
		Partitions: parts("n1", "n2", "n3", "n1", "n2"),
	}
	if ok, why := healthy(good, started); !ok {
		t.Fatalf("healthy cluster reported unhealthy: %s", why)
	}
	for name, mutate := range map[string]func(*cluster.Status){
		"no leader":              func(s *cluster.Status) { s.LeaderID = "" },
		"heartbeat before start": func(s *cluster.Status) { s.Members[2].LastHeartbeat = start.Add(9 * time.Second) },
		"dead member":            func(s *cluster.Status) { s.Members[1].Alive = false },
		"not a voter":            func(s *cluster.Status) { s.Members[1].Suffrage = "staging" },
		"missing member":         func(s *cluster.Status) { s.Members = s.Members[:2] },
		"unassigned partition":   func(s *cluster.Status) { s.Partitions[0].Owner = "" },
		"unbalanced":             func(s *cluster.Status) { s.Partitions = parts("n1", "n1", "n1", "n2", "n3") },
		"no partitions":          func(s *cluster.Status) { s.Partitions = nil },
	} {
		st := good
		st.Members = append([]cluster.MemberStatus(nil), good.Members...)
		st.Partitions = append([]cluster.PartitionStatus(nil), good.Partitions...)
		mutate(&st)
		if ok, _ := healthy(st, started); ok {
			t.Errorf("%s: reported healthy", name)
		}
	}
}

func TestMoveTracker(t *testing.T) {
	p := func(part int32, owner string, next, committed int64) cluster.PartitionStatus {
		return cluster.PartitionStatus{Topic: "t", Partition: part, Owner: owner, NextExpected: next, Committed: committed}
	}
	before := cluster.Status{Partitions: []cluster.PartitionStatus{
		p(0, "n1", 100, 90), p(1, "n1", -1, 50), p(2, "n2", 300, 300),
	}}
	mt := newMoveTracker("n1", before)
	if mt.partitions() != 2 {
		t.Fatalf("tracks %d partitions, want 2", mt.partitions())
	}
	steps := []struct {
		st   []cluster.PartitionStatus
		done bool
	}{
		// Still the dead member's: the ledger caught up to 120.
		{[]cluster.PartitionStatus{p(0, "n1", 120, 100), p(1, "n1", -1, 50), p(2, "n2", 310, 310)}, false},
		// Moved, but nothing committed past where n1 left off yet.
		{[]cluster.PartitionStatus{p(0, "n2", 150, 120), p(1, "n3", 80, 50), p(2, "n2", 320, 320)}, false},
		// Partition 0 consumed again; 1 not yet.
		{[]cluster.PartitionStatus{p(0, "n2", 200, 150), p(1, "n3", 80, 50), p(2, "n2", 330, 330)}, false},
		{[]cluster.PartitionStatus{p(0, "n2", 250, 200), p(1, "n3", 100, 80), p(2, "n2", 340, 340)}, true},
	}
	for i, s := range steps {
		if got := mt.observe(cluster.Status{Partitions: s.st}); got != s.done {
			t.Fatalf("step %d: observe = %v, want %v", i, got, s.done)
		}
	}
}
