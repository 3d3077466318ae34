package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Files and directories under Config.DataDir (see doc.go).
const (
	raftDBFile  = "raft.db"   // bbolt: log entries and stable store (term, vote)
	nodeIDFile  = "node-id"   // the NodeID this DataDir belongs to
	snapshotDir = "snapshots" // raft's file snapshot store
)

const (
	// logCacheSize is how many recent entries are served from memory to
	// replication instead of from raft.db.
	logCacheSize = 512
	// boltOpenTimeout bounds the wait for raft.db's file lock: a DataDir in
	// use by another process fails Open instead of hanging it.
	boltOpenTimeout = time.Second
)

// Member is one server in the raft configuration.
type Member struct {
	ID       string
	Address  string
	Suffrage Suffrage
	Leader   bool // this member is the leader as far as the answering node knows
}

// Suffrage is a member's voting status.
type Suffrage string

const (
	Voter    Suffrage = "voter"
	Nonvoter Suffrage = "nonvoter"
	Staging  Suffrage = "staging" // unused by hashicorp/raft 1.x, kept for completeness
)

func suffrageOf(s raft.ServerSuffrage) Suffrage {
	switch s {
	case raft.Voter:
		return Voter
	case raft.Nonvoter:
		return Nonvoter
	default:
		return Staging
	}
}

// Node is one raft member: a hashicorp/raft instance with its stores,
// transport and FSM. All methods are safe for concurrent use.
type Node struct {
	id   string
	addr raft.ServerAddress
	raft *raft.Raft
	log  *slog.Logger

	closers []io.Closer // closed after raft has shut down (the log store)

	closed       atomic.Bool
	shutdownOnce sync.Once
	shutdownErr  error
}

// Open starts a node on durable stores in cfg.DataDir and a TCP (or TLS)
// transport on cfg.BindAddr.
//
// If DataDir holds raft state (a previous run), the node resumes from it:
// the FSM is restored from the latest snapshot, Bootstrap is ignored, and the
// node rejoins the cluster recorded in its log. Otherwise it bootstraps a
// single-node cluster if cfg.Bootstrap is set, or waits, as an empty
// follower, for a leader to AddVoter it.
func Open[S FSMSnapshot](cfg Config, fsm FSM[S]) (*Node, error) {
	cfg = cfg.withDefaults(false)
	if err := cfg.validate(false); err != nil {
		return nil, err
	}
	if fsm == nil {
		return nil, errors.New("raftstore: Open: nil FSM")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("raftstore: create DataDir: %w", err)
	}
	if err := claimDataDir(cfg.DataDir, cfg.NodeID); err != nil {
		return nil, err
	}
	hl := newHclog(cfg.Logger, "raft")

	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(cfg.DataDir, raftDBFile),
		BoltOptions: &bbolt.Options{Timeout: boltOpenTimeout},
	})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("raftstore: DataDir %s is in use (raft.db is locked by another process or Node): %w", cfg.DataDir, err)
		}
		return nil, fmt.Errorf("raftstore: open %s: %w", raftDBFile, err)
	}
	logs, err := raft.NewLogCache(logCacheSize, store)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("raftstore: log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, SnapshotsRetained, hl.Named("snapshot"))
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("raftstore: snapshot store: %w", err)
	}
	trans, addr, err := newNetworkTransport(cfg, hl.Named("net"))
	if err != nil {
		store.Close()
		return nil, err
	}
	n, err := start(cfg, &fsmAdapter[S]{fsm: fsm}, logs, store, snaps, trans, addr, store)
	if err != nil {
		trans.Close()
		store.Close()
		return nil, err
	}
	return n, nil
}

// OpenInMemory starts a node on in-memory stores and an in-memory transport
// whose address is id, for tests (of this and other packages). The node is
// not bootstrapped: connect the transports (ConnectInMemory) and call
// Bootstrap on one node, then AddVoter the others (or Bootstrap one node
// with all members). Timers are short (100 ms heartbeat/election) and raft's
// logs are discarded; use OpenInMemoryWithConfig to change either. It panics
// if id is not a valid NodeID.
func OpenInMemory[S FSMSnapshot](id string, fsm FSM[S]) (*Node, raft.ServerAddress, *raft.InmemTransport) {
	n, addr, trans, err := OpenInMemoryWithConfig(Config{NodeID: id, Logger: slog.New(slog.DiscardHandler)}, fsm)
	if err != nil {
		panic(err)
	}
	return n, addr, trans
}

