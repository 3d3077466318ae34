package gen

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/stretchr/testify/require"
)

// stepClock is a deterministic clock advancing 1ms per reading, so tests
// see timestamps move (and cross seconds) without depending on wall time.
func stepClock(start time.Time) func() time.Time {
	t := start
	return func() time.Time {
		t = t.Add(time.Millisecond)
		return t
	}
}

var epoch = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

func mustNew(t testing.TB, kind Kind, cfg Config) *Generator {
	t.Helper()
	g, err := New(kind, cfg)
	require.NoError(t, err)
	return g
}

func TestDeterministic(t *testing.T) {
	for _, kind := range Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			gen := func(seed int64) [][]byte {
				g := mustNew(t, kind, Config{Seed: seed, MalformedRate: 0.05, LateRate: 0.1, Now: stepClock(epoch)})
				var out [][]byte
				for range 10_000 {
					v, k, m := g.Next(nil)
					out = append(out, fmt.Appendf(v, "|%s|%v", k, m))
				}
				return out
			}
			a, b, c := gen(42), gen(42), gen(43)
			require.Equal(t, a, b, "same seed must give the same records")
			same := 0
			for i := range a {
				if bytes.Equal(a[i], c[i]) {
					same++
				}
			}
			require.Zero(t, same, "different seeds should give different records")
		})
	}
}

func TestNextAppends(t *testing.T) {
	g := mustNew(t, Clicks, Config{MalformedRate: -1, Now: stepClock(epoch)})
	prefix := []byte("prefix:")
	v, _, _ := g.Next(prefix)
	require.True(t, bytes.HasPrefix(v, prefix))
	require.NoError(t, json.Unmarshal(v[len(prefix):], new(map[string]any)))
}

// TestRecordsDecodeStrictly checks both directions of the malformed flag:
// every valid record decodes into Schema(kind) under a strict decoder and
// every record flagged malformed is rejected by it.
func TestRecordsDecodeStrictly(t *testing.T) {
	for _, kind := range Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			sc := Schema(kind)
			g := mustNew(t, kind, Config{Seed: 7, MalformedRate: 0.05, LateRate: 0.1, Now: stepClock(epoch)})
			reasons := map[string]int{}
			var valid int
			for i := range 50_000 {
				v, k, class := g.Next(nil)
				if class == Tombstone {
					require.Equal(t, Orders, kind, "only orders are deleted")
					require.Empty(t, v, "a tombstone has no value")
					continue
				}
				obj, err := strictDecode(sc, v)
				if class == Malformed {
					require.Error(t, err, "record %d flagged malformed but decodes: %s", i, v)
					reasons[reason(err)]++
					continue
				}
				require.NoError(t, err, "record %d: %s", i, v)
				checkSemantics(t, kind, obj, k, v)
				valid++
			}
			t.Logf("%d valid, rejections by reason: %v", valid, reasons)
			for _, r := range []string{"syntax", "missing", "type", "timestamp"} {
				require.Positive(t, reasons[r], "no malformed record of kind %q", r)
			}
		})
	}
}

func checkSemantics(t *testing.T, kind Kind, obj map[string]any, key, raw []byte) {
	t.Helper()
	ts, err := time.Parse("2006-01-02T15:04:05.000Z", obj["ts"].(string))
	require.NoError(t, err, "ts must be RFC 3339 UTC with milliseconds: %s", raw)
	switch kind {
	case Clicks:
		require.Equal(t, string(key), obj["user_id"].(json.Number).String())
		require.Len(t, obj["event_id"], 16)
		require.Contains(t, []string{"mobile", "desktop", "tablet"}, obj["device"])
		require.True(t, strings.HasPrefix(obj["url"].(string), "/"), "url %q", obj["url"])
	case Orders:
		require.Equal(t, strconv.Quote(obj["order_id"].(string)), string(key), "the Kafka key is the order id as a JSON string")
		require.Len(t, obj["order_id"], 16)
		items := obj["items"].([]any)
		require.True(t, len(items) >= 1 && len(items) <= 5, "items: %d", len(items))
		var sum int64
		for _, it := range items {
			it := it.(map[string]any)
			qty, _ := it["qty"].(json.Number).Int64()
			sum += qty * cents(t, it["price"].(json.Number))
		}
		require.Equal(t, sum, cents(t, obj["total"].(json.Number)), "total != sum(qty*price): %s", raw)
		// The date the order was placed: an update comes later (a late
		// correction carries the placing event's ts).
		require.LessOrEqual(t, obj["order_date"], ts.Format(time.DateOnly), "order_date must be the UTC date the order was placed")
		ship := obj["shipping"].(map[string]any)
		require.Len(t, ship["country"], 2)
	}
}

