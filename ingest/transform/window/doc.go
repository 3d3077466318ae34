// Package window computes event-time windowed aggregates incrementally, so
// that the rows a table ends up with equal a batch computation over the
// same events (Batch), whatever the order in which the events arrive and
// however late they are: late data re-opens its window at any lateness
// (unless Config.MaxLateness says otherwise).
//
// It is pure computation: no I/O, no Arrow, no table format. Times are
// int64 microseconds since the Unix epoch (UTC), limited to [MinTime,
// MaxTime] so that no window arithmetic overflows. Groups are opaque strings
// the caller encodes ("" when there is no GROUP BY).
//
// # Windows
//
// Spec selects the kind of window:
//
//   - Tumbling: [start, start+Size) with start a multiple of Size.
//   - Hopping: [start, start+Size) with start a multiple of Slide; an event
//     belongs to every window containing it (⌊Size/Slide⌋ or ⌈Size/Slide⌉
//     of them). Size need not be a multiple of Slide.
//   - Session: per group, the connected components of the union of the
//     intervals [ts, ts+Gap) of its events, where two intervals that touch
//     (one's end equals the other's start) are connected. A session is
//     [first ts, last ts + Gap): an event at ts joins a session iff ts is in
//     [Start-Gap, End], and bridges (merges) every session it joins. Two
//     sessions merge iff Start <= other.End and other.Start <= End. This
//     rule is used everywhere: Partials.Add, State.Apply, Store.Load and
//     Batch. Because a union's components do not depend on the order in
//     which intervals are added, sessions built from any split of the
//     events, merged in any order, are the sessions of all events at once.
//
// Starts are aligned to the epoch with floor division, so negative times
// work like positive ones.
//
// # Aggregates
//
// Aggs lists the aggregates of a window (count, count(*), sum, min, max, avg,
// approx_count_distinct); Accs holds one Acc per aggregate, a plain value
// type so a window's accumulators are a single slice. Every accumulator is
// a commutative monoid: Add and Merge give the same state in any order and
// grouping, which is what makes partial aggregation equal batch
// aggregation. Where that cannot hold exactly it is documented:
//
//   - Integer sums (sum and avg of int) are exact int64 sums. Leaving the
//     int64 range is an error wrapping ErrOverflow, never a wrap-around. The
//     result never depends on the order, but whether an intermediate sum
//     overflows can: values close to ±2⁶³ may fail in one order and not in
//     another.
//   - Float sums (sum and avg of float) are float64 additions, and float
//     addition is not associative: the last bits of a sum can depend on
//     how events were split and merged. Sums of integer-valued floats below
//     2⁵³ are exact. Infinities and NaN propagate; every NaN is kept as one
//     canonical NaN.
//   - Float min and max order values totally: -Inf < … < -0 < +0 < … < +Inf
//     < NaN: NaN is greater than everything and all NaNs are equal,
//     whatever their sign and payload.
//   - approx_count_distinct is a HyperLogLog sketch (HLL) of the xxhash64 of
//     each value's bytes: an int's 8 little-endian bytes, a float's 8
//     little-endian IEEE bytes with -0 as +0 and one NaN, or the bytes
//     themselves. Sketches merge register by register with max, so the same
//     set of values gives the bit-identical sketch in any order; the
//     estimate (an estimator without bias tables or range corrections, see
//     HLL.Estimate) depends only on the registers and is deterministic. A sketch is
//     sparse (a sorted list of its set registers) while at most a quarter
//     of its registers are set, dense above; the representation is a
//     function of the registers, so it never changes an estimate or an
//     encoding.
//
// Nulls are ignored by every aggregate but count(*). count and
// approx_count_distinct of no input are 0; sum, min, max and avg are null.
//
// # Partials (workers)
//
// A worker folds a segment's events into Partials: one Window per (group,
// window) for tumbling and hopping, a sorted list of disjoint, non-touching
// sessions per group for sessions. Partials.MarshalBinary writes them to a
// file for the table writer.
//
// # State (the table writer)
//
// The single table writer keeps a State: the recent windows in memory, the
// event time each source partition has reached, and the memory horizon. It
// applies each segment's Partials in segment order (State.Apply) and writes
// the Changes, rows to upsert keyed (group, start) and, for sessions, the
// keys of rows to delete, before applying the next.
//
// Watermark. Each partition reports the largest event time it has seen
// (State.Observe; it never goes back). The watermark is the smallest over
// the partitions that reported, minus Config.Delay. A window whose End is
// at or before the watermark is complete; changing it later re-opens it
// (Changes.Reopened). Windows are evicted from memory Config.Retention
// after the watermark passes their End (State.Evict).
//
// Memory horizon. Every window that has been written and is not in memory
// has End <= the horizon: eviction raises the horizon to the End of what it
// evicts. A window not in memory with an End after the horizon was
// therefore never written and starts empty; one at or before it may have
// been, and is loaded through the caller's Store first (for sessions: every
// stored session the partial session overlaps or touches, which, since
// sessions never touch one another, are all the sessions the merge can
// reach). NewState starts with the horizon at math.MinInt64 (an empty
// table); NewStateAfterLoss at math.MaxInt64, which looks every window up,
// as needed when the checkpoint is lost but the table is not.
//
// Revisions. A window's Revision counts its emissions: 1 when first
// written, the stored revision + 1 each time it is written again. A session
// merge keeps the smallest start as its key and the largest revision of the
// merged sessions + 1; the keys of the other merged sessions that had been
// written go to Changes.Deletes. The writer can use the revision to order
// or deduplicate row versions.
//
// MaxLateness. With Config.MaxLateness > 0, a partial window (a partial
// session as a whole) whose End is at or before watermark-MaxLateness is
// dropped and its events counted in Changes.Dropped; rows then no longer
// equal the batch result for those events. floe itself leaves it 0: it
// decides lateness per event on the workers (Spec.TooLate against the
// event's partition), where a dropped record can still go to the
// dead-letter table and every replay decides the same.
//
// Checkpoints. State.MarshalBinary captures the partitions' times, the
// horizon and every window in memory with its revision; RestoreState
// rebuilds a State that, given the same Applies, produces the same Changes.
// A checkpoint is consistent with the table only if it is committed
// atomically with the rows of the Changes it includes.
//
// # Encodings
//
// All encodings are little-endian, versioned and deterministic (equal
// values give equal bytes), and decoding validates everything and returns
// an error, never panics, on corrupt input:
//
//   - Accumulators (Aggs.AppendBinary, stored with each row as its state):
//     version, count, then per accumulator a tag of its function and input
//     kind, its count and its value (varint, 8-byte float, length-prefixed
//     bytes, or an HLL sketch).
//   - HLL: version, precision, then the sparse registers (count, then index
//     gaps and values) or the 2^p dense register bytes.
//   - Partials ("fwp") and checkpoints ("fws"): magic, version, the spec and
//     aggregates (a file written for another spec or other aggregates is
//     refused), the windows ordered by group and start (a group written
//     once for consecutive windows), and a trailing CRC-32C.
package window
