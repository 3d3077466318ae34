package transform

import (
	"cmp"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/apache/iceberg-go"

	"github.com/floelake/floe/ingest/transform/window"
	"github.com/floelake/floe/internal/conf"
)

// WindowConfig aggregates a pipeline's records (after its filter and
// computed columns) per group and event-time window. The table then holds
// one row per group and window, keyed by the group columns and
// window_start, corrected at every commit as events arrive, however late.
type WindowConfig struct {
	// Time is the event-time column: a timestamp, timestamptz or date
	// column of the transform's output.
	Time string `yaml:"time"`
	// Type is tumbling (the default), hopping or session.
	Type string `yaml:"type"`
	// Size is a tumbling or hopping window's length.
	Size conf.Duration `yaml:"size"`
	// Slide is the distance between a hopping window's starts.
	Slide conf.Duration `yaml:"slide"`
	// Gap closes a session: a session ends Gap after its last event.
	Gap conf.Duration `yaml:"gap"`
	// GroupBy lists the grouping columns of the transform's output
	// (boolean, int, long, string, binary, date, timestamp or timestamptz).
	GroupBy []string `yaml:"group_by"`
	// Aggregates are the table's aggregate columns.
	Aggregates []Aggregate `yaml:"aggregates"`
	// WatermarkDelay is the out-of-orderness allowed: a window counts as
	// complete once every partition's newest event time is WatermarkDelay
	// past its end. It decides when a window leaves memory (with
	// Retention) and what MaxLateness measures from; never what counts.
	WatermarkDelay conf.Duration `yaml:"watermark_delay"`
	// MaxLateness, when set, drops events whose every window ended more
	// than this before their Kafka partition's watermark (its newest event
	// time minus WatermarkDelay): they go to the dead-letter table with
	// the reason. 0, the default, drops nothing: a late event re-opens its
	// window whatever its lateness.
	MaxLateness conf.Duration `yaml:"max_lateness"`
}

// Aggregate is one aggregate column.
type Aggregate struct {
	Name string `yaml:"name"`
	// Fn is count, sum, min, max, avg or approx_count_distinct.
	Fn string `yaml:"fn"`
	// Of is the column aggregated; empty for count (count of events).
	Of string `yaml:"of"`
	// Precision is approx_count_distinct's HyperLogLog precision, 4 to 18
	// (default 14: a relative error of about 0.8%).
	Precision int `yaml:"precision"`
}

// StateConfig tunes the state of a stateful transform.
type StateConfig struct {
	// Retention is how long a window stays in memory after the watermark
	// passes its end (default 1h). An event for a window no longer in
	// memory reads the window's row back from the table.
	Retention conf.Duration `yaml:"retention"`
	// IdlePartition is how long (in wall time) a partition may deliver no
	// event before the window watermark stops waiting for it (default 5m).
	IdlePartition conf.Duration `yaml:"idle_partition"`
}

// DefaultRetention is the state retention of a pipeline that sets none.
const DefaultRetention = time.Hour

// The columns every window table has besides its group and aggregate
// columns.
const (
	ColWindowStart = "window_start"
	ColWindowEnd   = "window_end"
	ColEvents      = "events"
	ColRevision    = "revision"
	ColUpdatedAt   = "updated_at"
	// ColState holds the window's accumulators (window.Aggs.AppendBinary):
	// what a late event is merged into when its window is read back.
	ColState = "_floe_window"
)

// windowCols are the names a group or aggregate column cannot take.
var windowCols = []string{ColWindowStart, ColWindowEnd, ColEvents, ColRevision, ColUpdatedAt, ColState}

// windowPlan is a WindowConfig checked against the transform's output.
type windowPlan struct {
	cfg   window.Config
	time  int // output column of the event time
	tkind timeKind
	// group are the output columns grouped by, with their fields.
	group []int
	// aggIn is the output column each aggregate reads (-1: count(*)).
	aggIn   []int
	aggs    []Aggregate
	outType []iceberg.Type // each aggregate column's type
	// maxLate is max_lateness in µs (0: none).
	maxLate int64
	// idle is state.idle_partition.
	idle time.Duration
}

