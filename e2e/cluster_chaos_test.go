// Cluster mode with every member a separate `floe serve` process: a member
// SIGKILLed again and again while records stream in (TestClusterChaos), a
// cluster whose raft state is lost entirely and rebuilt from the tables
// (TestClusterRecoversFromIcebergAlone), and a member leaving and rejoining
// through the CLI (TestClusterLeaveAndRejoin). Each ends with the oracle:
// every record exactly once, offsets at the end.
//
// TestClusterChaos runs a short schedule by default (6 kills, 1,000,000
// records; skipped by -short). The long version, 60 kills and 10,000,000
// records:
//
//	FLOE_E2E_CHAOS_LONG=1 go test ./e2e -run TestClusterChaos -timeout 2h -v
//
// The kill schedule is drawn from a seed the test logs; FLOE_E2E_SEED=<seed>
// replays it (the moments of the kills still depend on the machine).
// FLOE_E2E_LOGS=<dir> keeps every member's full log there. The
// catalog is the machine's PostgreSQL (FLOE_TEST_POSTGRES overrides
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable), under a catalog
// name of the run's own; the warehouse is a real S3 server (versitygw).
package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/gen"
	"github.com/floelake/floe/internal/procrig"
	"github.com/floelake/floe/internal/testutil"
)

// ---------------------------------------------------------------------------
// A cluster of floe processes

// member is one cluster member: its addresses, files and current process.
type member = procrig.Member

// clusterRig runs the members of one cluster as `floe serve` processes on
// 127.0.0.1, all sharing one catalog and one warehouse (a procrig.Rig
// whose errors fail the test). Every process is killed when the test ends.
type clusterRig struct {
	*procrig.Rig
	t *testing.T
}

// Time limits of the rig's steps.
const (
	rigStopTimeout = 90 * time.Second // a graceful stop: the final commit
	rigPollEvery   = 100 * time.Millisecond
)

// newClusterRig prepares n members: n1 forms the cluster, the others join
// through n1's API. s.Warehouse must be set: members share it.
func newClusterRig(t *testing.T, s setup, catName, catURI string, n int) *clusterRig {
	t.Helper()
	if s.Warehouse == "" {
		t.Fatal("clusterRig: the members need a shared warehouse")
	}
	mc := s.memberConfig()
	mc.Catalog.Name, mc.Catalog.URI = catName, catURI
	mc.HeartbeatInterval, mc.DeadAfter = 300*time.Millisecond, 2*time.Second
	pr, err := procrig.New(procrig.Options{Bin: floeBinary(t), Dir: s.Dir, Members: n, Cluster: true, Member: mc})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range pr.Members() {
		showLogOnFailure(t, m.LogPath)
		keepLog(t, m)
	}
	t.Cleanup(func() { pr.Close(0) }) // first: the logs are complete when shown
	return &clusterRig{Rig: pr, t: t}
}

// newLocalClusterRig starts a broker with the topic and prepares n members
// on a SQLite catalog and a warehouse in the test's directory.
func newLocalClusterRig(t *testing.T, topic string, partitions int32, n int) (broker string, s setup, r *clusterRig) {
	t.Helper()
	_, broker = startBroker(t, topic, partitions)
	s = newSetup(t, broker, topic)
	s.Warehouse = "file://" + filepath.Join(s.Dir, "warehouse")
	return broker, s, newClusterRig(t, s, "floe", "sqlite://"+filepath.Join(s.Dir, "catalog.db"), n)
}

// keepLog copies m's log into $FLOE_E2E_LOGS, when set, as the test ends:
// a long run's logs are too long to print.
func keepLog(t *testing.T, m *member) {
	dir := os.Getenv("FLOE_E2E_LOGS")
	if dir == "" {
		return
	}
	t.Cleanup(func() {
		b, err := os.ReadFile(m.LogPath)
		if err == nil {
			err = os.MkdirAll(dir, 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, t.Name()+"-"+m.ID+".log"), b, 0o644)
		}
		if err != nil {
			t.Logf("keep %s's log: %v", m.ID, err)
		}
	})
}