var centsRE = regexp.MustCompile(`^(\d+)\.(\d\d)$`)

func cents(t *testing.T, n json.Number) int64 {
	t.Helper()
	m := centsRE.FindStringSubmatch(n.String())
	require.NotNil(t, m, "decimal %q must have exactly two decimals", n)
	whole, _ := strconv.ParseInt(m[1], 10, 64)
	frac, _ := strconv.ParseInt(m[2], 10, 64)
	return whole*100 + frac
}

// decodeError classifies why strictDecode rejected a record.
type decodeError struct{ kind, msg string }

func (e *decodeError) Error() string { return e.kind + ": " + e.msg }

func reason(err error) string {
	var de *decodeError
	if errors.As(err, &de) {
		return de.kind
	}
	return "syntax"
}

// strictDecode is the decoder floe is expected to be: any JSON syntax
// error, unknown or missing required field, or type mismatch rejects the
// record. It is written against the iceberg schema so that a drift between
// Schema() and the generated bytes fails here.
func strictDecode(sc *iceberg.Schema, raw []byte) (map[string]any, error) {
	if !json.Valid(raw) {
		return nil, errors.New("invalid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &decodeError{"type", "top level is not an object"}
	}
	return obj, checkStruct(sc.AsStruct().FieldList, obj, "")
}

func checkStruct(fields []iceberg.NestedField, obj map[string]any, path string) error {
	known := map[string]bool{}
	for _, f := range fields {
		known[f.Name] = true
		v, ok := obj[f.Name]
		if !ok || v == nil {
			if f.Required {
				return &decodeError{"missing", path + f.Name}
			}
			continue
		}
		if err := checkValue(f.Type, v, path+f.Name); err != nil {
			return err
		}
	}
	for k := range obj {
		if !known[k] {
			return &decodeError{"unknown", path + k}
		}
	}
	return nil
}

var (
	intRE = regexp.MustCompile(`^-?\d+$`)
	decRE = regexp.MustCompile(`^-?(\d+)(?:\.(\d+))?$`)
)

func checkValue(typ iceberg.Type, v any, path string) error {
	mismatch := func() error { return &decodeError{"type", fmt.Sprintf("%s: %T %v for %s", path, v, v, typ)} }
	num, isNum := v.(json.Number)
	str, isStr := v.(string)
	switch typ := typ.(type) {
	case iceberg.StringType:
		if !isStr {
			return mismatch()
		}
	case iceberg.Int64Type, iceberg.Int32Type:
		if !isNum || !intRE.MatchString(num.String()) {
			return mismatch()
		}
		n, err := num.Int64()
		if err != nil || (typ == iceberg.PrimitiveTypes.Int32 && (n < math.MinInt32 || n > math.MaxInt32)) {
			return mismatch()
		}
	case iceberg.Float64Type:
		if !isNum {
			return mismatch()
		}
		if _, err := num.Float64(); err != nil {
			return mismatch()
		}
	case iceberg.DecimalType:
		m := decRE.FindStringSubmatch(num.String())
		if !isNum || m == nil || len(m[2]) > typ.Scale() || len(m[1])+typ.Scale() > typ.Precision() {
			return mismatch()
		}
	case iceberg.BooleanType:
		if _, ok := v.(bool); !ok {
			return mismatch()
		}
	case iceberg.TimestampTzType:
		if !isStr {
			return mismatch()
		}
		if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
			return &decodeError{"timestamp", fmt.Sprintf("%s: %v", path, err)}
		}
	case iceberg.DateType:
		if !isStr {
			return mismatch()
		}
		if _, err := time.Parse(time.DateOnly, str); err != nil {
			return &decodeError{"timestamp", fmt.Sprintf("%s: %v", path, err)}
		}
	case *iceberg.ListType:
		list, ok := v.([]any)
		if !ok {
			return mismatch()
		}
		for i, e := range list {
			if e == nil {
				if typ.ElementRequired {
					return &decodeError{"missing", fmt.Sprintf("%s[%d]", path, i)}
				}
				continue
			}
			if err := checkValue(typ.Element, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case *iceberg.StructType:
		obj, ok := v.(map[string]any)
		if !ok {
			return mismatch()
		}
		return checkStruct(typ.FieldList, obj, path+".")
	default:
		return fmt.Errorf("%s: test decoder does not handle %s", path, typ)
	}
	return nil
}

func TestMalformedRate(t *testing.T) {
	for _, tc := range []struct {
		rate, want float64
	}{
		{0, DefaultMalformedRate},
		{0.1, 0.1},
		{-1, 0},
		{1, 1},
	} {
		t.Run(fmt.Sprint(tc.rate), func(t *testing.T) {
			g := mustNew(t, Orders, Config{Seed: 1, MalformedRate: tc.rate, Now: stepClock(epoch)})
			// The rate is over the records that have a value: a tombstone
			// is never malformed.
			const n = 100_000
			bad, tombstones := 0, 0
			var buf []byte
			for range n {
				var c Class
				buf, _, c = g.Next(buf[:0])
				switch c {
				case Malformed:
					bad++
				case Tombstone:
					tombstones++
				}
			}
			if tc.want == 1 {
				require.Zero(t, tombstones, "no order is ever placed, so none is deleted")
			}
			got := float64(bad) / float64(n-tombstones)
			// 5 standard deviations of a binomial, plus slack for p = 0 or 1.
			tol := 5*math.Sqrt(tc.want*(1-tc.want)/n) + 1e-9
			require.InDelta(t, tc.want, got, tol, "malformed fraction")
		})
	}
}

// TestIDsUnique checks that the id of every new event (a click, a new
// order) is one no earlier event had, and that an order event that is not
// new (an update; tombstones have no value) has the id of an earlier one.
func TestIDsUnique(t *testing.T) {
	for _, tc := range []struct {
		kind  Kind
		field string
		n     int
	}{
		{Clicks, `"event_id":"`, 1_000_000},
		{Orders, `"order_id":"`, 300_000},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			g := mustNew(t, tc.kind, Config{Seed: 99, MalformedRate: -1, Now: stepClock(epoch)})
			seen := make(map[uint64]struct{}, tc.n)
			var buf []byte
			updates := 0
			for i := range tc.n {
				seq := g.seq
				var c Class
				buf, _, c = g.Next(buf[:0])
				if c == Tombstone {
					continue
				}
				j := bytes.Index(buf, []byte(tc.field))
				require.GreaterOrEqual(t, j, 0, "record %d has no id: %s", i, buf)
				var id [8]byte
				_, err := hex.Decode(id[:], buf[j+len(tc.field):j+len(tc.field)+16])
				require.NoError(t, err)
				k := uint64(id[0])<<56 | uint64(id[1])<<48 | uint64(id[2])<<40 | uint64(id[3])<<32 |
					uint64(id[4])<<24 | uint64(id[5])<<16 | uint64(id[6])<<8 | uint64(id[7])
				_, dup := seen[k]
				if g.seq == seq {
					require.True(t, dup, "record %d is an update of order %x, never placed", i, id)
					updates++
					continue
				}
				if dup {
					t.Fatalf("record %d repeats id %x", i, id)
				}
				seen[k] = struct{}{}
			}
			if tc.kind == Orders {
				require.Positive(t, updates)
			} else {
				require.Zero(t, updates)
			}
		})
	}
}

