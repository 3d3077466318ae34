package procrig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options describe a rig.
type Options struct {
	// Bin is the floe binary every member runs.
	Bin string
	// Dir holds a directory per member: <Dir>/<id> with its data dir
	// (data), configuration (floe.yaml) and log (floe.log).
	Dir     string
	Members int
	// Cluster makes the members one cluster: n1 forms it, the others join
	// through n1's API. Without it every member is a single node.
	Cluster bool
	// Member is every member's configuration. New sets ID (n1, n2, ...),
	// DataDir, HTTPAddr, Cluster and, in cluster mode, RaftAddr, APIAddr and
	// Join.
	Member MemberConfig
}

// Rig runs the members of one cluster (or single nodes) as processes.
type Rig struct {
	bin     string
	members []*Member
}

// Member is one member: its files, which outlive its processes, and its
// current process.
type Member struct {
	ID string
	// Dir holds the member's data dir, configuration file and log.
	Dir, ConfigPath, LogPath string

	mu      sync.Mutex
	cfg     MemberConfig
	proc    *Proc
	down    bool // deliberately stopped or killed, not started again yet
	started time.Time
	peakRSS int64 // of the processes before proc
}

// New prepares the members and writes their configuration files; it
// starts nothing.
func New(o Options) (*Rig, error) {
	if o.Bin == "" || o.Dir == "" || o.Members < 1 {
		return nil, errors.New("procrig: a rig needs a binary, a directory and at least one member")
	}
	addrs, err := FreeAddrs(3 * o.Members)
	if err != nil {
		return nil, err
	}
	r := &Rig{bin: o.Bin}
	for i := range o.Members {
		id := fmt.Sprintf("n%d", i+1)
		dir := filepath.Join(o.Dir, id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		c := o.Member
		c.ID, c.DataDir, c.HTTPAddr, c.Cluster = id, filepath.Join(dir, "data"), addrs[3*i+2], o.Cluster
		c.RaftAddr, c.APIAddr, c.Join = "", "", nil
		if o.Cluster {
			c.RaftAddr, c.APIAddr = addrs[3*i], addrs[3*i+1]
			if i > 0 {
				c.Join = []string{addrs[1]}
			}
		}
		m := &Member{ID: id, Dir: dir, ConfigPath: filepath.Join(dir, "floe.yaml"), LogPath: filepath.Join(dir, "floe.log"), cfg: c}
		if err := m.write(); err != nil {
			return nil, err
		}
		r.members = append(r.members, m)
	}
	return r, nil
}

// write validates the member's configuration and writes its file.
func (m *Member) write() error {
	if _, err := m.cfg.Parse(); err != nil {
		return err
	}
	return os.WriteFile(m.ConfigPath, []byte(m.cfg.YAML()), 0o644)
}

// Bin is the floe binary the members run.
func (r *Rig) Bin() string { return r.bin }

// Members returns every member, n1 first.
func (r *Rig) Members() []*Member { return r.members }

// Member returns the member named id, or nil.
func (r *Rig) Member(id string) *Member {
	for _, m := range r.members {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// Update changes every member's configuration and rewrites the files; it
// takes effect at each member's next start.
func (r *Rig) Update(f func(*MemberConfig)) error {
	for _, m := range r.members {
		m.mu.Lock()
		f(&m.cfg)
		err := m.write()
		m.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// Config is the member's configuration.
func (m *Member) Config() MemberConfig {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg
}

// DataDir is the member's node.data_dir.
func (m *Member) DataDir() string { return m.Config().DataDir }

// HTTPAddr is the member's operations endpoint.
func (m *Member) HTTPAddr() string { return m.Config().HTTPAddr }

// APIAddr is the member's cluster API address.
func (m *Member) APIAddr() string { return m.Config().APIAddr }

// Proc is the member's current (or last) process; nil before its first
// start.
func (m *Member) Proc() *Proc {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc
}

// Started is when the member's current process started.
func (m *Member) Started() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.started
}

// Live reports whether the member runs and is meant to.
func (m *Member) Live() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc != nil && !m.down && !m.proc.Exited()
}

// Start runs `floe serve --config <m's file> [args]`.
func (r *Rig) Start(m *Member, args ...string) error {
	return r.StartEnv(m, nil, args...)
}

// StartEnv is Start with extra environment variables (FLOE_FAILPOINTS).
func (r *Rig) StartEnv(m *Member, env []string, args ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil && !m.proc.Exited() {
		return fmt.Errorf("procrig: %s is running", m.ID)
	}
	p, err := Start(r.bin, m.LogPath, env, append([]string{"serve", "--config", m.ConfigPath}, args...)...)
	if err != nil {
		return fmt.Errorf("%s: %w", m.ID, err)
	}
	if m.proc != nil {
		m.peakRSS = max(m.peakRSS, m.proc.PeakRSS())
	}
	m.proc, m.down, m.started = p, false, time.Now()
	return nil
}

// StartAll starts every member, n1 first, without waiting.
func (r *Rig) StartAll() error {
	for _, m := range r.members {
		if err := r.Start(m); err != nil {
			return err
		}
	}
	return nil
}

// StartCluster starts n1, waits up to timeout until it is ready (it formed
// the cluster, or rejoined it), then starts the others at once.
func (r *Rig) StartCluster(ctx context.Context, timeout time.Duration) error {
	first := r.members[0]
	if err := r.Start(first); err != nil {
		return err
	}
	if len(r.members) == 1 {
		return nil
	}
	if err := r.WaitFor(ctx, 50*time.Millisecond, timeout, first.ID+" to be ready", func() (bool, string) {
		return Ready(ctx, first)
	}); err != nil {
		return err
	}
	for _, m := range r.members[1:] {
		if err := r.Start(m); err != nil {
			return err
		}
	}
	return nil
}

// Kill SIGKILLs m and waits until it is gone (see Proc.Kill); it returns
// when the signal was sent.
func (r *Rig) Kill(m *Member) (time.Time, error) {
	p := m.markDown()
	if p == nil {
		return time.Time{}, fmt.Errorf("procrig: %s was never started", m.ID)
	}
	at := time.Now()
	if err := p.Kill(); err != nil {
		return at, fmt.Errorf("%s: %w", m.ID, err)
	}
	return at, nil
}

// Stop sends m SIGTERM and waits up to timeout for a clean exit (see
// Proc.Stop).
func (r *Rig) Stop(m *Member, timeout time.Duration) error {
	p := m.markDown()
	if p == nil {
		return nil
	}
	if err := p.Stop(timeout); err != nil {
		return fmt.Errorf("%s: %w", m.ID, err)
	}
	return nil
}

func (m *Member) markDown() *Proc {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = true
	return m.proc
}

// StopAll stops the live members one after the other, each within timeout.
func (r *Rig) StopAll(timeout time.Duration) error {
	var errs []error
	for _, m := range r.Live() {
		errs = append(errs, r.Stop(m, timeout))
	}
	return errors.Join(errs...)
}

// Close ends every process still running, all at once: SIGTERM, then
// SIGKILL after grace (at once when grace is 0). It reports nothing: it is
// for cleaning up.
func (r *Rig) Close(grace time.Duration) {
	var wg sync.WaitGroup
	for _, m := range r.members {
		p := m.markDown()
		if p == nil || p.Exited() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if grace > 0 {
				_ = p.Stop(grace)
				return
			}
			_ = p.Kill()
		}()
	}
	wg.Wait()
}

// Live returns the members running and meant to.
func (r *Rig) Live() []*Member {
	var out []*Member
	for _, m := range r.members {
		if m.Live() {
			out = append(out, m)
		}
	}
	return out
}

// CheckAlive returns an error naming a member that exited by itself.
func (r *Rig) CheckAlive() error {
	for _, m := range r.members {
		m.mu.Lock()
		p, down := m.proc, m.down
		m.mu.Unlock()
		if p != nil && !down && p.Exited() {
			return fmt.Errorf("%s exited by itself (%s); its log: %s", m.ID, p.State(), m.LogPath)
		}
	}
	return nil
}

// LogTails writes the last lines of every member's log.
func (r *Rig) LogTails(w io.Writer, lines int) {
	for _, m := range r.members {
		b, err := os.ReadFile(m.LogPath)
		if err != nil {
			continue
		}
		fmt.Fprintf(w, "---- %s (%s), last %d lines ----\n%s", m.ID, m.LogPath, lines, Tail(string(b), lines))
	}
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	all := strings.SplitAfter(s, "\n")
	if all[len(all)-1] == "" {
		all = all[:len(all)-1]
	}
	return strings.Join(all[max(0, len(all)-n):], "")
}

// PeakRSS is the highest peak RSS of any member process so far, sampling
// the running ones now.
func (r *Rig) PeakRSS() int64 {
	var peak int64
	for _, m := range r.members {
		m.mu.Lock()
		p, prev := m.proc, m.peakRSS
		m.mu.Unlock()
		peak = max(peak, prev)
		if p != nil {
			p.SampleRSS()
			peak = max(peak, p.PeakRSS())
		}
	}
	return peak
}
