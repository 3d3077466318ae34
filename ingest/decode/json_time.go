package decode

import (
	"time"
)

// Timestamps are on the hot path of every record (a ~20 ns budget), and time.Parse costs several
// times that plus an allocation whenever the offset is not UTC. The hand-rolled parsers below
// handle the shapes producers actually emit; time.Parse is kept as a fallback for the rarer ISO 8601
// spellings (offsets without a colon or without minutes, a comma before the fraction).

const (
	secondsPerDay = 86400
	// unixEpochDays is the number of days from 0000-03-01 to 1970-01-01 (proleptic Gregorian):
	// daysFromCivil counts from a March 1st so that leap days fall at the end of its years.
	unixEpochDays = 719468
)

var pow10 = [...]int64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000}

// digits2 reads two ASCII digits. The unsigned subtraction turns any non-digit into a value > 9,
// so one comparison per byte validates it.
func digits2(a, b byte) (int, bool) {
	x, y := a-'0', b-'0'
	return int(x)*10 + int(y), x <= 9 && y <= 9
}

func digits4(s []byte) (int, bool) {
	hi, ok1 := digits2(s[0], s[1])
	lo, ok2 := digits2(s[2], s[3])
	return hi*100 + lo, ok1 && ok2
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysInMonth(y, m int) int {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil converts a proleptic Gregorian date to days since 1970-01-01 (Howard Hinnant's
// days_from_civil: a handful of integer operations, exact for every year).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := m + 9
	if m > 2 {
		mp = m - 3
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - unixEpochDays
}

// parseDate parses exactly "YYYY-MM-DD" into days since the epoch.
func parseDate(s []byte) (int64, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	y, ok1 := digits4(s[0:4])
	m, ok2 := digits2(s[5], s[6])
	d, ok3 := digits2(s[8], s[9])
	if !(ok1 && ok2 && ok3) || m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m) {
		return 0, false
	}
	return daysFromCivil(y, m, d), true
}

// parseClock parses "HH:MM:SS[.fffffffff]" at the start of s and returns the seconds of the day,
// the nanoseconds and how many bytes it consumed. A fraction longer than nine digits is not
// accepted here: the timestamp fallback truncates it, parseTimeOfDay rejects it.
func parseClock(s []byte) (secs, nanos int64, n int, ok bool) {
	if len(s) < 8 || s[2] != ':' || s[5] != ':' {
		return 0, 0, 0, false
	}
	hh, ok1 := digits2(s[0], s[1])
	mm, ok2 := digits2(s[3], s[4])
	ss, ok3 := digits2(s[6], s[7])
	// 23:59:60 (a leap second) is refused rather than silently folded into the next second.
	if !(ok1 && ok2 && ok3) || hh > 23 || mm > 59 || ss > 59 {
		return 0, 0, 0, false
	}
	n = 8
	if n < len(s) && s[n] == '.' {
		n++
		start := n
		for n < len(s) && n-start < 9 {
			c := s[n] - '0'
			if c > 9 {
				break
			}
			nanos = nanos*10 + int64(c)
			n++
		}
		digits := n - start
		if digits == 0 || (n < len(s) && s[n]-'0' <= 9) {
			return 0, 0, 0, false
		}
		nanos *= pow10[9-digits]
	}
	return int64(hh*3600 + mm*60 + ss), nanos, n, true
}

// parseTimeOfDay parses an Iceberg time value, "HH:MM:SS[.ffffff]", into microseconds of the day.
// Digits beyond microseconds are truncated, as for timestamps.
func parseTimeOfDay(s []byte) (int64, bool) {
	secs, nanos, n, ok := parseClock(s)
	if !ok || n != len(s) {
		return 0, false
	}
	return secs*1e6 + nanos/1000, true
}

// parseTimestamp parses an RFC 3339 timestamp ('T', 't' or ' ' between date and time, optional
// fraction, 'Z', a ±HH:MM offset or no offset at all, which means UTC) into Unix seconds and
// nanoseconds, the offset applied. zoned reports whether the text carried an offset.
func parseTimestamp(s []byte) (sec, nsec int64, zoned, ok bool) {
	sec, nsec, zoned, ok = parseTimestampFast(s)
	if ok {
		return sec, nsec, zoned, true
	}
	return parseTimestampSlow(s)
}

func parseTimestampFast(s []byte) (sec, nsec int64, zoned, ok bool) {
	if len(s) < 19 {
		return 0, 0, false, false
	}
	if c := s[10]; c != 'T' && c != ' ' && c != 't' {
		return 0, 0, false, false
	}
	days, ok := parseDate(s[:10])
	if !ok {
		return 0, 0, false, false
	}
	secs, nanos, n, ok := parseClock(s[11:])
	if !ok {
		return 0, 0, false, false
	}
	rest := s[11+n:]
	var off int64
	switch {
	case len(rest) == 0:
	case len(rest) == 1 && (rest[0] == 'Z' || rest[0] == 'z'):
		zoned = true
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := digits2(rest[1], rest[2])
		om, ok2 := digits2(rest[4], rest[5])
		if !(ok1 && ok2) || oh > 23 || om > 59 {
			return 0, 0, false, false
		}
		off = int64(oh*3600 + om*60)
		if rest[0] == '-' {
			off = -off
		}
		zoned = true
	default:
		return 0, 0, false, false
	}
	return days*secondsPerDay + secs - off, nanos, zoned, true
}

// Layouts for parseTimestampSlow. time.Parse accepts a fraction (with '.' or ',') after the
// seconds even when the layout has none, and truncates it beyond nanoseconds.
var timestampLayouts = [...]struct {
	layout string
	zoned  bool
}{
	{"2006-01-02T15:04:05Z07:00", true},
	{"2006-01-02T15:04:05Z0700", true},
	{"2006-01-02T15:04:05Z07", true},
	{"2006-01-02T15:04:05", false},
}

func parseTimestampSlow(s []byte) (sec, nsec int64, zoned, ok bool) {
	var buf [48]byte
	if len(s) < 19 || len(s) > len(buf) {
		return 0, 0, false, false
	}
	b := buf[:copy(buf[:], s)]
	if b[10] == ' ' || b[10] == 't' {
		b[10] = 'T'
	}
	if last := len(b) - 1; b[last] == 'z' {
		b[last] = 'Z'
	}
	str := string(b)
	for _, l := range timestampLayouts {
		t, err := time.Parse(l.layout, str)
		if err != nil {
			continue
		}
		// time.Parse takes offsets up to ±99:59; RFC 3339 stops at ±23:59.
		if _, off := t.Zone(); off <= -secondsPerDay || off >= secondsPerDay {
			return 0, 0, false, false
		}
		return t.Unix(), int64(t.Nanosecond()), l.zoned, true
	}
	return 0, 0, false, false
}
