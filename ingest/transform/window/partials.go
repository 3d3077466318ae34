package window

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Window is one window of one group and its accumulators.
type Window struct {
	Group string
	// Start and End bound the window: [Start, End). For a session, Start is
	// its first event's time and End its last event's time plus Gap.
	Start, End int64
	Accs       Accs
	// Revision is the number of times the writer has emitted the window
	// (State sets it; Partials and Batch leave it 0).
	Revision int64
	// Events is the number of events folded in.
	Events int64
}

// Key returns the window's row key.
func (w *Window) Key() WindowKey { return WindowKey{Group: w.Group, Start: w.Start} }

// WindowKey is the key of a window's row: its group and start.
type WindowKey struct {
	Group string
	Start int64
}

func cmpKey(ag string, as int64, bg string, bs int64) int {
	if c := cmp.Compare(ag, bg); c != 0 {
		return c
	}
	return cmp.Compare(as, bs)
}

// Partials pre-aggregates the events of one segment per group and window.
// Partials of the same spec and aggregates merge (State.Apply) into the
// same windows as one Partials given all their events, whatever the split
// and order of the events.
//
// A Partials is not safe for concurrent use.
type Partials struct {
	spec Spec
	aggs Aggs
	err  error // invalid spec or aggregates

	// Tumbling and hopping windows.
	wins map[WindowKey]*Window
	// Sessions of each group, sorted by Start, never overlapping or
	// touching: each session's End < the next one's Start.
	sess map[string][]*Window
	n    int

	scratch []int64
	hits    []*Window
}

// NewPartials returns empty partials. If spec or aggs are invalid, Add
// returns the validation error.
func NewPartials(spec Spec, aggs Aggs) *Partials {
	p := &Partials{spec: spec, aggs: slices.Clone(aggs)}
	if err := spec.Validate(); err != nil {
		p.err = err
	} else if err := aggs.Validate(); err != nil {
		p.err = err
	}
	if spec.Kind == Session {
		p.sess = make(map[string][]*Window)
	} else {
		p.wins = make(map[WindowKey]*Window)
	}
	return p
}

// Spec returns the partials' window spec.
func (p *Partials) Spec() Spec { return p.spec }

// Aggs returns the partials' aggregates.
func (p *Partials) Aggs() Aggs { return p.aggs }

// Add folds one event of group at time ts, with vals[i] the input of
// aggregate i, into every window containing ts (tumbling, hopping) or into
// the group's session: the event's interval [ts, ts+Gap) joins every session
// it overlaps or touches (ts in [Start-Gap, End]), merging the sessions it
// bridges, or starts a session of its own. ts must lie in [MinTime,
// MaxTime]. Add changes nothing when it returns an error.
func (p *Partials) Add(group string, ts int64, vals []Value) error {
	if p.err != nil {
		return p.err
	}
	if err := checkTime(ts); err != nil {
		return err
	}
	if len(vals) != len(p.aggs) {
		return fmt.Errorf("window: %d values for %d aggregates", len(vals), len(p.aggs))
	}
	if p.spec.Kind == Session {
		return p.addSession(group, ts, vals)
	}
	p.scratch = p.spec.Starts(p.scratch[:0], ts)
	p.hits = p.hits[:0]
	for _, start := range p.scratch {
		w := p.wins[WindowKey{group, start}]
		if w != nil {
			if err := p.aggs.checkAdd(w.Accs, vals); err != nil {
				return err
			}
		}
		p.hits = append(p.hits, w)
	}
	for k, start := range p.scratch {
		w := p.hits[k]
		if w == nil {
			w = &Window{Group: group, Start: start, End: p.spec.End(start), Accs: p.aggs.New()}
			p.wins[WindowKey{group, start}] = w
			p.n++
		}
		p.aggs.add(w.Accs, vals)
		w.Events++
	}
	clear(p.hits)
	return nil
}