// OpenInMemoryWithConfig is OpenInMemory with a Config: BindAddr,
// AdvertiseAddr, DataDir and TLS are ignored; zero timers take the in-memory
// defaults; Bootstrap bootstraps a single-node cluster.
func OpenInMemoryWithConfig[S FSMSnapshot](cfg Config, fsm FSM[S]) (*Node, raft.ServerAddress, *raft.InmemTransport, error) {
	cfg = cfg.withDefaults(true)
	if err := cfg.validate(true); err != nil {
		return nil, "", nil, err
	}
	if fsm == nil {
		return nil, "", nil, errors.New("raftstore: OpenInMemory: nil FSM")
	}
	store := raft.NewInmemStore()
	addr, trans := raft.NewInmemTransport(raft.ServerAddress(cfg.NodeID))
	n, err := start(cfg, &fsmAdapter[S]{fsm: fsm}, store, store, raft.NewInmemSnapshotStore(), trans, addr)
	if err != nil {
		trans.Close()
		return nil, "", nil, err
	}
	return n, addr, trans, nil
}

// ConnectInMemory connects every pair of the given in-memory transports, in
// both directions.
func ConnectInMemory(transports ...*raft.InmemTransport) {
	for _, a := range transports {
		for _, b := range transports {
			if a != b {
				a.Connect(b.LocalAddr(), b)
			}
		}
	}
}

func start(cfg Config, fsm raft.FSM, logs raft.LogStore, stable raft.StableStore, snaps raft.SnapshotStore,
	trans raft.Transport, addr raft.ServerAddress, closers ...io.Closer) (*Node, error) {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.Logger = newHclog(cfg.Logger, "raft")
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}

	existing, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return nil, fmt.Errorf("raftstore: read existing state: %w", err)
	}
	bootstrapped := false
	if cfg.Bootstrap && !existing {
		conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: addr}}}
		if err := raft.BootstrapCluster(rc, logs, stable, snaps, trans, conf); err != nil {
			return nil, fmt.Errorf("raftstore: bootstrap: %w", err)
		}
		bootstrapped = true
	}
	r, err := raft.NewRaft(rc, fsm, logs, stable, snaps, trans)
	if err != nil {
		return nil, fmt.Errorf("raftstore: start raft: %w", err)
	}
	cfg.Logger.Info("raftstore: node started", "node_id", cfg.NodeID, "address", string(addr),
		"existing_state", existing, "bootstrapped", bootstrapped)
	return &Node{id: cfg.NodeID, addr: addr, raft: r, log: cfg.Logger, closers: closers}, nil
}

// claimDataDir records nodeID in dir on first use and refuses a dir that
// belongs to another node: its log and votes are another member's.
func claimDataDir(dir, nodeID string) error {
	p := filepath.Join(dir, nodeIDFile)
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		if got := strings.TrimSpace(string(b)); got != nodeID {
			return &ConfigError{Field: "NodeID", Value: fmt.Sprintf("%q", nodeID),
				Allowed: fmt.Sprintf("DataDir %s belongs to node %q: use that NodeID, or an empty DataDir for a new node", dir, got)}
		}
		return nil
	case errors.Is(err, fs.ErrNotExist):
		tmp := p + ".tmp"
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("raftstore: write %s: %w", nodeIDFile, err)
		}
		_, werr := f.WriteString(nodeID + "\n")
		serr := f.Sync()
		cerr := f.Close()
		if err := errors.Join(werr, serr, cerr); err != nil {
			return fmt.Errorf("raftstore: write %s: %w", nodeIDFile, err)
		}
		if err := os.Rename(tmp, p); err != nil {
			return fmt.Errorf("raftstore: write %s: %w", nodeIDFile, err)
		}
		return nil
	default:
		return fmt.Errorf("raftstore: read %s: %w", nodeIDFile, err)
	}
}

// ID is this node's NodeID.
func (n *Node) ID() string { return n.id }

// Addr is the address this node advertises to the cluster.
func (n *Node) Addr() string { return string(n.addr) }

// Bootstrap forms a new cluster whose voters are members (just this node
// when none are given). Only for a node without raft state; otherwise it
// returns ErrAlreadyBootstrapped. Open does this itself for Config.Bootstrap.
func (n *Node) Bootstrap(members ...Member) error {
	if n.closed.Load() {
		return ErrShutdown
	}
	servers := []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(n.id), Address: n.addr}}
	if len(members) > 0 {
		servers = servers[:0]
		for _, m := range members {
			s := raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.Address)}
			if m.Suffrage == Nonvoter {
				s.Suffrage = raft.Nonvoter
			}
			servers = append(servers, s)
		}
	}
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if errors.Is(err, raft.ErrCantBootstrap) {
		return ErrAlreadyBootstrapped
	}
	return n.mapErr("bootstrap", false, err)
}

