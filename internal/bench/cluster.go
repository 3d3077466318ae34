package bench

// `floe bench cluster` measures cluster mode on the machine it runs on:
//
//	(1) throughput of one `floe serve` process without cluster mode (the
//	    reference), of a cluster of one member, and of a cluster of N
//	    members, each from the start of the processes until both tables'
//	    committed offsets reach the end offsets of the preloaded topic;
//	(2) failover: a three-member cluster with records streaming in at a
//	    steady rate, whose leader is SIGKILLed again and again: the time to
//	    a new leader, until commits resume, and until the dead leader's
//	    partitions are consumed again by the others;
//	(3) the members' peak RSS (VmHWM).
//
// Every member is a separate `floe serve` process of this executable; the
// broker (kfake) and the producer run in the benchmark process.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/clock"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/gen"
	"github.com/floelake/floe/internal/procrig"
	"github.com/floelake/floe/internal/schema"
)

// ClusterOptions tune `floe bench cluster`.
type ClusterOptions struct {
	// Records are preloaded for the throughput runs.
	Records    int
	Partitions int
	// CommitInterval is every pipeline's commit_interval.
	CommitInterval time.Duration
	// Nodes is the size of the larger throughput cluster; the failover
	// cluster has max(Nodes, 3) members.
	Nodes int
	// LeaderKills is how many times the failover phase SIGKILLs the leader.
	LeaderKills int
	// FailoverRate is the steady produce rate of the failover phase.
	FailoverRate int
	// HeartbeatInterval and DeadAfter are the members' cluster settings.
	HeartbeatInterval, DeadAfter time.Duration
	// DataDir is the scratch directory; default a temporary one, removed after.
	DataDir string
	// Exe is the floe binary the members run; default this executable.
	Exe string
}

// DefaultClusterOptions are the figures the README quotes.
func DefaultClusterOptions() ClusterOptions {
	d := config.Default().Cluster
	return ClusterOptions{
		Records:           2_000_000,
		Partitions:        12,
		CommitInterval:    time.Second,
		Nodes:             3,
		LeaderKills:       10,
		FailoverRate:      20_000,
		HeartbeatInterval: d.HeartbeatInterval.D(),
		DeadAfter:         d.DeadAfter.D(),
	}
}

// Failover targets of the first cluster release; printed beside the figures.
const (
	targetCommitsResume   = 5 * time.Second
	targetPartitionsAgain = 10 * time.Second
)

// Time limits of the waits; a measurement that exceeds its wait is
// reported as missed, not as an error.
const (
	failoverWait   = 60 * time.Second // each measurement after a kill
	healthyWait    = 2 * time.Minute  // the cluster back to full strength
	throughputWait = 15 * time.Minute // one throughput run
	pollEvery      = 50 * time.Millisecond
	// tputPollEvery is coarser: the benchmark's catalog reads share the
	// CPUs with the members it times.
	tputPollEvery = 100 * time.Millisecond
)

const (
	benchTopic    = "clicks"
	failoverTopic = "failover"
	benchPipeline = "clicks"
	benchTable    = "bench.clicks"
)