func (p *Partials) addSession(group string, ts int64, vals []Value) error {
	end := ts + p.spec.Gap
	list := p.sess[group]
	i, j := touching(list, ts, end)
	switch j - i {
	case 0:
		w := &Window{Group: group, Start: ts, End: end, Accs: p.aggs.New(), Events: 1}
		p.aggs.add(w.Accs, vals)
		p.sess[group] = slices.Insert(list, i, w)
		p.n++
		return nil
	case 1:
		w := list[i]
		if err := p.aggs.checkAdd(w.Accs, vals); err != nil {
			return err
		}
		p.aggs.add(w.Accs, vals)
		w.Start, w.End = min(w.Start, ts), max(w.End, end)
		w.Events++
		return nil
	}
	// The event bridges sessions i..j-1: merge them into fresh accumulators
	// first so that an error leaves the partials as they were.
	accs := p.aggs.New()
	events := int64(1)
	for _, w := range list[i:j] {
		if err := p.aggs.Merge(accs, w.Accs); err != nil {
			return err
		}
		events += w.Events
	}
	if err := p.aggs.Add(accs, vals); err != nil {
		return err
	}
	w := list[i]
	w.Start, w.End = min(w.Start, ts), max(list[j-1].End, end)
	w.Accs, w.Events = accs, events
	p.sess[group] = slices.Delete(list, i+1, j)
	p.n -= j - i - 1
	return nil
}

// Merge folds the windows of o, partials of the same spec and aggregates,
// into p: as if p had been given o's events too. On an error (an
// overflowing sum) p is left partly merged and must be discarded.
func (p *Partials) Merge(o *Partials) error {
	if p.err != nil {
		return p.err
	}
	if p.spec != o.spec || !slices.Equal(p.aggs, o.aggs) {
		return errors.New("window: merging partials of another spec or other aggregates")
	}
	var err error
	o.Windows(func(w *Window) bool {
		if p.spec.Kind == Session {
			err = p.mergeSession(w)
			return err == nil
		}
		k := WindowKey{w.Group, w.Start}
		dst := p.wins[k]
		if dst == nil {
			dst = &Window{Group: w.Group, Start: w.Start, End: w.End, Accs: p.aggs.New()}
			p.wins[k] = dst
			p.n++
		}
		if err = p.aggs.Merge(dst.Accs, w.Accs); err != nil {
			return false
		}
		dst.Events += w.Events
		return true
	})
	return err
}

// mergeSession folds a session of other partials into the group's
// sessions: it joins every session it overlaps or touches.
func (p *Partials) mergeSession(w *Window) error {
	list := p.sess[w.Group]
	i, j := touching(list, w.Start, w.End)
	accs := p.aggs.New()
	if err := p.aggs.Merge(accs, w.Accs); err != nil {
		return err
	}
	start, end, events := w.Start, w.End, w.Events
	for _, s := range list[i:j] {
		if err := p.aggs.Merge(accs, s.Accs); err != nil {
			return err
		}
		start, end, events = min(start, s.Start), max(end, s.End), events+s.Events
	}
	merged := &Window{Group: w.Group, Start: start, End: end, Accs: accs, Events: events}
	p.sess[w.Group] = slices.Insert(slices.Delete(list, i, j), i, merged)
	p.n += 1 - (j - i)
	return nil
}

// Len returns the number of windows.
func (p *Partials) Len() int { return p.n }

// Windows calls fn for every window, ordered by group then start, until fn
// returns false. The windows belong to the partials: fn must not change
// them or keep them past a later call to Add or Reset.
func (p *Partials) Windows(fn func(w *Window) bool) {
	if p.spec.Kind == Session {
		groups := make([]string, 0, len(p.sess))
		for g := range p.sess {
			groups = append(groups, g)
		}
		slices.Sort(groups)
		for _, g := range groups {
			for _, w := range p.sess[g] {
				if !fn(w) {
					return
				}
			}
		}
		return
	}
	ws := make([]*Window, 0, len(p.wins))
	for _, w := range p.wins {
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b *Window) int { return cmpKey(a.Group, a.Start, b.Group, b.Start) })
	for _, w := range ws {
		if !fn(w) {
			return
		}
	}
}

