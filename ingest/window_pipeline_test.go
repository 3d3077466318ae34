package ingest_test

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/ingest/transform/window"
	"github.com/floelake/floe/internal/conf"
)

// windowEvent is one produced click.
type windowEvent struct {
	user, country string
	ts            time.Time
	amount        int64
}

func (e windowEvent) json() string {
	return fmt.Sprintf(`{"user":%q,"country":%q,"ts":%q,"amount":%d}`, e.user, e.country, e.ts.Format(time.RFC3339Nano), e.amount)
}

// expectedWindows computes the window table a batch job would: per country
// and minute, count, sum, avg and approximate distinct users, with the
// package's batch reference.
func expectedWindows(t *testing.T, spec window.Spec, aggs window.Aggs, events []windowEvent) map[string]string {
	t.Helper()
	var evs []window.Event
	for _, e := range events {
		if e.country == "XX" {
			continue // the filter's
		}
		key := binary.AppendUvarint(nil, uint64(len(e.country)))
		key = append(key, e.country...)
		evs = append(evs, window.Event{Group: string(key), Ts: e.ts.UnixMicro(), Vals: []window.Value{
			{}, {Int: e.amount * 2}, {Int: e.amount * 2}, {Bytes: []byte(e.user)},
		}})
	}
	ws, err := window.Batch(spec, aggs, evs)
	require.NoError(t, err)
	out := map[string]string{}
	for _, w := range ws {
		country := w.Group[1:]
		k := fmt.Sprintf("%s@%s", country, time.UnixMicro(w.Start).UTC().Format(time.RFC3339Nano))
		out[k] = fmt.Sprintf("end=%s n=%d sum=%d avg=%.4f users=%d events=%d",
			time.UnixMicro(w.End).UTC().Format(time.RFC3339Nano), aggs.Result(w.Accs, 0).Int, aggs.Result(w.Accs, 1).Int,
			aggs.Result(w.Accs, 2).Float, aggs.Result(w.Accs, 3).Int, w.Events)
	}
	return out
}

// windowTable reads the window table the same way.
func windowTable(t *testing.T, h *harness) (map[string]string, map[string]int64) {
	t.Helper()
	got, revs := map[string]string{}, map[string]int64{}
	if !h.tableExists("ns.events") {
		return got, revs
	}
	for _, r := range tableRows(t, h, "ns.events") {
		start, err := time.Parse(time.RFC3339Nano, r["window_start"].(string))
		require.NoError(t, err, "window_start %v", r["window_start"])
		end, err := time.Parse(time.RFC3339Nano, r["window_end"].(string))
		require.NoError(t, err)
		k := fmt.Sprintf("%s@%s", r["country"], start.Format(time.RFC3339Nano))
		if _, dup := got[k]; dup {
			t.Fatalf("two rows for window %s", k)
		}
		got[k] = fmt.Sprintf("end=%s n=%d sum=%d avg=%.4f users=%d events=%d", end.Format(time.RFC3339Nano),
			int64(r["clicks"].(float64)), int64(r["amount2"].(float64)), r["avg_amount2"].(float64), int64(r["users"].(float64)), int64(r["events"].(float64)))
		revs[k] = int64(r["revision"].(float64))
	}
	return got, revs
}