type timeKind uint8

const (
	timeMicros timeKind = iota + 1
	timeNanos
	timeDays
)

// compileWindow checks w against the output columns outs, adding problems
// to pr under "window".
func compileWindow(pr *conf.Problems, w *WindowConfig, st StateConfig, outs []outCol) *windowPlan {
	field := func(f string) string { return "window." + f }
	byName := map[string]int{}
	for i, o := range outs {
		byName[o.field.Name] = i
	}
	plan := &windowPlan{}
	ok := true
	bad := func(f, format string, args ...any) {
		pr.Addf(field(f), format, args...)
		ok = false
	}
	if i, found := byName[w.Time]; !found {
		bad("time", "must name a timestamp, timestamptz or date column of the output, got %q", w.Time)
	} else {
		plan.time = i
		switch outs[i].field.Type.(type) {
		case iceberg.TimestampType, iceberg.TimestampTzType:
			plan.tkind = timeMicros
		case iceberg.TimestampNsType, iceberg.TimestampTzNsType:
			plan.tkind = timeNanos
		case iceberg.DateType:
			plan.tkind = timeDays
		default:
			bad("time", "column %q is %s; the event time must be a timestamp, timestamptz or date", w.Time, outs[i].field.Type)
		}
	}
	spec := window.Spec{Size: int64(w.Size.D() / time.Microsecond), Slide: int64(w.Slide.D() / time.Microsecond), Gap: int64(w.Gap.D() / time.Microsecond)}
	switch w.Type {
	case "", "tumbling":
		spec.Kind = window.Tumbling
	case "hopping":
		spec.Kind = window.Hopping
	case "session":
		spec.Kind = window.Session
	default:
		bad("type", "must be tumbling, hopping or session, got %q", w.Type)
	}
	if spec.Kind != 0 {
		if err := spec.Validate(); err != nil {
			pr.Addf("window", "%v", err)
			ok = false
		}
	}
	seen := map[string]string{}
	for _, c := range windowCols {
		seen[c] = "a column every window table has"
	}
	for i, g := range w.GroupBy {
		f := fmt.Sprintf("group_by[%d]", i)
		j, found := byName[g]
		switch {
		case !found:
			bad(f, "no output column %q", g)
			continue
		case seen[g] != "":
			bad(f, "column %q is also %s", g, seen[g])
			continue
		}
		seen[g] = "a group column"
		switch outs[j].field.Type.(type) {
		case iceberg.BooleanType, iceberg.Int32Type, iceberg.Int64Type, iceberg.StringType, iceberg.BinaryType,
			iceberg.DateType, iceberg.TimestampType, iceberg.TimestampTzType:
		default:
			bad(f, "column %q is %s; a group column must be boolean, int, long, string, binary, date, timestamp or timestamptz", g, outs[j].field.Type)
			continue
		}
		plan.group = append(plan.group, j)
	}
	if len(w.Aggregates) == 0 {
		bad("aggregates", "must list at least one aggregate")
	}
	for i, a := range w.Aggregates {
		f := fmt.Sprintf("aggregates[%d]", i)
		if a.Name == "" {
			bad(f+".name", "must not be empty")
			continue
		}
		if seen[a.Name] != "" {
			bad(f+".name", "column %q is also %s", a.Name, seen[a.Name])
			continue
		}
		seen[a.Name] = "an aggregate"
		fn, err := window.ParseFunc(a.Fn)
		if err != nil {
			bad(f+".fn", "must be count, sum, min, max, avg or approx_count_distinct, got %q", a.Fn)
			continue
		}
		spec := window.AggSpec{Func: fn}
		if a.Precision != 0 {
			if fn != window.ApproxDistinct {
				bad(f+".precision", "applies to approx_count_distinct only")
				continue
			}
			if a.Precision < 4 || a.Precision > 18 {
				bad(f+".precision", "must be 4 to 18, got %d", a.Precision)
				continue
			}
			spec.Precision = uint8(a.Precision)
		}
		in := -1
		var outType iceberg.Type
		if a.Of == "" {
			if fn != window.Count {
				bad(f+".of", "%s needs a column", a.Fn)
				continue
			}
			spec.Star = true
			outType = iceberg.PrimitiveTypes.Int64
		} else {
			j, found := byName[a.Of]
			if !found {
				bad(f+".of", "no output column %q", a.Of)
				continue
			}
			in = j
			t := outs[j].field.Type
			switch t.(type) {
			case iceberg.BooleanType, iceberg.Int32Type, iceberg.Int64Type, iceberg.DateType, iceberg.TimeType,
				iceberg.TimestampType, iceberg.TimestampTzType, iceberg.TimestampNsType, iceberg.TimestampTzNsType:
				spec.In = window.KindInt
			case iceberg.Float32Type, iceberg.Float64Type:
				spec.In = window.KindFloat
			case iceberg.StringType, iceberg.BinaryType, iceberg.FixedType, iceberg.UUIDType:
				spec.In = window.KindBytes
			default:
				bad(f+".of", "column %q is %s, which cannot be aggregated (compute a double column from it)", a.Of, t)
				continue
			}
			if err := spec.Validate(); err != nil {
				bad(f+".fn", "%s of column %q (%s): %v", a.Fn, a.Of, t, err)
				continue
			}
			switch fn {
			case window.Count, window.ApproxDistinct:
				outType = iceberg.PrimitiveTypes.Int64
			case window.Avg:
				switch t.(type) {
				case iceberg.Int32Type, iceberg.Int64Type, iceberg.Float32Type, iceberg.Float64Type:
				default:
					// The exact sum of timestamps overflows within a few
					// thousand events.
					bad(f+".fn", "avg of %s column %q: avg takes int, long, float or double columns", t, a.Of)
					continue
				}
				outType = iceberg.PrimitiveTypes.Float64
			case window.Sum:
				if _, isBool := t.(iceberg.BooleanType); isBool {
					bad(f+".fn", "sum of boolean column %q: count the true ones with a computed column and sum that", a.Of)
					continue
				}
				if spec.In == window.KindInt {
					switch t.(type) {
					case iceberg.Int32Type, iceberg.Int64Type:
						outType = iceberg.PrimitiveTypes.Int64
					default:
						bad(f+".fn", "sum of %s column %q has no meaning", t, a.Of)
						continue
					}
				} else {
					outType = iceberg.PrimitiveTypes.Float64
				}
			default: // min, max: the column's type
				outType = t
			}
		}
		plan.cfg.Aggs = append(plan.cfg.Aggs, spec)
		plan.aggIn = append(plan.aggIn, in)
		plan.aggs = append(plan.aggs, a)
		plan.outType = append(plan.outType, outType)
	}
	if w.WatermarkDelay < 0 {
		bad("watermark_delay", "must not be negative")
	}
	if w.MaxLateness < 0 {
		bad("max_lateness", "must not be negative")
	}
	retention := st.Retention.D()
	if retention == 0 {
		retention = DefaultRetention
	}
	if retention < 0 {
		pr.Addf("state.retention", "must not be negative")
		ok = false
	}
	plan.idle = cmp.Or(st.IdlePartition.D(), DefaultIdlePartition)
	if plan.idle < 0 {
		pr.Addf("state.idle_partition", "must not be negative")
		ok = false
	}
	if !ok {
		return nil
	}
	plan.cfg.Spec = spec
	plan.cfg.Delay = int64(w.WatermarkDelay.D() / time.Microsecond)
	// max_lateness is decided on the workers, per partition, where the
	// record can still go to the dead-letter table (Windower.Late): the
	// state never drops anything.
	plan.maxLate = int64(w.MaxLateness.D() / time.Microsecond)
	plan.cfg.Retention = int64(min(retention, time.Duration(math.MaxInt64)) / time.Microsecond)
	return plan
}