// TestOrderLifecycle follows every order through its events, as a table
// keyed by order_id would: a new order is placed; an update repeats a
// recent, live order's customer, items and order date and either moves its
// status forward or is a late correction (same status, other total, the
// order's original ts); a tombstone deletes a live order, which no event
// names again. Malformed records never reach the table and are left out;
// the generator forgets them too.
func TestOrderLifecycle(t *testing.T) {
	forward := map[string][]string{
		"placed":  {"paid", "cancelled"},
		"paid":    {"shipped", "cancelled"},
		"shipped": {"delivered"},
	}
	type state struct {
		customer, date, status, skus string
		placed                       time.Time
		total                        int64
		nth                          int // valid new orders before it
		deleted                      bool
	}
	for _, rate := range []float64{-1, 0.05} {
		t.Run(fmt.Sprint("malformed=", rate), func(t *testing.T) {
			t.Parallel()
			clock := stepClock(epoch)
			var now time.Time
			g := mustNew(t, Orders, Config{Seed: 11, MalformedRate: rate, LateRate: 0.1,
				Now: func() time.Time { now = clock(); return now }})
			sc := Schema(Orders)
			orders := map[string]*state{}
			var placed, advances, corrections, lateCorrections, deletes, malformed int
			const n = 50_000
			for i := range n {
				v, k, class := g.Next(nil)
				id, err := strconv.Unquote(string(k))
				require.NoError(t, err, "the key %s is a JSON string", k)
				require.Len(t, id, 16)
				switch class {
				case Tombstone:
					require.Empty(t, v)
					o := orders[id]
					require.NotNil(t, o, "record %d deletes order %s, never placed", i, id)
					require.False(t, o.deleted, "record %d deletes order %s twice", i, id)
					o.deleted = true
					deletes++
					continue
				case Malformed:
					if bytes.Contains(v, []byte("order_id")) {
						require.True(t, bytes.Contains(v, []byte(id)), "record %d: a malformed record keeps its order's id: %s", i, v)
					}
					malformed++
					continue
				}
				obj, err := strictDecode(sc, v)
				require.NoError(t, err)
				require.Equal(t, id, obj["order_id"])
				ts, err := time.Parse(time.RFC3339Nano, obj["ts"].(string))
				require.NoError(t, err)
				var skus strings.Builder
				for _, it := range obj["items"].([]any) {
					skus.WriteString(it.(map[string]any)["sku"].(string))
				}
				cur := state{
					customer: obj["customer_id"].(json.Number).String(),
					date:     obj["order_date"].(string),
					status:   obj["status"].(string),
					skus:     skus.String(),
					total:    cents(t, obj["total"].(json.Number)),
				}
				o, seen := orders[id]
				if !seen {
					require.Equal(t, "placed", cur.status, "record %d: a new order is placed", i)
					require.Equal(t, ts.Format(time.DateOnly), cur.date, "record %d: order_date is the date it was placed", i)
					cur.placed, cur.nth = ts, placed
					orders[id] = &cur
					placed++
					continue
				}
				require.False(t, o.deleted, "record %d updates order %s after its tombstone", i, id)
				require.Less(t, placed-o.nth, recentOrderCap+1, "record %d updates an order that is not recent", i)
				require.Equal(t, o.customer, cur.customer, "record %d: an update keeps the customer", i)
				require.Equal(t, o.skus, cur.skus, "record %d: an update keeps the items", i)
				require.Equal(t, o.date, cur.date, "record %d: an update keeps the order date", i)
				require.False(t, ts.Before(o.placed), "record %d: an update is older than its order", i)
				if cur.status == o.status {
					require.Equal(t, o.placed, ts, "record %d: a correction carries the order's ts", i)
					require.NotEqual(t, o.total, cur.total, "record %d: a correction changes the total", i)
					corrections++
					if now.Sub(ts) > DefaultJitter {
						lateCorrections++
					}
				} else {
					require.Contains(t, forward[o.status], cur.status, "record %d: status %s after %s", i, cur.status, o.status)
					require.Equal(t, o.total, cur.total, "record %d: a status change keeps the total", i)
					advances++
				}
				o.status, o.total = cur.status, cur.total
			}
			updates := advances + corrections
			t.Logf("%d records: %d new orders, %d status changes, %d corrections (%d late), %d deletes, %d malformed",
				n, placed, advances, corrections, lateCorrections, deletes, malformed)
			valid := 1.0
			if rate > 0 {
				valid = 1 - rate
			}
			// The first events cannot update anything: a little slack.
			require.InDelta(t, updateRate*valid, float64(updates)/n, 0.01, "share of updates")
			require.InDelta(t, deleteRate, float64(deletes)/n, 0.005, "share of deletes")
			require.InDelta(t, correctionRate, float64(corrections)/float64(updates), 0.05, "share of corrections among updates")
			require.Positive(t, lateCorrections, "some corrections come long after the order")
		})
	}
}