// Reset empties the partials for reuse.
func (p *Partials) Reset() {
	clear(p.wins)
	clear(p.sess)
	p.n = 0
}

const (
	partialsMagic   = "fwp"
	checkpointMagic = "fws"
	formatVersion   = 1
)

// appendHeader encodes the magic, version, spec and aggregates that start
// the encodings of Partials and State.
func appendHeader(dst []byte, magic string, spec Spec, aggs Aggs) []byte {
	dst = append(dst, magic...)
	dst = append(dst, formatVersion, byte(spec.Kind))
	dst = binary.AppendUvarint(dst, uint64(spec.Size))
	dst = binary.AppendUvarint(dst, uint64(spec.Slide))
	dst = binary.AppendUvarint(dst, uint64(spec.Gap))
	dst = binary.AppendUvarint(dst, uint64(len(aggs)))
	for _, a := range aggs {
		dst = append(dst, a.tag(), a.norm().Precision)
	}
	return dst
}

func readHeader(r *reader, magic string, spec Spec, aggs Aggs) error {
	if string(r.bytes(len(magic))) != magic || r.err != nil {
		return errors.New("bad magic")
	}
	if v := r.byte(); v != formatVersion {
		return fmt.Errorf("unknown version %d", v)
	}
	got := Spec{Kind: Kind(r.byte())}
	got.Size = int64(r.uvarint())
	got.Slide = int64(r.uvarint())
	got.Gap = int64(r.uvarint())
	n := r.uvarint()
	if r.err != nil {
		return r.err
	}
	if got != spec {
		return fmt.Errorf("written for window %+v, not %+v", got, spec)
	}
	if n != uint64(len(aggs)) {
		return fmt.Errorf("written for %d aggregates, not %d", n, len(aggs))
	}
	for i, a := range aggs {
		tag, prec := r.byte(), r.byte()
		if r.err != nil {
			return r.err
		}
		if tag != a.tag() || prec != a.norm().Precision {
			return fmt.Errorf("aggregate %d was written for another aggregate than %s", i, a)
		}
	}
	return nil
}

// appendWindow encodes a window after prev (the previous window encoded,
// or nil): its group (uvarint length+1 and the bytes, or 0 when it is
// prev's group), start (varint), for sessions the length End-Start
// (uvarint), revision and events (uvarint) and accumulators.
func appendWindow(dst []byte, spec Spec, aggs Aggs, w, prev *Window) []byte {
	if prev != nil && prev.Group == w.Group {
		dst = append(dst, 0)
	} else {
		dst = binary.AppendUvarint(dst, uint64(len(w.Group))+1)
		dst = append(dst, w.Group...)
	}
	dst = binary.AppendVarint(dst, w.Start)
	if spec.Kind == Session {
		dst = binary.AppendUvarint(dst, uint64(w.End-w.Start))
	}
	dst = binary.AppendUvarint(dst, uint64(w.Revision))
	dst = binary.AppendUvarint(dst, uint64(w.Events))
	return aggs.AppendBinary(dst, w.Accs)
}

