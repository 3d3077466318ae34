package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/internal/clock"
	"github.com/floelake/floe/maintain"
	"github.com/floelake/floe/raftstore"
	"github.com/floelake/floe/upsert"
)

// Peers reaches other members' cluster service by API address.
type Peers interface {
	Peer(apiAddr string) (Service, error)
}

// Options configure a Node.
type Options struct {
	// Cluster is the membership configuration; zero durations take
	// DefaultConfig's.
	Cluster Config
	// Kafka is the source cluster of the Pipelines the members share.
	Kafka     ingest.KafkaConfig
	Pipelines []ingest.PipelineConfig
	// DataDir is the node's data directory (raft state in DataDir/raft).
	DataDir string
	// ShutdownTimeout bounds the final commits (default 30s).
	ShutdownTimeout time.Duration
	Catalog         *catalog.Catalog
	Logger          *slog.Logger
	// Raft and Ledger, when both set, are used as they are (tests run
	// nodes on raft's in-memory transport); otherwise Start opens raft from
	// Cluster with its data in DataDir/raft, and serves the cluster API on
	// Cluster.APIAddr.
	Raft   *raftstore.Node
	Ledger *commit.Ledger
	// APIAddr is the address other members reach this node's Service at
	// (default Cluster.APIAdvertiseAddr, else APIAddr).
	APIAddr string
	// Auth, when set, checks the bearer token of every call to this
	// member's cluster API; Token is what this member sends to the others
	// (an admin token of the node's API).
	Auth  Authorizer
	Token string
	// Peers reaches other members; default gRPC clients.
	Peers Peers
	// PartitionCheckEvery is how often the leader looks for partitions
	// added to the topics (default 30s).
	PartitionCheckEvery time.Duration
	// OnCommit, if set, is called after every commit this node makes as
	// the leader.
	OnCommit func(ingest.CommitEvent)
	// Local runs the node as a cluster of one member: raft on in-memory
	// stores and transport, no cluster API, nothing on disk. This is how a
	// single floe node runs: the same ledger, table writers and workers as
	// a cluster, so there is one path. Raft state lives only as long as
	// the process; a restart is a whole-cluster recovery from the tables'
	// summaries, which is exact (Iceberg holds the truth).
	Local bool
	// Metrics observes this member, its pipelines and its table writers;
	// nil reports nothing. Members in one process need one each.
	Metrics Metrics
	// Maintenance is what the leader's table writers do between commits to
	// keep the tables healthy (compaction, expiry, orphan cleanup). Nil
	// takes maintain.DefaultConfig.
	Maintenance *maintain.Config
}

// Node is one member of a floe cluster. It implements Service.
type Node struct {
	opts      Options
	cfg       Config
	id        string
	apiAddr   string
	log       *slog.Logger
	raft      *raftstore.Node
	ledger    *commit.Ledger
	peers     Peers
	pipelines []*ingest.Pipeline

	// owned when Start opened them.
	grpc     *grpc.Server
	listener net.Listener
	pool     *Pool

	ends endOffsets
	// flushing makes every pending entry due, for the final commits.
	flushing atomic.Bool
	// seen is the highest log index this node knows the leader applied for
	// it (its accepted segments): the local replica must reach it before
	// the node plans work from it.
	seen atomic.Uint64
	// lagKick asks the leader's lag loop for a pass.
	lagKick chan struct{}
	// fatal takes the first error that must stop the node.
	fatal chan error
	// failed holds the pipelines stopped for good because their
	// configuration cannot work (pipelineFailed), by name.
	failed struct {
		sync.Mutex
		m map[string]error
	}
	// writers are the table writers running while this node leads.
	writers sync.Map // table name → *commit.TableWriter
	// maintainers are their maintainers, by table name.
	maintainers sync.Map // table name → *maintain.Maintainer
	// resolvers are the key indexes of the keyed tables among them.
	resolvers sync.Map // table name → *upsert.Resolver
	// stages are the window states of the windowed tables among them.
	stages sync.Map // table name → *transform.Stage
	// keyDirs are the key index directories cleaned since the start.
	keyDirs sync.Map // directory → true
	// localRaft is set when the node runs as a cluster of one.
	localRaft bool
	// samples holds freshness samples of this node's accepted segments
	// until they are committed.
	samples sampleStore
}

var _ Service = (*Node)(nil)

