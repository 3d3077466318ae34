package window

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Store reads back windows that are no longer in a State's memory from
// where their rows were written (the table).
type Store interface {
	// Load returns the stored windows of group, with Accs, Revision and
	// Events as last emitted (a store that does not keep Events may return
	// 0; only Events of the windows written again are affected): for tumbling and hopping windows the one
	// starting at exactly lo (hi is its End), for sessions every stored
	// session of the group that overlaps or touches [lo, hi] (Start <= hi
	// and End >= lo). No window is not an error. Windows outside the range
	// are ignored. The State takes ownership of the returned Accs.
	//
	// Load must see the Changes of every earlier Apply: write them before
	// applying the next Partials.
	Load(group string, lo, hi int64) ([]Window, error)
}

// Config configures a State.
type Config struct {
	Spec Spec
	Aggs Aggs
	// Delay is subtracted from the event times partitions report to make
	// the watermark: the out-of-orderness allowed before a window counts as
	// complete. Microseconds, >= 0.
	Delay int64
	// Retention is how long a window stays in memory after the watermark
	// passes its End. Microseconds, >= 0.
	Retention int64
	// MaxLateness, if positive, drops a partial window whose End is at or
	// before watermark-MaxLateness instead of applying it (Changes.Dropped
	// counts its events). 0 never drops: late data re-opens its window at
	// any lateness.
	MaxLateness int64
}

func (c *Config) validate() error {
	if err := c.Spec.Validate(); err != nil {
		return err
	}
	if err := c.Aggs.Validate(); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"delay", c.Delay}, {"retention", c.Retention}, {"max lateness", c.MaxLateness}} {
		if f.v < 0 {
			return fmt.Errorf("window: %s: must not be negative, got %d", f.name, f.v)
		}
	}
	return nil
}

// Changes are the rows to write after an Apply.
type Changes struct {
	// Upserts are the windows changed, each once, ordered by group then
	// start, with Revision incremented (1 for a window emitted for the first
	// time). Their Accs alias the State's memory: write them before the
	// next call to Apply.
	Upserts []Window
	// Deletes are the keys of stored sessions merged into another session
	// (whose row is among Upserts), ordered by group then start. A key is
	// never both deleted and upserted.
	Deletes []WindowKey
	// Reopened counts the windows updated that had been emitted before
	// and whose End was at or before the watermark: windows late data
	// re-opened.
	Reopened int
	// Loaded counts the windows read back from the Store.
	Loaded int
	// Dropped counts the events of the partial windows dropped for
	// MaxLateness (an event of several hopping windows counts in each).
	Dropped int64
}

// entry is a window in a State's memory.
type entry struct {
	w Window // w.Revision is the revision last emitted, 0 if never
	// stored: a row keyed (w.Group, w.Start) exists in the table.
	stored bool
	// Per Apply: changed, re-opened, merged into another session.
	dirty, reopened, dead bool
}

func (e *entry) bounds() (int64, int64)  { return e.w.Start, e.w.End }
func (w *Window) bounds() (int64, int64) { return w.Start, w.End }

// State is the table writer's state: the recent windows, the watermarks of
// the source partitions and the memory horizon. A State is not safe for
// concurrent use.
type State struct {
	cfg   Config
	store Store
	// parts holds the largest event time each partition reported.
	parts map[string]int64
	// horizon bounds the windows that may be stored but not in memory:
	// every such window has End <= horizon.
	horizon int64

	wins map[WindowKey]*entry // tumbling and hopping windows
	// Sessions per group, sorted by Start, never overlapping or touching.
	sess map[string][]*entry
	n    int

	err error // set when an Apply failed half-way
}

// NewState returns the state of a table with no windows written yet:
// nothing is ever loaded from store until windows are evicted.
func NewState(cfg Config, store Store) (*State, error) {
	return newState(cfg, store, math.MinInt64)
}

