package filter_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"

	"github.com/floelake/floe/timetravel/filter"
)

// FuzzParse checks that Parse never panics, that what it accepts is
// within the limits and comes back unchanged from its canonical form,
// that what it rejects gets a *filter.Error inside the source, and that
// Bind, given what Parse accepts, either fails or yields an expression
// iceberg-go binds.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`a = 1`, `a <> -2e3 AND NOT (b IN ('x', 'y''z') OR c IS NOT NULL)`, `"my col" NOT IN (1.5, TRUE)`,
		`i >= 2147483648`, `price = 1.005`, `ts < '2026-01-02 03:04:05.123456'`, `dt = '2026-01-02'`,
		`u = 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6'`, `tm > '03:04:05'`, `d = 1e-400`, `f = 3.4e39`,
		`NOT NOT NOT x = 'a'`, `((a = 1) OR (b = 2)) AND c = 3`, `a = NULL`, `a IN ()`, `(a = 1`, `'abc`,
		`a = 1)`, `"and" = 'or'`, "a = '\x00'", `a = 1 AND`, `case = 'x'`, `amount = 1e999999999999`,
	} {
		f.Add(seed)
	}
	sch := bindSchema()
	f.Fuzz(func(t *testing.T, src string) {
		e, err := filter.Parse(src)
		if err != nil {
			checkRejected(t, src, err)
			return
		}
		if len(src) > filter.MaxSourceLen {
			t.Fatalf("accepted %d bytes", len(src))
		}
		if d, n := shape(e); d > filter.MaxDepth || n > filter.MaxInList {
			t.Fatalf("accepted NOTs %d deep and an IN list of %d: %q", d, n, src)
		}
		canonical := e.String()
		back, err := filter.Parse(canonical)
		if err != nil {
			t.Fatalf("%q parsed, but its canonical form %q does not: %v", src, canonical, err)
		}
		if !reflect.DeepEqual(e, back) {
			t.Fatalf("%q parsed to %#v, its canonical form %q to %#v", src, e, canonical, back)
		}
		if again := back.String(); again != canonical {
			t.Fatalf("canonical form %q renders as %q", canonical, again)
		}
		checkBind(t, e, sch)
		// Padded beyond the limit, the same filter is refused.
		_, err = filter.Parse(src + strings.Repeat(" ", filter.MaxSourceLen+1-len(src)))
		if err == nil {
			t.Fatalf("accepted %q padded to %d bytes", src, filter.MaxSourceLen+1)
		}
	})
}

func checkRejected(t *testing.T, src string, err error) {
	var perr *filter.Error
	if !errors.As(err, &perr) {
		t.Fatalf("%q: error %v is not a *filter.Error", src, err)
	}
	if perr.Pos < 0 || perr.Pos > len(src) && perr.Pos != filter.MaxSourceLen {
		t.Fatalf("%q: error position %d is outside the source", src, perr.Pos)
	}
	if perr.Msg == "" {
		t.Fatalf("%q: error without a message", src)
	}
	_ = perr.Caret(src)
}

func checkBind(t *testing.T, e filter.Expr, sch *iceberg.Schema) {
	expr, err := filter.Bind(e, sch)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "filter: ") {
			t.Fatalf("bind %s: error %q lacks the filter: prefix", e, err)
		}
		return
	}
	if _, err := iceberg.BindExpr(sch, expr, true); err != nil {
		t.Fatalf("bind %s: iceberg-go cannot bind %s: %v", e, expr, err)
	}
}

// shape returns how deeply NOTs nest in e (parentheses leave no trace in
// the tree, so this is a lower bound of the source's nesting) and the
// length of its longest IN list.
func shape(e filter.Expr) (depth, inList int) {
	switch e := e.(type) {
	case filter.Not:
		d, n := shape(e.X)
		return d + 1, n
	case filter.And:
		return shapeOfBoth(e.Left, e.Right)
	case filter.Or:
		return shapeOfBoth(e.Left, e.Right)
	case filter.In:
		return 0, len(e.Values)
	}
	return 0, 0
}

func shapeOfBoth(l, r filter.Expr) (depth, inList int) {
	ld, ln := shape(l)
	rd, rn := shape(r)
	return max(ld, rd), max(ln, rn)
}
