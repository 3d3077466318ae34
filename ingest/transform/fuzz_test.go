package transform_test

import (
	"testing"

	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/transform"
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
	in := inputSchema(&testing.T{})
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
		out, err := p.OutputSchema(nil)
		if err != nil {
			t.Fatalf("compiled, but no output schema: %v", err)
		}
		dec, err := decode.NewJSONDecoder(in)
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.NewRunner(dec, out)
		if err != nil {
			t.Fatalf("compiled, but the output schema does not fit: %v", err)
		}
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