// windowSchema is the schema of a window table: the group columns (required:
// they are key columns), window_start and window_end, the aggregates,
// events, revision, updated_at and the accumulators, keyed by the group
// columns and window_start.
func (p *Program) windowSchema() (*iceberg.Schema, error) {
	w := p.window
	var fields []iceberg.NestedField
	for _, j := range w.group {
		f := p.outs[j].field
		f.Required, f.Doc = true, "group"
		fields = append(fields, f)
	}
	ts := iceberg.PrimitiveTypes.TimestampTz
	fields = append(fields,
		iceberg.NestedField{Name: ColWindowStart, Type: ts, Required: true, Doc: "start of the window (inclusive)"},
		iceberg.NestedField{Name: ColWindowEnd, Type: ts, Required: true, Doc: "end of the window (exclusive); a session's last event plus its gap"},
	)
	for i, a := range w.aggs {
		doc := a.Fn + "(" + a.Of + ")"
		if a.Of == "" {
			doc = "count(*)"
		}
		fields = append(fields, iceberg.NestedField{Name: a.Name, Type: w.outType[i], Doc: doc})
	}
	fields = append(fields,
		iceberg.NestedField{Name: ColEvents, Type: iceberg.PrimitiveTypes.Int64, Required: true, Doc: "events in the window"},
		iceberg.NestedField{Name: ColRevision, Type: iceberg.PrimitiveTypes.Int64, Required: true, Doc: "times the row was written: 1 at first, +1 at every correction"},
		iceberg.NestedField{Name: ColUpdatedAt, Type: ts, Required: true, Doc: "when the row was last written"},
		iceberg.NestedField{Name: ColState, Type: iceberg.PrimitiveTypes.Binary, Required: true, Doc: "floe's accumulators of the window, for late events"},
	)
	fresh, err := iceberg.AssignFreshSchemaIDs(iceberg.NewSchema(0, fields...), nil)
	if err != nil {
		return nil, fmt.Errorf("transform: window table schema: %w", err)
	}
	var ids []int
	for _, name := range p.WindowKey() {
		f, _ := fresh.FindFieldByName(name)
		ids = append(ids, f.ID)
	}
	return iceberg.NewSchemaWithIdentifiers(0, ids, fresh.Fields()...), nil
}