// Start opens the node's raft member (unless given one) and its API
// listener. Run does the work.
func Start(opts Options) (*Node, error) {
	if opts.Catalog == nil {
		return nil, errors.New("cluster: no catalog")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Maintenance == nil {
		d := maintain.DefaultConfig()
		opts.Maintenance = &d
	}
	if opts.PartitionCheckEvery <= 0 {
		opts.PartitionCheckEvery = 30 * time.Second
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	if opts.Cluster.HeartbeatInterval <= 0 {
		opts.Cluster.HeartbeatInterval = DefaultConfig().HeartbeatInterval
	}
	if opts.Cluster.DeadAfter <= 0 {
		opts.Cluster.DeadAfter = DefaultConfig().DeadAfter
	}
	cc := opts.Cluster
	n := &Node{opts: opts, cfg: cc, peers: opts.Peers, ends: endOffsets{kafka: opts.Kafka}, fatal: make(chan error, 1), lagKick: make(chan struct{}, 1)}
	n.id = cc.NodeID
	if n.id == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("cluster: node_id is empty and the host name is unknown: %w", err)
		}
		n.id = h
	}
	n.log = opts.Logger.With("node", n.id)
	for _, pc := range opts.Pipelines {
		p, err := ingest.New(ingest.Options{
			Pipeline:        pc,
			Kafka:           opts.Kafka,
			Catalog:         opts.Catalog,
			Logger:          n.log,
			ShutdownTimeout: opts.ShutdownTimeout,
			Metrics:         n.metrics(),
		})
		if err != nil {
			return nil, err
		}
		n.pipelines = append(n.pipelines, p)
	}

	if opts.Local {
		if err := n.openLocal(); err != nil {
			return nil, err
		}
		return n, nil
	}
	if opts.Raft != nil && opts.Ledger != nil {
		n.raft, n.ledger = opts.Raft, opts.Ledger
		n.apiAddr = opts.APIAddr
		if n.peers == nil {
			return nil, errors.New("cluster: a node given its raft needs Peers")
		}
		return n, nil
	}
	if err := n.open(); err != nil {
		n.closeOwned()
		return nil, err
	}
	return n, nil
}

func (n *Node) open() error {
	cc := n.cfg
	tlsCfg, err := serverTLS(cc.TLS)
	if err != nil {
		return err
	}
	n.ledger = commit.NewLedger()
	raftNode, err := raftstore.Open(raftstore.Config{
		NodeID:        n.id,
		BindAddr:      cc.RaftAddr,
		AdvertiseAddr: cc.RaftAdvertiseAddr,
		DataDir:       filepath.Join(n.opts.DataDir, "raft"),
		// Only a node told of no cluster forms one; a node that lost its
		// data dir must be given join addresses (docs/cluster.md).
		Bootstrap: len(cc.Join) == 0,
		TLS:       tlsCfg,
		Logger:    n.log,
	}, n.ledger)
	if err != nil {
		return fmt.Errorf("cluster: raft: %w", err)
	}
	n.raft = raftNode
	ln, err := net.Listen("tcp", cc.APIAddr)
	if err != nil {
		return fmt.Errorf("cluster: api_addr %s: %w", cc.APIAddr, err)
	}
	n.listener = ln
	n.apiAddr = cc.APIAdvertiseAddr
	if n.apiAddr == "" {
		n.apiAddr = ln.Addr().String()
	}
	n.grpc = NewServer(n, tlsCfg, n.opts.Auth)
	go func() { _ = n.grpc.Serve(ln) }()
	if n.peers == nil {
		ctls, err := clientTLS(cc.TLS)
		if err != nil {
			return err
		}
		n.pool = NewPool(ctls, n.opts.Token)
		n.peers = poolPeers{n.pool}
	}
	return nil
}

// localRaftTimeout is the raft heartbeat, election and lease timeout of a
// cluster of one.
const localRaftTimeout = 20 * time.Millisecond

// openLocal starts the single member of a cluster of one.
func (n *Node) openLocal() error {
	n.ledger = commit.NewLedger()
	// Raft's own chatter (elections of a single voter) is noise here: only
	// its errors are logged.
	quiet := slog.New(levelFloor{n.log.Handler(), slog.LevelError})
	// A single voter on an in-memory transport has no peer to lose touch
	// with: its only election is the first, and short timers make it lead
	// (and consume) sooner after start.
	r, _, _, err := raftstore.OpenInMemoryWithConfig(raftstore.Config{
		NodeID: n.id, Bootstrap: true, Logger: quiet,
		HeartbeatTimeout: localRaftTimeout, ElectionTimeout: localRaftTimeout, LeaderLeaseTimeout: localRaftTimeout,
	}, n.ledger)
	if err != nil {
		return fmt.Errorf("cluster: local raft: %w", err)
	}
	n.raft, n.peers, n.apiAddr = r, noPeers{}, "local"
	n.localRaft = true
	return nil
}

