package raftstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

type memNode struct {
	n     *Node
	addr  raft.ServerAddress
	trans *raft.InmemTransport
	fsm   *testFSM
}

func openMem(t *testing.T, id string, cfg Config) *memNode {
	t.Helper()
	cfg.NodeID = id
	cfg.Logger = testLogger(t)
	fsm := &testFSM{}
	n, addr, trans, err := OpenInMemoryWithConfig(cfg, fsm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	return &memNode{n: n, addr: addr, trans: trans, fsm: fsm}
}

// newMemCluster starts len(ids) connected in-memory nodes, bootstraps them
// as one cluster and waits for a leader.
func newMemCluster(t *testing.T, cfg Config, ids ...string) []*memNode {
	t.Helper()
	var (
		nodes   []*memNode
		trans   []*raft.InmemTransport
		members []Member
	)
	for _, id := range ids {
		m := openMem(t, id, cfg)
		nodes = append(nodes, m)
		trans = append(trans, m.trans)
		members = append(members, Member{ID: id, Address: string(m.addr)})
	}
	ConnectInMemory(trans...)
	if err := nodes[0].n.Bootstrap(members...); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].n.Bootstrap(); !errors.Is(err, ErrAlreadyBootstrapped) {
		t.Fatalf("second Bootstrap: %v, want ErrAlreadyBootstrapped", err)
	}
	waitLeader(t, 10*time.Second, nodesOf(nodes)...)
	return nodes
}

func nodesOf(ms []*memNode) []*Node {
	var out []*Node
	for _, m := range ms {
		out = append(out, m.n)
	}
	return out
}

func fsmsOf(ms []*memNode) []*testFSM {
	var out []*testFSM
	for _, m := range ms {
		out = append(out, m.fsm)
	}
	return out
}

func find(ms []*memNode, n *Node) *memNode {
	for _, m := range ms {
		if m.n == n {
			return m
		}
	}
	return nil
}

func without(ms []*memNode, x *memNode) []*memNode {
	var out []*memNode
	for _, m := range ms {
		if m != x {
			out = append(out, m)
		}
	}
	return out
}

// checkFollowersRefuse checks that every follower refuses leader-only calls
// with a NotLeaderError naming leader.
func checkFollowersRefuse(t *testing.T, leader *Node, followers []*memNode) {
	t.Helper()
	ctx := ctxTimeout(t, 5*time.Second)
	for _, f := range followers {
		_, err := f.n.Apply(ctx, []byte("refused"))
		var nle *NotLeaderError
		if !errors.Is(err, ErrNotLeader) || !errors.As(err, &nle) {
			t.Fatalf("%s: Apply on follower: %v, want NotLeaderError", f.n.ID(), err)
		}
		if nle.LeaderID != leader.ID() || nle.LeaderAddr != leader.Addr() {
			t.Fatalf("%s: NotLeaderError names %s at %s, want %s at %s", f.n.ID(), nle.LeaderID, nle.LeaderAddr, leader.ID(), leader.Addr())
		}
		if err := f.n.Barrier(ctx); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("%s: Barrier on follower: %v, want ErrNotLeader", f.n.ID(), err)
		}
		if err := f.n.AddVoter(ctx, "x", "x"); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("%s: AddVoter on follower: %v, want ErrNotLeader", f.n.ID(), err)
		}
	}
}

