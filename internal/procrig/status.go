package procrig

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/internal/clock"
	"github.com/floelake/floe/internal/node"
)

// httpClient reads the members' operations endpoints.
var httpClient = &http.Client{Timeout: 3 * time.Second}

// MemberStatus is GET /cluster/status of m: the cluster as m sees it.
func MemberStatus(ctx context.Context, m *Member) (cluster.Status, error) {
	st, err := node.FetchClusterStatus(ctx, httpClient, m.HTTPAddr())
	if err != nil {
		return st, fmt.Errorf("%s: %w", m.ID, err)
	}
	return st, nil
}

// Status is the freshest view of the live members (the highest applied
// ledger index: a member restarted a moment ago may still be replaying its
// log), preferring one that knows a leader.
func (r *Rig) Status(ctx context.Context) (cluster.Status, error) {
	var errs []error
	var best *cluster.Status
	for _, m := range r.Live() {
		st, err := MemberStatus(ctx, m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case best == nil,
			(st.LeaderID != "") != (best.LeaderID != "") && st.LeaderID != "",
			(st.LeaderID != "") == (best.LeaderID != "") && st.AppliedIndex > best.AppliedIndex:
			best = &st
		}
	}
	if best != nil {
		return *best, nil
	}
	if len(errs) == 0 {
		return cluster.Status{}, errors.New("no live member")
	}
	return cluster.Status{}, errors.Join(errs...)
}

// LeaderStatus is the status of the leader as seen by itself, when a live
// member names a live leader; ok is false otherwise.
func (r *Rig) LeaderStatus(ctx context.Context) (st cluster.Status, ok bool) {
	for _, m := range r.Live() {
		st, err := MemberStatus(ctx, m)
		if err != nil || st.LeaderID == "" {
			continue
		}
		if st.LeaderID == m.ID {
			return st, true
		}
		if l := r.Member(st.LeaderID); l != nil && l.Live() {
			if lst, err := MemberStatus(ctx, l); err == nil && lst.LeaderID == l.ID {
				return lst, true
			}
		}
	}
	return cluster.Status{}, false
}

// Leader returns the live member that Status names the leader.
func (r *Rig) Leader(ctx context.Context) (*Member, error) {
	st, err := r.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.LeaderID == "" {
		return nil, errors.New("no leader")
	}
	if l := r.Member(st.LeaderID); l != nil && l.Live() {
		return l, nil
	}
	return nil, fmt.Errorf("the leader %s is not a live member", st.LeaderID)
}

// Ready reports whether m's /readyz answers 200 (a member in touch with a
// leader), and what it answered.
func Ready(ctx context.Context, m *Member) (bool, string) { return Readyz(ctx, m.HTTPAddr()) }

// Readyz asks the floe process whose operations endpoint is at httpAddr
// whether it is ready: true on 200; the detail is the status and the
// reason /readyz gives (or why nothing answered).
func Readyz(ctx context.Context, httpAddr string) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/readyz", nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK, fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
}

// MetricValue reads one sample of m's /metrics ("name{labels}"); absent
// is 0.
func MetricValue(ctx context.Context, m *Member, sample string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.HTTPAddr()+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, sc.Err()
}

// WaitFor polls cond every interval until it holds; it fails when a member
// exits by itself (CheckAlive, before every poll), when ctx ends, or after
// timeout, with the state cond described last.
func (r *Rig) WaitFor(ctx context.Context, every, timeout time.Duration, what string, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := r.CheckAlive(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		ok, state := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s; last state: %s", timeout, what, state)
		}
		if err := clock.Sleep(ctx, every); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
	}
}

// EndOffsets lists every partition's end offset (the next offset to be
// written) of a topic.
func EndOffsets(ctx context.Context, broker, topic string) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	listed, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	var lerr error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			lerr = fmt.Errorf("end offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
			return
		}
		if o.Topic == topic {
			out[o.Partition] = o.Offset
		}
	})
	if lerr != nil {
		return nil, lerr
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("topic %q has no partitions", topic)
	}
	return out, nil
}

// Reached reports whether offs covers ends on every partition.
func Reached(offs, ends map[int32]int64) bool {
	for p, e := range ends {
		if e > 0 && offs[p] < e {
			return false
		}
	}
	return true
}
