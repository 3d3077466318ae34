package cluster

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
)

// Status implements Service: this node's view of raft and the ledger, with
// each partition's lag against its high watermark.
func (n *Node) Status(ctx context.Context) (Status, error) {
	st := Status{NodeID: n.id, AppliedIndex: n.ledger.LastIndex()}
	st.LeaderID, _ = n.raft.Leader()
	st.LeaderAPIAddr = n.memberAPIAddr(st.LeaderID)
	if v, err := strconv.ParseUint(n.raft.Stats()["term"], 10, 64); err == nil {
		st.Term = v
	}
	suffrage := map[string]string{}
	if ms, err := n.raft.Members(); err == nil {
		for _, m := range ms {
			suffrage[m.ID] = string(m.Suffrage)
		}
	}
	owned := map[string]int{}
	var topics []string
	committed := map[commit.PartitionKey]int64{}
	for _, t := range n.ledger.Tables() {
		for topic, ps := range t.Committed {
			for p, o := range ps {
				k := commit.PartitionKey{Pipeline: t.Pipeline, Topic: topic, Partition: p}
				if have, ok := committed[k]; !ok || o < have {
					committed[k] = o
				}
			}
		}
		st.Tables = append(st.Tables, TableStatus{
			Table: t.Table, Pipeline: t.Pipeline, SnapshotID: t.SnapshotID,
			PendingSegments: t.PendingSegments, PendingRecords: t.PendingRecords,
		})
	}
	for _, p := range n.pipelines {
		topics = append(topics, p.Config().Topics...)
	}
	ends := n.ends.get(ctx, topics)
	for _, p := range n.pipelines {
		name := p.Config().Name
		asg := n.ledger.Assignment(name)
		keys := make([]commit.PartitionKey, 0, len(asg))
		for k := range asg {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b commit.PartitionKey) int {
			if c := compareStrings(a.Topic, b.Topic); c != 0 {
				return c
			}
			return int(a.Partition) - int(b.Partition)
		})
		for _, k := range keys {
			o := asg[k]
			ps := PartitionStatus{Pipeline: name, Topic: k.Topic, Partition: k.Partition, Owner: o.Owner, Epoch: o.Epoch,
				NextExpected: -1, Committed: -1, End: -1, Lag: -1}
			if v, ok := n.ledger.NextExpected(name, k.Topic, k.Partition); ok {
				ps.NextExpected = v
			}
			if v, ok := committed[k]; ok {
				ps.Committed = v
			}
			if v, ok := ends[topicPart{k.Topic, k.Partition}]; ok {
				ps.End = v
			}
			if ps.End >= 0 && ps.Committed >= 0 {
				ps.Lag = max(ps.End-ps.Committed, 0)
			}
			if o.Owner != "" {
				owned[o.Owner]++
			}
			st.Partitions = append(st.Partitions, ps)
		}
	}
	now := time.Now()
	for _, m := range n.ledger.Members() {
		st.Members = append(st.Members, MemberStatus{
			ID: m.ID, RaftAddr: m.RaftAddr, APIAddr: m.APIAddr, Suffrage: suffrage[m.ID],
			LastHeartbeat: m.LastHeartbeat.UTC(), Alive: now.Sub(m.LastHeartbeat) <= n.cfg.DeadAfter.D(),
			Partitions: owned[m.ID],
		})
	}
	return st, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type topicPart struct {
	topic     string
	partition int32
}

// endOffsets lists partitions' high watermarks through a lazily created
// Kafka client, caching the answer for a second.
type endOffsets struct {
	kafka ingest.KafkaConfig
	mu    sync.Mutex
	cl    *kgo.Client
	at    time.Time
	last  map[topicPart]int64
}

func (e *endOffsets) get(ctx context.Context, topics []string) map[topicPart]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if time.Since(e.at) < time.Second && e.last != nil {
		return e.last
	}
	if e.cl == nil {
		opts, err := ingest.ClientOpts(e.kafka)
		if err != nil {
			return nil
		}
		if e.cl, err = kgo.NewClient(opts...); err != nil {
			return nil
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	listed, err := kadm.NewClient(e.cl).ListEndOffsets(cctx, topics...)
	if err != nil {
		return e.last
	}
	out := map[topicPart]int64{}
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			out[topicPart{o.Topic, o.Partition}] = o.Offset
		}
	})
	e.last, e.at = out, time.Now()
	return out
}

func (e *endOffsets) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cl != nil {
		e.cl.Close()
		e.cl = nil
	}
}

// lagLoop, on the leader, publishes each partition's lag (high watermark
// minus the lowest committed offset over the pipeline's tables) and commits
// those offsets to the consumer group, for monitoring tools only: after
// every commit (kicked by the table writers, at most one pass at a time)
// and every 5 s, and once more when leadership ends.
func (n *Node) lagLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			n.publishLag(fctx)
			cancel()
			return
		case <-t.C:
		case <-n.lagKick:
		}
		n.publishLag(ctx)
	}
}

// kickLag asks lagLoop for a pass soon (after a commit).
func (n *Node) kickLag() {
	select {
	case n.lagKick <- struct{}{}:
	default:
	}
}

func (n *Node) publishLag(ctx context.Context) {
	st, err := n.Status(ctx)
	if err != nil {
		return
	}
	offs := kadm.Offsets{}
	lag := map[string]int64{}
	for _, p := range st.Partitions {
		if p.Lag >= 0 {
			lag[p.Pipeline] += p.Lag
			n.metrics().PartitionLag(p.Topic, p.Partition, p.Lag)
		}
		if p.Committed >= 0 {
			offs.Add(kadm.Offset{Topic: p.Topic, Partition: p.Partition, At: p.Committed, LeaderEpoch: -1})
		}
	}
	for _, p := range n.pipelines {
		p.NoteLag(lag[p.Name()])
	}
	group := n.opts.Kafka.Group
	if len(offs) == 0 || group == "" {
		return
	}
	n.ends.mu.Lock()
	cl := n.ends.cl
	n.ends.mu.Unlock()
	if cl == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if _, err := kadm.NewClient(cl).CommitOffsets(cctx, group, offs); err != nil {
		n.log.Debug("consumer group offset commit failed (monitoring only)", "group", group, "err", err)
	}
	cancel()
}
