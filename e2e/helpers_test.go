package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/gen"
	"github.com/floelake/floe/internal/node"
	"github.com/floelake/floe/internal/procrig"
)

// binDir holds the floe binary built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "floe-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binDir = d
	code := m.Run()
	_ = os.RemoveAll(d)
	os.Exit(code)
}

var build struct {
	once sync.Once
	path string
	err  error
}

// floeBinary builds ./cmd/floe once per test binary run and returns its path.
func floeBinary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			build.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == os.DevNull {
			build.err = errors.New("go env GOMOD: not inside the floe module")
			return
		}
		path := filepath.Join(binDir, "floe")
		cmd := exec.Command("go", "build", "-o", path, "./cmd/floe")
		cmd.Dir = filepath.Dir(gomod)
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/floe: %w\n%s", err, out)
			return
		}
		build.path = path
	})
	if build.err != nil {
		t.Fatalf("e2e: %v", build.err)
	}
	return build.path
}

// ---------------------------------------------------------------------------
// Broker and producer

// startBroker runs a one-broker kfake cluster on a free 127.0.0.1 port with
// the topic seeded, until the test ends.
func startBroker(t testing.TB, topic string, partitions int32, extra ...kfake.Opt) (*kfake.Cluster, string) {
	t.Helper()
	opts := append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic)}, extra...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()[0]
}

// newProducer returns a client for producing to the broker.
func newProducer(t testing.TB, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.MaxBufferedRecords(50_000),
	)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce produces limit click records (about 1% malformed) with the given
// generator seed; rate 0 is as fast as possible. It returns after every
// record was acknowledged, adding to stats. Generators with different seeds
// draw event ids from disjoint ranges, so every call must use a new seed.
func produce(ctx context.Context, cl *kgo.Client, topic string, limit int64, rate int, seed int64, stats *gen.ProducerStats) error {
	return gen.Produce(ctx, cl, gen.ProducerConfig{
		Topic: topic, Kind: gen.Clicks, Rate: rate, Limit: limit,
		Gen: gen.Config{Seed: seed},
	}, stats)
}

// produceClean is produce without malformed records.
func produceClean(ctx context.Context, cl *kgo.Client, topic string, limit int64, seed int64, stats *gen.ProducerStats) error {
	return gen.Produce(ctx, cl, gen.ProducerConfig{
		Topic: topic, Kind: gen.Clicks, Limit: limit,
		Gen: gen.Config{Seed: seed, MalformedRate: -1},
	}, stats)
}

// endOffsets returns every partition's end offset (the next offset to be
// written).
func endOffsets(ctx context.Context, addr, topic string) (map[int32]int64, error) {
	return procrig.EndOffsets(ctx, addr, topic)
}