// TestPipelineWindows: a windowed pipeline's table holds one row per
// country and minute that equals the batch computation over every event
// committed, after a restart, with late events for windows long evicted
// from memory (read back from the table and corrected), and with records
// the filter leaves out and records that fail going where they belong.
func TestPipelineWindows(t *testing.T) {
	for _, kind := range []string{"tumbling", "session"} {
		t.Run(kind, func(t *testing.T) {
			h := newHarness(t, nil, ingest.KafkaConfig{})
			wc := &transform.WindowConfig{
				Time: "ts", Type: kind, Size: conf.Duration(time.Minute), GroupBy: []string{"country"},
				Aggregates: []transform.Aggregate{
					{Name: "clicks", Fn: "count"},
					{Name: "amount2", Fn: "sum", Of: "amount2"},
					{Name: "avg_amount2", Fn: "avg", Of: "amount2"},
					{Name: "users", Fn: "approx_count_distinct", Of: "user"},
				},
			}
			spec := window.Spec{Kind: window.Tumbling, Size: time.Minute.Microseconds()}
			if kind == "session" {
				wc.Size, wc.Gap = 0, conf.Duration(30*time.Second)
				spec = window.Spec{Kind: window.Session, Gap: (30 * time.Second).Microseconds()}
			}
			p := ingest.PipelineConfig{
				Schema: []ingest.Column{
					{Name: "user", Type: "string", Required: true},
					{Name: "country", Type: "string"},
					{Name: "ts", Type: "timestamptz", Required: true},
					{Name: "amount", Type: "long"},
				},
				Transform: &transform.Config{
					Filter:  `country != "XX"`,
					Columns: []transform.Column{{Name: "amount2", Expr: `amount * 2`}},
					Window:  wc,
					// Every window leaves memory as soon as the watermark
					// passes it: a late event reads it back.
					State: transform.StateConfig{Retention: conf.Duration(time.Millisecond)},
				},
			}
			aggs := window.Aggs{{Func: window.Count, Star: true}, {Func: window.Sum, In: window.KindInt}, {Func: window.Avg, In: window.KindInt},
				{Func: window.ApproxDistinct, In: window.KindBytes}}
			r := rand.New(rand.NewPCG(3, 4))
			t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			gen := func(n int, from time.Time, span time.Duration) []windowEvent {
				var out []windowEvent
				for range n {
					out = append(out, windowEvent{
						user: fmt.Sprintf("u%d", r.IntN(40)), country: []string{"DE", "FR", "PL", "XX"}[r.IntN(4)],
						ts: from.Add(time.Duration(r.Int64N(int64(span)))), amount: r.Int64N(100),
					})
				}
				return out
			}
			first := gen(300, t0, 10*time.Minute)
			var values []string
			for _, e := range first {
				values = append(values, e.json())
			}
			// One record with a null group column and one whose event
			// time does not parse: dead letters.
			values = append(values, `{"user":"u1","ts":"2026-05-01T12:00:00Z","amount":1}`, `{"user":"u1","country":"DE","ts":"soon","amount":1}`)
			h.produce(values...)
			want := expectedWindows(t, spec, aggs, first)
			h.runUntil(t, p, func() bool {
				got, _ := windowTable(t, h)
				return equalMaps(got, want) && h.tableExists("ns.events__dlq") && h.rows("ns.events__dlq") == 2
			})
			got, revs := windowTable(t, h)
			require.Equal(t, want, got)
			require.EqualValues(t, 2, h.rows("ns.events__dlq"))

			// Late events, an hour late, for the first minutes, and new
			// ones: after a restart (the state comes from the checkpoint)
			// the early windows are read back from the table and
			// corrected, the others added.
			late := append(gen(60, t0, 3*time.Minute), gen(60, t0.Add(70*time.Minute), 5*time.Minute)...)
			values = values[:0]
			for _, e := range late {
				values = append(values, e.json())
			}
			h.produce(values...)
			all := append(first, late...)
			want = expectedWindows(t, spec, aggs, all)
			st := h.runUntil(t, p, func() bool { got, _ := windowTable(t, h); return equalMaps(got, want) })
			require.NotNil(t, st)
			require.Positive(t, st.Loaded.Load(), "no window was read back from the table")
			require.Positive(t, st.Reopened.Load(), "no window counted as re-opened")
			got2, revs2 := windowTable(t, h)
			require.Equal(t, want, got2)
			reopened := 0
			for k, rev := range revs2 {
				if old, ok := revs[k]; ok && got[k] != got2[k] {
					require.Greater(t, rev, old, "window %s changed without a new revision", k)
					reopened++
				}
			}
			require.Positive(t, reopened, "no window was corrected by the late events")
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// runUntil runs a pipeline until done holds (checked between commits),
// then stops it gracefully. It returns the window state's totals of a
// windowed pipeline (nil for another).
func (h *harness) runUntil(t *testing.T, p ingest.PipelineConfig, done func() bool) *transform.StageStats {
	t.Helper()
	pl, stop := h.start(p, 0)
	var stats *transform.StageStats
	deadline := time.Now().Add(60 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			_ = stop()
			got := ""
			if err := pl.Healthy(); err != nil {
				got = err.Error()
			}
			t.Fatalf("timed out: stats %+v, health %s", pl.Stats(), strings.TrimSpace(got))
		}
		time.Sleep(100 * time.Millisecond)
		if stats == nil && p.Windowed() {
			stats, _ = h.node.Windows(cmp.Or(p.Table, "ns.events"))
		}
	}
	if stats == nil && p.Windowed() {
		stats, _ = h.node.Windows(cmp.Or(p.Table, "ns.events"))
	}
	require.NoError(t, stop())
	return stats
}

// TestPipelineWindowReadBack: beside a stream of on-time events, an event
// hours late creates its window's row, which leaves memory at once (the
// retention is shorter than its lateness); a second event of the same
// window reads the row back and corrects it.
func TestPipelineWindowReadBack(t *testing.T) {
	h := newHarness(t, nil, ingest.KafkaConfig{})
	p := ingest.PipelineConfig{
		Schema: []ingest.Column{
			{Name: "country", Type: "string", Required: true},
			{Name: "ts", Type: "timestamptz", Required: true},
		},
		Transform: &transform.Config{
			Window: &transform.WindowConfig{Time: "ts", Size: conf.Duration(time.Minute), GroupBy: []string{"country"},
				Aggregates: []transform.Aggregate{{Name: "n", Fn: "count"}}},
			State: transform.StateConfig{Retention: conf.Duration(10 * time.Minute)},
		},
	}
	pl, stop := h.start(p, 0)
	defer func() { require.NoError(t, stop()) }()
	now := time.Now().UTC()
	// On-time events in every partition, so that the watermark is now.
	for part := range int32(3) {
		h.produceValuesTo(part, fmt.Sprintf(`{"country":"DE","ts":%q}`, now.Add(time.Duration(part)*time.Millisecond).Format(time.RFC3339Nano)))
	}
	old := now.Add(-3 * time.Hour).Truncate(time.Minute).Add(10 * time.Second)
	start := old.Truncate(time.Minute).Format(time.RFC3339Nano)
	// events of the late window's row (0: none yet).
	events := func() int64 {
		if !h.tableExists("ns.events") {
			return 0
		}
		for _, r := range tableRows(t, h, "ns.events") {
			if r["country"] == "LATE" && r["window_start"] == start {
				return int64(r["events"].(float64))
			}
		}
		return 0
	}
	wait := func(want int64) {
		deadline := time.Now().Add(30 * time.Second)
		for events() != want {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %d events in the late window; stats %+v, window state %+v; rows %v",
					want, pl.Stats(), windowStats(h), tableRows(t, h, "ns.events"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	h.produceValuesTo(1, fmt.Sprintf(`{"country":"LATE","ts":%q}`, old.Format(time.RFC3339Nano)))
	wait(1)
	h.produceValuesTo(2, fmt.Sprintf(`{"country":"LATE","ts":%q}`, old.Add(time.Second).Format(time.RFC3339Nano)))
	wait(2)
	st := windowStats(h)
	require.Positive(t, st["read back"], "the second event did not read the window back: %v", st)
	require.Positive(t, st["by index"], "the window was not read back through the key index: %v", st)
}

func windowStats(h *harness) map[string]int64 {
	st, err := h.node.Windows("ns.events")
	if err != nil {
		return nil
	}
	return map[string]int64{"windows": st.Windows.Load(), "reopened": st.Reopened.Load(), "read back": st.Loaded.Load(), "in memory": st.InMemory.Load(),
		"by index": st.ByIndex.Load()}
}

// produceValuesTo produces values to one partition of the events topic.
func (h *harness) produceValuesTo(partition int32, values ...string) {
	h.t.Helper()
	var recs []*kgo.Record
	for _, v := range values {
		recs = append(recs, &kgo.Record{Topic: "events", Value: []byte(v), Partition: partition})
	}
	h.produceRecords(recs...)
}

// TestPipelineRefusesAnotherWindowOnItsTable: a window table records its
// window; a pipeline with another window (another size) on that table is a
// configuration error, not a stalled writer.
func TestPipelineRefusesAnotherWindowOnItsTable(t *testing.T) {
	h := newHarness(t, nil, ingest.KafkaConfig{})
	p := ingest.PipelineConfig{
		Schema: []ingest.Column{{Name: "country", Type: "string", Required: true}, {Name: "ts", Type: "timestamptz", Required: true}},
		Transform: &transform.Config{Window: &transform.WindowConfig{Time: "ts", Size: conf.Duration(time.Minute), GroupBy: []string{"country"},
			Aggregates: []transform.Aggregate{{Name: "n", Fn: "count"}}}},
	}
	h.produce(`{"country":"DE","ts":"2026-01-01T00:00:00Z"}`)
	h.runUntil(t, p, func() bool {
		if !h.tableExists("ns.events") {
			return false
		}
		return h.rows("ns.events") == 1
	})
	p.Transform.Window.Size = conf.Duration(time.Hour)
	pl, stop := h.start(p, 0)
	deadline := time.Now().Add(30 * time.Second)
	for pl.Healthy() == nil || !strings.Contains(pl.Healthy().Error(), "holds the windows of another definition") {
		if time.Now().After(deadline) {
			_ = stop()
			t.Fatalf("no configuration error; health %v", pl.Healthy())
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = stop()
}

// tableExists reports whether the pipeline created the table yet; any other
// error loading it fails the test.
func (h *harness) tableExists(name string) bool {
	h.t.Helper()
	_, err := h.cat.LoadTable(context.Background(), catalog.Ident(name))
	if errors.Is(err, icecat.ErrNoSuchTable) {
		return false
	}
	require.NoError(h.t, err)
	return true
}

// TestPipelineWindowMaxLateness: with max_lateness, an event whose window
// ended more than max_lateness before its partition's watermark is a dead
// letter with the reason and is counted; the partition's clock survives a
// restart (floe.event-times), so the same lateness is judged the same way
// after it; another partition's clock does not make an event late; and an
// event within max_lateness re-opens its window.
func TestPipelineWindowMaxLateness(t *testing.T) {
	h := newHarness(t, nil, ingest.KafkaConfig{})
	p := ingest.PipelineConfig{
		Schema:        []ingest.Column{{Name: "country", Type: "string", Required: true}, {Name: "ts", Type: "timestamptz", Required: true}},
		KafkaMetadata: []string{"partition", "offset"},
		Transform: &transform.Config{Window: &transform.WindowConfig{Time: "ts", Size: conf.Duration(time.Minute), GroupBy: []string{"country"},
			Aggregates: []transform.Aggregate{{Name: "n", Fn: "count"}}, WatermarkDelay: conf.Duration(10 * time.Second),
			MaxLateness: conf.Duration(time.Hour)}},
	}
	ev := func(c, ts string) string { return fmt.Sprintf(`{"country":%q,"ts":%q}`, c, ts) }
	// Partition 0 reaches 12:00; partition 1 stays at 09:00.
	h.produceValuesTo(0, ev("DE", "2026-01-01T12:00:00Z"))
	h.produceValuesTo(1, ev("FR", "2026-01-01T09:00:00Z"))
	dead := func() int64 {
		if !h.tableExists("ns.events__dlq") {
			return 0
		}
		return h.rows("ns.events__dlq")
	}
	h.runUntil(t, p, func() bool { return h.tableExists("ns.events") && h.rows("ns.events") == 2 })

	// After a restart: on partition 0, 10:58:50 (its window ended at
	// 10:59:00, 1h00:50 before the watermark 11:59:50) is too late, and
	// 11:00:30 (window end 11:01) is not; on partition 1, 09:00:30 is on
	// time whatever partition 0's clock.
	h.produceValuesTo(0, ev("DE", "2026-01-01T10:58:50Z"), ev("DE", "2026-01-01T11:00:30Z"))
	h.produceValuesTo(1, ev("FR", "2026-01-01T09:00:30Z"))
	h.runUntil(t, p, func() bool {
		var n int64
		for _, ps := range h.offsets("ns.events") {
			for _, o := range ps {
				n += o
			}
		}
		return dead() == 1 && n == 5
	})

	rows := tableRows(t, h, "ns.events__dlq")
	require.Len(t, rows, 1)
	require.EqualValues(t, 0, rows[0]["partition"], "dead letter %v", rows[0])
	require.EqualValues(t, 1, rows[0]["offset"], "dead letter %v", rows[0])
	require.Contains(t, rows[0]["error"], "later than max_lateness (1h0m0s)", "dead letter %v", rows[0])
	require.Contains(t, rows[0]["error"], "partition's watermark (2026-01-01T11:59:50Z)", "dead letter %v", rows[0])
	require.EqualValues(t, 1, h.metrics.Sum("floe_window_dropped_events_total", "table", "ns.events"))
	got := map[string]int64{}
	for _, r := range tableRows(t, h, "ns.events") {
		got[fmt.Sprint(r["country"], "@", r["window_start"])] = int64(r["n"].(float64))
	}
	require.Equal(t, map[string]int64{
		"DE@2026-01-01T12:00:00Z": 1, "DE@2026-01-01T11:00:00Z": 1, "FR@2026-01-01T09:00:00Z": 2,
	}, got)
}