// setTLS secures every member's raft transport and cluster API with mutual
// TLS, rewriting their configuration files.
func (r *clusterRig) setTLS(c cluster.TLSConfig) {
	r.t.Helper()
	if err := r.Update(func(mc *procrig.MemberConfig) { mc.TLS = &c }); err != nil {
		r.t.Fatal(err)
	}
}

// config is n1's configuration as floe parses it (for the oracle and the
// catalog reads: every member has the same catalog, warehouse and pipeline).
func (r *clusterRig) config() config.Config {
	r.t.Helper()
	cfg, err := r.Members()[0].Config().Parse()
	if err != nil {
		r.t.Fatal(err)
	}
	return cfg
}

func (r *clusterRig) member(id string) *member {
	r.t.Helper()
	m := r.Member(id)
	if m == nil {
		r.t.Fatalf("no member %q", id)
	}
	return m
}

// start runs `floe serve --config <m's file> [args]`, its output appended
// to m's log.
func (r *clusterRig) start(m *member, args ...string) {
	r.t.Helper()
	if err := r.Start(m, args...); err != nil {
		r.t.Fatal(err)
	}
}

// startWith runs m with extra environment variables.
func (r *clusterRig) startWith(m *member, env []string) {
	r.t.Helper()
	if err := r.StartEnv(m, env); err != nil {
		r.t.Fatal(err)
	}
}

// startAll starts n1, then the others.
func (r *clusterRig) startAll() {
	r.t.Helper()
	if err := r.StartAll(); err != nil {
		r.t.Fatal(err)
	}
}

// kill SIGKILLs m and waits for it to be gone.
func (r *clusterRig) kill(m *member) {
	r.t.Helper()
	if _, err := r.Kill(m); err != nil {
		r.t.Fatal(err)
	}
}

// stop sends m SIGTERM and requires a clean exit.
func (r *clusterRig) stop(m *member) {
	r.t.Helper()
	start := time.Now()
	if err := r.Stop(m, rigStopTimeout); err != nil {
		r.t.Fatal(err)
	}
	r.t.Logf("%s stopped gracefully in %s", m.ID, time.Since(start).Round(time.Millisecond))
}

// stopAll stops every running member gracefully.
func (r *clusterRig) stopAll() {
	r.t.Helper()
	for _, m := range r.Live() {
		r.stop(m)
	}
}

// checkAlive fails the test if a member that should be running exited.
func (r *clusterRig) checkAlive() {
	r.t.Helper()
	if err := r.CheckAlive(); err != nil {
		r.t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test after timeout or
// when a member exits by itself.
func (r *clusterRig) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	r.t.Helper()
	if err := r.WaitFor(context.Background(), rigPollEvery, timeout, what, cond); err != nil {
		r.t.Fatal(err)
	}
}

// leader returns the current leader, as a live member that knows it sees it.
func (r *clusterRig) leader() *member {
	r.t.Helper()
	var l *member
	r.waitFor(time.Minute, "a leader", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		l, err = r.Leader(ctx)
		return err == nil, fmt.Sprint(err)
	})
	return l
}

// ownersOf counts each member's partitions in a status.
func ownersOf(st cluster.Status) map[string]int {
	out := map[string]int{}
	for _, p := range st.Partitions {
		out[p.Owner]++
	}
	return out
}

// waitSpread waits until every partition has an owner and each of the
// given members owns at least one.
func (r *clusterRig) waitSpread(timeout time.Duration, ids ...string) {
	r.t.Helper()
	r.waitFor(timeout, fmt.Sprintf("the partitions spread over %v", ids), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := r.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		o := ownersOf(st)
		ok := len(st.Partitions) > 0 && o[""] == 0
		for _, id := range ids {
			ok = ok && o[id] > 0
		}
		return ok, fmt.Sprintf("owners %v (leader %q)", o, st.LeaderID)
	})
}

// waitReady waits until m's /readyz answers 200 (a member in touch with a
// leader).
func (r *clusterRig) waitReady(m *member, timeout time.Duration) {
	r.t.Helper()
	r.waitFor(timeout, m.ID+" to be ready", func() (bool, string) {
		return procrig.Ready(context.Background(), m)
	})
}

