package quickstart

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/node"
)

// localCluster is the quickstart's cluster: Nodes members in this process,
// each with its own raft and API ports on 127.0.0.1 and its own data dir
// under <data>/nodes, sharing the catalog and warehouse. Every
// FailoverEvery it stops the leader (as SIGTERM would) and starts it again
// RestartAfter later, so the hand-over can be watched.
type localCluster struct {
	base    config.Config
	log     *slog.Logger
	out     io.Writer
	members []*localMember

	mu        sync.Mutex
	committed map[string]int64 // rows committed per table, as reported by leaders
	events    []string
}

type localMember struct {
	id     string
	cfg    config.Config
	node   *node.Node
	cancel context.CancelFunc
	// done is closed when Run returned, with its error in err.
	done chan struct{}
	err  error
}

func newLocalCluster(base config.Config, nodes int, httpAddr string, log *slog.Logger, out io.Writer) *localCluster {
	lc := &localCluster{base: base, log: log, out: out, committed: map[string]int64{}}
	for i := range nodes {
		id := fmt.Sprintf("n%d", i+1)
		cfg := base
		cfg.Node.DataDir = filepath.Join(base.Node.DataDir, "nodes", id)
		cfg.Node.HTTPAddr = "127.0.0.1:0"
		cfg.Node.API.GRPCAddr = ""
		if i == 0 {
			cfg.Node.HTTPAddr = httpAddr
			cfg.Node.API.GRPCAddr = base.Node.API.GRPCAddr
		}
		cfg.Cluster.Enabled = true
		cfg.Cluster.NodeID = id
		cfg.Cluster.RaftAddr = "127.0.0.1:0"
		cfg.Cluster.APIAddr = "127.0.0.1:0"
		if a, ok := loadAddrs(cfg.Node.DataDir); ok {
			cfg.Cluster.RaftAddr, cfg.Cluster.APIAddr = a.Raft, a.API
		}
		lc.members = append(lc.members, &localMember{id: id, cfg: cfg})
	}
	return lc
}

// addrsFile is where a member keeps its raft and cluster API addresses
// between runs of the quickstart. The raft configuration in its data dir
// names the members by their addresses: members started again on other
// ports could not reach each other, and would never elect a leader.
const addrsFile = "addrs.json"

type memberAddrs struct {
	Raft string `json:"raft"`
	API  string `json:"api"`
}

func loadAddrs(dataDir string) (memberAddrs, bool) {
	var a memberAddrs
	b, err := os.ReadFile(filepath.Join(dataDir, addrsFile))
	if err != nil || json.Unmarshal(b, &a) != nil || a.Raft == "" || a.API == "" {
		return memberAddrs{}, false
	}
	return a, true
}

func saveAddrs(dataDir string, a memberAddrs) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	path := filepath.Join(dataDir, addrsFile)
	if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

func (lc *localCluster) onCommit(ev ingest.CommitEvent) {
	lc.mu.Lock()
	lc.committed[ev.Table] += ev.Records
	lc.mu.Unlock()
}