// RunCluster runs every phase and prints the report.
func RunCluster(ctx context.Context, o ClusterOptions, out io.Writer) error {
	switch {
	case o.Records < 10_000:
		return errors.New("bench cluster: --records must be at least 10000")
	case o.Partitions < 1:
		return errors.New("bench cluster: --partitions must be at least 1")
	case o.Nodes < 1:
		return errors.New("bench cluster: --nodes must be at least 1")
	case o.LeaderKills < 0:
		return errors.New("bench cluster: --leader-kills must not be negative")
	case o.CommitInterval <= 0 || o.HeartbeatInterval <= 0 || o.DeadAfter <= 0:
		return errors.New("bench cluster: the commit interval, heartbeat interval and dead-after must be positive")
	}
	dir, exe, cleanup, err := workspace(o.DataDir, "floe-bench-cluster-", o.Exe)
	if err != nil {
		return err
	}
	defer cleanup()
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(o.Partitions), benchTopic, failoverTopic))
	if err != nil {
		return err
	}
	defer broker.Close()
	env := benchEnv{exe: exe, dir: dir, broker: broker.ListenAddrs()[0], o: o, log: os.Stderr}

	fmt.Fprintf(out, "floe bench cluster: %d click records of ~200 bytes (1%% malformed, for the dead-letter table), %d partitions, commit interval %s\n",
		o.Records, o.Partitions, o.CommitInterval)
	fmt.Fprintf(out, "this machine has %d CPUs (runtime.NumCPU; load average %s); every member is a `floe serve` process of its own on it, so the members of a cluster compete for the same %d CPUs\n",
		runtime.NumCPU(), loadAvg(), runtime.NumCPU())

	t0 := time.Now()
	if err := preloadClicks(ctx, env.broker, benchTopic, o.Records); err != nil {
		return fmt.Errorf("bench cluster: preload: %w", err)
	}
	ends, err := topicEnds(ctx, env.broker, benchTopic)
	if err != nil {
		return fmt.Errorf("bench cluster: %w", err)
	}
	fmt.Fprintf(out, "preloaded in %s\n\n", time.Since(t0).Round(time.Millisecond))

	fmt.Fprintln(out, "throughput: wall time from starting the processes until the table's and the dead-letter table's committed offsets reach the end offsets")
	type run struct {
		label, name string
		cluster     bool
		nodes       int
	}
	runs := []run{{"single node, no cluster", "single", false, 1}, {"cluster of 1", "cluster1", true, 1}}
	if o.Nodes > 1 {
		runs = append(runs, run{fmt.Sprintf("cluster of %d", o.Nodes), fmt.Sprintf("cluster%d", o.Nodes), true, o.Nodes})
	}
	var tputs []tputResult
	for _, r := range runs {
		res, err := env.throughput(ctx, r.label, filepath.Join(dir, r.name), r.nodes, r.cluster, ends)
		if err != nil {
			return fmt.Errorf("bench cluster: %s: %w", r.label, err)
		}
		res.print(out)
		tputs = append(tputs, res)
	}

	var fo failoverResult
	if o.LeaderKills > 0 {
		if fo, err = env.failover(ctx, filepath.Join(dir, "failover"), max(o.Nodes, 3), out); err != nil {
			return fmt.Errorf("bench cluster: failover: %w", err)
		}
	}

	printClusterSummary(out, o, tputs, fo)
	return nil
}

// benchEnv is what every phase shares.
type benchEnv struct {
	exe, dir, broker string
	o                ClusterOptions
	log              io.Writer // member log tails on failure
}

func preloadClicks(ctx context.Context, broker, topic string, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return err
	}
	defer cl.Close()
	return gen.Produce(ctx, cl, gen.ProducerConfig{
		Topic: topic, Kind: gen.Clicks, Limit: int64(n),
		Gen: gen.Config{Seed: 1},
	}, nil)
}

// rig runs the members of one phase, sharing one catalog and warehouse,
// which it reads too.
type rig struct {
	*procrig.Rig
	cat *catalog.Catalog
}

// newRig writes the members' configurations (the first forms the cluster,
// the others join through its API), creates the table and opens the
// catalog for the benchmark's reads.
func (e benchEnv) newRig(ctx context.Context, dir string, n int, clusterMode bool, topic string) (*rig, error) {
	level := os.Getenv("FLOE_BENCH_LOG_LEVEL")
	if level == "" {
		level = "info"
	}
	catCfg := catalog.Config{
		Type: "sql", Name: "floe", URI: "sqlite://" + filepath.Join(dir, "catalog.db"),
		Warehouse: "file://" + filepath.Join(dir, "warehouse"),
	}
	pr, err := procrig.New(procrig.Options{
		Bin: e.exe, Dir: dir, Members: n, Cluster: clusterMode,
		Member: procrig.MemberConfig{
			LogLevel: level, HeartbeatInterval: e.o.HeartbeatInterval, DeadAfter: e.o.DeadAfter,
			Brokers: []string{e.broker}, ClientID: "floe-bench", Catalog: catCfg,
			Pipeline: procrig.Pipeline{
				Name: benchPipeline, Topic: topic, Table: benchTable, Start: "earliest",
				CommitInterval: e.o.CommitInterval, PartitionBy: []string{gen.PartitionSpecSQL(gen.Clicks)},
			},
		},
	})
	if err != nil {
		return nil, err
	}
	cat, err := catalog.Open(ctx, catCfg, catalog.StorageConfig{}, dir)
	if err != nil {
		return nil, err
	}
	r := &rig{Rig: pr, cat: cat}
	sch := gen.Schema(gen.Clicks)
	spec, err := schema.Partition([]string{gen.PartitionSpecSQL(gen.Clicks)}, sch)
	if err != nil {
		_ = cat.Close()
		return nil, err
	}
	if _, _, err := catalog.EnsureTable(ctx, cat, catalog.Ident(benchTable), sch, spec, nil); err != nil {
		_ = cat.Close()
		return nil, err
	}
	return r, nil
}