// waitCommitted waits until both tables' offsets reach the end offsets.
func (r *clusterRig) waitCommitted(cat *catalog.Catalog, ends map[int32]int64, timeout time.Duration) {
	r.t.Helper()
	r.waitFor(timeout, "both tables to reach the end offsets", func() (bool, string) {
		return tablesReached(cat, r.config().Pipelines[0], ends)
	})
}

// memberStatus is GET /cluster/status of one member.
func memberStatus(ctx context.Context, m *member) (cluster.Status, error) {
	return procrig.MemberStatus(ctx, m)
}

// metricValue reads one sample of m's /metrics ("name{labels}"); absent is 0.
func metricValue(m *member, sample string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return procrig.MetricValue(ctx, m, sample)
}

// producer produces chunks of records (each with a generator seed of its
// own, so event ids never repeat) at a bounded rate until stopped and at
// least min records were produced. Every chunk returns only once all its
// records are acknowledged, so the counts are exact.
type producer struct {
	stats gen.ProducerStats
	stop  atomic.Bool
	done  chan error
}

func startProducer(t testing.TB, broker, topic string, minRecords, chunk int64, rate int, seed int64) *producer {
	return runProducer(t, broker, minRecords, func(ctx context.Context, cl *kgo.Client, i int64, stats *gen.ProducerStats) error {
		return produce(ctx, cl, topic, chunk, rate, seed+i, stats)
	})
}

// runProducer calls chunk with i = 0, 1, 2, ... until the test ends or the
// producer is stopped (finish) with at least minRecords produced.
func runProducer(t testing.TB, broker string, minRecords int64, chunk func(ctx context.Context, cl *kgo.Client, i int64, stats *gen.ProducerStats) error) *producer {
	p := &producer{done: make(chan error, 1)}
	cl := newProducer(t, broker)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for i := int64(0); ; i++ {
			if ctx.Err() != nil || p.stop.Load() && p.stats.Produced.Load() >= minRecords {
				p.done <- nil
				return
			}
			if err := chunk(ctx, cl, i, &p.stats); err != nil {
				p.done <- err
				return
			}
		}
	}()
	return p
}

// finish stops the producer once it has produced its minimum and returns
// what it produced.
func (p *producer) finish(t testing.TB, timeout time.Duration) produced {
	t.Helper()
	p.stop.Store(true)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
	case <-time.After(timeout):
		t.Fatalf("the producer did not finish within %s (%d produced)", timeout, p.stats.Produced.Load())
	}
	return producedOf(&p.stats)
}

// ---------------------------------------------------------------------------
// PostgreSQL