func TestInMemoryReplicateAndFailover(t *testing.T) {
	nodes := newMemCluster(t, Config{}, "n1", "n2", "n3")
	leader := find(nodes, waitLeader(t, 5*time.Second, nodesOf(nodes)...))

	applyN(t, leader.n, "a", 1000)
	// An error returned by the FSM is a result, not a failure.
	resp, err := leader.n.Apply(ctxTimeout(t, 5*time.Second), []byte("fail"))
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := resp.(error); !ok || e.Error() != "rejected by FSM" {
		t.Fatalf("Apply(fail) result %v, want the FSM's error", resp)
	}
	if err := leader.n.Barrier(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	state := waitConverged(t, 10*time.Second, 1001, fsmsOf(nodes)...)
	if countPrefix(state, "a-") != 1000 {
		t.Fatalf("%d a- commands, want 1000", countPrefix(state, "a-"))
	}

	followers := without(nodes, leader)
	checkFollowersRefuse(t, leader.n, followers)

	members, err := followers[0].n.Members()
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 3 {
		t.Fatalf("members %+v, want 3", members)
	}
	for _, m := range members {
		if m.Suffrage != Voter || m.Leader != (m.ID == leader.n.ID()) {
			t.Fatalf("member %+v: want a voter, leader flag only on %s", m, leader.n.ID())
		}
	}
	if st := leader.n.Stats(); st["state"] != "Leader" || st["node_id"] != leader.n.ID() {
		t.Fatalf("leader stats %v", st)
	}

	// Kill the leader; the other two elect a new one and carry on.
	killed := time.Now()
	if err := leader.n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.n.Apply(context.Background(), []byte("x")); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Apply after Shutdown: %v, want ErrShutdown", err)
	}
	newLeader := find(nodes, waitLeader(t, 10*time.Second, nodesOf(followers)...))
	t.Logf("in-memory: new leader %s %v after the leader's shutdown", newLeader.n.ID(), time.Since(killed))

	applyN(t, newLeader.n, "b", 200)
	state = waitConverged(t, 10*time.Second, 1201, fsmsOf(followers)...)
	if countPrefix(state, "b-") != 200 {
		t.Fatalf("%d b- commands, want 200", countPrefix(state, "b-"))
	}
	checkFollowersRefuse(t, newLeader.n, without(followers, newLeader))
}

func TestInMemoryPartitionedLeader(t *testing.T) {
	nodes := newMemCluster(t, Config{}, "n1", "n2", "n3")
	old := find(nodes, waitLeader(t, 5*time.Second, nodesOf(nodes)...))
	applyN(t, old.n, "a", 100)
	waitConverged(t, 10*time.Second, 100, fsmsOf(nodes)...)
	majority := without(nodes, old)

	// Isolate the leader in both directions.
	old.trans.DisconnectAll()
	for _, m := range majority {
		m.trans.Disconnect(old.addr)
	}
	appliedBefore := old.fsm.len()

	// The old leader cannot commit: its proposal fails (it steps down when
	// its lease runs out) or is refused.
	start := time.Now()
	_, err := old.n.Apply(ctxTimeout(t, 5*time.Second), []byte("lost"))
	switch {
	case errors.Is(err, ErrOutcomeUnknown):
		t.Logf("old leader's Apply failed after %v: %v", time.Since(start), err)
	case errors.Is(err, ErrNotLeader):
		t.Logf("old leader had already stepped down: %v", err)
	default:
		t.Fatalf("Apply on the isolated leader: %v, want ErrOutcomeUnknown or ErrNotLeader", err)
	}

	newLeader := find(nodes, waitLeader(t, 10*time.Second, nodesOf(majority)...))
	applyN(t, newLeader.n, "b", 100)
	waitConverged(t, 10*time.Second, 200, fsmsOf(majority)...)
	waitFor(t, 5*time.Second, "the isolated leader to step down", func() bool { return !old.n.IsLeader() })
	if got := old.fsm.len(); got != appliedBefore {
		t.Fatalf("isolated old leader applied %d entries while partitioned", got-appliedBefore)
	}

	// Heal: the old leader follows and catches up; the uncommitted "lost"
	// entry in its log is overwritten, never applied.
	ConnectInMemory(old.trans, majority[0].trans, majority[1].trans)
	leader := find(nodes, waitLeader(t, 10*time.Second, nodesOf(nodes)...))
	state := waitConverged(t, 10*time.Second, 200, fsmsOf(nodes)...)
	if n := countPrefix(state, "lost"); n != 0 {
		t.Fatalf("the isolated leader's uncommitted entry was applied %d times", n)
	}
	if a, b := countPrefix(state, "a-"), countPrefix(state, "b-"); a != 100 || b != 100 {
		t.Fatalf("committed a-: %d, b-: %d, want 100 each", a, b)
	}
	applyN(t, leader.n, "c", 50)
	state = waitConverged(t, 10*time.Second, 250, fsmsOf(nodes)...)
	if countPrefix(state, "c-") != 50 {
		t.Fatal("c- commands missing after healing")
	}
}

