package raftstore

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type tcpNode struct {
	cfg Config
	n   *Node
	fsm *testFSM
}

// open (re)starts the node from its DataDir with a fresh FSM.
func (tn *tcpNode) open(t *testing.T) {
	t.Helper()
	tn.fsm = &testFSM{}
	n, err := Open(tn.cfg, tn.fsm)
	if err != nil {
		t.Fatal(err)
	}
	tn.n = n
	t.Cleanup(func() { n.Shutdown() })
}

// newTCPCluster starts nodes on real TCP ports with durable stores: the first
// bootstraps, the others are added with AddVoter.
func newTCPCluster(t *testing.T, cfg Config, ids ...string) []*tcpNode {
	t.Helper()
	var nodes []*tcpNode
	for i, id := range ids {
		c := cfg
		c.NodeID = id
		c.BindAddr = freeAddr(t)
		c.DataDir = filepath.Join(t.TempDir(), id)
		c.Bootstrap = i == 0
		c.Logger = testLogger(t)
		tn := &tcpNode{cfg: c}
		tn.open(t)
		nodes = append(nodes, tn)
	}
	leader := waitLeader(t, 10*time.Second, nodes[0].n)
	for _, tn := range nodes[1:] {
		if err := leader.AddVoter(ctxTimeout(t, 10*time.Second), tn.cfg.NodeID, tn.n.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	waitLeader(t, 10*time.Second, tcpNodes(nodes)...)
	return nodes
}

func tcpNodes(ts []*tcpNode) []*Node {
	var out []*Node
	for _, tn := range ts {
		out = append(out, tn.n)
	}
	return out
}

func tcpFSMs(ts []*tcpNode) []*testFSM {
	var out []*testFSM
	for _, tn := range ts {
		out = append(out, tn.fsm)
	}
	return out
}

func TestDurableRestartTCP(t *testing.T) {
	nodes := newTCPCluster(t, Config{}, "n1", "n2", "n3")
	leader := waitLeader(t, 10*time.Second, tcpNodes(nodes)...)
	applyN(t, leader, "a", 200)
	waitConverged(t, 10*time.Second, 200, tcpFSMs(nodes)...)
	for _, tn := range nodes {
		if err := tn.n.Snapshot(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatalf("%s: Snapshot: %v", tn.cfg.NodeID, err)
		}
	}
	// Entries after the snapshot are restored from the log.
	applyN(t, leader, "b", 50)
	before := waitConverged(t, 10*time.Second, 250, tcpFSMs(nodes)...)

	for _, tn := range nodes {
		if err := tn.n.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
	// The layout doc.go promises.
	for _, tn := range nodes {
		dir := tn.cfg.DataDir
		id, err := os.ReadFile(filepath.Join(dir, "node-id"))
		if err != nil || strings.TrimSpace(string(id)) != tn.cfg.NodeID {
			t.Fatalf("%s: node-id %q, %v", dir, id, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "raft.db")); err != nil {
			t.Fatal(err)
		}
		snaps, err := filepath.Glob(filepath.Join(dir, "snapshots", "*-*-*"))
		if err != nil || len(snaps) != 1 || strings.HasSuffix(snaps[0], ".tmp") {
			t.Fatalf("%s: snapshots %v, %v; want one completed snapshot", dir, snaps, err)
		}
		for _, f := range []string{"meta.json", "state.bin"} {
			if _, err := os.Stat(filepath.Join(snaps[0], f)); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Reopen from the same DataDirs: n1 still has Bootstrap set, and must
	// not form a new cluster.
	for _, tn := range nodes {
		tn.open(t)
	}
	for _, tn := range nodes {
		if tn.fsm.restoreCount() != 1 {
			t.Fatalf("%s: FSM restored %d snapshots at start, want 1", tn.cfg.NodeID, tn.fsm.restoreCount())
		}
	}
	leader = waitLeader(t, 15*time.Second, tcpNodes(nodes)...)
	after := waitConverged(t, 10*time.Second, 250, tcpFSMs(nodes)...)
	if !slices.Equal(before, after) {
		t.Fatal("state after restart differs from state before")
	}
	members, err := nodes[0].n.Members()
	if err != nil || len(members) != 3 {
		t.Fatalf("members after restart %+v, %v; want the 3 original members", members, err)
	}
	applyN(t, leader, "c", 50)
	state := waitConverged(t, 10*time.Second, 300, tcpFSMs(nodes)...)
	if countPrefix(state, "c-") != 50 {
		t.Fatal("c- commands missing")
	}
}

// TestFailoverTCP kills the leader (Shutdown, which is abrupt for the
// others) five times with the default timeouts, checks that another node
// becomes leader and commits, and restarts the killed node from its
// DataDir. It logs how long the failovers took; it asserts no durations
// (the benchmarks report them).
func TestFailoverTCP(t *testing.T) {
	nodes := newTCPCluster(t, Config{}, "n1", "n2", "n3")
	var (
		durations []time.Duration // kill → another node is leader
		commits   []time.Duration // kill → first Apply committed by it
		total     = 0
	)
	for round := range 5 {
		leader := waitLeader(t, 15*time.Second, tcpNodes(nodes)...)
		applyN(t, leader, fmt.Sprintf("r%d", round), 20)
		total += 20
		waitConverged(t, 10*time.Second, total, tcpFSMs(nodes)...)

		var dead *tcpNode
		var others []*tcpNode
		for _, tn := range nodes {
			if tn.n == leader {
				dead = tn
			} else {
				others = append(others, tn)
			}
		}
		start := time.Now()
		if err := leader.Shutdown(); err != nil {
			t.Fatal(err)
		}
		var (
			elected   time.Duration
			newLeader *Node
		)
		waitFor(t, 15*time.Second, "a new leader", func() bool {
			for _, tn := range others {
				if tn.n.IsLeader() {
					elected, newLeader = time.Since(start), tn.n
					return true
				}
			}
			return false
		})
		if _, err := newLeader.Apply(ctxTimeout(t, 10*time.Second), fmt.Appendf(nil, "after-kill-%d", round)); err != nil {
			t.Fatalf("first Apply on the new leader: %v", err)
		}
		committed := time.Since(start)
		total++
		durations = append(durations, elected)
		commits = append(commits, committed)
		t.Logf("round %d: %s shut down; new leader %s after %v, first commit after %v",
			round, dead.cfg.NodeID, newLeader.ID(), elected, committed)

		// Rejoin from the DataDir; its state comes back by snapshot/log.
		dead.open(t)
	}
	leader := waitLeader(t, 15*time.Second, tcpNodes(nodes)...)
	applyN(t, leader, "end", 10)
	state := waitConverged(t, 10*time.Second, total+10, tcpFSMs(nodes)...)
	// Each new leader's first command is in every node's state, once.
	for round := range 5 {
		if n := countPrefix(state, fmt.Sprintf("after-kill-%d", round)); n != 1 {
			t.Fatalf("after-kill-%d applied %d times, want once", round, n)
		}
	}

	median, worst := medianMax(durations)
	cmedian, cworst := medianMax(commits)
	t.Logf("failover on TCP with default timeouts (heartbeat %v, election %v, lease %v) over %d kills: "+
		"new leader median %v, max %v %v; first commit median %v, max %v",
		DefaultHeartbeatTimeout, DefaultElectionTimeout, DefaultLeaderLeaseTimeout, len(durations),
		median, worst, durations, cmedian, cworst)
}

func medianMax(ds []time.Duration) (median, max time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}

func TestOpenDataDirRules(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{NodeID: "n1", BindAddr: freeAddr(t), DataDir: dir, Logger: testLogger(t)}
	n, err := Open(cfg, &testFSM{})
	if err != nil {
		t.Fatal(err)
	}
	// Without Bootstrap and without state, the node waits to be added: no
	// configuration, no leader.
	if members, err := n.Members(); err != nil || len(members) != 0 {
		t.Fatalf("unbootstrapped node's members %+v, %v", members, err)
	}

	// The DataDir is locked while open.
	c2 := cfg
	c2.BindAddr = freeAddr(t)
	if n2, err := Open(c2, &testFSM{}); err == nil || !strings.Contains(err.Error(), "in use") {
		if n2 != nil {
			n2.Shutdown()
		}
		t.Fatalf("second Open of the same DataDir: %v, want an in-use error", err)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}

	// It belongs to n1.
	c3 := cfg
	c3.NodeID = "n2"
	_, err = Open(c3, &testFSM{})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "NodeID" || !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Open with another NodeID: %v, want a ConfigError on NodeID", err)
	}
	t.Log(err)

	// Port 0 binds a free port and advertises it.
	c4 := cfg
	c4.BindAddr = "127.0.0.1:0"
	c4.Bootstrap = true
	n4, err := Open(c4, &testFSM{})
	if err != nil {
		t.Fatal(err)
	}
	defer n4.Shutdown()
	if strings.HasSuffix(n4.Addr(), ":0") || !strings.HasPrefix(n4.Addr(), "127.0.0.1:") {
		t.Fatalf("advertised %q for BindAddr :0", n4.Addr())
	}
	waitLeader(t, 10*time.Second, n4)
}