// eventTimes returns the ts of every valid new event (updates of orders
// take their ts from the order: see TestOrderLifecycle), and the clock
// reading each was generated at.
func eventTimes(t *testing.T, kind Kind, cfg Config, n int) (ts, now []time.Time) {
	t.Helper()
	clock := stepClock(epoch)
	var last time.Time
	cfg.Now = func() time.Time { last = clock(); return last }
	cfg.MalformedRate = -1
	g := mustNew(t, kind, cfg)
	var buf []byte
	for len(ts) < n {
		seq := g.seq
		buf, _, _ = g.Next(buf[:0])
		if g.seq == seq {
			continue
		}
		var rec struct{ TS string }
		require.NoError(t, json.Unmarshal(buf, &rec))
		got, err := time.Parse(time.RFC3339Nano, rec.TS)
		require.NoError(t, err)
		ts = append(ts, got)
		now = append(now, last)
	}
	return ts, now
}

func TestJitter(t *testing.T) {
	ts, now := eventTimes(t, Clicks, Config{Seed: 3, LateRate: -1, Jitter: 2 * time.Second}, 20_000)
	outOfOrder := 0
	for i := range ts {
		d := now[i].Sub(ts[i])
		require.True(t, d >= 0 && d <= 2*time.Second, "event %d is %v behind the clock", i, d)
		if i > 0 && ts[i].Before(ts[i-1]) {
			outOfOrder++
		}
	}
	require.Greater(t, outOfOrder, 1000, "jitter should reorder events")

	ts, now = eventTimes(t, Clicks, Config{Seed: 3, LateRate: -1, Jitter: -1}, 1000)
	for i := range ts {
		require.Equal(t, now[i].Truncate(time.Millisecond), ts[i], "no jitter: ts must be the clock")
	}
}

