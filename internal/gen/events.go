package gen

import "strconv"

// fault is the way a record is broken; wellFormed means not at all.
type fault uint8

const (
	wellFormed fault = iota
	truncated        // JSON cut short: unparsable
	notJSON          // a log line instead of JSON: unparsable
	wrongType        // user_id / customer_id as a non-numeric string
	missingTS        // required ts absent
	missingID        // required event_id / order_id absent
	badTS            // ts present but not an RFC 3339 timestamp

	numFaults = uint64(badTS)
)

// Session ids change every half hour per user, so a user's clicks group
// into sessions the way a web analytics pipeline would see them.
const sessionMs = 30 * 60 * 1000

type place struct {
	code, currency string
	cities         []string
}

// Shipping destinations and visitor origins. Skewed like a real shop's
// traffic, and some city names are non-ASCII so string handling is
// exercised beyond 7-bit bytes.
var places = []place{
	{"US", "USD", []string{"New York", "Los Angeles", "Chicago", "Houston", "Seattle", "Austin"}},
	{"GB", "GBP", []string{"London", "Manchester", "Birmingham", "Leeds"}},
	{"DE", "EUR", []string{"Berlin", "München", "Hamburg", "Köln"}},
	{"IN", "INR", []string{"Mumbai", "Delhi", "Bengaluru", "Chennai"}},
	{"FR", "EUR", []string{"Paris", "Lyon", "Marseille"}},
	{"BR", "BRL", []string{"São Paulo", "Rio de Janeiro", "Brasília"}},
	{"JP", "JPY", []string{"Tokyo", "Osaka", "Yokohama"}},
	{"CA", "CAD", []string{"Toronto", "Vancouver", "Montréal"}},
	{"NL", "EUR", []string{"Amsterdam", "Rotterdam", "Utrecht"}},
	{"ES", "EUR", []string{"Madrid", "Barcelona", "Valencia"}},
	{"IT", "EUR", []string{"Rome", "Milan", "Naples"}},
	{"AU", "AUD", []string{"Sydney", "Melbourne", "Brisbane"}},
	{"MX", "MXN", []string{"Mexico City", "Guadalajara", "Monterrey"}},
	{"PL", "PLN", []string{"Warsaw", "Kraków", "Wrocław"}},
	{"SE", "SEK", []string{"Stockholm", "Gothenburg", "Malmö"}},
	{"KR", "KRW", []string{"Seoul", "Busan"}},
	{"CH", "CHF", []string{"Zürich", "Geneva", "Basel"}},
	{"ZA", "ZAR", []string{"Johannesburg", "Cape Town"}},
	{"AR", "ARS", []string{"Buenos Aires", "Córdoba"}},
	{"NG", "NGN", []string{"Lagos", "Abuja"}},
}

var placeTable = func() *table[int] {
	idx := make([]int, len(places))
	for i := range idx {
		idx[i] = i
	}
	return newTable(idx, []int{60, 18, 18, 16, 12, 10, 10, 10, 6, 6, 6, 6, 6, 4, 4, 4, 2, 2, 2, 2})
}()

var (
	devices   = newTable([]string{"mobile", "desktop", "tablet"}, []int{55, 38, 7})
	referrers = newTable([]string{
		"", "https://www.google.com/", "https://shop.example.com/", "https://www.facebook.com/",
		"https://t.co/", "https://www.bing.com/", "https://duckduckgo.com/", "https://www.reddit.com/",
		"https://www.linkedin.com/", "https://news.ycombinator.com/",
	}, []int{40, 25, 16, 5, 3, 3, 2, 3, 2, 1})
	itemCounts = newTable([]int{1, 2, 3, 4, 5}, []int{40, 25, 18, 10, 7})
	quantities = newTable([]int{1, 2, 3, 4, 5}, []int{70, 18, 7, 3, 2})

	searchTerms = []string{"shoes", "laptop", "usb-c+cable", "coffee", "headphones", "tent", "desk+lamp", "gift+card"}
	categories  = []string{"electronics", "books", "home", "garden", "toys", "fashion", "sports", "beauty"}
)

type page uint8

const (
	pageHome page = iota
	pageSearch
	pageProduct
	pageCategory
	pageCart
	pageCheckout
	pageAccount
	pageBlog
)

var pages = newTable(
	[]page{pageHome, pageSearch, pageProduct, pageCategory, pageCart, pageCheckout, pageAccount, pageBlog},
	[]int{15, 12, 40, 12, 8, 4, 4, 5})

// skewed returns an id in [1, n] where low ids are hot: u^3 puts 10% of
// draws on the first 0.1% of ids, roughly how user activity is distributed.
func skewed3(r *rng, n int64) int64 {
	u := r.float()
	return 1 + int64(u*u*u*float64(n))
}

func skewed2(r *rng, n int64) int64 {
	u := r.float()
	return 1 + int64(u*u*float64(n))
}