// start starts member m. The first start binds free ports, later ones
// reuse them (within this run, and in the next run on the same data dir):
// the cluster knows a member by its addresses.
func (lc *localCluster) start(ctx context.Context, m *localMember) error {
	n, err := node.New(ctx, m.cfg, lc.log, node.WithOnCommit(lc.onCommit))
	if err != nil && m.node == nil && m.cfg.Cluster.RaftAddr != "127.0.0.1:0" {
		// The ports of the previous run may be taken by now. Free ones
		// start the member, but the raft configuration still names its
		// old address: the cluster may not find a quorum.
		lc.log.Warn("cannot start the member on the addresses of the previous run; trying free ports", "member", m.id, "err", err)
		m.cfg.Cluster.RaftAddr, m.cfg.Cluster.APIAddr = "127.0.0.1:0", "127.0.0.1:0"
		n, err = node.New(ctx, m.cfg, lc.log, node.WithOnCommit(lc.onCommit))
	}
	if err != nil {
		return err
	}
	if err := n.Listen(); err != nil {
		return err
	}
	c := n.Cluster()
	m.cfg.Cluster.RaftAddr, m.cfg.Cluster.APIAddr = c.RaftAddr(), c.APIAddr()
	if err := saveAddrs(m.cfg.Node.DataDir, memberAddrs{Raft: c.RaftAddr(), API: c.APIAddr()}); err != nil {
		lc.log.Warn("cannot keep the member's addresses for the next run", "member", m.id, "err", err)
	}
	m.cfg.Node.HTTPAddr = n.Addr()
	if m.cfg.Node.API.GRPCAddr != "" {
		m.cfg.Node.API.GRPCAddr = n.APIAddr()
	}
	// Only m.cancel stops the member (a failover, or stopAll), not the
	// end of ctx: stopAll decides when and in which state the members stop.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.node, m.cancel, m.done = n, cancel, make(chan struct{})
	go func() {
		defer close(m.done)
		if m.err = n.Run(rctx); m.err != nil {
			lc.event("%s stopped: %v", m.id, m.err)
		}
	}()
	return nil
}

// run starts every member (the first forms the cluster, the others join
// it) and runs until ctx ends.
func (lc *localCluster) run(ctx context.Context, failoverEvery, restartAfter time.Duration) error {
	for i, m := range lc.members {
		if i > 0 {
			m.cfg.Cluster.Join = []string{lc.members[0].cfg.Cluster.APIAddr}
		}
		if err := lc.start(ctx, m); err != nil {
			lc.stopAll()
			return err
		}
	}
	if failoverEvery <= 0 {
		<-ctx.Done()
		lc.stopAll()
		return nil
	}
	tick := time.NewTicker(failoverEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			lc.stopAll()
			return nil
		case <-tick.C:
		}
		leader := lc.leader()
		if leader == nil {
			continue
		}
		lc.event("stopping the leader %s; the others elect a new leader and take over its partitions", leader.id)
		stopped := time.Now()
		leader.cancel()
		<-leader.done
		go lc.watchTakeover(ctx, leader.id, stopped)
		select {
		case <-ctx.Done():
			lc.stopAll()
			return nil
		case <-time.After(restartAfter):
		}
		if err := lc.start(ctx, leader); err != nil {
			lc.event("restarting %s failed: %v", leader.id, err)
			continue
		}
		lc.event("restarted %s; it rejoins and gets partitions back", leader.id)
	}
}

