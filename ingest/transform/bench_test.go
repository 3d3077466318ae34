package transform_test

import (
	"testing"

	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/transform"
)

// BenchmarkEval: a filter and three computed columns on one decoded row.
func BenchmarkEval(b *testing.B) {
	in := inputSchema(b)
	p, err := transform.Compile(transform.Config{
		Filter: `country != "XX"`,
		Columns: []transform.Column{
			{Name: "region", Expr: `country in ["DE", "FR", "GB", "PL", "IT", "ES", "NL"] ? "eu" : "other"`},
			{Name: "cents", Expr: `amount != null ? int(amount * 100.0) : dyn(null)`, Type: "long"},
			{Name: "big", Expr: `qty != null && qty > 3`},
		},
	}, in)
	if err != nil {
		b.Fatal(err)
	}
	dec, r, _ := bind(b, p, in)
	if err := dec.Parse([]byte(`{"id":1,"country":"DE","amount":2.5,"qty":4,"ts":"2026-01-02T03:04:05Z"}`), decode.RecordMeta{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if keep, err := r.Eval(); !keep || err != nil {
			b.Fatal(keep, err)
		}
	}
}