// Apply proposes cmd and waits until it is committed and applied to the
// leader's FSM; it returns what FSM.Apply returned (an error value returned
// by the FSM is a result: the entry is committed). Leader only: on another
// node it returns a *NotLeaderError naming the leader.
//
// ctx bounds the whole call; its deadline is also raft's enqueue timeout. An
// error that Is(ErrOutcomeUnknown) — deadline or cancellation after the
// command was handed to raft, leadership lost, shutdown — means the command
// may still be committed; see errors.go.
func (n *Node) Apply(ctx context.Context, cmd []byte) (any, error) {
	if err := n.leaderOnly(); err != nil {
		return nil, err
	}
	var resp any
	err := n.await(ctx, "apply", true, func(timeout time.Duration) error {
		f := n.raft.Apply(cmd, timeout)
		if err := f.Error(); err != nil {
			return err
		}
		resp = f.Response()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Barrier waits until every entry committed before it is applied to this
// leader's FSM. Leader only. A new leader calls it before reading its FSM.
func (n *Node) Barrier(ctx context.Context) error {
	if err := n.leaderOnly(); err != nil {
		return err
	}
	return n.await(ctx, "barrier", false, func(timeout time.Duration) error {
		return n.raft.Barrier(timeout).Error()
	})
}

// Snapshot forces a snapshot of the FSM now (raft also takes them by itself,
// see Config.SnapshotThreshold). Nothing new to snapshot is not an error.
func (n *Node) Snapshot(ctx context.Context) error {
	if n.closed.Load() {
		return ErrShutdown
	}
	return n.await(ctx, "snapshot", false, func(time.Duration) error {
		err := n.raft.Snapshot().Error()
		if errors.Is(err, raft.ErrNothingNewToSnapshot) {
			return nil
		}
		return err
	})
}

// IsLeader reports whether this node is the leader right now. Leadership
// can be lost at any moment after; only a committed Apply proves it.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's id and address as this node knows them, or
// empty strings while none is known.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// CommitIndex is the index of the last entry this node knows to be
// committed: on a follower, as the leader last reported it.
func (n *Node) CommitIndex() uint64 { return n.raft.CommitIndex() }

// LastContact is when this node last heard from a leader (zero if never);
// on the leader it is the current time.
func (n *Node) LastContact() time.Time {
	if n.raft.State() == raft.Leader {
		return time.Now()
	}
	return n.raft.LastContact()
}

// LeadershipTransfer asks the leader to hand leadership to another voter
// and step down, so a planned shutdown does not wait for an election
// timeout. Leader only.
func (n *Node) LeadershipTransfer() error {
	if err := n.leaderOnly(); err != nil {
		return err
	}
	return n.raft.LeadershipTransfer().Error()
}

// LeaderCh delivers true when this node becomes the leader and false when it
// stops being the leader. It is raft's channel, with raft's semantics: there
// is one channel per node, so have a single consumer; it holds one value and
// a newer transition replaces an unread one, so intermediate transitions can
// be missed (two trues in a row mean leadership was lost and regained). Act on
// the value received, and re-check IsLeader if in doubt. It is never closed.
func (n *Node) LeaderCh() <-chan bool { return n.raft.LeaderCh() }

// AddVoter adds (or promotes) a voting member, and waits until the
// configuration change is committed. Leader only. Idempotent: a member with
// the same id, address and vote is a no-op. A member with the same id and a
// new address gets the new address (a node that moved); an address already
// used by another id is an ErrMemberConflict.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	if id == "" || addr == "" {
		return fmt.Errorf("raftstore: add voter: id %q and address %q must both be set", id, addr)
	}
	if err := n.leaderOnly(); err != nil {
		return err
	}
	conf, err := n.configuration()
	if err != nil {
		return err
	}
	for _, s := range conf.Servers {
		switch {
		case string(s.ID) == id && string(s.Address) == addr && s.Suffrage == raft.Voter:
			return nil
		case string(s.ID) != id && string(s.Address) == addr:
			return fmt.Errorf("%w: address %s already belongs to member %s, not %s", ErrMemberConflict, addr, s.ID, id)
		}
	}
	n.log.Info("raftstore: adding voter", "node_id", id, "address", addr)
	return n.await(ctx, "add voter", true, func(timeout time.Duration) error {
		return n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout).Error()
	})
}

// RemoveServer removes a member and waits until the change is committed.
// Leader only; removing a member that is not there is a no-op. Removing the
// leader itself makes it step down once the change commits; a removed node
// shuts its raft down (later calls return ErrShutdown).
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if err := n.leaderOnly(); err != nil {
		return err
	}
	conf, err := n.configuration()
	if err != nil {
		return err
	}
	found := false
	for _, s := range conf.Servers {
		found = found || string(s.ID) == id
	}
	if !found {
		return nil
	}
	n.log.Info("raftstore: removing server", "node_id", id)
	return n.await(ctx, "remove server", true, func(timeout time.Duration) error {
		return n.raft.RemoveServer(raft.ServerID(id), 0, timeout).Error()
	})
}