// topicEnds lists every partition's end offset (the next offset written).
func topicEnds(ctx context.Context, broker, topic string) (map[int32]int64, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return procrig.EndOffsets(cctx, broker, topic)
}

// close stops every member still running (gracefully, then not) and the
// catalog handle.
func (r *rig) close() {
	r.Close(90 * time.Second)
	_ = r.cat.Close()
}

// waitFor polls cond until it holds, a member exits by itself, ctx ends
// or timeout passes.
func (r *rig) waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, string)) error {
	return r.WaitFor(ctx, pollEvery, timeout, what, cond)
}

// tableState is what the catalog says of one table: the pipeline's
// committed offsets of topic (nil before the first commit), the current
// snapshot id (0: none) and the number of snapshots.
type tableState struct {
	offsets   map[int32]int64
	snapshot  int64
	snapshots int
}

func (r *rig) tableState(ctx context.Context, name, topic string) (tableState, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tbl, err := r.cat.LoadTable(cctx, catalog.Ident(name))
	if errors.Is(err, icecat.ErrNoSuchTable) {
		return tableState{}, nil
	}
	if err != nil {
		return tableState{}, err
	}
	var s tableState
	if snap := tbl.Metadata().CurrentSnapshot(); snap != nil {
		s.snapshot = snap.SnapshotID
	}
	s.snapshots = len(tbl.Metadata().Snapshots())
	off, _, found, err := commit.TableOffsets(tbl, benchPipeline)
	if err != nil {
		return tableState{}, err
	}
	if found {
		s.offsets = off[topic]
	}
	return s, nil
}

// ---------------------------------------------------------------------------
// Throughput

type tputResult struct {
	label   string
	members int
	cluster bool
	records int64
	// elapsed is from starting the first process until both tables'
	// offsets reached the end; firstCommit until the table's first
	// snapshot with records; spread (clusters of more than one) until every member
	// owned partitions.
	elapsed, firstCommit, spread time.Duration
	snapshots                    int
	peakRSS                      int64
}

func (t tputResult) rate() float64 { return float64(t.records) / t.elapsed.Seconds() }

func (t tputResult) print(out io.Writer) {
	extra := ""
	if t.spread > 0 {
		extra = fmt.Sprintf("; all %d members consuming after %s", t.members, t.spread.Round(10*time.Millisecond))
	}
	fmt.Fprintf(out, "  %-24s %9.0f records/s  (%s; first records committed after %s%s; %d snapshots; peak RSS per member %.0f MiB)\n",
		t.label, t.rate(), t.elapsed.Round(10*time.Millisecond), t.firstCommit.Round(10*time.Millisecond), extra,
		t.snapshots, float64(t.peakRSS)/(1<<20))
}

// throughput runs n members on the preloaded topic from its start, timing
// them until both tables committed everything.
func (e benchEnv) throughput(ctx context.Context, label, dir string, n int, clusterMode bool, ends map[int32]int64) (res tputResult, err error) {
	r, err := e.newRig(ctx, dir, n, clusterMode, benchTopic)
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			r.LogTails(e.log, 30)
		}
		r.close()
	}()
	res = tputResult{label: label, members: n, cluster: clusterMode, records: sumOffsets(ends)}
	start := time.Now()
	if err := r.StartCluster(ctx, time.Minute); err != nil {
		return res, err
	}
	var main tableState
	err = r.WaitFor(ctx, tputPollEvery, throughputWait, "both tables to reach the end offsets", func() (bool, string) {
		var err error
		if main, err = r.tableState(ctx, benchTable, benchTopic); err != nil {
			return false, err.Error()
		}
		if res.firstCommit == 0 && sumOffsets(main.offsets) > 0 {
			res.firstCommit = time.Since(start)
		}
		if clusterMode && n > 1 && res.spread == 0 {
			if st, ok := r.LeaderStatus(ctx); ok && spreadOver(st, n) {
				res.spread = time.Since(start)
			}
		}
		dlq, err := r.tableState(ctx, benchTable+"__dlq", benchTopic)
		if err != nil {
			return false, err.Error()
		}
		if procrig.Reached(main.offsets, ends) && procrig.Reached(dlq.offsets, ends) {
			res.elapsed = time.Since(start)
			return true, ""
		}
		return false, fmt.Sprintf("table %v, dead-letter table %v, end %v", main.offsets, dlq.offsets, ends)
	})
	if err != nil {
		return res, err
	}
	res.snapshots = main.snapshots
	res.peakRSS = r.PeakRSS()
	return res, nil
}

