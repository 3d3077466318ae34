package transform

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/transform/window"
)

// PartialsSchema is the schema of the files a windowed pipeline's workers
// write: one row, the segment's partial windows (window.Partials'
// encoding). They travel with the segment like data files and are read by
// the table writer's Stage, never committed.
var PartialsSchema = iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "partials", Type: iceberg.PrimitiveTypes.Binary, Required: true})

// PartialsDir is where the partials files go, under the table's location.
const PartialsDir = "data/window-partials"

// Windower folds the rows a Runner computes into the partial windows of
// the open segment, on a worker. It is used by one goroutine.
type Windower struct {
	w     *windowPlan
	r     *Runner
	parts *window.Partials
	vals  []window.Value
	key   []byte
	// times holds the newest event time per partition of the open
	// segment.
	times commit.Offsets
	// clocks holds the newest event time per partition since the run
	// started from the table (with max_lateness only).
	clocks commit.Offsets
	// ts is the event time Prepare read.
	ts int64
}

// NewWindower folds the rows of r, a Runner bound to the program's output
// schema (OutputSchema), into windows.
func (p *Program) NewWindower(r *Runner) *Windower {
	return &Windower{w: p.window, r: r, parts: window.NewPartials(p.window.cfg.Spec, p.window.cfg.Aggs),
		vals: make([]window.Value, len(p.window.aggIn)), times: commit.Offsets{}, clocks: commit.Offsets{}}
}

// SetClocks gives the newest event time of each partition as of where the
// run starts (the table's floe.event-times and the segments accepted
// after it), from which max_lateness is measured.
func (w *Windower) SetClocks(c commit.Offsets) { w.clocks = c.Clone() }

// Prepare reads the row the Runner computed last, a record of topic's
// partition, for Fold: an error (a null group column or event time) is a
// *decode.DecodeError, and so is an event later than max_lateness (late is
// then set): every window it belongs to ended more than max_lateness
// before the partition's watermark, its newest event time minus
// watermark_delay. That depends only on the partition's events before it,
// so every replay decides the same; the record belongs in the dead-letter
// table.
func (w *Windower) Prepare(topic string, partition int32) (late bool, err error) {
	ts, err := w.extract()
	if err != nil {
		return false, err
	}
	w.ts = ts
	if w.w.maxLate <= 0 {
		return false, nil
	}
	clock, ok := w.clocks.Get(topic, partition)
	cfg := w.w.cfg
	if !ok || !cfg.Spec.TooLate(ts, clock, cfg.Delay, w.w.maxLate) {
		return false, nil
	}
	return true, &decode.DecodeError{Field: w.r.p.outs[w.w.time].field.Name, Reason: fmt.Sprintf(
		"window: the event (%s) is later than max_lateness (%s): its last window ended at %s, more than that before its partition's watermark (%s)",
		micros(ts), time.Duration(w.w.maxLate)*time.Microsecond, micros(cfg.Spec.LastEnd(ts)), micros(clock-cfg.Delay))}
}

// Fold folds the row Prepare read into the open segment's partial windows.
// An error (an overflowing sum) is a *decode.DecodeError: the record
// belongs in the dead-letter table, and nothing of it was folded.
func (w *Windower) Fold(topic string, partition int32) error {
	if err := w.parts.Add(string(w.key), w.ts, w.vals); err != nil {
		return &decode.DecodeError{Reason: "window: " + err.Error()}
	}
	w.observe(topic, partition, w.ts)
	return nil
}

// observe counts an event at ts of topic's partition in the segment's
// newest event times and the partition's clock.
func (w *Windower) observe(topic string, partition int32, ts int64) {
	if old, ok := w.times.Get(topic, partition); !ok || ts > old {
		w.times.Set(topic, partition, ts)
	}
	if old, ok := w.clocks.Get(topic, partition); w.w.maxLate > 0 && (!ok || ts > old) {
		w.clocks.Set(topic, partition, ts)
	}
}

func micros(us int64) string { return time.UnixMicro(us).UTC().Format(time.RFC3339Nano) }