// chaosPostgres opens the PostgreSQL database for the catalog and returns
// it with its URI, skipping the test when the server is unreachable
// (failing it when CI is set).
func chaosPostgres(t *testing.T) (*sql.DB, string) {
	t.Helper()
	uri := os.Getenv("FLOE_TEST_POSTGRES")
	if uri == "" {
		uri = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	db, err := sql.Open("pgx", uri) // registered by the catalog package
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		msg := fmt.Sprintf("PostgreSQL not reachable at %s (%v); start it (pg_ctlcluster --skip-systemctl-redirect <version> main start) or set FLOE_TEST_POSTGRES", uri, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set, so this test must not be skipped)")
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, uri
}

// ---------------------------------------------------------------------------
// TestClusterChaos

// chaosKill is one SIGKILL of the chaos schedule and what followed it.
type chaosKill struct {
	n         int
	victim    string
	leader    bool // the victim was the leader
	at        time.Time
	down      time.Duration // until the restart
	restarted time.Time
	until     time.Time       // the next kill (or the end): measurements stop there
	locAtKill string          // the table's metadata location right after the kill
	next      map[int32]int64 // the victim's partitions → where their next segment starts
}

// commitSeen is a new table version as the watcher saw it.
type commitSeen struct {
	at   time.Time
	loc  string
	offs map[int32]int64
}

// ownersSeen is the assignment as a status poll saw it.
type ownersSeen struct {
	at     time.Time
	owners map[int32]string
	next   map[int32]int64 // where each partition's next segment must start
}

// TestClusterChaos runs a three-member cluster of floe processes on a
// Postgres catalog and an S3 warehouse while records stream in, and kills a
// member with SIGKILL every few seconds (the leader on every other kill),
// restarting it after a moment with the same configuration and data
// directory. Then everything must be committed exactly once. It reports
// how long commits took to resume after a leader died and how long the
// partitions of a dead member took to move and be consumed again.
func TestClusterChaos(t *testing.T) {
	long := os.Getenv("FLOE_E2E_CHAOS_LONG") != ""
	if testing.Short() && !long {
		t.Skip("the cluster chaos test takes about two minutes")
	}
	kills, minRecords := 6, int64(1_000_000)
	if long {
		kills, minRecords = 60, 10_000_000
	}
	const (
		topic      = "clicks"
		partitions = 12
		rate       = 25_000 // records per second: production outlasts the kills
		chunk      = 25_000
	)
	t.Logf("%d kills, at least %d records", kills, minRecords)
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x636c7573))

	db, pgURI := chaosPostgres(t)
	catName := fmt.Sprintf("floe_chaos_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		// The catalog's rows; the tables' files went with the S3 server.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, q := range []string{
			"DELETE FROM iceberg_tables WHERE catalog_name = $1",
			"DELETE FROM iceberg_namespace_properties WHERE catalog_name = $1",
		} {
			_, _ = db.ExecContext(ctx, q, catName)
		}
	})
	srv := testutil.StartS3(t)
	_, broker := startBroker(t, topic, partitions)

	s := newSetup(t, broker, topic)
	s.Warehouse = srv.Warehouse("chaos")
	s.S3 = &s3Settings{Endpoint: srv.Endpoint, Region: srv.Region, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	r := newClusterRig(t, s, catName, pgURI, 3)
	cfg := r.config()
	cat := openCatalog(t, cfg)
	began := time.Now()

	r.startAll()
	r.waitSpread(time.Minute, "n1", "n2", "n3")
	prod := startProducer(t, broker, topic, minRecords, chunk, rate, 5000)

	// Watchers: every new version of the table (a commit), and the
	// assignment, with the moment each was seen.
	ns, tblName, _ := strings.Cut(s.Table, ".")
	var (
		wmu     sync.Mutex
		commits []commitSeen
		owners  []ownersSeen
	)
	currentLoc := func(ctx context.Context) (string, error) {
		var loc string
		err := db.QueryRowContext(ctx,
			"SELECT metadata_location FROM iceberg_tables WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3",
			catName, ns, tblName).Scan(&loc)
		return loc, err
	}
	watchCtx, stopWatching := context.WithCancel(context.Background())
	var watchers sync.WaitGroup
	watchers.Add(2)
	go func() {
		defer watchers.Done()
		last := ""
		for watchCtx.Err() == nil {
			at := time.Now()
			loc, err := currentLoc(watchCtx)
			if err == nil && loc != last {
				offs, _ := committedOffsets(watchCtx, cat, s.Table, s.Pipeline, topic)
				wmu.Lock()
				commits = append(commits, commitSeen{at: at, loc: loc, offs: offs})
				wmu.Unlock()
				last = loc
			}
			sleepCtx(watchCtx, 50*time.Millisecond)
		}
	}()
	go func() {
		defer watchers.Done()
		for watchCtx.Err() == nil {
			ctx, cancel := context.WithTimeout(watchCtx, 3*time.Second)
			at := time.Now()
			st, err := r.Status(ctx)
			cancel()
			if err == nil {
				o := ownersSeen{at: at, owners: map[int32]string{}, next: map[int32]int64{}}
				for _, p := range st.Partitions {
					o.owners[p.Partition] = p.Owner
					o.next[p.Partition] = p.NextExpected
				}
				wmu.Lock()
				owners = append(owners, o)
				wmu.Unlock()
			}
			sleepCtx(watchCtx, 150*time.Millisecond)
		}
	}()
	defer func() { stopWatching(); watchers.Wait() }()

	// Let the cluster commit before the first kill.
	waitFor(t, time.Minute, "the first commits", func() (bool, string) {
		r.checkAlive()
		wmu.Lock()
		defer wmu.Unlock()
		return len(commits) >= 3, fmt.Sprintf("%d table versions", len(commits))
	})

	var history []*chaosKill
	for i := range kills {
		time.Sleep(time.Duration(1500+rng.IntN(2000)) * time.Millisecond)
		r.checkAlive()
		l := r.leader()
		victim := l
		if i%2 == 1 {
			victim = r.Members()[rng.IntN(len(r.Members()))]
		}
		// Mostly down for longer than dead_after, so its partitions move;
		// now and then back before anyone notices.
		down := time.Duration(2500+rng.IntN(2000)) * time.Millisecond
		if rng.IntN(3) == 0 {
			down = time.Duration(500+rng.IntN(1000)) * time.Millisecond
		}
		k := &chaosKill{n: i + 1, victim: victim.ID, leader: victim == l, down: down, at: time.Now()}
		r.kill(victim)

		// Right after the kill: the table version and where the victim's
		// partitions must continue, as the survivors' ledger has it.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		loc, err := currentLoc(ctx)
		if err != nil {
			t.Fatalf("kill %d: read the table's metadata location: %v", k.n, err)
		}
		k.locAtKill = loc
		waitFor(t, 30*time.Second, "a survivor's status", func() (bool, string) {
			st, err := r.Status(ctx)
			if err != nil {
				return false, err.Error()
			}
			k.next = map[int32]int64{}
			for _, p := range st.Partitions {
				if p.Owner == victim.ID {
					k.next[p.Partition] = p.NextExpected
				}
			}
			return true, ""
		})
		cancel()
		role := "follower"
		if k.leader {
			role = "leader"
		}
		t.Logf("kill %2d at +%s: SIGKILL %s (%s, owned %d partitions); %d produced so far; restart after %s",
			k.n, k.at.Sub(began).Round(time.Millisecond), victim.ID, role, len(k.next), prod.stats.Produced.Load(), down.Round(time.Millisecond))
		if len(history) > 0 {
			history[len(history)-1].until = k.at
		}
		history = append(history, k)

		time.Sleep(down - time.Since(k.at))
		k.restarted = time.Now()
		r.start(victim)
		r.waitReady(victim, 2*time.Minute)
	}
	t.Logf("chaos over at +%s", time.Since(began).Round(time.Millisecond))

	want := prod.finish(t, time.Duration(minRecords/rate)*3*time.Second+3*time.Minute)
	ends := mustEndOffsets(t, broker, topic)
	t.Logf("produced %d records (%d malformed) by +%s", want.Records, want.Malformed, time.Since(began).Round(time.Millisecond))
	r.waitCommitted(cat, ends, 5*time.Minute)
	t.Logf("everything committed at +%s", time.Since(began).Round(time.Millisecond))
	stopWatching()
	watchers.Wait()
	history[len(history)-1].until = time.Now()

	// The figures. Each kill's are taken up to the next kill: a stall
	// after it is that kill's.
	var resumed, moved, consumedMoved, consumedBack []time.Duration
	for _, k := range history {
		var lines []string
		if k.leader {
			if d, ok := firstCommitAfter(commits, k); ok {
				resumed = append(resumed, d)
				lines = append(lines, "commits resumed after "+d.Round(time.Millisecond).String())
			} else {
				lines = append(lines, "no commit before the next kill")
			}
		}
		if len(k.next) > 0 {
			dm, didMove := firstMovedAfter(owners, k)
			if didMove {
				moved = append(moved, dm)
				lines = append(lines, "its partitions moved after "+dm.Round(time.Millisecond).String())
			} else {
				lines = append(lines, "restarted before its partitions moved")
			}
			if d, ok := firstConsumedAfter(commits, k, stoppedAt(owners, k, dm, didMove)); ok {
				if didMove {
					consumedMoved = append(consumedMoved, d)
				} else {
					consumedBack = append(consumedBack, d)
				}
				lines = append(lines, "consumed and committed again after "+d.Round(time.Millisecond).String())
			} else {
				lines = append(lines, "its partitions not committed again before the next kill")
			}
		}
		role := "follower"
		if k.leader {
			role = "leader"
		}
		t.Logf("kill %2d: %s (%s), down %s, next kill %s later: %s", k.n, k.victim, role, k.down.Round(time.Millisecond),
			k.until.Sub(k.at).Round(time.Millisecond), strings.Join(lines, "; "))
	}
	t.Logf("failover: commits resumed after a leader kill: %s", durStats(resumed, countLeaderKills(history)))
	t.Logf("failover: a dead member's partitions owned by another member: %s", durStats(moved, len(history)))
	t.Logf("failover: ... and committed past where it stopped: %s", durStats(consumedMoved, len(moved)))
	t.Logf("failover: a member back before dead_after: its partitions committed past where it stopped: %s",
		durStats(consumedBack, len(history)-len(moved)))
	if n := countLeaderKills(history); n < 2 {
		t.Errorf("only %d of the kills hit the leader, want at least 2", n)
	}

	r.stopAll()
	checkExactlyOnce(t, cfg, want)
	t.Logf("done at +%s", time.Since(began).Round(time.Millisecond))
}

