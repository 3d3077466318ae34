package e2e

import (
	"testing"
	"time"
)

// TestClusterFailpoints kills cluster members at the two steps between a
// durable change and the news of it reaching whoever made it:
//
//   - writer/before-report: the leader's table writer committed to Iceberg,
//     the ledger was not told. The next leader finds the segments covered by
//     the table and drops them instead of committing them twice.
//   - cluster/after-propose: the ledger accepted a member's segment, the
//     member never heard back. The segment is committed anyway; the member,
//     restarted, resumes after it.
//
// Then the oracle checks every record exactly once.
func TestClusterFailpoints(t *testing.T) {
	const topic = "clicks"
	broker, _, r := newLocalClusterRig(t, topic, 6, 3)
	cfg := r.config()
	cat := openCatalog(t, cfg)

	// n1 forms the cluster, so it leads first: armed, it crashes at its
	// third report. The others are not armed, so the next leader is not.
	armed := map[string]bool{"n1": true}
	r.startWith(r.member("n1"), []string{"FLOE_FAILPOINTS=writer/before-report=crash@3"})
	r.start(r.member("n2"))
	r.start(r.member("n3"))
	prod := startProducer(t, broker, topic, 60_000, 2_000, 4_000, 71)
	if r.restartCrashed(t, armed, 2*time.Minute, "writer/before-report") != 1 {
		t.Fatal("the leader did not crash at writer/before-report: the failpoint never fired")
	}

	// One follower proposes with the other failpoint armed.
	r.waitSpread(time.Minute, "n1", "n2", "n3")
	var follower *member
	if l := r.leader(); l != nil {
		for _, m := range r.Members() {
			if m != l {
				follower = m
				break
			}
		}
	}
	if follower == nil {
		t.Fatal("no leader")
	}
	r.stop(follower)
	r.startWith(follower, []string{"FLOE_FAILPOINTS=cluster/after-propose=crash@3"})
	armed[follower.ID] = true
	if r.restartCrashed(t, armed, 2*time.Minute, "cluster/after-propose") != 1 {
		t.Fatal("the follower did not crash at cluster/after-propose: the failpoint never fired")
	}

	want := prod.finish(t, 3*time.Minute)
	ends := mustEndOffsets(t, broker, topic)
	r.waitCommitted(cat, ends, 3*time.Minute)
	r.stopAll()
	checkExactlyOnce(t, cfg, want)
}

// restartCrashed waits until an armed member was killed by its failpoint
// (or the time is up), restarts every such member unarmed, and returns how
// many there were.
func (r *clusterRig) restartCrashed(t *testing.T, armed map[string]bool, within time.Duration, what string) int {
	t.Helper()
	crashed := 0
	for deadline := time.Now().Add(within); crashed == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, m := range r.Members() {
			p := m.Proc()
			if !armed[m.ID] || p == nil || !p.Exited() {
				continue
			}
			if !p.KilledBySIGKILL() {
				t.Fatalf("%s exited with %s, want killed by its failpoint %s", m.ID, p.State(), what)
			}
			crashed++
			delete(armed, m.ID)
			t.Logf("%s crashed at %s; restarting it unarmed", m.ID, what)
			r.start(m)
			r.waitReady(m, 2*time.Minute)
		}
	}
	return crashed
}
