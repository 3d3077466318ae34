package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/gen"
	"github.com/floelake/floe/internal/metrics"
	"github.com/floelake/floe/raftstore"
)

// memNet is the in-process stand-in for the network between cluster
// members: raft's in-memory transports, and direct calls for the cluster
// API. A node can be cut off from the others (a network partition).
type memNet struct {
	mu         sync.Mutex
	nodes      map[string]*cluster.Node // by API address
	transports map[string]*raft.InmemTransport
	cut        map[string]bool // by API address
}

func (m *memNet) peers(self string) cluster.Peers { return memPeers{m, self} }

type memPeers struct {
	net  *memNet
	self string
}

func (p memPeers) Peer(addr string) (cluster.Service, error) {
	p.net.mu.Lock()
	defer p.net.mu.Unlock()
	if p.net.cut[p.self] || p.net.cut[addr] {
		return nil, fmt.Errorf("%w: %s is unreachable from %s", cluster.ErrUnreachable, addr, p.self)
	}
	n := p.net.nodes[addr]
	if n == nil {
		return nil, fmt.Errorf("%w: no node at %s", cluster.ErrUnreachable, addr)
	}
	return n, nil
}

// isolate cuts node id (its API address) off from every other member.
func (m *memNet) isolate(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cut[id] = true
	for other, tr := range m.transports {
		if other == id {
			tr.DisconnectAll()
			continue
		}
		tr.Disconnect(raft.ServerAddress(id))
	}
}

// heal reconnects everything.
func (m *memNet) heal() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cut = map[string]bool{}
	var all []*raft.InmemTransport
	for _, tr := range m.transports {
		all = append(all, tr)
	}
	raftstore.ConnectInMemory(all...)
}

type memMember struct {
	id   string
	node *cluster.Node
	raft *raftstore.Node
	// metrics are the member's own, as a node's /metrics serves them.
	metrics *metrics.Set
	cancel  context.CancelFunc
	done    chan struct{}
}

// TestClusterInProcess runs three cluster members in this process, on
// raft's in-memory transport, against a fake broker, through a member
// leaving and rejoining (partition moves), a leadership transfer and a
// network partition of the leader, while a producer writes. The oracle
// then finds every record exactly once and the offsets at the end.
func TestClusterInProcess(t *testing.T) {
	const topic = "clicks"
	broker, cfg, cat := memClusterConfig(t, topic)
	mc := startMemCluster(t, cfg, cat, "n1", "n2", "n3")
	net, members, ids, leader, join := mc.net, mc.members, mc.ids, mc.leader, mc.join

	// Produce while the cluster changes.
	prod := newProducer(t, broker)
	var stats gen.ProducerStats
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prodErr := make(chan error, 1)
	go func() { prodErr <- produce(ctx, prod, topic, 200_000, 15_000, 7, &stats) }()

	owners := func() map[string]int { return mc.owners("clicks") }
	mc.waitSpread(t, "clicks")

	// 1. A member leaves: its partitions move to the other two.
	time.Sleep(time.Second)
	var leaving string
	for _, id := range ids {
		if id != leader().id {
			leaving = id
			break
		}
	}
	// Leave is idempotent; retried across leader changes.
	waitFor(t, 10*time.Second, "leave of "+leaving, func() (bool, string) {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		err := leader().node.Leave(lctx, leaving)
		return err == nil, fmt.Sprint(err)
	})
	waitFor(t, 10*time.Second, leaving+"'s partitions moved", func() (bool, string) {
		o := owners()
		return o[leaving] == 0 && o[""] == 0, fmt.Sprint(o)
	})
	// ... and comes back.
	time.Sleep(time.Second)
	join(leaving)
	waitFor(t, 15*time.Second, leaving+" gets work again", func() (bool, string) {
		o := owners()
		return o[leaving] == 2, fmt.Sprint(o)
	})

	// 2. The leader hands over leadership.
	time.Sleep(time.Second)
	old := leader()
	waitFor(t, 10*time.Second, "a leadership transfer", func() (bool, string) {
		l := leader()
		if l != old {
			return true, "" // leadership moved on its own meanwhile
		}
		err := l.raft.LeadershipTransfer()
		return err == nil && leader() != old, fmt.Sprint(err)
	})

	// 3. The leader is cut off from the others for a while.
	time.Sleep(time.Second)
	cutOff := leader()
	net.isolate(cutOff.id)
	waitFor(t, 10*time.Second, "a leader on the majority side", func() (bool, string) {
		for _, m := range members {
			if m != cutOff && m.raft.IsLeader() {
				return true, ""
			}
		}
		return false, "none"
	})
	time.Sleep(3 * time.Second)
	net.heal()

	if err := <-prodErr; err != nil {
		t.Fatalf("produce: %v", err)
	}
	waitTablesReach(t, cfg, mustEndOffsets(t, broker, topic), 60*time.Second)
	mc.stop()
	checkExactlyOnce(t, cfg, producedOf(&stats))
}