// Members returns the latest configuration this node knows (possibly not yet
// committed), with the leader flagged. It works on any member.
func (n *Node) Members() ([]Member, error) {
	conf, err := n.configuration()
	if err != nil {
		return nil, err
	}
	_, leaderID := n.raft.LeaderWithID()
	out := make([]Member, 0, len(conf.Servers))
	for _, s := range conf.Servers {
		out = append(out, Member{
			ID:       string(s.ID),
			Address:  string(s.Address),
			Suffrage: suffrageOf(s.Suffrage),
			Leader:   s.ID == leaderID && leaderID != "",
		})
	}
	return out, nil
}

func (n *Node) configuration() (raft.Configuration, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Configuration{}, n.mapErr("get configuration", false, err)
	}
	return f.Configuration(), nil
}

// Stats returns raft's statistics (state, term, last_log_index,
// commit_index, applied_index, last_snapshot_index, num_peers,
// last_contact, latest_configuration, ...) plus node_id and address.
func (n *Node) Stats() map[string]string {
	s := n.raft.Stats()
	s["node_id"] = n.id
	s["address"] = string(n.addr)
	return s
}

// Shutdown stops raft, closes the transport and the stores. It is not a
// graceful handover: a leader simply goes silent and the others elect a new
// one after their heartbeat timeout. Safe to call more than once; later
// calls return the first call's result.
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() {
		n.closed.Store(true)
		// The shutdown future also closes the transport.
		err := n.raft.Shutdown().Error()
		for _, c := range n.closers {
			err = errors.Join(err, c.Close())
		}
		n.shutdownErr = err
		n.log.Info("raftstore: node shut down", "node_id", n.id, "error", err)
	})
	return n.shutdownErr
}

// leaderOnly refuses a leader-only call on a node that is shut down (by
// Shutdown, or by raft itself after this node was removed) or not the leader.
func (n *Node) leaderOnly() error {
	switch state := n.raft.State(); {
	case n.closed.Load() || state == raft.Shutdown:
		return ErrShutdown
	case state != raft.Leader:
		return n.notLeader()
	}
	return nil
}

func (n *Node) notLeader() *NotLeaderError {
	addr, id := n.raft.LeaderWithID()
	return &NotLeaderError{LeaderID: string(id), LeaderAddr: string(addr)}
}

// await runs call (which blocks on a raft future) on its own goroutine and
// waits for it or for ctx. call gets raft's enqueue timeout: the time left
// before ctx's deadline, or 0 (none).
//
// raft futures cannot be cancelled, so when ctx ends first the goroutine is
// left to finish on its own (every future resolves: on commit, leadership
// loss or shutdown), and for a mutating op the outcome is unknown.
func (n *Node) await(ctx context.Context, op string, mutating bool, call func(enqueueTimeout time.Duration) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("raftstore: %s: %w", op, err)
	}
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return fmt.Errorf("raftstore: %s: %w", op, context.DeadlineExceeded)
		}
	}
	done := make(chan error, 1)
	go func() { done <- call(timeout) }()
	select {
	case err := <-done:
		return n.mapErr(op, mutating, err)
	case <-ctx.Done():
		if mutating {
			return fmt.Errorf("raftstore: %s: %w: %w", op, ErrOutcomeUnknown, ctx.Err())
		}
		return fmt.Errorf("raftstore: %s: %w", op, ctx.Err())
	}
}

// mapErr translates raft's errors into this package's classes.
func (n *Node) mapErr(op string, mutating bool, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		// Refused before being appended (raft answers this from the
		// follower and candidate loops, and from a stepping-down leader).
		return n.notLeader()
	case errors.Is(err, raft.ErrEnqueueTimeout):
		// Never reached raft's main loop: definitely failed.
		return fmt.Errorf("raftstore: %s: not started before the deadline: %w (%w)", op, context.DeadlineExceeded, err)
	case errors.Is(err, raft.ErrLeadershipLost):
		if mutating {
			return fmt.Errorf("raftstore: %s: leadership lost before the entry was known committed: %w (%w)", op, ErrOutcomeUnknown, err)
		}
		return n.notLeader()
	case errors.Is(err, raft.ErrRaftShutdown):
		// raft also answers this to futures already in flight (committed
		// or not) when it shuts down, so it does not prove failure.
		if mutating {
			return fmt.Errorf("raftstore: %s: %w while in flight: %w", op, ErrShutdown, ErrOutcomeUnknown)
		}
		return fmt.Errorf("raftstore: %s: %w", op, ErrShutdown)
	default:
		return fmt.Errorf("raftstore: %s: %w", op, err)
	}
}