func (lc *localCluster) watchTakeover(ctx context.Context, old string, since time.Time) {
	for ctx.Err() == nil && time.Since(since) < 30*time.Second {
		if l := lc.leader(); l != nil && l.id != old {
			lc.event("%s leads after %s", l.id, time.Since(since).Round(10*time.Millisecond))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (lc *localCluster) leader() *localMember {
	for _, m := range lc.members {
		if m.node != nil && m.running() && m.node.Cluster().IsLeader() {
			return m
		}
	}
	return nil
}

// stopLeaderWait is how long stopAll waits for an election in progress.
const stopLeaderWait = 10 * time.Second

// anyRunning reports whether a member is running.
func (lc *localCluster) anyRunning() bool {
	for _, m := range lc.members {
		if m.running() {
			return true
		}
	}
	return false
}

func (m *localMember) running() bool {
	select {
	case <-m.done:
		return false
	default:
		return m.done != nil
	}
}

// stopAll stops the whole cluster at once, as one stop of every member:
// each member's Run proposes its last batches, then stays until the
// pending rows are committed (cluster.Node.finalCommits), so the leader
// keeps its quorum while it commits, to every table of each pipeline, what
// all of them proposed. Stopped one after the other, the last members would
// lose the quorum: the leader could no longer report its final commits, and
// when it stepped down its table writers would stop wherever they were,
// leaving a pipeline's dead-letter table behind its main table (entries
// without rows wait for a flush). Right after a failover there may be no
// leader yet: stopAll first waits for the election (up to stopLeaderWait),
// since members stopping without a leader have nobody to commit their last
// batches.
func (lc *localCluster) stopAll() {
	for deadline := time.Now().Add(stopLeaderWait); lc.leader() == nil && lc.anyRunning() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	for _, m := range lc.members {
		if m.cancel != nil {
			m.cancel()
		}
	}
	for _, m := range lc.members {
		if m.done != nil {
			<-m.done
		}
	}
}

func (lc *localCluster) event(format string, args ...any) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.events = append(lc.events, time.Now().Format("15:04:05.000")+"  "+fmt.Sprintf(format, args...))
}

// printStatus prints the members, who leads and owns what, and each
// table's committed rows and lag, then any events since the last call.
func (lc *localCluster) printStatus(out io.Writer, label string, produced map[string]int64) {
	var st cluster.Status
	var ok bool
	members := lc.members
	if l := lc.leader(); l != nil {
		members = append([]*localMember{l}, members...)
	}
	for _, m := range members {
		if m.node != nil && m.running() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s, err := m.node.Cluster().Status(ctx)
			cancel()
			if err == nil && s.LeaderID != "" {
				st, ok = s, true
				break
			}
		}
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	if ok {
		var ms []string
		for _, m := range st.Members {
			s := fmt.Sprintf("%s(%d)", m.ID, m.Partitions)
			if m.ID == st.LeaderID {
				s += "*"
			}
			if !m.Alive {
				s += "[down]"
			}
			ms = append(ms, s)
		}
		fmt.Fprintf(tw, "%s\tleader %s\tmembers (partitions) %s\n", label, st.LeaderID, strings.Join(ms, " "))
	} else {
		fmt.Fprintf(tw, "%s\tno leader yet\n", label)
	}
	lag := map[string]int64{}
	for _, p := range st.Partitions {
		if p.Lag > 0 {
			lag[p.Pipeline] += p.Lag
		}
	}
	lc.mu.Lock()
	tables := make([]string, 0, len(lc.committed))
	for t := range lc.committed {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	// The key index lives on the leader, which writes the tables.
	var leader *node.Node
	if l := lc.leader(); l != nil {
		leader = l.node
	}
	fmt.Fprintf(tw, "\ttable\tproduced\tcommitted\tlag\t%s\t%s\tpending segments\n", keyIndexHeader, windowsHeader)
	for _, t := range tables {
		pipeline, pending := "", 0
		for _, ts := range st.Tables {
			if ts.Table == t {
				pipeline, pending = ts.Pipeline, ts.PendingSegments
			}
		}
		p, keys, wins := "-", noKeyIndex, noWindows
		if !strings.HasSuffix(t, "__dlq") {
			for _, pc := range lc.base.Pipelines {
				if pc.Table == t {
					// produced counts by topic: the generator's
					p = fmt.Sprint(produced[pc.Topics[0]])
					keys, wins = keyIndexCells(leader, pc), windowCells(leader, pc)
				}
			}
		}
		fmt.Fprintf(tw, "\t%s\t%s\t%d\t%d\t%s\t%s\t%d\n", t, p, lc.committed[t], lag[pipeline], keys, wins, pending)
	}
	events := lc.events
	lc.events = nil
	lc.mu.Unlock()
	_ = tw.Flush()
	for _, e := range events {
		fmt.Fprintln(out, "  ", e)
	}
}

// quietRaft drops raft's own warnings (peers going away and coming back
// are the point of the demo) and passes everything else on.
type quietRaft struct{ slog.Handler }

func (h quietRaft) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		raftLog := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "logger" && strings.HasPrefix(a.Value.String(), "raft") {
				raftLog = true
				return false
			}
			return true
		})
		if raftLog {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietRaft) WithAttrs(as []slog.Attr) slog.Handler {
	return quietRaft{h.Handler.WithAttrs(as)}
}

func (h quietRaft) WithGroup(name string) slog.Handler { return quietRaft{h.Handler.WithGroup(name)} }