func mustEndOffsets(t testing.TB, addr, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := endOffsets(ctx, addr, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	return ends
}

func sum(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// ---------------------------------------------------------------------------
// Configuration

// clicksSchemaYAML is the clicks schema of floe.example.yaml; every valid
// record of gen.Clicks decodes into it.
const clicksSchemaYAML = `
    schema:
      - {name: event_id, type: string, required: true}
      - {name: user_id, type: long}
      - {name: session_id, type: string}
      - {name: ts, type: timestamptz, required: true}
      - {name: url, type: string}
      - {name: referrer, type: string}
      - {name: device, type: string}
      - {name: country, type: string}
      - {name: duration_ms, type: int}
      - {name: revenue, type: double}
    partition_by: ["day(ts)"]
    kafka_metadata: [partition, offset]
`

// setup describes one floe configuration.
type setup struct {
	Dir            string // data_dir and catalog live under it
	Broker         string
	Topic          string
	Pipeline       string
	Table          string
	CommitInterval time.Duration
	HTTPAddr       string // "" disables the operations endpoint
	LogLevel       string
	Start          string // earliest (default), latest or an RFC 3339 time
	// Warehouse and S3 are for an S3 warehouse; empty: <data_dir>/warehouse.
	Warehouse string
	S3        *s3Settings
	// Extra is top-level YAML appended to the file as it is (such as a
	// maintenance section).
	Extra string
}

type s3Settings struct {
	Endpoint, Region, AccessKey, SecretKey string
}

func newSetup(t testing.TB, broker, topic string) setup {
	return setup{
		Dir:            t.TempDir(),
		Broker:         broker,
		Topic:          topic,
		Pipeline:       "clicks",
		Table:          "e2e.clicks",
		CommitInterval: 500 * time.Millisecond,
		LogLevel:       "info",
		Start:          "earliest",
	}
}

func (s setup) dataDir() string    { return filepath.Join(s.Dir, "data") }
func (s setup) catalogURI() string { return "sqlite://" + filepath.Join(s.Dir, "catalog.db") }

// memberConfig is the setup as one floe process's configuration.
func (s setup) memberConfig() procrig.MemberConfig {
	c := procrig.MemberConfig{
		DataDir: s.dataDir(), HTTPAddr: s.HTTPAddr, LogLevel: s.LogLevel, ShutdownTimeout: 60 * time.Second,
		Brokers: []string{s.Broker}, ClientID: "floe-e2e",
		Catalog: catalog.Config{Type: "sql", Name: "floe", URI: s.catalogURI(), Warehouse: s.Warehouse},
		Pipeline: procrig.Pipeline{
			Name: s.Pipeline, Topic: s.Topic, Table: s.Table, Start: s.Start, CommitInterval: s.CommitInterval,
			Extra: clicksSchemaYAML,
		},
	}
	if s.S3 != nil {
		c.S3 = &catalog.S3Config{Endpoint: s.S3.Endpoint, Region: s.S3.Region, AccessKeyID: s.S3.AccessKey, SecretAccessKey: s.S3.SecretKey}
	}
	return c
}

// yaml renders the configuration file.
func (s setup) yaml() string { return s.memberConfig().YAML() + s.Extra }

// config parses the rendered file exactly as `floe serve` would (without
// the process environment).
func (s setup) config(t testing.TB) config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(s.yaml()), nil)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, s.yaml())
	}
	return cfg
}