// spreadOver reports whether every partition is owned and n members own
// some.
func spreadOver(st cluster.Status, n int) bool {
	owners := map[string]bool{}
	for _, p := range st.Partitions {
		if p.Owner == "" {
			return false
		}
		owners[p.Owner] = true
	}
	return len(st.Partitions) > 0 && len(owners) >= min(n, len(st.Partitions))
}

func sumOffsets(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// ---------------------------------------------------------------------------
// Failover

// killResult is one leader SIGKILL and what followed it; a negative
// duration was not reached within failoverWait.
type killResult struct {
	victim, newLeader                      string
	partitions                             int
	toLeader, toCommit, toConsumed, toBack time.Duration
}

type failoverResult struct {
	members  int
	kills    []killResult
	produced int64
	drained  time.Duration // after the producer stopped, until everything was committed (<0: not within the wait)
	peakRSS  int64
}

// healthy reports whether st shows the full cluster: every member a live
// voter that heartbeated since its process last started, every partition
// owned by a live member, and the partitions balanced.
func healthy(st cluster.Status, started map[string]time.Time) (bool, string) {
	if st.LeaderID == "" {
		return false, "no leader"
	}
	alive := map[string]bool{}
	count := map[string]int{}
	for _, m := range st.Members {
		since, ok := started[m.ID]
		if ok && m.Alive && m.Suffrage == "voter" && m.LastHeartbeat.After(since) {
			alive[m.ID] = true
			count[m.ID] = 0
		}
	}
	if len(alive) != len(started) {
		return false, fmt.Sprintf("%d of %d members alive", len(alive), len(started))
	}
	if len(st.Partitions) == 0 {
		return false, "no partitions assigned yet"
	}
	for _, p := range st.Partitions {
		if !alive[p.Owner] {
			return false, fmt.Sprintf("%s/%d owned by %q, not a live member", p.Topic, p.Partition, p.Owner)
		}
		count[p.Owner]++
	}
	lo, hi := len(st.Partitions), 0
	for _, c := range count {
		lo, hi = min(lo, c), max(hi, c)
	}
	if hi-lo > 1 {
		return false, fmt.Sprintf("partitions not balanced yet: %v", count)
	}
	return true, ""
}

type partKey struct {
	topic     string
	partition int32
}

// moveTracker follows the partitions a killed member owned until each is
// owned by a live member and committed past where the dead one left off.
type moveTracker struct {
	victim string
	// from is where the next owner starts: the highest NextExpected (or
	// Committed) seen while the victim still owned the partition.
	from map[partKey]int64
	done map[partKey]bool
}

// newMoveTracker starts from a status taken just before the kill.
func newMoveTracker(victim string, st cluster.Status) *moveTracker {
	t := &moveTracker{victim: victim, from: map[partKey]int64{}, done: map[partKey]bool{}}
	for _, p := range st.Partitions {
		if p.Owner == victim {
			t.from[partKey{p.Topic, p.Partition}] = max(p.NextExpected, p.Committed)
		}
	}
	return t
}

func (t *moveTracker) partitions() int { return len(t.from) }

// observe takes a later status and reports whether every partition of the
// victim has been consumed again.
func (t *moveTracker) observe(st cluster.Status) bool {
	for _, p := range st.Partitions {
		k := partKey{p.Topic, p.Partition}
		from, ok := t.from[k]
		if !ok || t.done[k] {
			continue
		}
		switch {
		case p.Owner == t.victim || p.Owner == "":
			t.from[k] = max(from, p.NextExpected, p.Committed)
		case p.Committed > from:
			t.done[k] = true
		}
	}
	return len(t.done) == len(t.from)
}

// failover runs a cluster of n members with records streaming in, and
// SIGKILLs the leader LeaderKills times, restarting it after each
// measurement.
func (e benchEnv) failover(ctx context.Context, dir string, n int, out io.Writer) (res failoverResult, err error) {
	o := e.o
	fmt.Fprintf(out, "\nfailover: a cluster of %d members (heartbeat_interval %s, dead_after %s, commit interval %s), records produced at %d/s; the leader is SIGKILLed %d times and restarted after each measurement\n",
		n, o.HeartbeatInterval, o.DeadAfter, o.CommitInterval, o.FailoverRate, o.LeaderKills)
	r, err := e.newRig(ctx, dir, n, true, failoverTopic)
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			r.LogTails(e.log, 40)
		}
		r.close()
	}()
	res.members = n
	if err := r.StartCluster(ctx, time.Minute); err != nil {
		return res, err
	}
	if err := r.waitHealthy(ctx); err != nil {
		return res, err
	}

	prodCtx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.broker), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return res, err
	}
	defer cl.Close()
	stats := new(gen.ProducerStats)
	prodDone := make(chan error, 1)
	go func() {
		prodDone <- gen.Produce(prodCtx, cl, gen.ProducerConfig{Topic: failoverTopic, Kind: gen.Clicks, Rate: o.FailoverRate,
			Gen: gen.Config{Seed: 3}}, stats)
	}()

	for i := range o.LeaderKills {
		k, err := r.killLeader(ctx)
		if err != nil {
			return res, fmt.Errorf("kill %d: %w", i+1, err)
		}
		res.kills = append(res.kills, k)
		fmt.Fprintf(out, "  kill %2d: leader %s (%d partitions): new leader %s after %s, commits resumed after %s, its partitions consumed again after %s; restarted, cluster healthy %s later\n",
			i+1, k.victim, k.partitions, orNone(k.newLeader), fmtWait(k.toLeader), fmtWait(k.toCommit), fmtWait(k.toConsumed), fmtWait(k.toBack))
	}

	// Stop producing, then wait until everything produced is committed:
	// the cluster came through the kills with nothing stuck.
	stopProducing()
	if err := <-prodDone; err != nil {
		return res, fmt.Errorf("produce: %w", err)
	}
	ends, err := topicEnds(ctx, e.broker, failoverTopic)
	if err != nil {
		return res, err
	}
	res.produced = sumOffsets(ends)
	start := time.Now()
	res.drained = -1
	var last string
	err = r.waitFor(ctx, failoverWait, "everything committed", func() (bool, string) {
		main, err1 := r.tableState(ctx, benchTable, failoverTopic)
		dlq, err2 := r.tableState(ctx, benchTable+"__dlq", failoverTopic)
		if err1 == nil && err2 == nil && procrig.Reached(main.offsets, ends) && procrig.Reached(dlq.offsets, ends) {
			res.drained = time.Since(start)
			return true, ""
		}
		last = fmt.Sprintf("table %v, dead-letter table %v, end %v (%v %v)", main.offsets, dlq.offsets, ends, err1, err2)
		return false, last
	})
	if res.drained < 0 && (ctx.Err() != nil || r.CheckAlive() != nil) {
		return res, err
	}
	if res.drained < 0 {
		fmt.Fprintf(out, "  NOT everything produced was committed within %s of the producer stopping: %s\n", failoverWait, last)
	} else {
		fmt.Fprintf(out, "  all %d records produced during the phase committed %s after the producer stopped\n", res.produced, res.drained.Round(10*time.Millisecond))
	}
	res.peakRSS = r.PeakRSS()
	return res, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// waitHealthy waits until the cluster is at full strength (see healthy).