// Add prepares and folds the row the Runner computed last, a record of
// topic's partition (Prepare, then Fold). An error is a
// *decode.DecodeError: the record belongs in the dead-letter table, and
// nothing of it was folded.
func (w *Windower) Add(topic string, partition int32) error {
	if _, err := w.Prepare(topic, partition); err != nil {
		return err
	}
	return w.Fold(topic, partition)
}

// extract reads the last row's event time, group key (into w.key) and
// aggregate inputs (into w.vals, whose bytes are the Runner's until its
// next row).
func (w *Windower) extract() (int64, error) {
	ts, err := w.eventTime()
	if err != nil {
		return 0, err
	}
	if w.key, err = w.groupKey(w.key[:0]); err != nil {
		return 0, err
	}
	for i, j := range w.w.aggIn {
		w.vals[i] = w.value(j)
	}
	return ts, nil
}

// Check reports what Add would refuse in the row the Runner computed last
// (a null group column or event time) without folding it: for a record
// the windows already have, read again for another output.
func (w *Windower) Check() error {
	_, err := w.extract()
	return err
}

// Event returns the row Prepare read as a window event (its own copy),
// the way Fold would fold it, and counts it in its partition's clock: what
// a batch recomputation of the windows (window.Batch) takes.
func (w *Windower) Event(topic string, partition int32) window.Event {
	ts := w.ts
	w.observe(topic, partition, ts)
	ev := window.Event{Group: string(w.key), Ts: ts, Vals: make([]window.Value, len(w.vals))}
	for i, v := range w.vals {
		v.Bytes = bytes.Clone(v.Bytes)
		ev.Vals[i] = v
	}
	return ev
}

func (w *Windower) eventTime() (int64, error) {
	j := w.w.time
	c := w.r.Cell(j)
	name := w.r.p.outs[j].field.Name
	if c.Null {
		return 0, &decode.DecodeError{Field: name, Reason: "the event time (window.time) is null"}
	}
	ts := c.Int
	switch w.w.tkind {
	case timeNanos:
		ts = floorDiv(ts, 1000)
	case timeDays:
		if ts > math.MaxInt64/86_400_000_000 || ts < math.MinInt64/86_400_000_000 {
			return 0, &decode.DecodeError{Field: name, Reason: "the event time is out of range"}
		}
		ts *= 86_400_000_000
	}
	if ts < window.MinTime || ts > window.MaxTime {
		return 0, &decode.DecodeError{Field: name, Reason: "the event time is out of range"}
	}
	return ts, nil
}

// groupKey appends the row's group key: each group column's value, in a
// form decodeGroup reads back.
func (w *Windower) groupKey(dst []byte) ([]byte, error) {
	for _, j := range w.w.group {
		c := w.r.Cell(j)
		f := w.r.p.outs[j].field
		if c.Null {
			return dst, &decode.DecodeError{Field: f.Name, Reason: "a group column (window.group_by) is null; filter such records out, or compute a column that is never null"}
		}
		switch f.Type.(type) {
		case iceberg.StringType, iceberg.BinaryType:
			dst = binary.AppendUvarint(dst, uint64(len(c.Bytes)))
			dst = append(dst, c.Bytes...)
		default:
			dst = binary.BigEndian.AppendUint64(dst, uint64(c.Int))
		}
	}
	return dst, nil
}

// value is the aggregate input of output column j (-1: none, count(*)).
func (w *Windower) value(j int) window.Value {
	if j < 0 {
		return window.Value{}
	}
	c := w.r.Cell(j)
	if c.Null {
		return window.Value{Null: true}
	}
	switch w.r.p.outs[j].field.Type.(type) {
	case iceberg.Float32Type, iceberg.Float64Type:
		return window.Value{Float: c.Float}
	case iceberg.StringType, iceberg.BinaryType, iceberg.FixedType, iceberg.UUIDType:
		return window.Value{Bytes: c.Bytes}
	}
	return window.Value{Int: c.Int}
}

// Flush returns the open segment's partial windows, encoded (nil when it
// has none), and its newest event time per partition, and starts the next
// segment.
func (w *Windower) Flush() ([]byte, commit.Offsets, error) {
	times := w.times
	w.times = commit.Offsets{}
	if w.parts.Len() == 0 {
		return nil, times, nil
	}
	b, err := w.parts.MarshalBinary()
	w.parts.Reset()
	if err != nil {
		return nil, nil, fmt.Errorf("transform: encode the partial windows: %w", err)
	}
	return b, times, nil
}