func (g *Generator) appendClick(dst []byte, m fault, id uint64, ts, nowMs int64) []byte {
	r := &g.rng
	user := skewed3(r, 1_000_000)
	g.setKey(user)
	if m == notJSON {
		return g.appendLogLine(dst, "event_id", id, user, ts)
	}

	dst = append(dst, '{')
	if m != missingID {
		dst = append(dst, `"event_id":"`...)
		dst = appendHex16(dst, id)
		dst = append(dst, `",`...)
	}
	dst = append(dst, `"user_id":`...)
	dst = appendIDValue(dst, m, 'u', user)
	dst = append(dst, `,"session_id":"`...)
	dst = appendHex16(dst, mix64(uint64(user)^g.salt^uint64(nowMs/sessionMs)*0x9e3779b97f4a7c15))
	dst = append(dst, '"')
	dst = g.appendTSField(dst, m, ts)

	dst = append(dst, `,"url":"`...)
	switch pages.pick(r) {
	case pageHome:
		dst = append(dst, '/')
	case pageSearch:
		dst = append(dst, "/search?q="...)
		dst = append(dst, searchTerms[r.intn(len(searchTerms))]...)
	case pageProduct:
		dst = append(dst, "/products/"...)
		dst = strconv.AppendInt(dst, skewed2(r, 50_000), 10)
	case pageCategory:
		dst = append(dst, "/category/"...)
		dst = append(dst, categories[r.intn(len(categories))]...)
	case pageCart:
		dst = append(dst, "/cart"...)
	case pageCheckout:
		dst = append(dst, "/checkout"...)
	case pageAccount:
		dst = append(dst, "/account/orders"...)
	case pageBlog:
		dst = append(dst, "/blog/"...)
		dst = strconv.AppendInt(dst, 1+int64(r.intn(300)), 10)
	}
	dst = append(dst, `","referrer":"`...)
	dst = append(dst, referrers.pick(r)...)
	dst = append(dst, `","device":"`...)
	dst = append(dst, devices.pick(r)...)
	dst = append(dst, `","country":"`...)
	dst = append(dst, places[placeTable.pickIndex(r)].code...)
	dst = append(dst, `","duration_ms":`...)
	u := r.float()
	dst = strconv.AppendInt(dst, 50+int64(u*u*u*180_000), 10)
	dst = append(dst, `,"revenue":`...)
	if r.intn(100) < 3 {
		u := r.float()
		dst = appendCents(dst, 99+int64(u*u*99_900))
	} else {
		dst = append(dst, '0')
	}
	return append(dst, '}')
}

// appendOrder writes the event of order o at event time ts.
func (g *Generator) appendOrder(dst []byte, m fault, o *order, ts int64) []byte {
	g.setOrderKey(o.id)
	if m == notJSON {
		return g.appendLogLine(dst, "order_id", o.id, o.customer, ts)
	}

	dst = append(dst, '{')
	if m != missingID {
		dst = append(dst, `"order_id":"`...)
		dst = appendHex16(dst, o.id)
		dst = append(dst, `",`...)
	}
	dst = append(dst, `"customer_id":`...)
	dst = appendIDValue(dst, m, 'c', o.customer)
	dst = g.appendTSField(dst, m, ts)
	dst = append(dst, `,"status":"`...)
	dst = append(dst, orderStatuses[o.status]...)
	dst = append(dst, `","items":[`...)

	// Everything below is the order's own: drawn from its seed, so that
	// every event of the order repeats it.
	r := &rng{s: o.body}
	var total int64
	n := itemCounts.pick(r)
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		sku := skewed2(r, 20_000)
		// Price is a function of the sku so the same product costs the
		// same in every order, as a catalogue would have it.
		price := 199 + int64(mix64(uint64(sku)*0x2545f4914f6cdd1d)%49_800)
		qty := quantities.pick(r)
		// Correction k (from 1) changes the quantity of item (k-1) mod n
		// by one, wrapping within 1..5: item i has seen fixes/n of them,
		// plus one if i < fixes mod n.
		adj := int(o.fixes) / n
		if i < int(o.fixes)%n {
			adj++
		}
		qty = 1 + (qty-1+adj)%5
		total += price * int64(qty)
		dst = append(dst, `{"sku":"SKU-`...)
		dst = appendPadded6(dst, sku)
		dst = append(dst, `","qty":`...)
		dst = strconv.AppendInt(dst, int64(qty), 10)
		dst = append(dst, `,"price":`...)
		dst = appendCents(dst, price)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"total":`...)
	dst = appendCents(dst, total)

	p := &places[placeTable.pickIndex(r)]
	dst = append(dst, `,"currency":"`...)
	dst = append(dst, p.currency...)
	dst = append(dst, `","shipping":{"country":"`...)
	dst = append(dst, p.code...)
	dst = append(dst, `","city":"`...)
	dst = append(dst, p.cities[r.intn(len(p.cities))]...)
	dst = append(dst, `"},"is_gift":`...)
	if r.intn(100) < 7 {
		dst = append(dst, "true"...)
	} else {
		dst = append(dst, "false"...)
	}
	// The order's date is the day it was placed, whatever the event.
	dst = append(dst, `,"order_date":"`...)
	dst = g.appendDate(dst, floorDiv(o.placed, msPerDay))
	return append(dst, `"}`...)
}

