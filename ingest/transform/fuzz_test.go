package transform_test

import (
	"testing"

	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/internal/conf"
)

// FuzzCompile: whatever the configuration's expressions, names and types,
// compiling returns a program or an error, and a program evaluates any
// decoded row to a row, a filtered record or a dead letter, never a panic.
func FuzzCompile(f *testing.F) {
	f.Add(`country != "XX"`, "total", `amount * double(qty)`, "", "country", "cc", "tags", `{"id":1,"country":"DE","amount":2.5,"qty":4}`)
	f.Add(``, "d", `ts`, "date", "", "", "", `{"id":1,"ts":"2026-01-02T03:04:05Z"}`)
	f.Add(`qty > 1`, "x", `100 / qty`, "int", "id", "qty", "price", `{"id":1,"qty":0}`)
	f.Add(`size(country) > 2`, "s", `country + "x"`, "binary", "qty", "id", "nosuch", `{"id":1,"country":null}`)
	f.Add(`dyn(1)`, "n", `null`, "string", "", "", "", `{"id":2}`)
	f.Add(`"a".matches("(")`, "r", `string(price)`, "", "", "", "", `{"id":3,"price":"1.25"}`)
	in := inputSchema(f)
	f.Fuzz(func(t *testing.T, filter, name, expr, typ, renameFrom, renameTo, drop, record string) {
		cfg := transform.Config{Filter: filter, Columns: []transform.Column{{Name: name, Expr: expr, Type: typ}}}
		if renameFrom != "" {
			cfg.Rename = map[string]string{renameFrom: renameTo}
		}
		if drop != "" {
			cfg.Drop = []string{drop}
		}
		p, err := transform.Compile(cfg, in)
		if err != nil {
			return
		}
		dec, r, out := bind(t, p, in)
		if dec.Parse([]byte(record), decode.RecordMeta{}) != nil {
			return
		}
		keep, err := r.Eval()
		if err != nil {
			if _, ok := err.(*decode.DecodeError); !ok {
				t.Fatalf("evaluation error %T %v is not a dead letter", err, err)
			}
			return
		}
		if keep {
			for i := range out.NumFields() {
				r.Cell(i)
			}
		}
	})
}

// FuzzWindowConfig: whatever the window section says, compiling returns a
// program or an error naming a field, and a compiled program has a window
// table schema keyed by its group columns and window_start, and folds a
// decoded row into its windows or refuses it as a dead letter.
func FuzzWindowConfig(f *testing.F) {
	f.Add("tumbling", int64(60e9), int64(0), int64(0), "country", "", "count", "", "sum", "qty", uint8(0), "ts", `{"id":1,"country":"DE","qty":3,"ts":"2026-01-02T03:04:05Z"}`)
	f.Add("hopping", int64(120e9), int64(60e9), int64(0), "id", "country", "approx_count_distinct", "country", "max", "ts", uint8(10), "ts", `{"id":2,"ts":"2026-01-02T03:04:05Z"}`)
	f.Add("session", int64(0), int64(0), int64(30e9), "", "", "avg", "amount", "min", "country", uint8(0), "ts", `{"id":3,"amount":1.5}`)
	f.Add("session", int64(-1), int64(5), int64(1), "tags", "nosuch", "median", "qty", "count", "", uint8(30), "country", `{}`)
	in := inputSchema(f)
	f.Fuzz(func(t *testing.T, typ string, size, slide, gap int64, g1, g2, fn1, of1, fn2, of2 string, precision uint8, timeCol, record string) {
		w := &transform.WindowConfig{Time: timeCol, Type: typ, Size: conf.Duration(size), Slide: conf.Duration(slide), Gap: conf.Duration(gap),
			Aggregates: []transform.Aggregate{{Name: "a1", Fn: fn1, Of: of1, Precision: int(precision)}, {Name: "a2", Fn: fn2, Of: of2}}}
		for _, g := range []string{g1, g2} {
			if g != "" {
				w.GroupBy = append(w.GroupBy, g)
			}
		}
		p, err := transform.Compile(transform.Config{Window: w}, in)
		if err != nil {
			if len(conf.Fields(err)) == 0 {
				t.Fatalf("an error that names no field: %v", err)
			}
			return
		}
		sch, err := p.TableSchema(nil)
		if err != nil {
			t.Fatalf("compiled, but no table schema: %v", err)
		}
		if len(sch.IdentifierFieldIDs) != len(p.WindowKey()) {
			t.Fatalf("identifiers %v for key %v", sch.IdentifierFieldIDs, p.WindowKey())
		}
		dec, r, _ := bind(t, p, in)
		wd := p.NewWindower(r)
		if dec.Parse([]byte(record), decode.RecordMeta{Topic: "t"}) != nil {
			return
		}
		if keep, err := r.Eval(); err != nil || !keep {
			return
		}
		if err := wd.Add("t", 0); err != nil {
			if _, ok := err.(*decode.DecodeError); !ok {
				t.Fatalf("a fold error %T %v is not a dead letter", err, err)
			}
			return
		}
		if b, _, err := wd.Flush(); err != nil || b == nil {
			t.Fatalf("flush after a folded row: %v, %d bytes", err, len(b))
		}
	})
}