// levelFloor drops records below min.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(as []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(as), h.min}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(name), h.min}
}

// noPeers is the peer set of a cluster of one.
type noPeers struct{}

func (noPeers) Peer(addr string) (Service, error) {
	return nil, fmt.Errorf("cluster: %s: a single node has no peers", addr)
}

// Close releases what Start opened (raft, the cluster API's listener and
// clients) for a node that will not Run: its owner failed to start
// something else. Run closes them itself.
func (n *Node) Close() { n.closeOwned() }

func (n *Node) closeOwned() {
	if n.grpc != nil {
		n.grpc.Stop()
	}
	if n.pool != nil {
		n.pool.Close()
	}
	if n.raft != nil && (n.opts.Raft == nil || n.localRaft) {
		_ = n.raft.Shutdown()
	}
	n.ends.close()
}

type poolPeers struct{ pool *Pool }

func (p poolPeers) Peer(addr string) (Service, error) { return p.pool.Get(addr) }

// metrics returns what observes the node (NopMetrics if nothing does).
func (n *Node) metrics() Metrics {
	if n.opts.Metrics == nil {
		return NopMetrics{}
	}
	return n.opts.Metrics
}

// ID returns the node's id.
func (n *Node) ID() string { return n.id }

// APIAddr returns the address other members reach this node's API at.
func (n *Node) APIAddr() string { return n.apiAddr }

// RaftAddr returns the node's raft address.
func (n *Node) RaftAddr() string { return n.raft.Addr() }

// IsLeader reports whether this node is the raft leader.
func (n *Node) IsLeader() bool { return n.raft.IsLeader() }

// Ledger returns the node's replica of the ledger (read it, never apply to
// it directly).
func (n *Node) Ledger() *commit.Ledger { return n.ledger }

// Run works until ctx ends: it joins the cluster if told to, heartbeats,
// takes on the leader's duties while it leads, and consumes its assigned
// partitions. On the way out it proposes what it has buffered, and a
// leader commits what is pending, within the shutdown timeout; then raft
// stops. It returns nil when ctx ended, or the error that stopped it: a
// pipeline whose configuration cannot work (restarting would not help).
func (n *Node) Run(parent context.Context) error {
	defer n.closeOwned()
	ctx, stop := context.WithCancel(parent)
	defer stop()
	var fatal error
	fatalDone := make(chan struct{})
	go func() {
		defer close(fatalDone)
		select {
		case fatal = <-n.fatal:
			n.log.Error("stopping: a pipeline cannot run with this configuration", "err", fatal)
			stop()
		case <-ctx.Done():
		}
	}()
	defer func() { stop(); <-fatalDone }()
	if len(n.cfg.Join) > 0 {
		if err := n.joinCluster(ctx, n.cfg.Join, 0); err != nil {
			return nil // ctx ended while joining
		}
	} else if peers := n.knownPeers(); len(peers) > 0 {
		// A member restarted from its data dir announces itself through
		// the members it knows. Raft alone would get there too, but the
		// leader backs off replicating to a member that was away (up to
		// ~10 s), and partitions assigned to it would wait that long.
		// Not required: if nobody answers (the whole cluster restarting),
		// raft elects as usual.
		go func() { _ = n.joinCluster(ctx, peers, 5) }()
	}

	// Leader duties outlive ctx by the final commit pass.
	leadCtx, stopLead := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLead()
	leaderDone := make(chan struct{})
	go func() {
		defer close(leaderDone)
		n.leadership(leadCtx)
	}()

	hbCtx, stopHB := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHB()
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); n.heartbeats(hbCtx) }()

	var workers sync.WaitGroup
	for _, p := range n.pipelines {
		workers.Add(1)
		go func() { defer workers.Done(); n.work(ctx, p) }()
	}
	<-ctx.Done()
	workers.Wait()
	n.log.Info("workers stopped")

	// Whether leading or not, stay until the pending rows are committed:
	// when the whole cluster stops, the leader needs a quorum for that.
	n.finalCommits(n.opts.ShutdownTimeout)
	if n.raft.IsLeader() {
		if err := n.raft.LeadershipTransfer(); err != nil {
			n.log.Debug("leadership transfer", "err", err)
		}
	}
	stopLead()
	<-leaderDone
	stopHB()
	bg.Wait()
	stop()
	<-fatalDone
	return fatal
}