// decodeGroup appends the group columns' values of a group key to their
// builders.
func decodeGroup(key []byte, types []iceberg.Type, bs []array.Builder) error {
	for i, t := range types {
		switch t.(type) {
		case iceberg.StringType, iceberg.BinaryType:
			n, k := binary.Uvarint(key)
			if k <= 0 || uint64(len(key)-k) < n {
				return errors.New("transform: corrupt group key")
			}
			v := key[k : k+int(n)]
			key = key[k+int(n):]
			if sb, ok := bs[i].(*array.StringBuilder); ok {
				sb.BinaryBuilder.Append(v)
			} else {
				bs[i].(*array.BinaryBuilder).Append(v)
			}
		default:
			if len(key) < 8 {
				return errors.New("transform: corrupt group key")
			}
			v := int64(binary.BigEndian.Uint64(key))
			key = key[8:]
			switch b := bs[i].(type) {
			case *array.BooleanBuilder:
				b.Append(v != 0)
			case *array.Int32Builder:
				b.Append(int32(v))
			case *array.Int64Builder:
				b.Append(v)
			case *array.Date32Builder:
				b.Append(arrow.Date32(v))
			case *array.TimestampBuilder:
				b.Append(arrow.Timestamp(v))
			default:
				return fmt.Errorf("transform: group column builder %T", b)
			}
		}
	}
	if len(key) != 0 {
		return errors.New("transform: corrupt group key")
	}
	return nil
}

// GroupKey returns the group key of row i of a window table's (or the
// output's) group columns, cols in group_by order, as the Windower encodes
// it.
func (p *Program) GroupKey(dst []byte, cols []arrow.Array, i int) ([]byte, error) {
	if len(cols) != len(p.window.group) {
		return dst, fmt.Errorf("transform: %d group columns, want %d", len(cols), len(p.window.group))
	}
	for k, a := range cols {
		if a.IsNull(i) {
			return dst, fmt.Errorf("transform: group column %d is null", k)
		}
		var v int64
		switch a := a.(type) {
		case *array.String:
			s := a.Value(i)
			dst = binary.AppendUvarint(dst, uint64(len(s)))
			dst = append(dst, s...)
			continue
		case *array.Binary:
			b := a.Value(i)
			dst = binary.AppendUvarint(dst, uint64(len(b)))
			dst = append(dst, b...)
			continue
		case *array.Boolean:
			if a.Value(i) {
				v = 1
			}
		case *array.Int32:
			v = int64(a.Value(i))
		case *array.Int64:
			v = a.Value(i)
		case *array.Date32:
			v = int64(a.Value(i))
		case *array.Timestamp:
			v = int64(a.Value(i))
		default:
			return dst, fmt.Errorf("transform: group column %d is %s", k, a.DataType())
		}
		dst = binary.BigEndian.AppendUint64(dst, uint64(v))
	}
	return dst, nil
}

// GroupColumns names the group columns, in group_by order.
func (p *Program) GroupColumns() []string {
	var names []string
	for _, j := range p.window.group {
		names = append(names, p.outs[j].field.Name)
	}
	return names
}

// AggregateColumns names the aggregate columns, in order.
func (p *Program) AggregateColumns() []string {
	var names []string
	for _, a := range p.window.aggs {
		names = append(names, a.Name)
	}
	return names
}

// DescribeGroup renders a group key as its values, for messages.
func (p *Program) DescribeGroup(key string) string {
	b := []byte(key)
	var parts []string
	for _, j := range p.window.group {
		switch p.outs[j].field.Type.(type) {
		case iceberg.StringType, iceberg.BinaryType:
			n, k := binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < n {
				return fmt.Sprintf("%q", key)
			}
			parts = append(parts, fmt.Sprintf("%q", b[k:k+int(n)]))
			b = b[k+int(n):]
		default:
			if len(b) < 8 {
				return fmt.Sprintf("%q", key)
			}
			parts = append(parts, fmt.Sprint(int64(binary.BigEndian.Uint64(b))))
			b = b[8:]
		}
	}
	return strings.Join(parts, ",")
}