// appendIDValue writes a long, or for wrongType a string that no numeric
// coercion could rescue ("u123" rather than "123").
func appendIDValue(dst []byte, m fault, prefix byte, v int64) []byte {
	if m != wrongType {
		return strconv.AppendInt(dst, v, 10)
	}
	dst = append(dst, '"', prefix)
	dst = strconv.AppendInt(dst, v, 10)
	return append(dst, '"')
}

// badTimestamps are variants a lenient parser might still be tempted by
// but that RFC 3339 forbids; they are derived from the real timestamp so
// they look like a buggy client rather than noise.
func (g *Generator) appendTSField(dst []byte, m fault, ts int64) []byte {
	switch m {
	case missingTS:
		return dst
	case badTS:
		dst = append(dst, `,"ts":"`...)
		switch g.rng.intn(3) {
		case 0:
			dst = append(dst, "yesterday"...)
		case 1: // hour 25
			start := len(dst)
			dst = g.appendTimestamp(dst, ts)
			dst[start+11], dst[start+12] = '2', '5'
		default: // month 13
			start := len(dst)
			dst = g.appendTimestamp(dst, ts)
			dst[start+5], dst[start+6] = '1', '3'
		}
		return append(dst, '"')
	}
	dst = append(dst, `,"ts":"`...)
	dst = g.appendTimestamp(dst, ts)
	return append(dst, '"')
}

// appendLogLine writes what a misconfigured client sends instead of JSON:
// a logfmt line. It starts with a letter so no JSON parser gets as far as
// a value, and still carries the id for tracing.
func (g *Generator) appendLogLine(dst []byte, idName string, id uint64, entity int64, ts int64) []byte {
	dst = append(dst, "WARN ts="...)
	dst = g.appendTimestamp(dst, ts)
	dst = append(dst, ' ')
	dst = append(dst, idName...)
	dst = append(dst, '=')
	dst = appendHex16(dst, id)
	dst = append(dst, " entity="...)
	dst = strconv.AppendInt(dst, entity, 10)
	return append(dst, ` msg="payload rejected by upstream validator"`...)
}

const msPerDay = 24 * 60 * 60 * 1000

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// appendTimestamp writes ms since the epoch as YYYY-MM-DDTHH:MM:SS.mmmZ.
// time.Time.AppendFormat costs several times more, which matters at
// millions of events per second.
func (g *Generator) appendTimestamp(dst []byte, ms int64) []byte {
	day := floorDiv(ms, msPerDay)
	rem := ms - day*msPerDay
	dst = g.appendDate(dst, day)
	h := rem / 3_600_000
	mi := rem / 60_000 % 60
	s := rem / 1000 % 60
	milli := rem % 1000
	dst = append(dst, 'T', digits2[2*h], digits2[2*h+1], ':', digits2[2*mi], digits2[2*mi+1],
		':', digits2[2*s], digits2[2*s+1], '.',
		byte('0'+milli/100), digits2[2*(milli%100)], digits2[2*(milli%100)+1], 'Z')
	return dst
}

func (g *Generator) appendDate(dst []byte, day int64) []byte {
	if day != g.cacheDay {
		g.cacheDay = day
		y, m, d := civil(day)
		b := &g.cacheDate
		b[0] = byte('0' + y/1000%10)
		b[1] = byte('0' + y/100%10)
		b[2], b[3] = digits2[2*(y%100)], digits2[2*(y%100)+1]
		b[4] = '-'
		b[5], b[6] = digits2[2*m], digits2[2*m+1]
		b[7] = '-'
		b[8], b[9] = digits2[2*d], digits2[2*d+1]
	}
	return append(dst, g.cacheDate[:]...)
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil inverse).
func civil(days int64) (y, m, d int64) {
	z := days + 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

const digits2 = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

const hexDigits = "0123456789abcdef"

func appendHex16(dst []byte, v uint64) []byte {
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hexDigits[v&0xf]
		v >>= 4
	}
	return append(dst, b[:]...)
}

// appendCents writes an amount of cents as a JSON number with exactly two
// decimals, the scale of the decimal columns it lands in.
func appendCents(dst []byte, cents int64) []byte {
	dst = strconv.AppendInt(dst, cents/100, 10)
	c := cents % 100
	return append(dst, '.', digits2[2*c], digits2[2*c+1])
}

func appendPadded6(dst []byte, v int64) []byte {
	var b [6]byte
	for i := 5; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[:]...)
}
