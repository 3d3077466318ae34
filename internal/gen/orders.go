package gen

// Orders have a life: besides new orders, a share of the events update a
// recent order (its status moves forward, or a late correction changes its
// items and total) and a few delete one (a Kafka tombstone). That is what a
// table keyed by order_id is for: it keeps the newest row of every order
// and drops the deleted ones.
//
// The recent orders are a ring of the last recentOrderCap new orders. An
// order's items, shipping address and gift flag are drawn from a generator
// seeded by the order (order.body), so an update repeats them without
// storing them; a correction changes the quantity of one item.

// Shares of the events of Orders, in [0, 1]. Updates and deletes pick a
// recent order that is still live; while there is none (at the start) the
// event is a new order instead.
const (
	updateRate = 0.30
	deleteRate = 0.03
	// correctionRate is the share of updates that are late corrections:
	// the items and total change, and ts is the order's original event
	// time. An update of an order whose status cannot move any further is
	// a correction too.
	correctionRate = 0.2

	recentOrderCap = 4096
)

// Order statuses, in the order they move forward: placed, then paid (or
// cancelled), then shipped (or cancelled), then delivered.
const (
	statusPlaced uint8 = iota
	statusPaid
	statusShipped
	statusDelivered
	statusCancelled
)

var orderStatuses = [...]string{"placed", "paid", "shipped", "delivered", "cancelled"}

type orderOp uint8

const (
	opNew orderOp = iota
	opUpdate
	opDelete
)

// order is what an update repeats of an order: everything but its status
// and corrections is fixed when it is placed.
type order struct {
	id       uint64
	customer int64
	placed   int64  // the event time of the new-order event, ms
	body     uint64 // seeds the items, the shipping address and is_gift
	fixes    uint32 // late corrections so far
	status   uint8
	live     bool // false once deleted (or for a slot never filled)
}

// recentOrders holds the last recentOrderCap orders placed, live or
// deleted.
type recentOrders struct {
	ring []order
	next int // the slot the next new order takes
	n    int // filled slots
}

func (r *recentOrders) add(o order) {
	r.ring[r.next] = o
	r.next = (r.next + 1) % len(r.ring)
	r.n = min(r.n+1, len(r.ring))
}

// pickOrderOp draws what the next order event does and, for an update or a
// delete, the recent order it is about.
func (g *Generator) pickOrderOp() (orderOp, *order) {
	u := g.rng.next() >> 11
	var op orderOp
	switch {
	case u < g.deleteTh:
		op = opDelete
	case u < g.deleteTh+g.updateTh:
		op = opUpdate
	default:
		return opNew, nil
	}
	if g.orders.n == 0 {
		return opNew, nil
	}
	// Deleted orders are a few percent of the ring: a few draws find a
	// live one, and in the rare case they do not, the event is a new
	// order.
	for range 4 {
		o := &g.orders.ring[g.rng.uintn(uint64(g.orders.n))]
		if o.live {
			return op, o
		}
	}
	return opNew, nil
}

// appendOrderEvent appends a new order (prev nil) or an update of prev.
// Only a well-formed event changes the recent orders: a malformed one never
// reaches the table.
func (g *Generator) appendOrderEvent(dst []byte, m fault, prev *order, ts int64) []byte {
	r := &g.rng
	var o order
	if prev == nil {
		g.seq++
		o = order{
			id:       mix64(g.idBase + g.seq),
			customer: skewed2(r, 200_000),
			placed:   ts,
			body:     r.next(),
			status:   statusPlaced,
			live:     true,
		}
	} else {
		o = *prev
		switch {
		case o.status >= statusDelivered || r.chance(g.correctTh):
			// A correction restates the order as of when it was placed.
			o.fixes++
			ts = o.placed
		case o.status == statusPlaced:
			o.status = statusPaid
			if r.intn(100) < 15 {
				o.status = statusCancelled
			}
		case o.status == statusPaid:
			o.status = statusShipped
			if r.intn(100) < 10 {
				o.status = statusCancelled
			}
		default:
			o.status = statusDelivered
		}
		// A late update is late, but not older than the order.
		ts = max(ts, o.placed)
	}
	dst = g.appendOrder(dst, m, &o, ts)
	if m == wellFormed {
		if prev == nil {
			g.orders.add(o)
		} else {
			*prev = o
		}
	}
	return dst
}
