package transform_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/schema"
)

func inputSchema(t testing.TB) *iceberg.Schema {
	t.Helper()
	sch, err := schema.Build([]schema.Column{
		{Name: "id", Type: "long", Required: true},
		{Name: "country", Type: "string"},
		{Name: "amount", Type: "double"},
		{Name: "qty", Type: "int"},
		{Name: "ts", Type: "timestamptz"},
		{Name: "tags", Type: "list<string>"},
		{Name: "price", Type: "decimal(10,2)"},
	}, []string{"offset"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// bind makes a decoder of the input schema in and a Runner of p on it,
// bound to p's output schema, which it returns too.
func bind(t testing.TB, p *transform.Program, in *iceberg.Schema) (*decode.JSONDecoder, *transform.Runner, *iceberg.Schema) {
	t.Helper()
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
	return dec, r, out
}

type rig struct {
	t   *testing.T
	p   *transform.Program
	dec *decode.JSONDecoder
	r   *transform.Runner
	rb  *array.RecordBuilder
	out *iceberg.Schema
}

func newRig(t *testing.T, cfg transform.Config) *rig {
	t.Helper()
	in := inputSchema(t)
	p, err := transform.Compile(cfg, in)
	if err != nil {
		t.Fatal(err)
	}
	dec, r, out := bind(t, p, in)
	asc, err := table.SchemaToArrowSchema(out, nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	rb := array.NewRecordBuilder(memory.DefaultAllocator, asc)
	t.Cleanup(rb.Release)
	return &rig{t: t, p: p, dec: dec, r: r, rb: rb, out: out}
}

// feed parses and evaluates one record, appending it when kept.
func (g *rig) feed(value string) (bool, error) {
	g.t.Helper()
	if err := g.dec.Parse([]byte(value), decode.RecordMeta{Offset: 7}); err != nil {
		g.t.Fatalf("parse %s: %v", value, err)
	}
	keep, err := g.r.Eval()
	if err == nil && keep {
		g.r.Append(g.rb)
	}
	return keep, err
}

func (g *rig) rows() []string { return rowsOf(g.t, g.rb) }

// rowsOf takes the builder's rows as JSON objects with sorted keys.
func rowsOf(t *testing.T, rb *array.RecordBuilder) []string {
	t.Helper()
	rec := rb.NewRecordBatch()
	defer rec.Release()
	b, err := rec.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		j, _ := json.Marshal(r)
		out[i] = string(j)
	}
	return out
}

func TestFilterDeriveRenameDrop(t *testing.T) {
	g := newRig(t, transform.Config{
		Filter: `country != "XX" && (amount == null || amount > 0.0)`,
		Columns: []transform.Column{
			{Name: "total", Expr: `amount * double(qty)`},
			{Name: "country_lc", Expr: `country.lowerAscii()`},
			{Name: "day", Expr: `ts`, Type: "date"},
			{Name: "big", Expr: `qty > 10`},
			{Name: "qty32", Expr: `qty * 2`, Type: "int"},
		},
		Rename: map[string]string{"country": "cc"},
		Drop:   []string{"tags", "price"},
	})
	if got := strings.Join(g.p.Columns(), ","); got != "id,cc,amount,qty,ts,_kafka_offset,total,country_lc,day,big,qty32" {
		t.Fatalf("columns: %s", got)
	}
	for _, c := range []struct {
		in   string
		keep bool
	}{
		{`{"id":1,"country":"DE","amount":2.5,"qty":4,"ts":"2026-01-02T03:04:05Z","tags":["a"],"price":"1.00"}`, true},
		{`{"id":2,"country":"XX","amount":2.5,"qty":4,"ts":"2026-01-02T03:04:05Z"}`, false},
		{`{"id":3,"country":"FR","amount":-1,"qty":4,"ts":"2026-01-02T03:04:05Z"}`, false},
	} {
		keep, err := g.feed(c.in)
		if err != nil || keep != c.keep {
			t.Fatalf("%s: keep %v err %v, want keep %v", c.in, keep, err, c.keep)
		}
	}
	// amount null passes the filter; total fails (null * double) and is a dead letter.
	_, err := g.feed(`{"id":4,"country":"FR","qty":4,"ts":"2026-01-02T03:04:05Z"}`)
	var de *decode.DecodeError
	if !asDecodeError(err, &de) || de.Field != "total" || !strings.Contains(de.Reason, "columns[0]") {
		t.Fatalf("null arithmetic: %v", err)
	}
	rows := g.rows()
	if len(rows) != 1 {
		t.Fatalf("rows: %v", rows)
	}
	want := `{"_kafka_offset":7,"amount":2.5,"big":false,"cc":"DE","country_lc":"de","day":"2026-01-02","id":1,"qty":4,"qty32":8,"total":10,"ts":"2026-01-02T03:04:05Z"}`
	if rows[0] != want {
		t.Fatalf("row\n got %s\nwant %s", rows[0], want)
	}
}

func asDecodeError(err error, de **decode.DecodeError) bool {
	d, ok := err.(*decode.DecodeError)
	*de = d
	return ok
}

func TestRuntimeErrorsAreDeadLetters(t *testing.T) {
	g := newRig(t, transform.Config{
		Columns: []transform.Column{
			{Name: "ratio", Expr: `100 / qty`},
			{Name: "small", Expr: `id * 1000`, Type: "int"},
		},
	})
	for _, c := range []struct{ in, field, reason string }{
		{`{"id":1,"qty":0}`, "ratio", "division by zero"},
		{`{"id":9999999,"qty":1}`, "small", "does not fit the int column"},
	} {
		_, err := g.feed(c.in)
		var de *decode.DecodeError
		if !asDecodeError(err, &de) || de.Field != c.field || !strings.Contains(de.Reason, c.reason) {
			t.Fatalf("%s: got %v, want %s: %s", c.in, err, c.field, c.reason)
		}
	}
	if keep, err := g.feed(`{"id":1,"qty":4}`); err != nil || !keep {
		t.Fatal(keep, err)
	}
	if rows := g.rows(); len(rows) != 1 || !strings.Contains(rows[0], `"ratio":25`) || !strings.Contains(rows[0], `"small":1000`) {
		t.Fatalf("rows %v", rows)
	}
}

func TestNullFilterDropsTheRecord(t *testing.T) {
	g := newRig(t, transform.Config{Filter: `qty == null ? dyn(null) : qty > 1`})
	if keep, err := g.feed(`{"id":1}`); err != nil || keep {
		t.Fatalf("null filter: keep %v err %v", keep, err)
	}
	if keep, err := g.feed(`{"id":1,"qty":2}`); err != nil || !keep {
		t.Fatalf("true filter: keep %v err %v", keep, err)
	}
}

func TestCompileErrorsNameTheField(t *testing.T) {
	in := inputSchema(t)
	cases := []struct {
		cfg   transform.Config
		field string
		msg   string
	}{
		{transform.Config{Filter: `amount +`}, "filter", "Syntax error"},
		{transform.Config{Filter: `amount + 1.0`}, "filter", "must be a boolean expression"},
		{transform.Config{Filter: `nosuch > 1`}, "filter", "expressions read the top-level columns id, country"},
		{transform.Config{Filter: `size(tags) > 1`}, "filter", "struct, list and map columns"},
		{transform.Config{Columns: []transform.Column{{Name: "x", Expr: `country + 1`}}}, "columns[0].expr", "no matching overload"},
		{transform.Config{Columns: []transform.Column{{Name: "x", Expr: `country`, Type: "long"}}}, "columns[0].type", "cannot hold"},
		{transform.Config{Columns: []transform.Column{{Name: "x", Expr: `country`, Type: "varchar"}}}, "columns[0].type", "must be boolean, int"},
		{transform.Config{Columns: []transform.Column{{Name: "amount", Expr: `1`}}}, "columns[0].name", `already has a column "amount"`},
		{transform.Config{Columns: []transform.Column{{Name: "", Expr: `1`}}}, "columns[0].name", "must not be empty"},
		{transform.Config{Columns: []transform.Column{{Name: "x", Expr: ` `}}}, "columns[0].expr", "must not be empty"},
		{transform.Config{Columns: []transform.Column{{Name: "x", Expr: `null`}}}, "columns[0].type", "declare the column's type"},
		{transform.Config{Drop: []string{"nosuch"}}, "drop[0]", `no input column "nosuch"`},
		{transform.Config{Drop: []string{"id", "id"}}, "drop[1]", "listed twice"},
		{transform.Config{Rename: map[string]string{"nosuch": "x"}}, "rename.nosuch", "no input column"},
		{transform.Config{Rename: map[string]string{"country": "amount"}}, "rename.country", `already has a column "amount"`},
		{transform.Config{Rename: map[string]string{"country": "x"}, Drop: []string{"country"}}, "drop[0]", "also renamed"},
		{transform.Config{Window: countPerMinute(), State: transform.StateConfig{IdlePartition: conf.Duration(-time.Second)}}, "state.idle_partition", "must not be negative"},
		{transform.Config{Window: countPerMinute(), State: transform.StateConfig{Retention: conf.Duration(-time.Second)}}, "state.retention", "must not be negative"},
		{transform.Config{State: transform.StateConfig{IdlePartition: conf.Duration(time.Minute)}}, "state", "applies to window aggregation only"},
	}
	for _, c := range cases {
		_, err := transform.Compile(c.cfg, in)
		if err == nil {
			t.Fatalf("%+v: no error", c.cfg)
		}
		fields := conf.Fields(err)
		found := false
		for _, f := range fields {
			if f.Field == c.field && strings.Contains(f.Error(), c.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("%+v: want %s: ...%s..., got %v", c.cfg, c.field, c.msg, err)
		}
	}
}

func TestSwapAndReplaceByRename(t *testing.T) {
	// Renaming a column frees its name for a computed one, and two columns
	// may swap names.
	g := newRig(t, transform.Config{
		Rename:  map[string]string{"amount": "raw_amount", "id": "qty", "qty": "id"},
		Columns: []transform.Column{{Name: "amount", Expr: `amount * 2.0`}}, // expressions read the input's names
	})
	if got := strings.Join(g.p.Columns(), ","); got != "qty,country,raw_amount,id,ts,tags,price,_kafka_offset,amount" {
		t.Fatalf("columns: %s", got)
	}
	if _, err := g.feed(`{"id":1,"qty":5,"amount":1.5}`); err != nil {
		t.Fatal(err)
	}
	want := `{"_kafka_offset":7,"amount":3,"country":null,"id":5,"price":null,"qty":1,"raw_amount":1.5,"tags":null,"ts":null}`
	if rows := g.rows(); len(rows) != 1 || rows[0] != want {
		t.Fatalf("rows %v, want [%s]", rows, want)
	}
}

func TestOutputSchemaKeyAndTableFit(t *testing.T) {
	in := inputSchema(t)
	p, err := transform.Compile(transform.Config{Columns: []transform.Column{{Name: "n", Expr: "qty + 1"}}}, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.OutputSchema([]string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.IdentifierFieldIDs) != 1 || out.Field(0).Name != "id" || out.IdentifierFieldIDs[0] != out.Field(0).ID {
		t.Fatalf("identifiers: %v", out)
	}
	if _, err := p.OutputSchema([]string{"n"}); err == nil || !strings.Contains(err.Error(), "required") {
		t.Fatalf("computed key: %v", err)
	}
	if _, err := p.OutputSchema([]string{"nosuch"}); err == nil {
		t.Fatal("missing key column accepted")
	}
	dec, err := decode.NewJSONDecoder(in)
	if err != nil {
		t.Fatal(err)
	}
	// A table without the computed column, and with a column of another type.
	other := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "country", Type: iceberg.PrimitiveTypes.Int32},
		iceberg.NestedField{ID: 3, Name: "extra", Type: iceberg.PrimitiveTypes.String, Required: true},
	)
	_, err = p.NewRunner(dec, other)
	for _, want := range []string{`"country" is int in the table, string in the output`, `required column "extra"`, `no column "n"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("runner on a misfit table: want %q in %v", want, err)
		}
	}
}

func TestTableColumnsOutsideTheOutputAreNull(t *testing.T) {
	in := inputSchema(t)
	p, err := transform.Compile(transform.Config{Drop: []string{"tags", "price", "ts", "_kafka_offset"}}, in)
	if err != nil {
		t.Fatal(err)
	}
	tbl := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "note", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 2, Name: "qty", Type: iceberg.PrimitiveTypes.Int32},
		iceberg.NestedField{ID: 3, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 4, Name: "country", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 5, Name: "amount", Type: iceberg.PrimitiveTypes.Float64},
	)
	dec, err := decode.NewJSONDecoder(in)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.NewRunner(dec, tbl)
	if err != nil {
		t.Fatal(err)
	}
	asc, err := table.SchemaToArrowSchema(tbl, nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	rb := array.NewRecordBuilder(memory.DefaultAllocator, asc)
	defer rb.Release()
	if err := dec.Parse([]byte(`{"id":3,"qty":2,"country":"PL","amount":1.25}`), decode.RecordMeta{}); err != nil {
		t.Fatal(err)
	}
	if keep, err := r.Eval(); !keep || err != nil {
		t.Fatal(keep, err)
	}
	if c := r.Cell(3); string(c.Bytes) != "PL" || r.Cell(0).Null != true || r.Cell(2).Int != 3 {
		t.Fatalf("cells %+v %+v %+v", r.Cell(3), r.Cell(0), r.Cell(2))
	}
	r.Append(rb)
	if got := rowsOf(t, rb); len(got) != 1 || got[0] != `{"amount":1.25,"country":"PL","id":3,"note":null,"qty":2}` {
		t.Fatalf("rows %v", got)
	}
}

func TestTimestampsAndDatesInExpressions(t *testing.T) {
	g := newRig(t, transform.Config{
		Filter: `ts > timestamp("2026-01-01T00:00:00Z")`,
		Columns: []transform.Column{
			{Name: "minute", Expr: `ts - duration(string(ts.getSeconds()) + "s")`},
			{Name: "hour", Expr: `ts.getHours()`},
			{Name: "p", Expr: `price`},
		},
	})
	ts := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if keep, err := g.feed(`{"id":1,"ts":"` + ts.Format(time.RFC3339) + `","price":"12.34"}`); !keep || err != nil {
		t.Fatal(keep, err)
	}
	if keep, err := g.feed(`{"id":2,"ts":"2025-03-04T05:06:07Z"}`); keep || err != nil {
		t.Fatal(keep, err)
	}
	rows := g.rows()
	if len(rows) != 1 {
		t.Fatalf("rows %v, want the first record's", rows)
	}
	for _, want := range []string{`"minute":"2026-03-04T05:06:00Z"`, `"hour":5`, `"p":12.34`, `"id":1`} {
		if !strings.Contains(rows[0], want) {
			t.Fatalf("row %s lacks %s", rows[0], want)
		}
	}
}

// countPerMinute is a valid window: events per country and minute.
func countPerMinute() *transform.WindowConfig {
	return &transform.WindowConfig{Time: "ts", Size: conf.Duration(time.Minute), GroupBy: []string{"country"},
		Aggregates: []transform.Aggregate{{Name: "n", Fn: "count"}}}
}