func TestLateEvents(t *testing.T) {
	for _, rate := range []float64{0, 0.1} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			want := rate
			if rate == 0 {
				want = DefaultLateRate
			}
			const n = 100_000
			ts, now := eventTimes(t, Orders, Config{Seed: 5, LateRate: rate}, n)
			late, otherDay := 0, 0
			for i := range ts {
				behind := now[i].Sub(ts[i])
				require.LessOrEqual(t, behind, maxLateness+DefaultJitter)
				if behind > DefaultJitter {
					late++
					if ts[i].Format(time.DateOnly) != now[i].Format(time.DateOnly) {
						otherDay++
					}
				}
			}
			require.InDelta(t, want, float64(late)/n, 5*math.Sqrt(want*(1-want)/n), "late fraction")
			require.Positive(t, otherDay, "some late events must fall into an earlier day")
		})
	}
}

func TestTimestampFormat(t *testing.T) {
	g := mustNew(t, Clicks, Config{})
	r := rng{s: 1}
	for i := range 100_000 {
		// Spread over years 1900..2200 to exercise leap years and centuries.
		ms := int64(r.uintn(uint64(300*365*msPerDay))) - 70*365*msPerDay
		if i < 3 {
			ms = []int64{0, -1, 951782400000}[i] // epoch, just before it, 2000-02-29
		}
		want := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
		require.Equal(t, want, string(g.appendTimestamp(nil, ms)))
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{}, ""},
		{Config{MalformedRate: -1, LateRate: -1, Jitter: -1}, ""},
		{Config{MalformedRate: 1, LateRate: 1, Jitter: time.Hour}, ""},
		{Config{MalformedRate: 1.5}, "MalformedRate"},
		{Config{MalformedRate: math.NaN()}, "MalformedRate"},
		{Config{LateRate: 2}, "LateRate"},
		{Config{Jitter: 2 * time.Hour}, "Jitter"},
	} {
		err := tc.cfg.Validate()
		if tc.field == "" {
			require.NoError(t, err)
			continue
		}
		require.ErrorContains(t, err, tc.field)
		require.ErrorContains(t, err, "[0, ")
		_, err = New(Clicks, tc.cfg)
		require.Error(t, err)
	}
	_, err := New("pageviews", Config{})
	require.ErrorContains(t, err, "pageviews")
}

func TestSchema(t *testing.T) {
	for _, kind := range Kinds() {
		sc := Schema(kind)
		require.NotNil(t, sc)
		// A table created from the schema gets fresh ids; they must be the
		// ones declared so field ids line up with the catalog's.
		fresh, err := iceberg.AssignFreshSchemaIDs(sc, nil)
		require.NoError(t, err)
		require.True(t, sc.Equals(fresh), "ids are not in fresh-id order:\n%s\n%s", sc, fresh)
		require.Equal(t, "day(ts)", PartitionSpecSQL(kind))
		ts, ok := sc.FindFieldByName("ts")
		require.True(t, ok)
		require.True(t, ts.Required)
	}
	require.Len(t, Schema(Clicks).Fields(), 10)
	require.Nil(t, Schema("nope"))
	require.Empty(t, PartitionSpecSQL("nope"))
}

func TestNextDoesNotAllocate(t *testing.T) {
	for _, kind := range Kinds() {
		g := mustNew(t, kind, Config{Now: stepClock(epoch)})
		buf := make([]byte, 0, 4096)
		allocs := testing.AllocsPerRun(10_000, func() { buf, _, _ = g.Next(buf[:0]) })
		require.Zero(t, allocs, "%s: Next allocates", kind)
	}
}

func BenchmarkNext(b *testing.B) {
	for _, kind := range Kinds() {
		for _, clock := range []string{"wallclock", "fixedclock"} {
			b.Run(string(kind)+"/"+clock, func(b *testing.B) {
				cfg := Config{Seed: 1}
				if clock == "fixedclock" {
					cfg.Now = func() time.Time { return epoch }
				}
				g := mustNew(b, kind, cfg)
				buf := make([]byte, 0, 4096)
				var total int
				b.ReportAllocs()
				for b.Loop() {
					buf, _, _ = g.Next(buf[:0])
					total += len(buf)
				}
				b.SetBytes(int64(total / b.N))
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}