// readWindow decodes a window encoded by appendWindow and checks that it is
// a valid window of spec that sorts after prev (for sessions: starts after
// prev ends, if of the same group).
func readWindow(r *reader, spec Spec, aggs Aggs, prev *Window) (*Window, error) {
	w := &Window{}
	n := r.uvarint()
	switch {
	case r.err != nil:
		return nil, r.err
	case n == 0 && prev == nil:
		return nil, errors.New("first window refers to a previous group")
	case n == 0:
		w.Group = prev.Group
	case n-1 > uint64(len(r.b)):
		return nil, errTruncated
	default:
		w.Group = string(r.bytes(int(n - 1)))
	}
	w.Start = r.varint()
	if spec.Kind == Session {
		l := r.uvarint()
		if r.err == nil && (l < uint64(spec.Gap) || l > uint64(MaxTime-MinTime)) {
			return nil, fmt.Errorf("session of group %q at %d has length %d", w.Group, w.Start, l)
		}
		w.End = w.Start + int64(l)
	} else {
		w.End = spec.End(w.Start)
	}
	w.Revision = r.count()
	w.Events = r.count()
	if r.err != nil {
		return nil, r.err
	}
	if spec.Kind == Session {
		if w.Start < MinTime || w.Start > MaxTime || w.End-spec.Gap > MaxTime {
			return nil, fmt.Errorf("session of group %q at %d is out of range", w.Group, w.Start)
		}
	} else if !spec.aligned(w.Start) {
		return nil, fmt.Errorf("window of group %q at %d is not a window start", w.Group, w.Start)
	}
	if prev != nil {
		if cmpKey(prev.Group, prev.Start, w.Group, w.Start) >= 0 {
			return nil, fmt.Errorf("window of group %q at %d out of order", w.Group, w.Start)
		}
		if spec.Kind == Session && prev.Group == w.Group && prev.End >= w.Start {
			return nil, fmt.Errorf("sessions of group %q at %d and %d overlap or touch", w.Group, prev.Start, w.Start)
		}
	}
	accs, err := aggs.decodeAccs(r)
	if err != nil {
		return nil, err
	}
	w.Accs = accs
	return w, nil
}

// MarshalBinary encodes the partials: the magic "fwp", a version byte, the
// spec and aggregates, the number of windows (uvarint), the windows in
// Windows order, and a CRC-32C of all that. It is deterministic.
func (p *Partials) MarshalBinary() ([]byte, error) {
	if p.err != nil {
		return nil, p.err
	}
	b := appendHeader(nil, partialsMagic, p.spec, p.aggs)
	b = binary.AppendUvarint(b, uint64(p.n))
	var prev *Window
	p.Windows(func(w *Window) bool {
		b = appendWindow(b, p.spec, p.aggs, w, prev)
		prev = w
		return true
	})
	return appendCRC(b), nil
}

// UnmarshalPartials decodes partials encoded by MarshalBinary for the same
// spec and aggregates. It returns an error, never panics, on input that is
// corrupt or was encoded for another spec or other aggregates.
func UnmarshalPartials(spec Spec, aggs Aggs, b []byte) (*Partials, error) {
	p := NewPartials(spec, aggs)
	if p.err != nil {
		return nil, p.err
	}
	body, ok := checkCRC(b)
	if !ok {
		return nil, errors.New("window: partials: checksum mismatch or truncated")
	}
	r := &reader{b: body}
	fail := func(err error) (*Partials, error) {
		return nil, fmt.Errorf("window: partials: %w", err)
	}
	if err := readHeader(r, partialsMagic, spec, aggs); err != nil {
		return fail(err)
	}
	n := r.uvarint()
	if r.err != nil {
		return fail(r.err)
	}
	var prev *Window
	for i := uint64(0); i < n; i++ {
		w, err := readWindow(r, spec, aggs, prev)
		if err != nil {
			return fail(err)
		}
		if w.Revision != 0 || w.Events < 1 {
			return fail(fmt.Errorf("window of group %q at %d has revision %d and %d events", w.Group, w.Start, w.Revision, w.Events))
		}
		if spec.Kind == Session {
			p.sess[w.Group] = append(p.sess[w.Group], w)
		} else {
			p.wins[w.Key()] = w
		}
		p.n++
		prev = w
	}
	if len(r.b) != 0 {
		return fail(errors.New("trailing bytes"))
	}
	return p, nil
}
