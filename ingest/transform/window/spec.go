package window

import (
	"fmt"
	"math"
)

// Kind is the kind of a window.
type Kind uint8

const (
	// Tumbling windows are fixed-size, non-overlapping and aligned to the
	// epoch: every event belongs to exactly one.
	Tumbling Kind = iota + 1
	// Hopping windows are fixed-size and start every Slide: an event belongs
	// to every window whose [start, start+Size) contains it.
	Hopping
	// Session windows group the events of a group that follow each other
	// with less than Gap between them (see the package documentation for
	// the exact rule).
	Session
)

// String returns the kind's lower-case name.
func (k Kind) String() string {
	switch k {
	case Tumbling:
		return "tumbling"
	case Hopping:
		return "hopping"
	case Session:
		return "session"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Limits on times and durations. They keep every computation on times
// (window starts and ends, a session's ts+Gap) free of int64 overflow.
const (
	// MinTime is the earliest event time accepted, in microseconds since
	// the epoch (about 146,000 years before 1970).
	MinTime int64 = -1 << 62
	// MaxTime is the latest event time accepted.
	MaxTime int64 = 1<<62 - 1
	// MaxDuration is the largest Size, Slide or Gap accepted (about 73,000
	// years).
	MaxDuration int64 = 1 << 61
	// MaxHops is the largest number of hopping windows an event may belong
	// to: ⌈Size/Slide⌉.
	MaxHops = 10_000
)

// Spec describes how events are assigned to windows. All durations are in
// microseconds.
type Spec struct {
	Kind Kind
	// Size is the length of a tumbling or hopping window.
	Size int64
	// Slide is the distance between the starts of consecutive hopping
	// windows: 0 < Slide <= Size. Size need not be a multiple of Slide.
	Slide int64
	// Gap ends a session Gap after its last event.
	Gap int64
}

// Validate reports whether the spec is usable. Its messages name the
// offending field as it is spelled in a pipeline configuration.
func (s Spec) Validate() error {
	duration := func(name string, v int64) error {
		if v <= 0 {
			return fmt.Errorf("window.%s: must be positive, got %d", name, v)
		}
		if v > MaxDuration {
			return fmt.Errorf("window.%s: %d is larger than the maximum %d microseconds", name, v, MaxDuration)
		}
		return nil
	}
	unused := func(name string, v int64) error {
		if v != 0 {
			return fmt.Errorf("window.%s: not used by %s windows, got %d", name, s.Kind, v)
		}
		return nil
	}
	switch s.Kind {
	case Tumbling:
		if err := duration("size", s.Size); err != nil {
			return err
		}
		if err := unused("slide", s.Slide); err != nil {
			return err
		}
		return unused("gap", s.Gap)
	case Hopping:
		if err := duration("size", s.Size); err != nil {
			return err
		}
		if err := duration("slide", s.Slide); err != nil {
			return err
		}
		if s.Slide > s.Size {
			return fmt.Errorf("window.slide: %d is larger than window.size %d", s.Slide, s.Size)
		}
		if n := (s.Size + s.Slide - 1) / s.Slide; n > MaxHops {
			return fmt.Errorf("window.slide: %d puts every event in %d windows of window.size %d, more than the maximum %d", s.Slide, n, s.Size, MaxHops)
		}
		return unused("gap", s.Gap)
	case Session:
		if err := duration("gap", s.Gap); err != nil {
			return err
		}
		if err := unused("size", s.Size); err != nil {
			return err
		}
		return unused("slide", s.Slide)
	case 0:
		return fmt.Errorf("window.kind: missing (want tumbling, hopping or session)")
	}
	return fmt.Errorf("window.kind: unknown kind %d (want tumbling, hopping or session)", uint8(s.Kind))
}

// step is the distance between consecutive window starts.
func (s Spec) step() int64 {
	if s.Kind == Hopping {
		return s.Slide
	}
	return s.Size
}

// floorDiv returns ⌊a/b⌋ for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// Starts appends to dst the starts of the tumbling or hopping windows that
// contain ts, ascending, and returns the extended slice. Starts are aligned
// to the epoch: a window [start, start+Size) has start a multiple of Slide
// (of Size for tumbling windows), with floor division for negative times.
// For session windows it returns dst unchanged. ts must lie in
// [MinTime, MaxTime] and the spec must be valid.
func (s Spec) Starts(dst []int64, ts int64) []int64 {
	switch s.Kind {
	case Tumbling:
		return append(dst, floorDiv(ts, s.Size)*s.Size)
	case Hopping:
		last := floorDiv(ts, s.Slide) * s.Slide
		// The earliest start is the smallest multiple of Slide greater than
		// ts-Size: last - k*Slide > ts-Size.
		k := (s.Size - 1 - (ts - last)) / s.Slide
		for start := last - k*s.Slide; start <= last; start += s.Slide {
			dst = append(dst, start)
		}
		return dst
	}
	return dst
}

// End returns the end (exclusive) of the tumbling or hopping window that
// starts at start: start+Size. For session windows it returns start+Gap,
// the end of a session of a single event.
func (s Spec) End(start int64) int64 {
	if s.Kind == Session {
		return start + s.Gap
	}
	return start + s.Size
}

// aligned reports whether start is the start of some tumbling or hopping
// window of a valid time.
func (s Spec) aligned(start int64) bool {
	step := s.step()
	if start < MinTime-s.Size || start > MaxTime {
		return false
	}
	return start-floorDiv(start, step)*step == 0
}

// checkTime returns an error if ts is outside [MinTime, MaxTime].
func checkTime(ts int64) error {
	if ts < MinTime || ts > MaxTime {
		return fmt.Errorf("window: event time %d is out of range [%d, %d]", ts, MinTime, MaxTime)
	}
	return nil
}

// satSub returns a-b for b >= 0, saturating at math.MinInt64.
func satSub(a, b int64) int64 {
	if a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}

// LastEnd returns the latest end among the windows an event at ts belongs
// to: that of its tumbling window, of the last hopping window containing
// it, or of its own single-event session (ts+Gap). ts must lie in
// [MinTime, MaxTime] and the spec must be valid.
func (s Spec) LastEnd(ts int64) int64 {
	switch s.Kind {
	case Tumbling:
		return floorDiv(ts, s.Size)*s.Size + s.Size
	case Hopping:
		return floorDiv(ts, s.Slide)*s.Slide + s.Size
	}
	return ts + s.Gap
}

// TooLate reports whether an event at ts is later than maxLateness on a
// partition whose newest event time is clock: every window it belongs to
// ended at or before clock-delay-maxLateness (the partition's watermark
// minus maxLateness). maxLateness 0 drops nothing.
func (s Spec) TooLate(ts, clock, delay, maxLateness int64) bool {
	if maxLateness <= 0 {
		return false
	}
	return s.LastEnd(ts) <= satSub(satSub(clock, delay), maxLateness)
}