func countLeaderKills(history []*chaosKill) int {
	n := 0
	for _, k := range history {
		if k.leader {
			n++
		}
	}
	return n
}

// firstCommitAfter is the time from the kill to the first table version
// other than the one current right after it, before the next kill.
func firstCommitAfter(commits []commitSeen, k *chaosKill) (time.Duration, bool) {
	for _, c := range commits {
		if !c.at.Before(k.until) {
			break
		}
		if c.at.After(k.at) && c.loc != k.locAtKill {
			return c.at.Sub(k.at), true
		}
	}
	return 0, false
}

// firstMovedAfter is the time from the kill until every partition of the
// victim had another owner, if that happened before its restart.
func firstMovedAfter(owners []ownersSeen, k *chaosKill) (time.Duration, bool) {
	for _, o := range owners {
		if !o.at.After(k.at) {
			continue
		}
		if o.at.After(k.restarted) {
			return 0, false
		}
		all := true
		for p := range k.next {
			if ow := o.owners[p]; ow == "" || ow == k.victim {
				all = false
			}
		}
		if all {
			return o.at.Sub(k.at), true
		}
	}
	return 0, false
}

// stoppedAt is where the victim's partitions stopped: the furthest next
// offsets the survivors' ledger showed from the kill until the partitions
// moved (the leader that moved them had applied every segment the victim
// got accepted) or, if they did not, until the victim's restart. (A
// leader's last segments that only its successor applies are missed when
// the restart comes before the election ends.)
func stoppedAt(owners []ownersSeen, k *chaosKill, moved time.Duration, didMove bool) map[int32]int64 {
	limit := k.restarted
	if didMove {
		limit = k.at.Add(moved)
	}
	out := maps.Clone(k.next)
	for _, o := range owners {
		if o.at.Before(k.at) {
			continue
		}
		if o.at.After(limit) {
			break
		}
		for p := range out {
			if v, ok := o.next[p]; ok && v > out[p] {
				out[p] = v
			}
		}
	}
	return out
}