// Windowed reports whether the program aggregates its rows into windows.
func (p *Program) Windowed() bool { return p != nil && p.window != nil }

// WindowKey is the key of a window table: the group columns and
// window_start.
func (p *Program) WindowKey() []string {
	if p.window == nil {
		return nil
	}
	var key []string
	for _, j := range p.window.group {
		key = append(key, p.outs[j].field.Name)
	}
	return append(key, ColWindowStart)
}

// WindowConfig returns the window state's configuration.
func (p *Program) WindowConfig() window.Config { return p.window.cfg }

// PropWindow is the table property a window table records its window in
// (WindowSignature): the partials and the state checkpoint only fit the
// window they were made for.
const PropWindow = "floe.window"

// WindowSignature describes the window: its kind and durations, the event
// time, the group columns and the aggregates, as PropWindow records it.
func (p *Program) WindowSignature() string {
	w := p.window
	var b strings.Builder
	sp := w.cfg.Spec
	fmt.Fprintf(&b, "%s size=%dus slide=%dus gap=%dus time=%s group_by=[%s] aggregates=[", sp.Kind, sp.Size, sp.Slide, sp.Gap,
		p.outs[w.time].field.Name, strings.Join(p.GroupColumns(), ","))
	for i, a := range w.aggs {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%s=%s(%s)", a.Name, w.cfg.Aggs[i].Func, a.Of)
		if a.Precision != 0 {
			fmt.Fprintf(&b, "/p%d", a.Precision)
		}
	}
	b.WriteString("]")
	return b.String()
}