// writeConfig writes the file for a floe process and returns its path.
func (s setup) writeConfig(t testing.TB) string {
	t.Helper()
	path := filepath.Join(s.Dir, "floe.yaml")
	if err := os.WriteFile(path, []byte(s.yaml()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// ---------------------------------------------------------------------------
// Catalog reads from the test process

// openCatalog opens the configuration's catalog (a second handle next to
// the node's: SQLite in WAL mode allows it).
func openCatalog(t testing.TB, cfg config.Config) *catalog.Catalog {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cat, err := catalog.Open(ctx, cfg.Catalog, cfg.Storage, cfg.Node.DataDir)
	if err != nil {
		t.Fatalf("open catalog: %v", err)
	}
	t.Cleanup(func() { _ = cat.Close() })
	return cat
}

// committedOffsets returns a table's floe.offsets for the pipeline's topic,
// or nil when the table or its offsets do not exist yet.
func committedOffsets(ctx context.Context, cat *catalog.Catalog, tableName, pipeline, topic string) (map[int32]int64, error) {
	tbl, err := cat.LoadTable(ctx, catalog.Ident(tableName))
	if err != nil {
		return nil, err
	}
	off, _, found, err := commit.TableOffsets(tbl, pipeline)
	if err != nil || !found {
		return nil, err
	}
	return off[topic], nil
}

// reached reports whether offs covers ends on every partition.
func reached(offs, ends map[int32]int64) bool { return procrig.Reached(offs, ends) }

func fmtOffsets(m map[int32]int64) string {
	ps := make([]int, 0, len(m))
	for p := range m {
		ps = append(ps, int(p))
	}
	sort.Ints(ps)
	var b strings.Builder
	b.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:%d", p, m[int32(p)])
	}
	b.WriteByte('}')
	return b.String()
}

// ---------------------------------------------------------------------------
// Waiting

// waitFor polls cond every 100ms until it holds, failing the test after
// timeout with the last state cond described.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// In-process nodes

// logBuffer collects a node's logs; they are printed if the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger returns a logger whose output is shown when the test fails
// (or always with FLOE_E2E_KEEP=1).
func testLogger(t testing.TB, name string) *slog.Logger {
	buf := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("FLOE_E2E_KEEP") != "" {
			t.Logf("---- %s log ----\n%s", name, tail(buf.String(), 400))
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) <= n {
		return s
	}
	return fmt.Sprintf("[... %d lines cut ...]\n", len(lines)-n) + strings.Join(lines[len(lines)-n:], "")
}

// nodeConfig starts a broker with the topic's partitions and returns its
// address, a single node's configuration (committing every 300 ms) and the
// catalog.
func nodeConfig(t *testing.T, topic string, partitions int32) (string, config.Config, *catalog.Catalog) {
	t.Helper()
	_, broker := startBroker(t, topic, partitions)
	s := newSetup(t, broker, topic)
	s.CommitInterval = 300 * time.Millisecond
	cfg := s.config(t)
	return broker, cfg, openCatalog(t, cfg)
}

// runningNode is a node.Node running in a goroutine.
type runningNode struct {
	n      *node.Node
	cancel context.CancelFunc
	done   chan error
}

// startNode runs a node until stop (or the end of the test).
func startNode(t testing.TB, cfg config.Config, log *slog.Logger) *runningNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("node.New: %v", err)
	}
	r := &runningNode{n: n, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(2 * time.Minute):
		}
	})
	return r
}

// stop cancels the node's context (a graceful stop: it commits what it
// holds) and waits for Run to return.
func (r *runningNode) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("node.Run: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("node did not stop within 2 minutes of its context ending")
	}
}

// ---------------------------------------------------------------------------
// floe processes

// freeAddr returns a free 127.0.0.1 address.
func freeAddr(t testing.TB) string {
	t.Helper()
	addrs, err := procrig.FreeAddrs(1)
	if err != nil {
		t.Fatal(err)
	}
	return addrs[0]
}

// startFloe runs `floe serve --config cfgPath` with stdout and stderr
// appended to logPath. The process is killed when the test ends.
func startFloe(t testing.TB, bin, cfgPath, logPath string, extraEnv ...string) *procrig.Proc {
	t.Helper()
	return startProc(t, bin, logPath, extraEnv, "serve", "--config", cfgPath)
}

// startProc runs the floe binary with args and extra environment, stdout and
// stderr appended to logPath. The process is killed when the test ends.
func startProc(t testing.TB, bin, logPath string, extraEnv []string, args ...string) *procrig.Proc {
	t.Helper()
	p, err := procrig.Start(bin, logPath, extraEnv, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !p.Exited() {
			_ = p.Kill()
		}
	})
	return p
}

// showLogOnFailure prints a process log file if the test fails.
func showLogOnFailure(t testing.TB, path string) {
	t.Cleanup(func() {
		if !t.Failed() && os.Getenv("FLOE_E2E_KEEP") == "" {
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Logf("floe log %s: %v", path, err)
			return
		}
		t.Logf("---- floe log %s ----\n%s", path, tail(string(b), 600))
	})
}

// readFile returns a file's content, or "" if it cannot be read.
func readFile(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return string(b)
}

// stopGracefully sends SIGTERM and requires a clean exit (status 0) within
// 90 s: the final commit of what floe held.
func stopGracefully(t testing.TB, p *procrig.Proc) {
	t.Helper()
	if err := p.Stop(90 * time.Second); err != nil {
		t.Fatalf("floe: %v", err)
	}
}