func (r *rig) waitHealthy(ctx context.Context) error {
	return r.waitFor(ctx, healthyWait, "the cluster to be healthy", func() (bool, string) {
		st, ok := r.LeaderStatus(ctx)
		if !ok {
			return false, "no live member names a live leader"
		}
		started := map[string]time.Time{}
		for _, m := range r.Members() {
			started[m.ID] = m.Started()
		}
		return healthy(st, started)
	})
}

// waitCommit waits until the table's current snapshot differs from since.
func (r *rig) waitCommit(ctx context.Context, since int64, topic string) (int64, error) {
	var snap int64
	err := r.waitFor(ctx, failoverWait, "a commit", func() (bool, string) {
		s, err := r.tableState(ctx, benchTable, topic)
		if err != nil {
			return false, err.Error()
		}
		snap = s.snapshot
		return snap != 0 && snap != since, fmt.Sprintf("snapshot %d", snap)
	})
	return snap, err
}

// killLeader waits for a healthy cluster that commits, SIGKILLs the leader,
// measures, and restarts it.
func (r *rig) killLeader(ctx context.Context) (killResult, error) {
	k := killResult{toLeader: -1, toCommit: -1, toConsumed: -1, toBack: -1}
	if err := r.waitHealthy(ctx); err != nil {
		return k, err
	}
	snap, err := r.tableState(ctx, benchTable, failoverTopic)
	if err != nil {
		return k, err
	}
	if _, err := r.waitCommit(ctx, snap.snapshot, failoverTopic); err != nil {
		return k, err
	}
	st, ok := r.LeaderStatus(ctx)
	if !ok {
		return k, errors.New("no leader right after the cluster was healthy")
	}
	victim := r.Member(st.LeaderID)
	k.victim = victim.ID
	moves := newMoveTracker(k.victim, st)
	k.partitions = moves.partitions()

	killedAt, err := r.Kill(victim)
	if err != nil {
		return k, err
	}
	// Commits the victim made before it died are seen from here on, so
	// only a later snapshot is the new leader's.
	base, err := r.tableState(ctx, benchTable, failoverTopic)
	if err != nil {
		return k, err
	}
	deadline := killedAt.Add(failoverWait)
	for time.Now().Before(deadline) && (k.toLeader < 0 || k.toCommit < 0 || k.toConsumed < 0) {
		if err := r.CheckAlive(); err != nil {
			return k, err
		}
		if k.toCommit < 0 {
			if s, err := r.tableState(ctx, benchTable, failoverTopic); err == nil && s.snapshot != base.snapshot {
				k.toCommit = time.Since(killedAt)
			}
		}
		if k.toLeader < 0 || k.toConsumed < 0 {
			for _, m := range r.Members() {
				if !m.Live() {
					continue
				}
				st, err := procrig.MemberStatus(ctx, m)
				if err != nil || st.LeaderID == "" || st.LeaderID == k.victim {
					continue
				}
				if k.toLeader < 0 {
					k.toLeader, k.newLeader = time.Since(killedAt), st.LeaderID
				}
				// The partition view of the leader itself.
				if st.LeaderID == m.ID && k.toConsumed < 0 && k.partitions > 0 && moves.observe(st) {
					k.toConsumed = time.Since(killedAt)
				}
			}
		}
		if err := clock.Sleep(ctx, pollEvery); err != nil {
			return k, err
		}
	}
	if err := r.Start(victim); err != nil {
		return k, err
	}
	restarted := time.Now()
	if err := r.waitHealthy(ctx); err != nil {
		return k, err
	}
	k.toBack = time.Since(restarted)
	return k, nil
}

