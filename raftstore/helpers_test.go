package raftstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// entry is one command as the test FSM saw it.
type entry struct {
	Index uint64
	Data  string
}

// testFSM records every applied command with its index. It flags an index
// applied twice or out of order within one lifetime (a Restore starts a new
// lifetime, from the snapshot's entries).
type testFSM struct {
	mu         sync.Mutex
	entries    []entry
	restores   int
	firstApply uint64 // first index applied after the last Restore or start
	violations []string
	// gateCmd, if set, is a command whose Apply waits until gate is closed
	// before it records anything.
	gateCmd string
	gate    <-chan struct{}
}

// setGate makes Apply of cmd wait until gate is closed.
func (f *testFSM) setGate(cmd string, gate <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gateCmd, f.gate = cmd, gate
}

// Apply returns the index, or an error value for a command "fail".
func (f *testFSM) Apply(index uint64, data []byte) any {
	f.mu.Lock()
	gate := f.gate
	if f.gateCmd == "" || string(data) != f.gateCmd {
		gate = nil
	}
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.entries); n > 0 && index <= f.entries[n-1].Index {
		f.violations = append(f.violations, fmt.Sprintf("index %d applied after %d", index, f.entries[n-1].Index))
	}
	if f.firstApply == 0 {
		f.firstApply = index
	}
	f.entries = append(f.entries, entry{Index: index, Data: string(data)})
	if string(data) == "fail" {
		return errors.New("rejected by FSM")
	}
	return index
}

type testSnapshot struct{ entries []entry }

func (s *testSnapshot) Persist(w io.Writer) error { return json.NewEncoder(w).Encode(s.entries) }

func (f *testFSM) Snapshot() (*testSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &testSnapshot{entries: slices.Clone(f.entries)}, nil
}

func (f *testFSM) Restore(r io.Reader) error {
	var es []entry
	if err := json.NewDecoder(r).Decode(&es); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = es
	f.restores++
	f.firstApply = 0
	return nil
}

func (f *testFSM) snapshot() []entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.entries)
}

func (f *testFSM) restoreCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restores
}

func (f *testFSM) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.entries)
}

func (f *testFSM) check(t *testing.T, name string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.violations) > 0 {
		t.Errorf("%s: FSM order violations: %v", name, f.violations)
	}
	seen := map[string]uint64{}
	for _, e := range f.entries {
		if prev, ok := seen[e.Data]; ok {
			t.Errorf("%s: command %q applied twice (indexes %d and %d)", name, e.Data, prev, e.Index)
		}
		seen[e.Data] = e.Index
	}
}

// testLogger sends logs to t.Log at Warn and above (RAFTSTORE_LOG=debug for
// everything), and drops them once the test has finished: raft goroutines may
// still log while shutting down.
func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("RAFTSTORE_LOG") == "debug" {
		level = levelTrace
	}
	h := &tHandler{t: t, level: level, done: new(atomic.Bool), mu: new(sync.Mutex)}
	t.Cleanup(func() { h.mu.Lock(); h.done.Store(true); h.mu.Unlock() })
	return slog.New(h)
}

type tHandler struct {
	t     *testing.T
	level slog.Level
	attrs []slog.Attr
	done  *atomic.Bool
	mu    *sync.Mutex
}

func (h *tHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *tHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", r.Time.Format("15:04:05.000"), r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s", a)
	}
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s", a); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.done.Load() {
		h.t.Log(b.String())
	}
	return nil
}

func (h *tHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(slices.Clone(h.attrs), as...)
	return &c
}

func (h *tHandler) WithGroup(string) slog.Handler { return h }

// waitFor polls cond every 5 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitLeader waits until exactly one of nodes is the leader and every node
// knows it, and returns it.
func waitLeader(t *testing.T, timeout time.Duration, nodes ...*Node) *Node {
	t.Helper()
	var leader *Node
	waitFor(t, timeout, "a leader known to all", func() bool {
		leader = nil
		for _, n := range nodes {
			if n.IsLeader() {
				if leader != nil {
					return false
				}
				leader = n
			}
		}
		if leader == nil {
			return false
		}
		for _, n := range nodes {
			if id, _ := n.Leader(); id != leader.ID() {
				return false
			}
		}
		return true
	})
	return leader
}

// applyN applies commands prefix-0 .. prefix-(n-1) on leader, with a few
// workers, and fails the test on any error.
func applyN(t *testing.T, leader *Node, prefix string, n int) {
	t.Helper()
	const workers = 4
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		errs = make(chan error, workers)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				resp, err := leader.Apply(ctx, fmt.Appendf(nil, "%s-%d", prefix, i))
				cancel()
				if err != nil {
					errs <- fmt.Errorf("apply %s-%d: %w", prefix, i, err)
					return
				}
				if idx, ok := resp.(uint64); !ok || idx == 0 {
					errs <- fmt.Errorf("apply %s-%d: response %v, want the log index", prefix, i, resp)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// waitConverged waits until every FSM holds want entries and all are equal.
func waitConverged(t *testing.T, timeout time.Duration, want int, fsms ...*testFSM) []entry {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d FSMs to hold %d entries", len(fsms), want), func() bool {
		for _, f := range fsms {
			if f.len() != want {
				return false
			}
		}
		return true
	})
	ref := fsms[0].snapshot()
	for i, f := range fsms[1:] {
		if got := f.snapshot(); !slices.Equal(got, ref) {
			t.Fatalf("FSM %d differs from FSM 0", i+1)
		}
	}
	for i, f := range fsms {
		f.check(t, fmt.Sprintf("FSM %d", i))
	}
	return ref
}

// countPrefix counts entries whose data starts with prefix.
func countPrefix(es []entry, prefix string) int {
	n := 0
	for _, e := range es {
		if strings.HasPrefix(e.Data, prefix) {
			n++
		}
	}
	return n
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