// firstConsumedAfter is the time from the kill until the table held
// records of every partition of the victim past where it stopped: consumed
// again (by whichever member) and committed, before the next kill.
func firstConsumedAfter(commits []commitSeen, k *chaosKill, stopped map[int32]int64) (time.Duration, bool) {
	for _, c := range commits {
		if !c.at.Before(k.until) {
			break
		}
		if !c.at.After(k.at) {
			continue
		}
		all := true
		for p, next := range stopped {
			if c.offs[p] <= next {
				all = false
			}
		}
		if all {
			return c.at.Sub(k.at), true
		}
	}
	return 0, false
}

// durStats summarises the samples of a figure taken on kills of which
// some had none (see the per-kill lines).
func durStats(ds []time.Duration, of int) string {
	if len(ds) == 0 {
		return fmt.Sprintf("no samples (of %d)", of)
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return fmt.Sprintf("median %s, max %s, min %s (%d samples of %d)",
		med.Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), s[0].Round(time.Millisecond), len(s), of)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// ---------------------------------------------------------------------------
// TestClusterRecoversFromIcebergAlone

// TestClusterRecoversFromIcebergAlone kills every member of a cluster in
// the middle of ingestion and deletes their data directories (raft log,
// snapshots, everything): what survives is the catalog and the warehouse.
// A fresh cluster on them must resume exactly where the tables' snapshot
// summaries say, losing and duplicating nothing.
func TestClusterRecoversFromIcebergAlone(t *testing.T) {
	const topic = "clicks"
	broker, s, r := newLocalClusterRig(t, topic, 6, 3)
	cfg := r.config()
	cat := openCatalog(t, cfg)

	r.startAll()
	r.waitSpread(time.Minute, "n1", "n2", "n3")
	cl := newProducer(t, broker)
	var stats gen.ProducerStats
	first := make(chan error, 1)
	go func() { first <- produce(context.Background(), cl, topic, 80_000, 20_000, 41, &stats) }()

	// Kill everything mid-stream, once some commits landed.
	var atKill map[int32]int64
	waitFor(t, 2*time.Minute, "some commits", func() (bool, string) {
		r.checkAlive()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		off, err := committedOffsets(ctx, cat, s.Table, s.Pipeline, topic)
		atKill = off
		return err == nil && sum(off) >= 20_000, fmt.Sprintf("table offsets %s (err %v)", fmtOffsets(off), err)
	})
	for _, m := range r.Members() {
		r.kill(m)
	}
	t.Logf("killed every member with %d records produced, table offsets about %s", stats.Produced.Load(), fmtOffsets(atKill))
	if err := <-first; err != nil {
		t.Fatalf("produce: %v", err)
	}
	for _, m := range r.Members() {
		if _, err := os.Stat(filepath.Join(m.DataDir(), "raft")); err != nil {
			t.Fatalf("%s has no raft state to delete: %v", m.ID, err)
		}
		if err := os.RemoveAll(m.DataDir()); err != nil {
			t.Fatal(err)
		}
	}
	if err := produce(context.Background(), cl, topic, 40_000, 0, 42, &stats); err != nil {
		t.Fatalf("produce: %v", err)
	}
	want := producedOf(&stats)
	ends := mustEndOffsets(t, broker, topic)

	// A new cluster: n1 forms it, n2 and n3 join.
	r.startAll()
	r.waitSpread(time.Minute, "n1", "n2", "n3")
	r.waitCommitted(cat, ends, 2*time.Minute)
	r.stopAll()
	checkExactlyOnce(t, cfg, want)
}

// ---------------------------------------------------------------------------
// TestClusterLeaveAndRejoin

// TestClusterLeaveAndRejoin removes a running member with `floe cluster
// leave`: its partitions move to the others and it stops consuming while
// its process keeps running. Restarted with --join, it gets partitions
// again. Every record is committed exactly once.
func TestClusterLeaveAndRejoin(t *testing.T) {
	const topic = "clicks"
	broker, s, r := newLocalClusterRig(t, topic, 6, 3)
	cfg := r.config()
	cat := openCatalog(t, cfg)
	n1, n2, n3 := r.member("n1"), r.member("n2"), r.member("n3")

	r.startAll()
	r.waitSpread(time.Minute, "n1", "n2", "n3")
	prod := startProducer(t, broker, topic, 0, 5_000, 10_000, 61)
	const consumedSample = `floe_ingest_records_total{pipeline="clicks"}`
	waitFor(t, time.Minute, "n3 to consume", func() (bool, string) {
		r.checkAlive()
		v, err := metricValue(n3, consumedSample)
		return err == nil && v > 0, fmt.Sprintf("%s = %v (err %v)", consumedSample, v, err)
	})

	statusOf := func(m *member) cluster.Status {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := memberStatus(ctx, m)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		return st
	}
	before := statusOf(n1)
	n3Parts := map[int32]bool{}
	for _, p := range before.Partitions {
		if p.Owner == "n3" {
			n3Parts[p.Partition] = true
		}
	}

	// n3 leaves, asked through n2 (forwarded to the leader if n2 is not it).
	out, err := exec.Command(r.Bin(), "cluster", "leave", "--addr", n2.APIAddr(), "--node-id", "n3").CombinedOutput()
	if err != nil {
		t.Fatalf("floe cluster leave: %v\n%s", err, out)
	}
	t.Logf("floe cluster leave: %s", strings.TrimSpace(string(out)))
	var next map[int32]int64
	waitFor(t, 30*time.Second, "n3's partitions to move to n1 and n2", func() (bool, string) {
		r.checkAlive()
		st := statusOf(n1)
		o := ownersOf(st)
		var ids []string
		for _, m := range st.Members {
			ids = append(ids, m.ID)
		}
		next = map[int32]int64{}
		for _, p := range st.Partitions {
			next[p.Partition] = p.NextExpected
		}
		return o["n3"] == 0 && o[""] == 0 && o["n1"] > 0 && o["n2"] > 0 && !slices.Contains(ids, "n3"),
			fmt.Sprintf("owners %v, members %v", o, ids)
	})
	waitFor(t, 30*time.Second, "n3 to own no partitions", func() (bool, string) {
		r.checkAlive()
		v, err := metricValue(n3, `floe_cluster_partitions_owned{pipeline="clicks"}`)
		return err == nil && v == 0, fmt.Sprintf("n3's floe_cluster_partitions_owned = %v (err %v)", v, err)
	})
	// n3's former partitions are consumed and committed by the others.
	waitFor(t, time.Minute, "n3's former partitions to be consumed again", func() (bool, string) {
		r.checkAlive()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		off, err := committedOffsets(ctx, cat, s.Table, s.Pipeline, topic)
		if err != nil {
			return false, err.Error()
		}
		for p := range n3Parts {
			if off[p] <= next[p] {
				return false, fmt.Sprintf("partition %d committed to %d, was at %d when n3 left", p, off[p], next[p])
			}
		}
		return true, ""
	})
	// ... while n3, still running, consumes nothing.
	v0, err := metricValue(n3, consumedSample)
	if err != nil {
		t.Fatal(err)
	}
	off0 := mustCommitted(t, cat, s)
	waitFor(t, time.Minute, "the cluster to commit more", func() (bool, string) {
		r.checkAlive()
		off := mustCommitted(t, cat, s)
		return sum(off) > sum(off0)+5_000, fmt.Sprintf("committed %d, %d before", sum(off), sum(off0))
	})
	v1, err := metricValue(n3, consumedSample)
	if err != nil {
		t.Fatal(err)
	}
	if v1 != v0 {
		t.Errorf("n3 left the cluster but consumed %v records since", v1-v0)
	}
	if n3.Proc().Exited() {
		t.Fatalf("n3 exited after leaving: %v", n3.Proc().Err())
	}
	if st, err := memberStatus(context.Background(), n3); err == nil {
		t.Logf("n3's own view after leaving: leader %q, members %d, owners %v", st.LeaderID, len(st.Members), ownersOf(st))
	} else {
		t.Logf("n3's own view after leaving: %v", err)
	}

	// n3 comes back with --join.
	r.stop(n3)
	r.start(n3, "--join", n1.APIAddr())
	r.waitReady(n3, time.Minute)
	r.waitSpread(time.Minute, "n1", "n2", "n3")
	base, err := metricValue(n3, consumedSample)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "n3 to consume again", func() (bool, string) {
		r.checkAlive()
		v, err := metricValue(n3, consumedSample)
		return err == nil && v > base, fmt.Sprintf("%s = %v (err %v)", consumedSample, v, err)
	})
	// The CLI's view of the cluster.
	out, err = exec.Command(r.Bin(), "cluster", "status", "--addr", n3.APIAddr(), "--json").Output()
	if err != nil {
		t.Fatalf("floe cluster status: %v", err)
	}
	var st cluster.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("floe cluster status --json: %v\n%s", err, out)
	}
	if len(st.Members) != 3 || ownersOf(st)["n3"] == 0 {
		t.Errorf("after the rejoin, floe cluster status shows members %+v, owners %v", st.Members, ownersOf(st))
	}
	t.Logf("after the rejoin: leader %s, owners %v", st.LeaderID, ownersOf(st))

	want := prod.finish(t, time.Minute)
	ends := mustEndOffsets(t, broker, topic)
	r.waitCommitted(cat, ends, 2*time.Minute)
	r.stopAll()
	checkExactlyOnce(t, cfg, want)
}

func mustCommitted(t testing.TB, cat *catalog.Catalog, s setup) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	off, err := committedOffsets(ctx, cat, s.Table, s.Pipeline, s.Topic)
	if err != nil {
		t.Fatalf("committed offsets: %v", err)
	}
	return off
}