func fmtWait(d time.Duration) string {
	if d < 0 {
		return fmt.Sprintf("(not within %s)", failoverWait)
	}
	return d.Round(10 * time.Millisecond).String()
}

// ---------------------------------------------------------------------------
// Summary

// spread is the median and maximum of the reached durations, and how many
// were not reached (negative).
type spread struct {
	median, max time.Duration
	n, missed   int
}

func spreadOf(ds []time.Duration) spread {
	var ok []time.Duration
	s := spread{}
	for _, d := range ds {
		if d < 0 {
			s.missed++
			continue
		}
		ok = append(ok, d)
	}
	s.n = len(ok)
	if len(ok) == 0 {
		return s
	}
	slices.Sort(ok)
	s.max = ok[len(ok)-1]
	if m := len(ok) / 2; len(ok)%2 == 1 {
		s.median = ok[m]
	} else {
		s.median = (ok[m-1] + ok[m]) / 2
	}
	return s
}

func (s spread) String() string {
	if s.n == 0 {
		if s.missed == 0 {
			return "n/a"
		}
		return fmt.Sprintf("none within %s", failoverWait)
	}
	v := fmt.Sprintf("median %s, max %s", s.median.Round(10*time.Millisecond), s.max.Round(10*time.Millisecond))
	if s.missed > 0 {
		v += fmt.Sprintf(" (%d not within %s)", s.missed, failoverWait)
	}
	return v
}

// within reports whether every measurement was reached within target.
func (s spread) within(target time.Duration) bool { return s.missed == 0 && s.max <= target }

