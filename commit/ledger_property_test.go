package commit_test

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/commit"
)

// The model: the ledger's rules restated over plain data, written
// without looking at how the ledger stores things (no stored "end", no
// per-table index; everything is recomputed from the pending lists).

type tpk struct {
	topic string
	p     int32
}

func cmpTPK(a, b tpk) int { return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.p, b.p)) }

func keysOf(o commit.Offsets) []tpk {
	var out []tpk
	for t, ps := range o {
		for p := range ps {
			out = append(out, tpk{t, p})
		}
	}
	slices.SortFunc(out, cmpTPK)
	return out
}

func get(o commit.Offsets, k tpk) (int64, bool) { v, ok := o[k.topic][k.p]; return v, ok }

func set(o commit.Offsets, k tpk, v int64) {
	if o[k.topic] == nil {
		o[k.topic] = map[int32]int64{}
	}
	o[k.topic][k.p] = v
}

func copyOffsets(o commit.Offsets) commit.Offsets {
	c := commit.Offsets{}
	for _, k := range keysOf(o) {
		v, _ := get(o, k)
		set(c, k, v)
	}
	return c
}

// covered: every offset of to is at or below o's.
func covered(o, to commit.Offsets) bool {
	for _, k := range keysOf(to) {
		v, _ := get(to, k)
		if have, ok := get(o, k); !ok || have < v {
			return false
		}
	}
	return true
}

type mEntry struct {
	id       uint64
	owner    string
	from, to commit.Offsets
}

type mTable struct {
	pipeline  string
	committed commit.Offsets
	snapshot  int64
	pending   []mEntry
}

type mPart struct {
	owner string
	epoch uint64
	next  int64
	known bool
}

type model struct {
	members map[string]commit.Member
	parts   map[commit.PartitionKey]mPart
	tables  map[string]*mTable
}

func newModel() *model {
	return &model{members: map[string]commit.Member{}, parts: map[commit.PartitionKey]mPart{}, tables: map[string]*mTable{}}
}

// end is where a table's accepted offsets for k end: the highest of its
// committed offset and its pending entries' ends.
func (m *model) end(table string, k tpk) (int64, bool) {
	t := m.tables[table]
	if t == nil {
		return 0, false
	}
	v, ok := get(t.committed, k)
	for _, e := range t.pending {
		if to, has := get(e.to, k); has && (!ok || to > v) {
			v, ok = to, true
		}
	}
	return v, ok
}

func (m *model) addMember(c commit.AddMember) commit.ApplyResult {
	at := c.At.UTC()
	mem, ok := m.members[c.ID]
	if !ok {
		mem = commit.Member{ID: c.ID, JoinedAt: at, LastHeartbeat: at}
	}
	mem.RaftAddr, mem.APIAddr = c.RaftAddr, c.APIAddr
	if at.After(mem.LastHeartbeat) {
		mem.LastHeartbeat = at
	}
	m.members[c.ID] = mem
	return commit.ApplyResult{Type: commit.CmdAddMember}
}

func (m *model) removeMember(id string) commit.ApplyResult {
	res := commit.ApplyResult{Type: commit.CmdRemoveMember}
	if _, ok := m.members[id]; !ok {
		res.Err = commit.ErrUnknownMember
		return res
	}
	delete(m.members, id)
	res.Epochs = map[commit.PartitionKey]uint64{}
	for k, p := range m.parts {
		if p.owner == id {
			p.owner = ""
			p.epoch++
			m.parts[k] = p
			res.Epochs[k] = p.epoch
		}
	}
	return res
}

func (m *model) heartbeat(id string, at time.Time) commit.ApplyResult {
	mem, ok := m.members[id]
	if !ok {
		return commit.ApplyResult{Type: commit.CmdHeartbeat, Err: commit.ErrUnknownMember}
	}
	if at.UTC().After(mem.LastHeartbeat) {
		mem.LastHeartbeat = at.UTC()
		m.members[id] = mem
	}
	return commit.ApplyResult{Type: commit.CmdHeartbeat}
}

func (m *model) assign(owners map[commit.PartitionKey]string) commit.ApplyResult {
	res := commit.ApplyResult{Type: commit.CmdAssign}
	for _, o := range owners {
		if _, ok := m.members[o]; o != "" && !ok {
			res.Err = commit.ErrUnknownMember
			return res
		}
	}
	res.Epochs = map[commit.PartitionKey]uint64{}
	for k, o := range owners {
		p := m.parts[k]
		if p.owner != o {
			p.owner = o
			p.epoch++
			m.parts[k] = p
		}
		res.Epochs[k] = p.epoch
	}
	return res
}