// fail stops the node with err (a configuration error); the first one wins.
func (n *Node) fail(err error) {
	select {
	case n.fatal <- err:
	default:
	}
}

// pipelineFailed stops one pipeline for good: its configuration cannot
// work (a schema that cannot be inferred, a partition spec that does not
// fit the table), and restarting cannot change that. The node's other
// pipelines run on; /readyz names the stopped one. When no pipeline is
// left, the node stops with every pipeline's error.
func (n *Node) pipelineFailed(name string, err error) {
	n.failed.Lock()
	if n.failed.m == nil {
		n.failed.m = map[string]error{}
	}
	if _, dup := n.failed.m[name]; dup {
		n.failed.Unlock()
		return
	}
	n.failed.m[name] = err
	all := len(n.failed.m) == len(n.pipelines)
	n.failed.Unlock()
	if all {
		n.fail(n.failedErr())
		return
	}
	n.log.Error("pipeline stopped: it cannot run with this configuration; the other pipelines run on", "pipeline", name, "err", err)
}

// failedErr joins the errors of the pipelines stopped for good, in
// configuration order.
func (n *Node) failedErr() error {
	n.failed.Lock()
	defer n.failed.Unlock()
	var errs []error
	for _, p := range n.pipelines {
		if err, ok := n.failed.m[p.Name()]; ok {
			errs = append(errs, fmt.Errorf("pipeline %s cannot run: %w", p.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// Pipelines returns the node's pipelines in configuration order.
func (n *Node) Pipelines() []*ingest.Pipeline { return n.pipelines }

// peersFile records the other members' API addresses in the data dir, so a
// restarted member can announce itself before its log is replayed.
func (n *Node) peersFile() string {
	if n.opts.Raft != nil || n.localRaft || n.opts.DataDir == "" {
		return ""
	}
	return filepath.Join(n.opts.DataDir, "raft", "peers.json")
}

// knownPeers returns the API addresses of the other members this node knew
// when it last ran.
func (n *Node) knownPeers() []string {
	path := n.peersFile()
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	if json.Unmarshal(b, &out) != nil {
		return nil
	}
	return slices.DeleteFunc(out, func(a string) bool { return a == n.apiAddr || a == "" })
}

// savePeers records the other members' API addresses when they changed.
func (n *Node) savePeers(last []string) []string {
	path := n.peersFile()
	if path == "" {
		return last
	}
	var addrs []string
	for _, m := range n.ledger.Members() {
		if m.ID != n.id && m.APIAddr != "" {
			addrs = append(addrs, m.APIAddr)
		}
	}
	if len(addrs) == 0 || slices.Equal(addrs, last) {
		return last
	}
	b, _ := json.Marshal(addrs)
	tmp := path + ".tmp"
	if os.WriteFile(tmp, b, 0o644) != nil || os.Rename(tmp, path) != nil {
		return last
	}
	return addrs
}

// joinCluster asks the members at addrs to add this node, until one does,
// ctx ends, or (rounds > 0) rounds passes over addrs failed. Joining is
// idempotent, so a restarted member joins again harmlessly.
func (n *Node) joinCluster(ctx context.Context, addrs []string, rounds int) error {
	req := JoinRequest{NodeID: n.id, RaftAddr: n.raft.Addr(), APIAddr: n.apiAddr}
	backoff := 200 * time.Millisecond
	for round := 1; ; round++ {
		if rounds > 0 && round > rounds {
			return errors.New("cluster: no member answered")
		}
		for _, addr := range addrs {
			if addr == n.apiAddr {
				continue
			}
			svc, err := n.peers.Peer(addr)
			if err == nil {
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err = svc.Join(cctx, req)
				cancel()
			}
			if err == nil {
				n.log.Info("joined the cluster", "via", addr)
				return nil
			}
			level := slog.LevelWarn
			if errors.Is(err, raftstore.ErrNotLeader) {
				level = slog.LevelInfo // an election is under way
			}
			n.log.Log(ctx, level, "join failed; retrying", "via", addr, "err", err)
		}
		if err := clock.Sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// heartbeats tells the leader this node is alive, every heartbeat
// interval, while it is a member.
func (n *Node) heartbeats(ctx context.Context) {
	t := time.NewTicker(n.cfg.HeartbeatInterval.D())
	defer t.Stop()
	var peers []string
	for {
		peers = n.savePeers(peers)
		if n.ledger.IsMember(n.id) {
			cmd, err := commit.EncodeHeartbeat(commit.Heartbeat{ID: n.id, At: time.Now()})
			if err == nil {
				cctx, cancel := context.WithTimeout(ctx, 2*n.cfg.HeartbeatInterval.D())
				var res commit.ApplyResult
				res, err = n.applyOnLeader(cctx, cmd)
				cancel()
				if err == nil {
					err = res.Err
				}
			}
			if err != nil && ctx.Err() == nil {
				// A refused token is a configuration mistake the member
				// cannot outwait: say so loudly.
				if refusedToken(err) {
					n.log.Warn("the leader refused this member's token: its node.api.tokens must hold the admin token the members send each other (the first admin token)", "err", err)
				} else {
					n.log.Debug("heartbeat failed", "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Apply implements Service: it applies cmd if this node leads.
func (n *Node) Apply(ctx context.Context, cmd []byte) (commit.ApplyResult, error) {
	resp, err := n.raft.Apply(ctx, cmd)
	if err != nil {
		return commit.ApplyResult{}, err
	}
	res, ok := resp.(commit.ApplyResult)
	if !ok {
		return commit.ApplyResult{}, fmt.Errorf("cluster: ledger returned %T", resp)
	}
	return res, nil
}

// applyHere applies cmd on this node (the leader) and returns the ledger's
// refusal, if any, as the error.
func (n *Node) applyHere(ctx context.Context, cmd []byte) (commit.ApplyResult, error) {
	res, err := n.Apply(ctx, cmd)
	if err == nil {
		err = res.Err
	}
	return res, err
}

// applyOnLeader applies cmd on the leader, locally or through its API.
// Errors are Service.Apply's; with no leader known it is ErrNotLeader.
func (n *Node) applyOnLeader(ctx context.Context, cmd []byte) (commit.ApplyResult, error) {
	if n.raft.IsLeader() {
		return n.Apply(ctx, cmd)
	}
	svc, err := n.leaderService()
	if err != nil {
		return commit.ApplyResult{}, err
	}
	return svc.Apply(ctx, cmd)
}

// leaderService returns the leader's API, or an error that Is
// raftstore.ErrNotLeader when no leader is known.
func (n *Node) leaderService() (Service, error) {
	id, raftAddr := n.raft.Leader()
	if id == "" {
		return nil, &raftstore.NotLeaderError{}
	}
	addr := n.memberAPIAddr(id)
	if addr == "" {
		return nil, fmt.Errorf("%w: the leader %s (%s) has no API address in the ledger yet", raftstore.ErrNotLeader, id, raftAddr)
	}
	return n.peers.Peer(addr)
}

func (n *Node) memberAPIAddr(id string) string {
	for _, m := range n.ledger.Members() {
		if m.ID == id {
			return m.APIAddr
		}
	}
	return ""
}

// Join implements Service.
func (n *Node) Join(ctx context.Context, req JoinRequest) error {
	if req.NodeID == "" || req.RaftAddr == "" || req.APIAddr == "" {
		return fmt.Errorf("%w: join needs a node id, a raft address and an API address", ErrInvalidArgument)
	}
	if !n.raft.IsLeader() {
		svc, err := n.leaderService()
		if err != nil {
			return err
		}
		return svc.Join(ctx, req)
	}
	if err := n.raft.AddVoter(ctx, req.NodeID, req.RaftAddr); err != nil {
		return err
	}
	cmd, err := commit.EncodeAddMember(commit.AddMember{ID: req.NodeID, RaftAddr: req.RaftAddr, APIAddr: req.APIAddr, At: time.Now()})
	if err != nil {
		return err
	}
	if _, err := n.applyHere(ctx, cmd); err != nil {
		return err
	}
	n.log.Info("member joined", "member", req.NodeID, "raft_addr", req.RaftAddr, "api_addr", req.APIAddr)
	return nil
}

// Leave implements Service: the member's partitions are released first (so
// it can never propose again), then it leaves the raft configuration.
func (n *Node) Leave(ctx context.Context, nodeID string) error {
	if nodeID == "" {
		return fmt.Errorf("%w: leave needs a node id", ErrInvalidArgument)
	}
	if !n.raft.IsLeader() {
		svc, err := n.leaderService()
		if err != nil {
			return err
		}
		return svc.Leave(ctx, nodeID)
	}
	cmd, err := commit.EncodeRemoveMember(commit.RemoveMember{ID: nodeID})
	if err != nil {
		return err
	}
	res, err := n.Apply(ctx, cmd)
	if err != nil {
		return err
	}
	if res.Err != nil && !errors.Is(res.Err, commit.ErrUnknownMember) {
		return res.Err
	}
	if err := n.raft.RemoveServer(ctx, nodeID); err != nil {
		return err
	}
	n.log.Info("member left", "member", nodeID, "partitions_released", len(res.Epochs))
	return nil
}

// ErrNotWriting means this member does not write the table: it is not the
// leader, or the table's writer has not started yet.
var ErrNotWriting = errors.New("cluster: this member does not write the table")

// ErrUnknownTable means no pipeline writes a table of that name.
var ErrUnknownTable = errors.New("cluster: no pipeline writes the table")

// Maintainer returns the maintainer of the table this member writes as the
// leader, ErrNotWriting (with who leads, when known), or ErrUnknownTable.
func (n *Node) Maintainer(tableName string) (*maintain.Maintainer, error) {
	if m, ok := n.maintainers.Load(tableName); ok {
		return m.(*maintain.Maintainer), nil
	}
	known := false
	for _, p := range n.pipelines {
		for _, o := range p.Outputs() {
			known = known || o.Table == tableName
		}
	}
	switch {
	case !known:
		return nil, fmt.Errorf("%w: %q", ErrUnknownTable, tableName)
	case !n.raft.IsLeader():
		id, _ := n.raft.Leader()
		return nil, fmt.Errorf("%w: %q is written by the leader, %s; ask it", ErrNotWriting, tableName, orNobody(id))
	default:
		return nil, fmt.Errorf("%w: the writer of %q is starting", ErrNotWriting, tableName)
	}
}

// Writer returns the writer of the table this member writes as the
// leader, with the errors of Maintainer.
func (n *Node) Writer(tableName string) (*commit.TableWriter, error) {
	if w, ok := n.writers.Load(tableName); ok {
		return w.(*commit.TableWriter), nil
	}
	if _, err := n.Maintainer(tableName); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: the writer of %q is starting", ErrNotWriting, tableName)
}

// KeyIndex returns what the key index of a keyed table this node writes
// has done: ErrNotWriting when the node does not write it (it is not the
// leader, or the table is not keyed), ErrUnknownTable when no pipeline
// writes it.
func (n *Node) KeyIndex(tableName string) (upsert.Stats, error) {
	if r, ok := n.resolvers.Load(tableName); ok {
		return r.(*upsert.Resolver).Stats(), nil
	}
	if _, err := n.Maintainer(tableName); errors.Is(err, ErrUnknownTable) {
		return upsert.Stats{}, err
	}
	return upsert.Stats{}, ErrNotWriting
}

// Windows returns the running totals of the window state of a windowed
// table this node writes: ErrNotWriting when the node does not write it,
// ErrUnknownTable when no pipeline writes it.
func (n *Node) Windows(tableName string) (*transform.StageStats, error) {
	if s, ok := n.stages.Load(tableName); ok {
		return s.(*transform.Stage).Stats(), nil
	}
	if _, err := n.Maintainer(tableName); errors.Is(err, ErrUnknownTable) {
		return nil, err
	}
	return nil, ErrNotWriting
}

// keyIndexDir is where the key index of a keyed table keeps the keys that
// outgrow its memory: DataDir/keys/<table>, emptied of what an earlier
// process left the first time this node asks; "" (the system's temporary
// directory) without a DataDir.
func (n *Node) keyIndexDir(tableName string) string {
	if n.opts.DataDir == "" {
		return ""
	}
	dir := filepath.Join(n.opts.DataDir, "keys", url.PathEscape(tableName))
	if _, done := n.keyDirs.LoadOrStore(dir, true); !done {
		if err := upsert.RemoveSpillFiles(dir); err != nil {
			n.log.Warn("key index: cannot remove the files of an earlier process", "dir", dir, "err", err)
		}
	}
	return dir
}

// refusedToken reports whether err is a call refused for its token.
func refusedToken(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if c := status.Code(e); c == codes.Unauthenticated || c == codes.PermissionDenied {
			return true
		}
	}
	return false
}