func printClusterSummary(out io.Writer, o ClusterOptions, tputs []tputResult, fo failoverResult) {
	fmt.Fprintf(out, "\nruntime.NumCPU() = %d (load average now %s): the members of a cluster share these CPUs with each other, the broker and the producer\n\n",
		runtime.NumCPU(), loadAvg())
	const format = "%-38s %-44s %-8s %s\n"
	fmt.Fprintf(out, format, "figure", "measured", "target", "")
	row := func(name, measured, target, verdict string) {
		fmt.Fprintf(out, format, name, measured, target, verdict)
	}
	var one tputResult
	for _, t := range tputs {
		name := "throughput, " + t.label
		measured := fmt.Sprintf("%s records/s", human(t.rate()))
		if t.cluster && t.members == 1 {
			one = t
		}
		if t.cluster && t.members > 1 && one.elapsed > 0 {
			measured += fmt.Sprintf(" (%.2f× cluster of 1)", t.rate()/one.rate())
		}
		row(name, measured, "", "")
	}
	if len(fo.kills) > 0 {
		var leader, commits, consumed, back []time.Duration
		for _, k := range fo.kills {
			leader = append(leader, k.toLeader)
			commits = append(commits, k.toCommit)
			if k.partitions > 0 {
				consumed = append(consumed, k.toConsumed)
			}
			back = append(back, k.toBack)
		}
		verdict := func(s spread, target time.Duration) string {
			if s.n == 0 && s.missed == 0 {
				return ""
			}
			if s.within(target) {
				return "ok"
			}
			return "OVER TARGET"
		}
		cs, ps := spreadOf(commits), spreadOf(consumed)
		row("failover: new leader", spreadOf(leader).String(), "", "")
		row("failover: commits resume", cs.String(), fmt.Sprintf("<= %s", targetCommitsResume), verdict(cs, targetCommitsResume))
		row("failover: partitions consumed again", ps.String(), fmt.Sprintf("<= %s", targetPartitionsAgain), verdict(ps, targetPartitionsAgain))
		row("failover: restarted member healthy", spreadOf(back).String(), "", "")
	}
	var rss int64
	for _, t := range tputs {
		rss = max(rss, t.peakRSS)
	}
	row("peak RSS per member, throughput runs", fmt.Sprintf("%.0f MiB", float64(rss)/(1<<20)), "", "")
	if len(fo.kills) == 0 {
		return
	}
	row("peak RSS per member, failover", fmt.Sprintf("%.0f MiB", float64(fo.peakRSS)/(1<<20)), "", "")
	fmt.Fprintf(out, "failover: %d leader SIGKILLs of a %d-member cluster, heartbeat_interval %s, dead_after %s, commit interval %s, %d records/s produced\n",
		len(fo.kills), fo.members, o.HeartbeatInterval, o.DeadAfter, o.CommitInterval, o.FailoverRate)
}

// human formats a rate as 784k or 1.07M.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// loadAvg is the 1, 5 and 15 minute load average, or "unknown".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// workspace returns a benchmark's scratch directory (see scratchDir) and
// the floe executable its children run (see executable).
func workspace(dataDir, prefix, exe string) (dir, exePath string, cleanup func(), err error) {
	dir, cleanup, err = scratchDir(dataDir, prefix)
	if err != nil {
		return "", "", nil, err
	}
	if exePath, err = executable(exe); err != nil {
		cleanup()
		return "", "", nil, err
	}
	return dir, exePath, cleanup, nil
}

// scratchDir returns the absolute path of dataDir, created if needed, or of
// a temporary directory named after prefix when dataDir is empty; cleanup
// removes the temporary one (a given directory is kept).
func scratchDir(dataDir, prefix string) (dir string, cleanup func(), err error) {
	cleanup = func() {}
	if dataDir == "" {
		d, err := os.MkdirTemp("", prefix)
		if err != nil {
			return "", cleanup, err
		}
		cleanup = func() { _ = os.RemoveAll(d) }
		dataDir = d
	} else if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", cleanup, err
	}
	dir, err = filepath.Abs(dataDir)
	return dir, cleanup, err
}

// executable returns exe, or this process's executable when exe is empty:
// the binary the benchmarks start as `floe serve` children.
func executable(exe string) (string, error) {
	if exe != "" {
		return exe, nil
	}
	return os.Executable()
}
