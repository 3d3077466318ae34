package gen

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/apache/iceberg-go"
)

// Kind selects the event shape a Generator produces.
type Kind string

const (
	Clicks Kind = "clicks"
	Orders Kind = "orders"
)

// Kinds lists every supported Kind, in a stable order (for flag help texts).
func Kinds() []Kind { return []Kind{Clicks, Orders} }

// ParseKind maps a user-supplied name to a Kind.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds() {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("gen: unknown event kind %q (allowed: clicks, orders)", s)
}

// Defaults applied to zero-valued Config fields.
const (
	DefaultMalformedRate = 0.01
	DefaultLateRate      = 0.02
	DefaultJitter        = 5 * time.Second

	// MaxJitter bounds Config.Jitter: jitter models reordering within a
	// batch, anything longer is what LateRate is for.
	MaxJitter = time.Hour
)

// Lateness of a late event, on top of jitter. The upper bound exceeds a day
// so that late events reach the previous day's partition whatever the time
// of day the generator runs at.
const (
	minLateness = time.Minute
	maxLateness = 30 * time.Hour
)

// Config tunes a Generator. The zero value is usable: zero fields take the
// defaults. Because zero means "default", a negative MalformedRate, LateRate
// or Jitter is how a caller switches that feature off.
type Config struct {
	// Seed makes the output deterministic; equal seeds (and clocks) give
	// equal records.
	Seed int64
	// MalformedRate is the fraction of malformed records among those with
	// a value (a tombstone is never malformed), in [0, 1].
	// 0 means DefaultMalformedRate, negative means none.
	MalformedRate float64
	// LateRate is the fraction of events whose event time is late by a
	// minute to 30 hours (so can fall into an earlier day), in [0, 1].
	// 0 means DefaultLateRate, negative means none.
	LateRate float64
	// Jitter is the out-of-order jitter: event time = now - U(0, Jitter),
	// in [0, MaxJitter]. 0 means DefaultJitter, negative means none.
	Jitter time.Duration
	// Now is the clock, read once per event. nil means time.Now.
	Now func() time.Time
}

// Validate reports the first field outside its allowed range.
func (c Config) Validate() error {
	if math.IsNaN(c.MalformedRate) || c.MalformedRate > 1 {
		return fmt.Errorf("gen: MalformedRate = %v: must be a fraction in [0, 1] (0 = default %v, negative = none)", c.MalformedRate, DefaultMalformedRate)
	}
	if math.IsNaN(c.LateRate) || c.LateRate > 1 {
		return fmt.Errorf("gen: LateRate = %v: must be a fraction in [0, 1] (0 = default %v, negative = none)", c.LateRate, DefaultLateRate)
	}
	if c.Jitter > MaxJitter {
		return fmt.Errorf("gen: Jitter = %v: must be in [0, %v] (0 = default %v, negative = none)", c.Jitter, MaxJitter, DefaultJitter)
	}
	return nil
}