// NewStateAfterLoss returns a state for a table whose windows may all have
// been written already, as after losing the checkpoint: every window is
// looked up in store before it is first changed.
func NewStateAfterLoss(cfg Config, store Store) (*State, error) {
	return newState(cfg, store, math.MaxInt64)
}

// NewStateWithHorizon returns a state for a table whose stored windows all
// end at or before horizon (as the table's statistics say after losing the
// checkpoint): windows ending later are known not to be stored, earlier
// ones are looked up in store before they are first changed.
func NewStateWithHorizon(cfg Config, store Store, horizon int64) (*State, error) {
	return newState(cfg, store, horizon)
}

func newState(cfg Config, store Store, horizon int64) (*State, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("window: nil Store")
	}
	cfg.Aggs = slices.Clone(cfg.Aggs)
	s := &State{cfg: cfg, store: store, parts: make(map[string]int64), horizon: horizon}
	if cfg.Spec.Kind == Session {
		s.sess = make(map[string][]*entry)
	} else {
		s.wins = make(map[WindowKey]*entry)
	}
	return s, nil
}

// Observe records that partition (an opaque id such as "topic/3") has
// seen events up to maxTs. A partition's time never goes back: a smaller
// maxTs is ignored. Report a segment's times after applying its partials,
// so that its own events do not count as late.
func (s *State) Observe(partition string, maxTs int64) {
	if t, ok := s.parts[partition]; !ok || maxTs > t {
		s.parts[partition] = maxTs
	}
}

// Forget drops partition from the watermark, as if it had never reported:
// for a partition that stopped delivering (idle, or no longer read), which
// would otherwise hold the watermark back forever. It reports again with
// its next Observe. The watermark only decides eviction, re-opened counts
// and MaxLateness drops, never what a window holds.
func (s *State) Forget(partition string) {
	delete(s.parts, partition)
}