func TestInMemorySnapshotInstall(t *testing.T) {
	cfg := Config{SnapshotThreshold: 50, SnapshotInterval: 20 * time.Millisecond, TrailingLogs: 10}
	nodes := newMemCluster(t, cfg, "n1", "n2", "n3")
	leader := find(nodes, waitLeader(t, 5*time.Second, nodesOf(nodes)...))
	applyN(t, leader.n, "a", 500)
	waitConverged(t, 10*time.Second, 500, fsmsOf(nodes)...)

	// The threshold triggers snapshots (and log compaction) on every node
	// without being asked.
	for _, m := range nodes {
		waitFor(t, 10*time.Second, m.n.ID()+" to take a snapshot by itself", func() bool {
			idx, _ := strconv.ParseUint(m.n.Stats()["last_snapshot_index"], 10, 64)
			return idx >= 400
		})
	}
	// (With TrailingLogs this small a follower that lags by a few entries
	// may itself be sent a snapshot; waitConverged checked that its state and
	// order are still right.)

	// A new member is far behind the compacted log: it gets the state by
	// InstallSnapshot, then entries by the log.
	n4 := openMem(t, "n4", cfg)
	all := append(nodes, n4)
	ConnectInMemory(n4.trans, nodes[0].trans, nodes[1].trans, nodes[2].trans)
	if err := leader.n.AddVoter(ctxTimeout(t, 10*time.Second), "n4", string(n4.addr)); err != nil {
		t.Fatal(err)
	}
	// Idempotent for an identical member.
	if err := leader.n.AddVoter(ctxTimeout(t, 10*time.Second), "n4", string(n4.addr)); err != nil {
		t.Fatalf("repeated AddVoter: %v", err)
	}
	if err := leader.n.AddVoter(ctxTimeout(t, 10*time.Second), "n5", string(n4.addr)); !errors.Is(err, ErrMemberConflict) {
		t.Fatalf("AddVoter with another member's address: %v, want ErrMemberConflict", err)
	}
	waitConverged(t, 10*time.Second, 500, fsmsOf(all)...)
	n4.fsm.mu.Lock()
	restores, first := n4.fsm.restores, n4.fsm.firstApply
	n4.fsm.mu.Unlock()
	// Usually one; two when the leader snapshots and compacts again while
	// the first one is being installed.
	if restores < 1 {
		t.Fatalf("new member restored %d snapshots, want at least 1 (InstallSnapshot)", restores)
	}
	if first != 0 && first < 400 {
		t.Fatalf("new member applied index %d from the log: it should have started from a snapshot", first)
	}

	applyN(t, leader.n, "b", 50)
	waitConverged(t, 10*time.Second, 550, fsmsOf(all)...)
	members, err := n4.n.Members()
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 4 {
		t.Fatalf("members seen by the new node: %+v", members)
	}

	// RemoveServer is idempotent, too.
	for range 2 {
		if err := leader.n.RemoveServer(ctxTimeout(t, 10*time.Second), "n4"); err != nil {
			t.Fatal(err)
		}
	}
	if members, _ := leader.n.Members(); len(members) != 3 {
		t.Fatalf("members after removal: %+v", members)
	}
}