// testSeed returns the seed of a randomized test (FLOE_E2E_SEED when set)
// and logs how to replay it.
func testSeed(t *testing.T) int64 {
	t.Helper()
	seed := time.Now().UnixNano()
	if v := os.Getenv("FLOE_E2E_SEED"); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("FLOE_E2E_SEED=%q: %v", v, err)
		}
		seed = s
	}
	t.Logf("seed %d (replay with FLOE_E2E_SEED=%d)", seed, seed)
	return seed
}

// endIncarnation ends incarnation i of a kill test, a floe process writing
// its log to logPath: with a failpoint, it waits for the failpoint's crash
// (at its hit-th hit) and checks that it was that; otherwise it SIGKILLs
// the process, after a random delay or once committed() has grown past
// before (a coin toss). It returns how the incarnation ended.
func endIncarnation(t *testing.T, i int, proc *procrig.Proc, logPath, failpoint string, hit int, rng *rand.Rand,
	committed func() int64, before int64,
) string {
	t.Helper()
	if failpoint != "" {
		if !proc.Wait(2 * time.Minute) {
			t.Fatalf("incarnation %d: failpoint %s=crash@%d did not fire within 2 minutes", i, failpoint, hit)
		}
		if !proc.KilledBySIGKILL() {
			t.Fatalf("incarnation %d: floe exited with %s, want it killed by its failpoint %s", i, proc.State(), failpoint)
		}
		if want := "failpoint " + failpoint + ": crashing"; !strings.Contains(readFile(logPath), want) {
			t.Fatalf("incarnation %d: died of SIGKILL but its log lacks %q", i, want)
		}
		return fmt.Sprintf("failpoint %s (crash@%d)", failpoint, hit)
	}
	var how string
	if rng.IntN(2) == 0 {
		d := time.Duration(500+rng.IntN(2500)) * time.Millisecond
		how = "SIGKILL after " + d.String()
		time.Sleep(d)
	} else {
		waitFor(t, 2*time.Minute, fmt.Sprintf("incarnation %d to commit something", i), func() (bool, string) {
			if proc.Exited() {
				t.Fatalf("incarnation %d exited by itself: %v", i, proc.Err())
			}
			n := committed()
			return n > before, fmt.Sprintf("committed offsets %d, %d before", n, before)
		})
		d := time.Duration(rng.IntN(1000)) * time.Millisecond
		how = "SIGKILL once it committed, plus " + d.String()
		time.Sleep(d)
	}
	if err := proc.Kill(); err != nil {
		t.Fatalf("incarnation %d: %v", i, err)
	}
	return how
}

// writeMemberConfig writes s's configuration with its member's pipeline
// shaped by shape, and returns its path and the configuration as floe
// parses it.
func writeMemberConfig(t *testing.T, s setup, shape func(*procrig.MemberConfig)) (string, config.Config) {
	t.Helper()
	mc := s.memberConfig()
	shape(&mc)
	yaml := mc.YAML() + s.Extra
	cfg, err := config.Parse([]byte(yaml), nil)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	path := filepath.Join(s.Dir, "floe.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

// newChaosCluster is a 3-member cluster on a 4-partition topic whose
// members' pipeline shape sets, with 300ms commits and fast compaction (no
// expiry, no orphan cleanup), and the catalog the members share.
func newChaosCluster(t *testing.T, topic string, shape func(*procrig.MemberConfig)) (string, *clusterRig, *catalog.Catalog) {
	t.Helper()
	broker, _, r := newLocalClusterRig(t, topic, 4, 3)
	err := r.Update(func(mc *procrig.MemberConfig) {
		shape(mc)
		mc.Pipeline.CommitInterval = 300 * time.Millisecond
		// procrig writes the pipeline last, so a top-level section can
		// follow its entry.
		mc.Pipeline.Extra += "\n" + maintenanceYAML(fastCompaction, disabled, disabled)
	})
	if err != nil {
		t.Fatal(err)
	}
	return broker, r, openCatalog(t, r.config())
}