// Partitions lists the partitions the watermark is made of.
func (s *State) Partitions() []string {
	out := make([]string, 0, len(s.parts))
	for p := range s.parts {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Watermark returns the smallest time the partitions reported, minus
// Delay; false if no partition reported yet.
func (s *State) Watermark() (int64, bool) {
	if len(s.parts) == 0 {
		return 0, false
	}
	wm := int64(math.MaxInt64)
	for _, t := range s.parts {
		wm = min(wm, t)
	}
	return satSub(wm, s.cfg.Delay), true
}

// Horizon returns the memory horizon: windows not in memory with an End
// after it have never been written.
func (s *State) Horizon() int64 { return s.horizon }

// Len returns the number of windows in memory.
func (s *State) Len() int { return s.n }

// applier holds the bookkeeping of one Apply.
type applier struct {
	s         *State
	ch        Changes
	wm        int64
	hasWM     bool
	dropping  bool
	dropLimit int64
	dirty     []*entry
	deleted   map[WindowKey]bool
}

// Apply merges the partials of one segment into the state. Apply the
// segments' partials in segment order, and write the Changes of each Apply
// before the next one.
//
// A window in memory is merged with its partial. A window not in memory
// whose End is at or before the memory horizon may have been written and
// evicted: it is loaded from the Store first (sessions: every stored session
// the partial session overlaps or touches). The changed windows are
// returned as Upserts; for sessions, sessions merged away as Deletes.
//
// If Apply fails half-way (a Store error, an integer overflow), the state
// is left inconsistent: every later call returns an error, and the state
// must be rebuilt, e.g. from the last checkpoint.
func (s *State) Apply(p *Partials) (Changes, error) {
	if s.err != nil {
		return Changes{}, s.err
	}
	if p.err != nil {
		return Changes{}, p.err
	}
	if p.spec != s.cfg.Spec || !p.aggs.equal(s.cfg.Aggs) {
		return Changes{}, errors.New("window: partials of another window spec or other aggregates")
	}
	a := &applier{s: s}
	a.wm, a.hasWM = s.Watermark()
	if a.hasWM && s.cfg.MaxLateness > 0 {
		a.dropping = true
		a.dropLimit = satSub(a.wm, s.cfg.MaxLateness)
	}
	var err error
	p.Windows(func(pw *Window) bool {
		if a.dropping && pw.End <= a.dropLimit {
			a.ch.Dropped += pw.Events
			return true
		}
		if s.cfg.Spec.Kind == Session {
			err = a.session(pw)
		} else {
			err = a.fixed(pw)
		}
		return err == nil
	})
	if err != nil {
		s.err = fmt.Errorf("window: state unusable after a failed Apply: %w", err)
		return Changes{}, err
	}
	return a.finish(), nil
}

// touch marks e as changed by this Apply.
func (a *applier) touch(e *entry) {
	if e.dirty {
		return
	}
	e.dirty = true
	e.reopened = e.stored && a.hasWM && e.w.End <= a.wm
	a.dirty = append(a.dirty, e)
}

func (a *applier) load(group string, lo, hi int64) ([]Window, error) {
	ws, err := a.s.store.Load(group, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("window: load group %q [%d, %d]: %w", group, lo, hi, err)
	}
	return ws, nil
}

// checkLoaded validates a window the store returned.
func (a *applier) checkLoaded(w *Window) error {
	spec := a.s.cfg.Spec
	ok := len(w.Accs) == len(a.s.cfg.Aggs) && w.Revision >= 0 && w.Events >= 0
	if spec.Kind == Session {
		ok = ok && w.Start >= MinTime && w.Start <= MaxTime && w.End >= w.Start+spec.Gap && w.End-spec.Gap <= MaxTime
	} else {
		ok = ok && w.End == spec.End(w.Start)
	}
	if !ok {
		return fmt.Errorf("window: store returned an invalid window of group %q [%d, %d) with %d accumulators, revision %d, %d events",
			w.Group, w.Start, w.End, len(w.Accs), w.Revision, w.Events)
	}
	return nil
}

// fixed merges a partial tumbling or hopping window.
func (a *applier) fixed(pw *Window) error {
	s := a.s
	k := pw.Key()
	e := s.wins[k]
	if e == nil {
		if pw.End <= s.horizon {
			ws, err := a.load(k.Group, k.Start, pw.End)
			if err != nil {
				return err
			}
			for i := range ws {
				w := &ws[i]
				if w.Group != k.Group || w.Start != k.Start {
					continue
				}
				if err := a.checkLoaded(w); err != nil {
					return err
				}
				if e != nil {
					return fmt.Errorf("window: store returned window %q at %d twice", k.Group, k.Start)
				}
				e = &entry{w: *w, stored: true}
			}
			if e != nil {
				a.ch.Loaded++
			}
		}
		if e == nil {
			e = &entry{w: Window{Group: k.Group, Start: k.Start, End: pw.End, Accs: s.cfg.Aggs.New()}}
		}
		s.wins[k] = e
		s.n++
	}
	a.touch(e)
	if err := s.cfg.Aggs.Merge(e.w.Accs, pw.Accs); err != nil {
		return err
	}
	e.w.Events += pw.Events
	return nil
}

// session merges a partial session with the sessions in memory and in the
// store that it overlaps or touches. Since sessions never overlap or touch
// one another, those are all the sessions the result can touch.
func (a *applier) session(pw *Window) error {
	s, aggs := a.s, a.s.cfg.Aggs
	g := pw.Group
	list := s.sess[g]
	i, j := touching(list, pw.Start, pw.End)
	members := slices.Clone(list[i:j])
	if pw.Start <= s.horizon {
		ws, err := a.load(g, pw.Start, pw.End)
		if err != nil {
			return err
		}
		loaded := 0
		for k := range ws {
			w := &ws[k]
			if w.Group != g || w.Start > pw.End || w.End < pw.Start {
				continue
			}
			if err := a.checkLoaded(w); err != nil {
				return err
			}
			key := w.Key()
			if a.deleted[key] {
				continue // merged away earlier in this Apply; its row is stale
			}
			if _, found := slices.BinarySearchFunc(list, w.Start, func(e *entry, start int64) int {
				return cmpInt(e.w.Start, start)
			}); found {
				continue // in memory, which is as recent
			}
			if slices.ContainsFunc(members, func(e *entry) bool { return e.w.Start == w.Start }) {
				return fmt.Errorf("window: store returned session %q at %d twice", g, w.Start)
			}
			members = append(members, &entry{w: *w, stored: true})
			loaded++
		}
		a.ch.Loaded += loaded
	}
	if len(members) == 0 {
		e := &entry{w: Window{Group: g, Start: pw.Start, End: pw.End, Accs: aggs.clone(pw.Accs), Events: pw.Events}}
		a.touch(e)
		s.sess[g] = slices.Insert(list, i, e)
		s.n++
		return nil
	}
	for _, m := range members {
		a.touch(m)
	}
	// The result keeps the smallest start: that of the earliest member, or
	// the partial's, which is a new row.
	base := slices.MinFunc(members, func(x, y *entry) int { return cmpInt(x.w.Start, y.w.Start) })
	if base.w.Start > pw.Start {
		base = &entry{w: Window{Group: g, Start: pw.Start, End: pw.End, Accs: aggs.New()}}
		a.touch(base)
	}
	for _, m := range members {
		if m == base {
			continue
		}
		if m.stored {
			key := m.w.Key()
			a.ch.Deletes = append(a.ch.Deletes, key)
			if a.deleted == nil {
				a.deleted = make(map[WindowKey]bool)
			}
			a.deleted[key] = true
		}
		if err := aggs.Merge(base.w.Accs, m.w.Accs); err != nil {
			return err
		}
		base.w.End = max(base.w.End, m.w.End)
		base.w.Events += m.w.Events
		base.w.Revision = max(base.w.Revision, m.w.Revision)
		base.reopened = base.reopened || m.reopened
		m.dead = true
	}
	if err := aggs.Merge(base.w.Accs, pw.Accs); err != nil {
		return err
	}
	base.w.End = max(base.w.End, pw.End)
	base.w.Events += pw.Events
	s.sess[g] = slices.Replace(list, i, j, base)
	s.n += 1 - (j - i)
	return nil
}

// touching returns the range [i, j) of the sessions in list (sorted by
// start, never overlapping or touching) that overlap or touch [lo, hi].
func touching[T interface{ bounds() (int64, int64) }](list []T, lo, hi int64) (i, j int) {
	i = sort.Search(len(list), func(k int) bool {
		_, end := list[k].bounds()
		return end >= lo
	})
	for j = i; j < len(list); j++ {
		if start, _ := list[j].bounds(); start > hi {
			break
		}
	}
	return i, j
}

func (a *applier) finish() Changes {
	ch := a.ch
	for _, e := range a.dirty {
		if e.dead {
			continue
		}
		e.w.Revision++
		if e.reopened {
			ch.Reopened++
		}
		e.stored, e.dirty, e.reopened = true, false, false
		ch.Upserts = append(ch.Upserts, e.w)
	}
	slices.SortFunc(ch.Upserts, func(x, y Window) int { return cmpKey(x.Group, x.Start, y.Group, y.Start) })
	slices.SortFunc(ch.Deletes, func(x, y WindowKey) int { return cmpKey(x.Group, x.Start, y.Group, y.Start) })
	return ch
}

// Evict drops from memory the windows whose End+Retention is at or before
// the watermark, and raises the memory horizon to the latest End dropped.
// It returns the number of windows dropped. Call it after Apply, once the
// Changes are written.
func (s *State) Evict() (evicted int) {
	wm, ok := s.Watermark()
	if !ok || s.err != nil {
		return 0
	}
	limit := satSub(wm, s.cfg.Retention)
	for k, e := range s.wins {
		if e.w.End <= limit {
			s.horizon = max(s.horizon, e.w.End)
			delete(s.wins, k)
			evicted++
		}
	}
	for g, list := range s.sess {
		kept := list[:0]
		for _, e := range list {
			if e.w.End <= limit {
				s.horizon = max(s.horizon, e.w.End)
				evicted++
			} else {
				kept = append(kept, e)
			}
		}
		clear(list[len(kept):])
		if len(kept) == 0 {
			delete(s.sess, g)
		} else {
			s.sess[g] = kept
		}
	}
	s.n -= evicted
	return evicted
}

// entries returns the windows in memory ordered by group then start.
func (s *State) entries() []*entry {
	es := make([]*entry, 0, s.n)
	for _, e := range s.wins {
		es = append(es, e)
	}
	for _, list := range s.sess {
		es = append(es, list...)
	}
	slices.SortFunc(es, func(x, y *entry) int { return cmpKey(x.w.Group, x.w.Start, y.w.Group, y.w.Start) })
	return es
}

// MarshalBinary encodes a checkpoint of the state: the magic "fws", a
// version byte, the spec and aggregates, the memory horizon (varint), the
// partitions' times (uvarint count, then name and varint time, sorted by
// name), the windows in memory (uvarint count, then each with its
// revision, ordered by group and start), and a CRC-32C of all that. It is
// deterministic. Commit a checkpoint atomically with the rows of the
// Changes it includes.
func (s *State) MarshalBinary() ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	b := appendHeader(nil, checkpointMagic, s.cfg.Spec, s.cfg.Aggs)
	b = binary.AppendVarint(b, s.horizon)
	names := make([]string, 0, len(s.parts))
	for p := range s.parts {
		names = append(names, p)
	}
	slices.Sort(names)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, p := range names {
		b = appendLenBytes(b, []byte(p))
		b = binary.AppendVarint(b, s.parts[p])
	}
	es := s.entries()
	b = binary.AppendUvarint(b, uint64(len(es)))
	var prev *Window
	for _, e := range es {
		b = appendWindow(b, s.cfg.Spec, s.cfg.Aggs, &e.w, prev)
		prev = &e.w
	}
	return appendCRC(b), nil
}

// RestoreState rebuilds a State from a checkpoint MarshalBinary wrote with
// the same spec and aggregates (Delay, Retention and MaxLateness may
// differ). It returns an error, never panics, on a corrupt checkpoint.
func RestoreState(cfg Config, store Store, b []byte) (*State, error) {
	s, err := newState(cfg, store, math.MinInt64)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*State, error) {
		return nil, fmt.Errorf("window: checkpoint: %w", err)
	}
	body, ok := checkCRC(b)
	if !ok {
		return fail(errors.New("checksum mismatch or truncated"))
	}
	r := &reader{b: body}
	if err := readHeader(r, checkpointMagic, cfg.Spec, cfg.Aggs); err != nil {
		return fail(err)
	}
	s.horizon = r.varint()
	np := r.uvarint()
	if r.err != nil {
		return fail(r.err)
	}
	prevName := ""
	for i := uint64(0); i < np; i++ {
		name := string(r.lenBytes())
		t := r.varint()
		if r.err != nil {
			return fail(r.err)
		}
		if i > 0 && name <= prevName {
			return fail(errors.New("partitions out of order"))
		}
		s.parts[name] = t
		prevName = name
	}
	nw := r.uvarint()
	if r.err != nil {
		return fail(r.err)
	}
	var prev *Window
	for i := uint64(0); i < nw; i++ {
		w, err := readWindow(r, cfg.Spec, s.cfg.Aggs, prev)
		if err != nil {
			return fail(err)
		}
		e := &entry{w: *w, stored: true}
		if cfg.Spec.Kind == Session {
			s.sess[w.Group] = append(s.sess[w.Group], e)
		} else {
			s.wins[w.Key()] = e
		}
		s.n++
		prev = w
	}
	if len(r.b) != 0 {
		return fail(errors.New("trailing bytes"))
	}
	return s, nil
}