// TestApplyHonoursDeadline: a leader that cannot reach a quorum keeps
// leadership until its lease (1 s here) runs out; Apply returns at the
// context's deadline (100 ms) with an outcome-unknown error wrapping the
// context's. Had it waited for the lease instead, the error would be the
// lost leadership, without DeadlineExceeded.
func TestApplyHonoursDeadline(t *testing.T) {
	cfg := Config{HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: time.Second}
	n1 := openMem(t, "n1", cfg)
	n2 := openMem(t, "n2", cfg)
	ConnectInMemory(n1.trans, n2.trans)
	if err := n1.n.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, 10*time.Second, n1.n)
	if err := n1.n.AddVoter(ctxTimeout(t, 10*time.Second), "n2", string(n2.addr)); err != nil {
		t.Fatal(err)
	}
	applyN(t, n1.n, "a", 10)

	// Already expired: definitely not proposed.
	ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	if _, err := n1.n.Apply(ctx, []byte("never")); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Apply with an expired context: %v, want DeadlineExceeded without ErrOutcomeUnknown", err)
	}

	n1.trans.DisconnectAll()
	n2.trans.DisconnectAll()
	start := time.Now()
	_, err := n1.n.Apply(ctxTimeout(t, 100*time.Millisecond), []byte("stuck"))
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Apply without quorum: %v, want DeadlineExceeded and ErrOutcomeUnknown", err)
	}
	t.Logf("Apply without quorum returned after %v: %v", time.Since(start), err)
}

// TestApplyDeadlineWhileFSMBlocks: the entry commits but the leader's FSM
// does not finish applying it, so raft's future never resolves on its own.
// Apply must return when its context's deadline passes, with an
// outcome-unknown error (the entry is in fact committed), while the node is
// still the leader: nothing but the deadline can have ended the call.
func TestApplyDeadlineWhileFSMBlocks(t *testing.T) {
	m := openMem(t, "n1", Config{})
	release := make(chan struct{})
	m.fsm.setGate("block", release)
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	if err := m.n.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, 10*time.Second, m.n)
	applyN(t, m.n, "a", 10)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := m.n.Apply(ctx, []byte("block"))
		errc <- err
	}()
	var err error
	select {
	case err = <-errc:
	case <-time.After(time.Minute):
		t.Fatal("Apply did not return after its context's deadline (the FSM is still blocked)")
	}
	t.Logf("Apply returned after %v: %v", time.Since(start), err)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Apply while the FSM blocks: %v, want DeadlineExceeded and ErrOutcomeUnknown", err)
	}
	if ctx.Err() != context.DeadlineExceeded {
		t.Fatalf("Apply returned before its deadline passed: %v", err)
	}
	if !m.n.IsLeader() {
		t.Fatal("the node lost leadership; the deadline was not the only way out")
	}
	if got := countPrefix(m.fsm.snapshot(), "block"); got != 0 {
		t.Fatalf("the blocked command was recorded %d times before its FSM call returned", got)
	}

	// Unblocked, the command turns out to have been committed: the outcome
	// was unknown, not failed.
	close(release)
	released = true
	waitFor(t, 10*time.Second, "the blocked command to be applied", func() bool {
		return countPrefix(m.fsm.snapshot(), "block") == 1
	})
	applyN(t, m.n, "b", 10)
}

func TestOpenInMemoryDefaults(t *testing.T) {
	fsm := &testFSM{}
	n, addr, trans := OpenInMemory("solo", fsm)
	defer n.Shutdown()
	if string(addr) != "solo" || trans.LocalAddr() != addr || n.Addr() != "solo" {
		t.Fatalf("address %q, transport %q", addr, trans.LocalAddr())
	}
	if err := n.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-n.LeaderCh():
		if !v {
			t.Fatal("LeaderCh delivered false, want true on election")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("LeaderCh delivered nothing after the election")
	}
	waitLeader(t, 5*time.Second, n)
	for i := range 10 {
		if _, err := n.Apply(ctxTimeout(t, 5*time.Second), fmt.Appendf(nil, "c-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if fsm.len() != 10 {
		t.Fatalf("FSM holds %d entries, want 10", fsm.len())
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-n.LeaderCh():
		if v {
			t.Fatal("LeaderCh delivered true on shutdown")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("LeaderCh delivered nothing when the leader shut down")
	}
	if err := n.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("OpenInMemory with an invalid id did not panic")
		}
	}()
	OpenInMemory("bad id", &testFSM{})
}