// memCluster is cluster members running in this process on raft's
// in-memory transport.
type memCluster struct {
	net     *memNet
	ids     []string
	members map[string]*memMember
	leader  func() *memMember
	join    func(id string)
}

// startMemCluster starts the members, forms the cluster and joins them all.
// The test's cleanup stops them.
func startMemCluster(t *testing.T, cfg config.Config, cat *catalog.Catalog, ids ...string) *memCluster {
	t.Helper()
	net := &memNet{nodes: map[string]*cluster.Node{}, transports: map[string]*raft.InmemTransport{}, cut: map[string]bool{}}
	members := map[string]*memMember{}
	var raftMembers []raftstore.Member
	for _, id := range ids {
		ledger := commit.NewLedger()
		// Timers as on a real network rather than the in-memory defaults
		// (100 ms): under the race detector on a busy 2-core machine those
		// make leadership flap.
		rn, addr, tr, err := raftstore.OpenInMemoryWithConfig(raftstore.Config{
			NodeID: id, Logger: testLogger(t, id+"-raft"),
			HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: 500 * time.Millisecond,
		}, ledger)
		if err != nil {
			t.Fatal(err)
		}
		net.transports[id] = tr
		raftMembers = append(raftMembers, raftstore.Member{ID: id, Address: string(addr), Suffrage: raftstore.Voter})
		cc := cfg.Cluster
		cc.NodeID = id
		m := metrics.New()
		node, err := cluster.Start(cluster.Options{
			Cluster: cc, Kafka: cfg.Kafka, Pipelines: cfg.Pipelines,
			DataDir: cfg.Node.DataDir, ShutdownTimeout: cfg.Node.ShutdownTimeout.D(),
			Catalog: cat, Logger: testLogger(t, id),
			Raft: rn, Ledger: ledger, APIAddr: id, Peers: net.peers(id),
			PartitionCheckEvery: time.Second, Metrics: m,
		})
		if err != nil {
			t.Fatal(err)
		}
		net.nodes[id] = node
		members[id] = &memMember{id: id, node: node, raft: rn, metrics: m}
	}
	net.heal()
	if err := members["n1"].raft.Bootstrap(raftMembers...); err != nil {
		t.Fatal(err)
	}
	start := func(m *memMember) {
		ctx, cancel := context.WithCancel(context.Background())
		m.cancel, m.done = cancel, make(chan struct{})
		go func() { defer close(m.done); _ = m.node.Run(ctx) }()
	}
	for _, id := range ids {
		start(members[id])
	}
	t.Cleanup(func() {
		for _, m := range members {
			m.cancel()
			<-m.done
			_ = m.raft.Shutdown()
		}
	})
	leader := func() *memMember {
		var l *memMember
		waitFor(t, 10*time.Second, "a leader", func() (bool, string) {
			for _, m := range members {
				if m.raft.IsLeader() {
					l = m
					return true, ""
				}
			}
			return false, "no leader"
		})
		return l
	}
	join := func(id string) {
		waitFor(t, 10*time.Second, "join of "+id, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := leader().node.Join(ctx, cluster.JoinRequest{NodeID: id, RaftAddr: id, APIAddr: id})
			return err == nil, fmt.Sprint(err)
		})
	}
	for _, id := range ids {
		join(id)
	}

	return &memCluster{net: net, ids: ids, members: members, leader: leader, join: join}
}

// stop stops every member (a graceful stop: each commits what it holds).
func (mc *memCluster) stop() {
	for _, m := range mc.members {
		m.cancel()
		<-m.done
	}
}

// memClusterConfig starts a broker with a 6-partition topic and returns its
// address, a cluster configuration for in-process members (short heartbeats)
// and the catalog.
func memClusterConfig(t *testing.T, topic string) (string, config.Config, *catalog.Catalog) {
	t.Helper()
	broker, cfg, cat := nodeConfig(t, topic, 6)
	cfg.Cluster = cluster.Config{
		Enabled: true, HeartbeatInterval: conf.Duration(300 * time.Millisecond), DeadAfter: conf.Duration(3 * time.Second),
	}
	return broker, cfg, cat
}

// metrics returns every member's metrics.
func (mc *memCluster) metrics() []*metrics.Set {
	var out []*metrics.Set
	for _, id := range mc.ids {
		out = append(out, mc.members[id].metrics)
	}
	return out
}

// owners counts the pipeline's partitions per owner, as the leader has them.
func (mc *memCluster) owners(pipeline string) map[string]int {
	out := map[string]int{}
	for _, o := range mc.leader().node.Ledger().Assignment(pipeline) {
		out[o.Owner]++
	}
	return out
}

// waitSpread waits until the pipeline's six partitions are spread two per
// member.
func (mc *memCluster) waitSpread(t *testing.T, pipeline string) {
	t.Helper()
	waitFor(t, 15*time.Second, "partitions spread over three members", func() (bool, string) {
		o := mc.owners(pipeline)
		return o["n1"] == 2 && o["n2"] == 2 && o["n3"] == 2, fmt.Sprint(o)
	})
}