func (m *model) propose(index uint64, c commit.ProposeSegment) commit.ApplyResult {
	res := commit.ApplyResult{Type: commit.CmdProposeSegment}
	type span struct {
		from, to int64
		table    string
	}
	spans := map[tpk]span{}
	tables := slices.SortedFunc(slices.Values(c.Tables), func(a, b commit.SegmentEntry) int { return strings.Compare(a.Table, b.Table) })
	for _, e := range tables {
		for _, k := range keysOf(e.From) {
			from, _ := get(e.From, k)
			to, _ := get(e.To, k)
			if s, ok := spans[k]; !ok || from < s.from {
				spans[k] = span{from, to, e.Table}
			}
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(spans), cmpTPK) {
		p := m.parts[commit.PartitionKey{Pipeline: c.Pipeline, Topic: k.topic, Partition: k.p}]
		epoch := c.Epochs[k.topic][k.p]
		switch s := spans[k]; {
		case epoch != p.epoch:
			res.Err = &commit.StaleEpochError{Pipeline: c.Pipeline, Topic: k.topic, Partition: k.p, Have: epoch, Want: p.epoch}
		case p.owner != c.Owner:
			res.Err = &commit.NotOwnerError{Pipeline: c.Pipeline, Topic: k.topic, Partition: k.p, Owner: p.owner, Proposer: c.Owner}
		case p.known && s.from != p.next:
			res.Err = &commit.OffsetGapError{Table: s.table, Topic: k.topic, Partition: k.p, Want: p.next, Got: s.from}
		}
		if res.Err != nil {
			return res
		}
	}
	for _, e := range tables {
		if t := m.tables[e.Table]; t != nil && t.pipeline != c.Pipeline {
			res.Err = commit.ErrPipelineMismatch
			return res
		}
		for _, k := range keysOf(e.From) {
			from, _ := get(e.From, k)
			if end, ok := m.end(e.Table, k); ok && end != from {
				res.Err = &commit.OffsetGapError{Table: e.Table, Topic: k.topic, Partition: k.p, Want: end, Got: from}
				return res
			}
		}
	}
	for k, s := range spans {
		key := commit.PartitionKey{Pipeline: c.Pipeline, Topic: k.topic, Partition: k.p}
		p := m.parts[key]
		p.next, p.known = s.to, true
		m.parts[key] = p
	}
	for _, e := range tables {
		t := m.tables[e.Table]
		if t == nil {
			t = &mTable{pipeline: c.Pipeline, committed: commit.Offsets{}}
			m.tables[e.Table] = t
		}
		t.pending = append(t.pending, mEntry{id: index, owner: c.Owner, from: copyOffsets(e.From), to: copyOffsets(e.To)})
	}
	res.SegmentID = index
	return res
}

// settle drops t's entries covered by committed and reports the ones it
// reaches into without covering.
func settle(t *mTable) (dropped, partial []uint64) {
	var keep []mEntry
	for _, e := range t.pending {
		if covered(t.committed, e.to) {
			dropped = append(dropped, e.id)
			continue
		}
		for _, k := range keysOf(e.from) {
			from, _ := get(e.from, k)
			if c, ok := get(t.committed, k); ok && c > from {
				partial = append(partial, e.id)
				break
			}
		}
		keep = append(keep, e)
	}
	t.pending = keep
	return dropped, partial
}

func (m *model) commit(c commit.CommitSegments) commit.ApplyResult {
	res := commit.ApplyResult{Type: commit.CmdCommitSegments}
	t := m.tables[c.Table]
	named := map[uint64]mEntry{}
	for _, id := range c.Segments {
		if t != nil {
			for _, e := range t.pending {
				if e.id == id {
					named[id] = e
				}
			}
		}
		if _, ok := named[id]; !ok {
			res.Err = commit.ErrUnknownSegment
			return res
		}
	}
	for _, k := range keysOf(c.Offsets) {
		got, _ := get(c.Offsets, k)
		if have, ok := get(t.committed, k); ok && got < have {
			res.Err = &commit.OffsetRegressionError{Table: c.Table, Topic: k.topic, Partition: k.p, Have: have, Got: got}
			return res
		}
	}
	next := &mTable{pipeline: t.pipeline, committed: copyOffsets(t.committed), snapshot: c.SnapshotID, pending: t.pending}
	for _, k := range keysOf(c.Offsets) {
		v, _ := get(c.Offsets, k)
		set(next.committed, k, v)
	}
	for _, e := range named {
		if !covered(next.committed, e.to) {
			res.Err = commit.ErrNotCovered
			return res
		}
	}
	dropped, partial := settle(next)
	if len(partial) > 0 {
		res.Err = commit.ErrPartialCommit
		return res
	}
	m.tables[c.Table] = next
	res.Dropped = dropped
	return res
}

func (m *model) reconcile(c commit.Reconcile) commit.ApplyResult {
	res := commit.ApplyResult{Type: commit.CmdReconcile}
	for _, r := range c.Tables {
		if t := m.tables[r.Table]; t != nil && t.pipeline != r.Pipeline {
			res.Err = commit.ErrPipelineMismatch
			return res
		}
	}
	pipelines := map[string]bool{}
	for _, r := range slices.SortedFunc(slices.Values(c.Tables), func(a, b commit.ReconciledTable) int { return strings.Compare(a.Table, b.Table) }) {
		pipelines[r.Pipeline] = true
		t := m.tables[r.Table]
		if t == nil {
			t = &mTable{pipeline: r.Pipeline, committed: commit.Offsets{}}
			m.tables[r.Table] = t
		}
		newer := true
		for _, k := range keysOf(r.Offsets) {
			got, _ := get(r.Offsets, k)
			if have, ok := get(t.committed, k); ok && got < have {
				res.Behind = append(res.Behind, commit.OffsetRegressionError{Table: r.Table, Topic: k.topic, Partition: k.p, Have: have, Got: got})
				newer = false
			} else {
				set(t.committed, k, got)
			}
		}
		if newer && covered(r.Offsets, t.committed) {
			t.snapshot = r.SnapshotID
		}
		dropped, partial := settle(t)
		res.Dropped = append(res.Dropped, dropped...)
		res.Conflicts = append(res.Conflicts, partial...)
	}
	slices.Sort(res.Dropped)
	res.Dropped = slices.Compact(res.Dropped)
	slices.Sort(res.Conflicts)
	res.Conflicts = slices.Compact(res.Conflicts)
	low := map[commit.PartitionKey]int64{}
	for name, t := range m.tables {
		if !pipelines[t.pipeline] {
			continue
		}
		ks := keysOf(t.committed)
		for _, e := range t.pending {
			ks = append(ks, keysOf(e.to)...)
		}
		for _, k := range ks {
			end, _ := m.end(name, k)
			key := commit.PartitionKey{Pipeline: t.pipeline, Topic: k.topic, Partition: k.p}
			if l, ok := low[key]; !ok || end < l {
				low[key] = end
			}
		}
	}
	for key, l := range low {
		if p := m.parts[key]; !p.known || l > p.next {
			p.next, p.known = l, true
			m.parts[key] = p
		}
	}
	return res
}

// adopt is AdoptTable: the table's offsets exactly, every pending entry of
// the pipeline dropped, and every partition of the pipeline read again from
// the lowest committed offset over its tables (epoch + 1 where that moved).
func (m *model) adopt(c commit.AdoptTable) commit.ApplyResult {
	res := commit.ApplyResult{Type: commit.CmdAdoptTable}
	t := m.tables[c.Table]
	if t != nil && t.pipeline != c.Pipeline {
		res.Err = commit.ErrPipelineMismatch
		return res
	}
	if t == nil {
		t = &mTable{pipeline: c.Pipeline, committed: commit.Offsets{}}
		m.tables[c.Table] = t
	}
	for _, k := range keysOf(c.Offsets) {
		got, _ := get(c.Offsets, k)
		if have, ok := get(t.committed, k); ok && got < have {
			res.Behind = append(res.Behind, commit.OffsetRegressionError{Table: c.Table, Topic: k.topic, Partition: k.p, Have: have, Got: got})
		}
		set(t.committed, k, got)
	}
	t.snapshot = c.SnapshotID
	low := map[commit.PartitionKey]int64{}
	for _, tt := range m.tables {
		if tt.pipeline != c.Pipeline {
			continue
		}
		for _, e := range tt.pending {
			res.Dropped = append(res.Dropped, e.id)
		}
		tt.pending = nil
		for _, k := range keysOf(tt.committed) {
			v, _ := get(tt.committed, k)
			key := commit.PartitionKey{Pipeline: c.Pipeline, Topic: k.topic, Partition: k.p}
			if l, ok := low[key]; !ok || v < l {
				low[key] = v
			}
		}
	}
	slices.Sort(res.Dropped)
	res.Dropped = slices.Compact(res.Dropped)
	for key, l := range low {
		p := m.parts[key]
		if p.known && p.next == l {
			continue
		}
		if p.known {
			p.epoch++
		}
		p.next, p.known = l, true
		m.parts[key] = p
	}
	return res
}

// adopt draws an AdoptTable: a table rolled back by someone else (some
// offsets lower than the ledger's), or written by another writer (higher).
func (g *generator) adopt() ([]byte, string) {
	pipeline := g.pipeline()
	name := g.pick(propPipelines[pipeline])
	t := g.m.tables[name]
	if t == nil {
		return nil, ""
	}
	off := copyOffsets(t.committed)
	what := "adopt a rolled-back table"
	for _, k := range keysOf(off) {
		v, _ := get(off, k)
		switch g.r.IntN(3) {
		case 0:
			set(off, k, max(0, v-int64(g.r.IntN(20))))
		case 1:
			set(off, k, v+int64(g.r.IntN(20)))
			what = "adopt a table another writer moved"
		}
	}
	if g.r.IntN(30) == 0 {
		pipeline = "other"
		what = "adopt another pipeline's table"
	}
	return must(commit.EncodeAdoptTable(commit.AdoptTable{Table: name, Pipeline: pipeline, SnapshotID: g.r.Int64(), Offsets: off})), what
}

// The universe the generator draws from: p1 reads t1 (3 partitions) and
// t2 (2) into A, and t1 also into B (fan-out); p2 reads t3 (2) into C.
var (
	propPipelines = map[string][]string{"p1": {"A", "B"}, "p2": {"C"}}
	propFeeds     = map[string][]string{"A": {"t1", "t2"}, "B": {"t1"}, "C": {"t3"}}
	propTopics    = map[string]int32{"t1": 3, "t2": 2, "t3": 2}
	propPool      = []string{"n1", "n2", "n3", "n4", "n5"}
)

func propPartitions(pipeline string) []commit.PartitionKey {
	seen := map[string]bool{}
	var out []commit.PartitionKey
	for _, table := range propPipelines[pipeline] {
		for _, topic := range propFeeds[table] {
			if seen[topic] {
				continue
			}
			seen[topic] = true
			for p := range propTopics[topic] {
				out = append(out, pk(pipeline, topic, p))
			}
		}
	}
	slices.SortFunc(out, func(a, b commit.PartitionKey) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

type generator struct {
	r        *rand.Rand
	m        *model
	clock    time.Time
	accepted [][]byte // encoded proposals that were accepted, for duplicates
	// history of (owner, epoch) each partition has had, for zombies
	history map[commit.PartitionKey][]commit.Ownership
}

func (g *generator) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func (g *generator) pipeline() string {
	if g.r.IntN(3) == 0 {
		return "p2"
	}
	return "p1"
}

func (g *generator) members() []string { return slices.Sorted(maps.Keys(g.m.members)) }

// next returns an encoded command and a short description.
func (g *generator) next() ([]byte, string) {
	for {
		var b []byte
		var what string
		switch n := g.r.IntN(100); {
		case n < 45:
			b, what = g.propose()
		case n < 63:
			b, what = g.commit()
		case n < 68:
			b, what = g.reconcile()
		case n < 70:
			b, what = g.adopt()
		case n < 85:
			b, what = g.assign()
		default:
			b, what = g.member()
		}
		if b != nil {
			return b, what
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func (g *generator) member() ([]byte, string) {
	id := g.pick(propPool)
	g.clock = g.clock.Add(time.Duration(g.r.IntN(10)) * time.Second)
	switch g.r.IntN(4) {
	case 0:
		return must(commit.EncodeRemoveMember(commit.RemoveMember{ID: id})), "remove " + id
	case 1:
		at := g.clock.Add(-time.Duration(g.r.IntN(20)) * time.Second)
		return must(commit.EncodeHeartbeat(commit.Heartbeat{ID: id, At: at})), "heartbeat " + id
	default:
		return must(commit.EncodeAddMember(commit.AddMember{ID: id, RaftAddr: fmt.Sprintf("%s:%d", id, g.r.IntN(3)), APIAddr: id + ":80", At: g.clock})), "add " + id
	}
}

func (g *generator) assign() ([]byte, string) {
	pipeline := g.pipeline()
	parts := propPartitions(pipeline)
	current := map[commit.PartitionKey]string{}
	for _, k := range parts {
		current[k] = g.m.parts[k].owner
	}
	live := g.members()
	switch n := g.r.IntN(10); {
	case n < 6:
		return must(commit.EncodeAssign(commit.Assign{Owners: commit.Balance(live, parts, current)})), "balance " + pipeline
	case n < 8:
		// Some members are considered dead.
		live = slices.DeleteFunc(live, func(string) bool { return g.r.IntN(3) == 0 })
		return must(commit.EncodeAssign(commit.Assign{Owners: commit.Balance(live, parts, current)})), "balance without the dead " + pipeline
	default:
		owners := map[commit.PartitionKey]string{}
		for range 1 + g.r.IntN(3) {
			owners[parts[g.r.IntN(len(parts))]] = g.pick(append([]string{"", "ghost"}, propPool...))
		}
		return must(commit.EncodeAssign(commit.Assign{Owners: owners})), "assign at random"
	}
}

// propose builds a proposal that should be accepted, then breaks it one
// way or another a third of the time.
func (g *generator) propose() ([]byte, string) {
	if len(g.accepted) > 0 && g.r.IntN(20) == 0 {
		return g.accepted[g.r.IntN(len(g.accepted))], "duplicate"
	}
	pipeline := g.pipeline()
	byOwner := map[string][]commit.PartitionKey{}
	for _, k := range propPartitions(pipeline) {
		if o := g.m.parts[k].owner; o != "" {
			byOwner[o] = append(byOwner[o], k)
		}
	}
	if len(byOwner) == 0 {
		return nil, ""
	}
	owner := g.pick(slices.Sorted(maps.Keys(byOwner)))
	var parts []commit.PartitionKey
	for _, k := range byOwner[owner] {
		if g.r.IntN(5) < 3 {
			parts = append(parts, k)
		}
	}
	if len(parts) == 0 {
		parts = byOwner[owner][:1]
	}
	c := commit.ProposeSegment{Pipeline: pipeline, Owner: owner, Epochs: commit.Epochs{}}
	entries := map[string]commit.SegmentEntry{}
	for _, k := range parts {
		p := g.m.parts[k]
		from := int64(g.r.IntN(3) * 1000)
		if p.known {
			from = p.next
		}
		to := from + 1 + int64(g.r.IntN(20))
		c.Epochs.Set(k.Topic, k.Partition, p.epoch)
		for _, table := range propPipelines[pipeline] {
			if !slices.Contains(propFeeds[table], k.Topic) {
				continue
			}
			f := from
			if end, ok := g.m.end(table, tpk{k.Topic, k.Partition}); ok && end > f {
				f = end // the table is ahead
			}
			if f >= to {
				continue
			}
			e, ok := entries[table]
			if !ok {
				e = commit.SegmentEntry{Table: table, From: commit.Offsets{}, To: commit.Offsets{}, Files: []byte{byte(g.r.IntN(256))}}
			}
			e.From.Set(k.Topic, k.Partition, f)
			e.To.Set(k.Topic, k.Partition, to)
			e.Records += to - f
			entries[table] = e
		}
	}
	for _, table := range slices.Sorted(maps.Keys(entries)) {
		c.Tables = append(c.Tables, entries[table])
	}
	// Drop epochs of partitions no table took (every table ahead).
	for t, ps := range c.Epochs {
		for p := range ps {
			if !slices.ContainsFunc(c.Tables, func(e commit.SegmentEntry) bool { _, ok := e.From.Get(t, p); return ok }) {
				delete(ps, p)
			}
		}
	}
	if len(c.Tables) == 0 {
		return nil, ""
	}
	what := "propose"
	e := &c.Tables[g.r.IntN(len(c.Tables))]
	k := keysOf(e.From)[g.r.IntN(e.From.Len())]
	switch g.r.IntN(12) {
	case 0:
		epoch := c.Epochs[k.topic][k.p]
		if epoch > 0 && g.r.IntN(2) == 0 {
			epoch--
		} else {
			epoch++
		}
		c.Epochs.Set(k.topic, k.p, epoch)
		what = "propose with a wrong epoch"
	case 1:
		c.Owner = g.pick(append([]string{"ghost"}, propPool...))
		what = "propose as someone else"
	case 2, 3:
		// Move the whole partition's start: a gap or an overlap.
		d := int64(1 + g.r.IntN(5))
		if g.r.IntN(2) == 0 {
			d = -d
		}
		for i := range c.Tables {
			if f, ok := get(c.Tables[i].From, k); ok {
				to, _ := get(c.Tables[i].To, k)
				set(c.Tables[i].From, k, max(f+d, 0))
				set(c.Tables[i].To, k, to+max(d, 0))
			}
		}
		what = fmt.Sprintf("propose shifted by %d", d)
	case 4:
		// One table skips or repeats a record.
		f, _ := get(e.From, k)
		to, _ := get(e.To, k)
		if f+1 < to {
			set(e.From, k, f+1)
		} else if f > 0 {
			set(e.From, k, f-1)
		}
		what = "propose with a gap in one table"
	case 5:
		// A zombie: a previous owner, at its epoch, with the right offsets.
		key := commit.PartitionKey{Pipeline: pipeline, Topic: k.topic, Partition: k.p}
		if h := g.history[key]; len(h) > 1 {
			old := h[g.r.IntN(len(h)-1)]
			if old.Owner != "" {
				c.Owner = old.Owner
				c.Epochs.Set(k.topic, k.p, old.Epoch)
				what = "zombie proposal"
			}
		}
	}
	return must(commit.EncodeProposeSegment(c)), what
}

func (g *generator) commit() ([]byte, string) {
	var names []string
	for _, n := range slices.Sorted(maps.Keys(g.m.tables)) {
		if len(g.m.tables[n].pending) > 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return must(commit.EncodeCommitSegments(commit.CommitSegments{Table: "A", Offsets: commit.Offsets{}, Segments: []uint64{12345}})), "commit nothing"
	}
	name := g.pick(names)
	t := g.m.tables[name]
	k := 1 + g.r.IntN(len(t.pending))
	off := copyOffsets(t.committed)
	ids := []uint64{t.pending[k-1].id}
	for i, e := range t.pending[:k] {
		for _, key := range keysOf(e.to) {
			v, _ := get(e.to, key)
			set(off, key, v)
		}
		if i < k-1 && g.r.IntN(2) == 0 {
			ids = append(ids, e.id)
		}
	}
	what := "commit"
	switch g.r.IntN(14) {
	case 0:
		ids = append(ids, 1_000_000+uint64(g.r.IntN(1000))) // above every index
		what = "commit an unknown segment"
	case 1:
		if ks := keysOf(t.committed); len(ks) > 0 {
			key := ks[g.r.IntN(len(ks))]
			if v, _ := get(t.committed, key); v > 0 {
				set(off, key, v-1-int64(g.r.IntN(int(min(v, 5)))))
				what = "commit backwards"
			}
		}
	case 2:
		if k < len(t.pending) {
			ids = append(ids, t.pending[k].id)
			what = "commit more than the offsets cover"
		}
	case 3:
		if k < len(t.pending) {
			e := t.pending[k]
			key := keysOf(e.from)[0]
			v, _ := get(e.from, key)
			set(off, key, v+1)
			what = "commit part of a segment"
		}
	}
	g.r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return must(commit.EncodeCommitSegments(commit.CommitSegments{Table: name, SnapshotID: g.r.Int64(), Offsets: off, Segments: ids})), what
}

func (g *generator) reconcile() ([]byte, string) {
	pipeline := g.pipeline()
	var c commit.Reconcile
	what := "reconcile"
	for _, name := range propPipelines[pipeline] {
		if g.r.IntN(10) < 3 {
			continue
		}
		off := commit.Offsets{}
		if t := g.m.tables[name]; t != nil {
			off = copyOffsets(t.committed)
			if ks := keysOf(off); len(ks) > 0 && g.r.IntN(7) == 0 {
				// A summary older than what the ledger knows: one
				// offset lower, nothing higher.
				key := ks[g.r.IntN(len(ks))]
				if v, _ := get(off, key); v > 0 {
					set(off, key, v-1-int64(g.r.IntN(int(min(v, 5)))))
					what = "reconcile with an older summary"
					goto add
				}
			}
			// The old leader committed the first k pending segments.
			k := g.r.IntN(len(t.pending) + 1)
			for _, e := range t.pending[:k] {
				for _, key := range keysOf(e.to) {
					v, _ := get(e.to, key)
					set(off, key, v)
				}
			}
			if k < len(t.pending) {
				goto add
			}
		}
		if g.r.IntN(8) == 0 {
			// Iceberg is ahead of the ledger (a fresh cluster, or a
			// commit the ledger never heard of).
			topic := g.pick(propFeeds[name])
			key := tpk{topic, int32(g.r.IntN(int(propTopics[topic])))}
			end, _ := g.m.end(name, key)
			set(off, key, end+1+int64(g.r.IntN(30)))
			what = "reconcile ahead of the ledger"
		}
	add:
		c.Tables = append(c.Tables, commit.ReconciledTable{Table: name, Pipeline: pipeline, SnapshotID: g.r.Int64(), Offsets: off})
	}
	if len(c.Tables) == 0 {
		return nil, ""
	}
	if g.r.IntN(30) == 0 {
		c.Tables[0].Pipeline = "other"
		what = "reconcile another pipeline's table"
	}
	return must(commit.EncodeReconcile(c)), what
}

type jsonRaw = json.RawMessage

func mustUnmarshal(b []byte, v any) {
	if err := json.Unmarshal(b, v); err != nil {
		panic(err)
	}
}

var ledgerSentinels = []error{commit.ErrBadCommand, commit.ErrStaleIndex, commit.ErrUnknownMember, commit.ErrUnknownSegment,
	commit.ErrNotCovered, commit.ErrPartialCommit, commit.ErrPipelineMismatch}

// outcome names a result for the coverage count.
func outcome(err error) string {
	if err == nil {
		return "applied"
	}
	for _, s := range ledgerSentinels {
		if errors.Is(err, s) {
			return "sentinel " + s.Error()
		}
	}
	return fmt.Sprintf("%T", err)
}

var lastIndexField = regexp.MustCompile(`^\{"version":1,"last_index":[0-9]+,`)

// quickState is ledgerState without a JSON round trip.
func quickState(t *testing.T, l *commit.Ledger) string {
	t.Helper()
	img := persist(t, l)
	loc := lastIndexField.FindIndex(img)
	require.NotNil(t, loc, "image starts with its version and index")
	return string(img[loc[1]:])
}

// apply decodes the command (the generator's own encoding) and
// applies it to the model.
func (m *model) apply(index uint64, b []byte) commit.ApplyResult {
	var env struct {
		Type    commit.CommandType `json:"type"`
		Payload jsonRaw            `json:"payload"`
	}
	mustUnmarshal(b, &env)
	switch env.Type {
	case commit.CmdAddMember:
		var c commit.AddMember
		mustUnmarshal(env.Payload, &c)
		return m.addMember(c)
	case commit.CmdRemoveMember:
		var c commit.RemoveMember
		mustUnmarshal(env.Payload, &c)
		return m.removeMember(c.ID)
	case commit.CmdHeartbeat:
		var c commit.Heartbeat
		mustUnmarshal(env.Payload, &c)
		return m.heartbeat(c.ID, c.At)
	case commit.CmdAssign:
		var c struct{ Owners []commit.PartitionOwner }
		mustUnmarshal(env.Payload, &c)
		owners := map[commit.PartitionKey]string{}
		for _, o := range c.Owners {
			owners[o.PartitionKey] = o.Owner
		}
		return m.assign(owners)
	case commit.CmdProposeSegment:
		var c commit.ProposeSegment
		mustUnmarshal(env.Payload, &c)
		return m.propose(index, c)
	case commit.CmdCommitSegments:
		var c commit.CommitSegments
		mustUnmarshal(env.Payload, &c)
		return m.commit(c)
	case commit.CmdReconcile:
		var c commit.Reconcile
		mustUnmarshal(env.Payload, &c)
		return m.reconcile(c)
	case commit.CmdAdoptTable:
		var c commit.AdoptTable
		mustUnmarshal(env.Payload, &c)
		return m.adopt(c)
	}
	panic("unknown command " + env.Type)
}

// observation is everything the queries show, for the monotonicity checks.
type observation struct {
	assignment map[commit.PartitionKey]commit.Ownership
	next       map[commit.PartitionKey]int64
	committed  map[string]commit.Offsets
	tables     map[string]commit.TableCommit
	pending    map[string][]commit.PendingSegment
}

func observe(l *commit.Ledger) observation {
	o := observation{assignment: map[commit.PartitionKey]commit.Ownership{}, next: map[commit.PartitionKey]int64{},
		committed: map[string]commit.Offsets{}, tables: map[string]commit.TableCommit{}, pending: map[string][]commit.PendingSegment{}}
	for pipeline, tables := range propPipelines {
		maps.Copy(o.assignment, l.Assignment(pipeline))
		for _, k := range propPartitions(pipeline) {
			if n, ok := l.NextExpected(k.Pipeline, k.Topic, k.Partition); ok {
				o.next[k] = n
			}
		}
		for _, t := range tables {
			if c, ok := l.Committed(t); ok {
				o.committed[t] = c.Offsets
				o.tables[t] = c
			}
			o.pending[t] = l.Pending(t)
		}
	}
	return o
}

// end is where a table's accepted offsets end, from what the queries show.
func (o observation) end(table string, k tpk) (int64, bool) {
	v, ok := get(o.committed[table], k)
	for _, p := range o.pending[table] {
		if to, has := get(p.To, k); has {
			v, ok = max(v, to), true
		}
	}
	return v, ok
}

// checkInvariants compares two consecutive observations; accepted is the
// proposal accepted in between, if any.
func checkInvariants(t *testing.T, before, after observation, accepted *commit.ProposeSegment, adopted bool, hw map[string]int64) {
	t.Helper()
	for k, a := range after.assignment {
		b := before.assignment[k]
		bump := uint64(0)
		if a.Owner != b.Owner || (adopted && after.next[k] != before.next[k]) {
			bump = 1
		}
		require.Equal(t, b.Epoch+bump, a.Epoch, "%v: epochs move by one exactly when the owner changes (%q → %q) or an adoption moves the partition", k, b.Owner, a.Owner)
	}
	if adopted {
		// AdoptTable may move offsets back: what the table no longer
		// holds is accepted again, from its committed offsets on.
		for table, off := range after.committed {
			for _, k := range keysOf(off) {
				v, _ := get(off, k)
				hw[fmt.Sprintf("%s/%s/%d", table, k.topic, k.p)] = v
			}
		}
		for key, n := range after.next {
			hw[key.String()] = n
		}
		before = observation{}
	}
	for k, n := range before.next {
		require.GreaterOrEqual(t, after.next[k], n, "%v: next expected offset only grows", k)
	}
	for table, off := range before.committed {
		for _, k := range keysOf(off) {
			was, _ := get(off, k)
			now, ok := get(after.committed[table], k)
			require.True(t, ok && now >= was, "%s %v: committed offsets only grow (%d → %d)", table, k, was, now)
		}
	}
	for table, ps := range after.pending {
		// Per partition, pending entries are contiguous and start at
		// the committed offset.
		ends := copyOffsets(after.committed[table])
		for i, p := range ps {
			if i > 0 {
				require.Greater(t, p.ID, ps[i-1].ID)
			}
			for _, k := range keysOf(p.From) {
				from, _ := get(p.From, k)
				to, _ := get(p.To, k)
				require.Less(t, from, to)
				if end, ok := get(ends, k); ok {
					require.Equal(t, end, from, "%s %v: pending entry %d is not contiguous", table, k, p.ID)
				}
				set(ends, k, to)
				n, ok := after.next[commit.PartitionKey{Pipeline: p.Pipeline, Topic: k.topic, Partition: k.p}]
				require.True(t, ok && to <= n, "%s %v: pending past the next expected offset", table, k)
			}
		}
	}
	if accepted == nil {
		return
	}
	// No gap and no offset twice: a segment starts exactly at the next
	// expected offset (and each entry where its table ended), and above
	// everything accepted before.
	lowest := map[tpk]int64{}
	for _, e := range accepted.Tables {
		for _, k := range keysOf(e.From) {
			from, _ := get(e.From, k)
			to, _ := get(e.To, k)
			if end, ok := before.end(e.Table, k); ok {
				require.Equal(t, end, from, "%s %v: accepted entry does not start where the table ended", e.Table, k)
			}
			hk := fmt.Sprintf("%s/%s/%d", e.Table, k.topic, k.p)
			require.GreaterOrEqual(t, from, hw[hk], "%s: offset accepted twice", hk)
			hw[hk] = to
			if l, ok := lowest[k]; !ok || from < l {
				lowest[k] = from
			}
		}
	}
	for k, from := range lowest {
		key := commit.PartitionKey{Pipeline: accepted.Pipeline, Topic: k.topic, Partition: k.p}
		if n, ok := before.next[key]; ok {
			require.Equal(t, n, from, "%v: accepted segment does not start at the next expected offset", key)
		}
		hk := key.String()
		require.GreaterOrEqual(t, from, hw[hk], "%v: offset accepted twice", key)
		hw[hk] = after.next[key]
	}
}

// checkModel compares the ledger's queries (some of them observed in o)
// with the model.
func checkModel(t *testing.T, l *commit.Ledger, o observation, m *model) {
	t.Helper()
	wantMembers := []commit.Member{}
	for _, id := range slices.Sorted(maps.Keys(m.members)) {
		wantMembers = append(wantMembers, m.members[id])
	}
	require.Equal(t, wantMembers, append([]commit.Member{}, l.Members()...))
	for pipeline := range propPipelines {
		want := map[commit.PartitionKey]commit.Ownership{}
		for k, p := range m.parts {
			if k.Pipeline == pipeline {
				want[k] = commit.Ownership{Owner: p.owner, Epoch: p.epoch}
			}
		}
		for k, a := range o.assignment {
			if k.Pipeline == pipeline {
				require.Equal(t, want[k], a, "%v", k)
			}
		}
		require.Len(t, l.Assignment(pipeline), len(want))
		for _, k := range propPartitions(pipeline) {
			n, ok := o.next[k]
			p := m.parts[k]
			require.Equal(t, p.known, ok, "%v", k)
			require.Equal(t, p.next, n, "%v", k)
		}
	}
	for _, name := range []string{"A", "B", "C"} {
		mt := m.tables[name]
		c, ok := o.tables[name]
		require.Equal(t, mt != nil, ok, name)
		if mt == nil {
			require.Empty(t, o.pending[name])
			continue
		}
		require.Equal(t, commit.TableCommit{Pipeline: mt.pipeline, Offsets: mt.committed, SnapshotID: mt.snapshot}, c, name)
		got := o.pending[name]
		require.Len(t, got, len(mt.pending), name)
		for i, e := range mt.pending {
			require.Equal(t, e.id, got[i].ID)
			require.Equal(t, e.owner, got[i].Owner)
			require.Equal(t, e.from, got[i].From)
			require.Equal(t, e.to, got[i].To)
		}
	}
}

func requireSameResult(t *testing.T, want, got commit.ApplyResult, what string) {
	t.Helper()
	require.Equal(t, want.Type, got.Type, what)
	if want.Err == nil {
		require.NoError(t, got.Err, what)
	} else {
		requireLedgerErr(t, want.Err, got.Err)
	}
	require.Equal(t, want.SegmentID, got.SegmentID, what)
	if len(want.Epochs) > 0 || len(got.Epochs) > 0 {
		require.Equal(t, want.Epochs, got.Epochs, what)
	}
	require.Equal(t, len(want.Dropped), len(got.Dropped), what)
	if len(want.Dropped) > 0 {
		require.Equal(t, want.Dropped, got.Dropped, what)
	}
	if len(want.Conflicts) > 0 || len(got.Conflicts) > 0 {
		require.Equal(t, want.Conflicts, got.Conflicts, what)
	}
	if len(want.Behind) > 0 || len(got.Behind) > 0 {
		require.Equal(t, want.Behind, got.Behind, what)
	}
}

// TestLedgerProperty drives the ledger with random logs — assignments
// (balanced, with dead members, at random), proposals (good, stale,
// foreign, shifted into gaps and overlaps, duplicated, from zombies),
// commit reports (good, unknown, backwards, not covering, partial),
// reconciles (behind, ahead, partial) and member changes — and checks after
// every entry that it agrees with the model, that the invariants hold, that
// a rejected entry changed nothing, and that a replica restored from a
// snapshot every few hundred entries keeps agreeing with one that never
// was.
func TestLedgerProperty(t *testing.T) {
	const seeds, steps = 6, 2000
	var mu sync.Mutex
	total := map[string]int{}
	pendMax, pendSum := 0, 0
	t.Run("seeds", func(t *testing.T) {
		for seed := range uint64(seeds) {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				propertyRun(t, seed, steps, func(outcome string, pending int) {
					mu.Lock()
					defer mu.Unlock()
					total[outcome]++
					pendMax, pendSum = max(pendMax, pending), pendSum+pending
				})
			})
		}
	})
	t.Logf("results over %d commands: %v; most pending entries at once %d, average %.1f", seeds*steps, total, pendMax, float64(pendSum)/float64(seeds*steps*3))
	// The generator must reach every outcome, or the test proves little.
	for _, kind := range []string{"applied", "*commit.StaleEpochError", "*commit.NotOwnerError", "*commit.OffsetGapError",
		"*commit.OffsetRegressionError", "sentinel commit: segment not pending", "sentinel commit: reported offsets do not cover the segment",
		"sentinel commit: reported offsets split a pending segment", "sentinel commit: unknown member", "sentinel commit: table belongs to another pipeline"} {
		require.Greater(t, total[kind], 0, "no %s in %d commands", kind, seeds*steps)
	}
}

// propertyRun runs one seed; count is told every step's outcome and the
// number of pending entries over the tables.
func propertyRun(t *testing.T, seed uint64, steps int, count func(outcome string, pending int)) {
	g := &generator{r: rand.New(rand.NewPCG(seed, 0x1ed6e7)), m: newModel(),
		clock: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), history: map[commit.PartitionKey][]commit.Ownership{}}
	l, shadow := commit.NewLedger(), commit.NewLedger()
	hw := map[string]int64{}
	before := observe(l)
	for i := range steps {
		idx := uint64(i)*3 + 1 // the log has gaps: raft's own entries
		cmd, what := g.next()
		what = fmt.Sprintf("step %d (%s): %s", i, what, cmd)
		want := g.m.apply(idx, cmd)
		var state string
		if want.Err != nil {
			// Only when a rejection is expected: persisting every
			// step would double the test's time under -race.
			state = quickState(t, l)
		}
		got := l.Apply(idx, cmd).(commit.ApplyResult)
		requireSameResult(t, want, got, what)
		require.Equal(t, got, shadow.Apply(idx, cmd), what)

		after := observe(l)
		var accepted *commit.ProposeSegment
		if got.Type == commit.CmdProposeSegment && got.Err == nil {
			accepted = &commit.ProposeSegment{}
			var env struct{ Payload jsonRaw }
			mustUnmarshal(cmd, &env)
			mustUnmarshal(env.Payload, accepted)
			g.accepted = append(g.accepted, cmd)
		}
		checkInvariants(t, before, after, accepted, got.Type == commit.CmdAdoptTable && got.Err == nil, hw)
		checkModel(t, l, after, g.m)
		if got.Err != nil {
			require.Equal(t, state, quickState(t, l), "%s: rejected (%v) but changed the state", what, got.Err)
		}
		pending := 0
		for _, ps := range after.pending {
			pending += len(ps)
		}
		count(outcome(got.Err), pending)
		for k, p := range g.m.parts {
			if h := g.history[k]; len(h) == 0 || h[len(h)-1] != (commit.Ownership{Owner: p.owner, Epoch: p.epoch}) {
				g.history[k] = append(h, commit.Ownership{Owner: p.owner, Epoch: p.epoch})
			}
		}
		before = after

		if i%400 == 399 {
			restored := commit.NewLedger()
			require.NoError(t, restored.Restore(strings.NewReader(string(persist(t, l)))))
			l = restored
		}
	}
	require.Equal(t, string(persist(t, shadow)), string(persist(t, l)), "the same log gives byte-identical snapshots")
}

// TestBalanceProperty: over random member sets, partitions and current
// assignments (live owners, dead ones, none), Balance is complete (every
// partition, and only those, on a live member), balanced, idempotent,
// deterministic under reordering, and moves exactly the least number of
// partitions any balanced assignment could: with n partitions over m
// members, shares are n/m or n/m+1, so a member can keep at most its
// current count capped by its share, and the n%m larger shares are best
// spent on members holding more than n/m.
func TestBalanceProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for iter := range 3000 {
		pool := []string{"a", "b", "c", "d", "e", "f", "g"}
		var members []string
		for _, m := range pool {
			if r.IntN(3) > 0 {
				members = append(members, m)
			}
		}
		var ps []commit.PartitionKey
		for _, pipeline := range []string{"p", "q"} {
			for p := range int32(r.IntN(12)) {
				ps = append(ps, pk(pipeline, "t", p))
			}
		}
		cur := map[commit.PartitionKey]string{}
		for _, k := range ps {
			if r.IntN(5) > 0 {
				cur[k] = pool[r.IntN(len(pool))] // live or dead
			}
		}
		cur[pk("z", "t", 0)] = "a" // not among the partitions

		got := commit.Balance(members, ps, cur)
		what := fmt.Sprintf("iteration %d: members %v, current %v", iter, members, cur)

		require.Len(t, got, len(ps), what)
		live := map[string]bool{}
		for _, m := range members {
			live[m] = true
		}
		for _, k := range ps {
			o, ok := got[k]
			require.True(t, ok, what)
			require.Equal(t, len(members) > 0, live[o], "%s: %v on %q", what, k, o)
		}
		if len(members) > 0 {
			c := counts(got)
			lo, hi := len(ps), 0
			for _, m := range members {
				lo, hi = min(lo, c[m]), max(hi, c[m])
			}
			require.LessOrEqual(t, hi-lo, 1, "%s: counts %v", what, c)

			// The fewest moves any balanced assignment allows.
			base, extra := len(ps)/len(members), len(ps)%len(members)
			held := map[string]int{}
			for _, k := range ps {
				if live[cur[k]] {
					held[cur[k]]++
				}
			}
			keep, over := 0, 0
			for _, m := range members {
				keep += min(held[m], base)
				if held[m] > base {
					over++
				}
			}
			keep += min(extra, over)
			require.Equal(t, len(ps)-keep, moved(cur, got), "%s: moves", what)
		}

		require.Equal(t, got, commit.Balance(members, ps, got), "%s: balancing a balanced assignment changes nothing", what)
		shuffled := slices.Clone(members)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		sps := slices.Clone(ps)
		r.Shuffle(len(sps), func(i, j int) { sps[i], sps[j] = sps[j], sps[i] })
		require.Equal(t, got, commit.Balance(shuffled, sps, maps.Clone(cur)), "%s: deterministic", what)
	}
}