// resolved returns c with defaults applied and "off" sentinels mapped to 0.
func (c Config) resolved() Config {
	switch {
	case c.MalformedRate == 0:
		c.MalformedRate = DefaultMalformedRate
	case c.MalformedRate < 0:
		c.MalformedRate = 0
	}
	switch {
	case c.LateRate == 0:
		c.LateRate = DefaultLateRate
	case c.LateRate < 0:
		c.LateRate = 0
	}
	switch {
	case c.Jitter == 0:
		c.Jitter = DefaultJitter
	case c.Jitter < 0:
		c.Jitter = 0
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Generator produces events of one Kind. It is not safe for concurrent use:
// it owns mutable RNG state, a key buffer and (for Orders) the recent
// orders, so use one per goroutine.
type Generator struct {
	kind Kind
	now  func() time.Time

	rng    rng
	seq    uint64
	idBase uint64
	salt   uint64 // separates session ids of different seeds

	malformedTh uint64 // thresholds compared against 53 random bits
	lateTh      uint64
	jitterMs    uint64

	key []byte

	// Orders only: the recent orders updates and deletes pick from.
	orders                        recentOrders
	updateTh, deleteTh, correctTh uint64

	// Most events of a run share a UTC day, so the formatted date is
	// cached rather than recomputed from the epoch day each time.
	cacheDay  int64
	cacheDate [10]byte
}

// New returns a Generator for kind, or an error naming the bad argument.
func New(kind Kind, cfg Config) (*Generator, error) {
	if _, err := ParseKind(string(kind)); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.resolved()
	var kindSalt uint64 = 0x636c69636b73 // "clicks"
	if kind == Orders {
		kindSalt = 0x6f7264657273 // "orders"
	}
	s := uint64(cfg.Seed)
	g := &Generator{
		kind:        kind,
		now:         cfg.Now,
		rng:         rng{s: mix64(s ^ kindSalt)},
		idBase:      mix64(s + 0x9e3779b97f4a7c15*kindSalt),
		salt:        mix64(^s),
		malformedTh: probThreshold(cfg.MalformedRate),
		lateTh:      probThreshold(cfg.LateRate),
		jitterMs:    uint64(cfg.Jitter / time.Millisecond),
		key:         make([]byte, 0, 20),
		cacheDay:    math.MinInt64,
	}
	if kind == Orders {
		g.orders.ring = make([]order, recentOrderCap)
		g.updateTh = probThreshold(updateRate)
		g.deleteTh = probThreshold(deleteRate)
		g.correctTh = probThreshold(correctionRate)
	}
	return g, nil
}

// Kind reports the event shape this Generator produces.
func (g *Generator) Kind() Kind { return g.kind }

// Class says what Next produced.
type Class uint8

const (
	// Valid is a well-formed event: it decodes into Schema(kind).
	Valid Class = iota
	// Malformed is a record a strict decoder rejects (see the package
	// documentation).
	Malformed
	// Tombstone deletes the order its key names (Orders only): Next
	// appends nothing, and the record is to be produced with a nil value,
	// which is how Kafka says "delete this key".
	Tombstone
)

func (c Class) String() string {
	switch c {
	case Valid:
		return "valid"
	case Malformed:
		return "malformed"
	case Tombstone:
		return "tombstone"
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// Next appends one event to dst and returns the extended slice, the
// record's Kafka key and what the record is. The key is the user id in
// decimal for Clicks, and the order id as a JSON string (the 16 hex digits
// in double quotes) for Orders, so that all events of one order land in one
// partition. It aliases an internal buffer that the next call overwrites;
// copy it if it must outlive that.
//
// For a Tombstone nothing is appended (value is dst): produce the record
// with a nil value. Only Orders produces tombstones.
func (g *Generator) Next(dst []byte) (value []byte, key []byte, class Class) {
	nowMs := g.now().UnixMilli()

	ts := nowMs
	if g.jitterMs > 0 {
		ts -= int64(g.rng.uintn(g.jitterMs + 1))
	}
	if g.rng.chance(g.lateTh) {
		ts -= g.lateness()
	}
	var (
		o  *order // the recent order an update is about; nil for a new one
		op orderOp
	)
	if g.kind == Orders {
		op, o = g.pickOrderOp()
		if op == opDelete {
			g.setOrderKey(o.id)
			o.live = false
			return dst, g.key, Tombstone
		}
	}
	m := wellFormed
	if g.rng.chance(g.malformedTh) {
		m = fault(1 + g.rng.uintn(numFaults))
	}

	start := len(dst)
	if g.kind == Orders {
		dst = g.appendOrderEvent(dst, m, o, ts)
	} else {
		g.seq++
		dst = g.appendClick(dst, m, mix64(g.idBase+g.seq), ts, nowMs)
	}
	if m == truncated {
		// A proper prefix of a JSON object is never valid JSON: the closing
		// brace is missing. Keeping at least half keeps the id (the first
		// field) in the bytes for tracing.
		n := len(dst) - start
		cut := n/2 + int(g.rng.uintn(uint64(n-n/2)))
		dst = dst[:start+cut]
	}
	if m != wellFormed {
		return dst, g.key, Malformed
	}
	return dst, g.key, Valid
}

// lateness draws a log-uniform delay so that "a few minutes late" is as
// common as "a day late" is rare, matching how mobile clients flush
// buffered events.
func (g *Generator) lateness() int64 {
	lo, hi := math.Log(float64(minLateness.Milliseconds())), math.Log(float64(maxLateness.Milliseconds()))
	return int64(math.Exp(lo + g.rng.float()*(hi-lo)))
}

func (g *Generator) setKey(id int64) {
	g.key = strconv.AppendInt(g.key[:0], id, 10)
}

// setOrderKey makes the key the order id as a JSON string. Bare hex digits
// would be ambiguous to a reader that takes a key which parses as JSON for
// a JSON value: "1234567890123456" and "12e4567890123456" are numbers.
func (g *Generator) setOrderKey(id uint64) {
	g.key = append(g.key[:0], '"')
	g.key = appendHex16(g.key, id)
	g.key = append(g.key, '"')
}

// Schema returns the Iceberg schema events of kind decode into, or nil for
// an unknown kind. Field ids are assigned depth-first from 1, the order
// iceberg.AssignFreshSchemaIDs uses, so a table created from this schema
// keeps the same ids. Ids and event time are required; everything else is
// optional.
func Schema(kind Kind) *iceberg.Schema {
	t := iceberg.PrimitiveTypes
	opt := func(id int, name string, typ iceberg.Type) iceberg.NestedField {
		return iceberg.NestedField{ID: id, Name: name, Type: typ}
	}
	req := func(id int, name string, typ iceberg.Type) iceberg.NestedField {
		return iceberg.NestedField{ID: id, Name: name, Type: typ, Required: true}
	}
	switch kind {
	case Clicks:
		return iceberg.NewSchema(0,
			req(1, "event_id", t.String),
			opt(2, "user_id", t.Int64),
			opt(3, "session_id", t.String),
			req(4, "ts", t.TimestampTz),
			opt(5, "url", t.String),
			opt(6, "referrer", t.String),
			opt(7, "device", t.String),
			opt(8, "country", t.String),
			opt(9, "duration_ms", t.Int32),
			opt(10, "revenue", t.Float64),
		)
	case Orders:
		return iceberg.NewSchema(0,
			req(1, "order_id", t.String),
			opt(2, "customer_id", t.Int64),
			req(3, "ts", t.TimestampTz),
			opt(4, "status", t.String),
			opt(5, "items", &iceberg.ListType{
				ElementID: 6,
				Element: &iceberg.StructType{FieldList: []iceberg.NestedField{
					opt(7, "sku", t.String),
					opt(8, "qty", t.Int32),
					opt(9, "price", iceberg.DecimalTypeOf(10, 2)),
				}},
			}),
			opt(10, "total", iceberg.DecimalTypeOf(12, 2)),
			opt(11, "currency", t.String),
			opt(12, "shipping", &iceberg.StructType{FieldList: []iceberg.NestedField{
				opt(13, "country", t.String),
				opt(14, "city", t.String),
			}}),
			opt(15, "is_gift", t.Bool),
			opt(16, "order_date", t.Date),
		)
	}
	return nil
}

// PartitionSpecSQL returns the partition transform the tables for kind use,
// in the SQL-ish form floe's configuration accepts, or "" for an unknown
// kind. Both kinds partition by the day of the event time, which is what
// makes late events interesting: they land in an older partition.
func PartitionSpecSQL(kind Kind) string {
	switch kind {
	case Clicks, Orders:
		return "day(ts)"
	}
	return ""
}
