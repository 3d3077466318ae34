package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/transform"
)

// TestPipelineTransforms: a pipeline with a filter, computed, renamed and
// dropped columns and a partition on a computed column writes the
// transform's output as the table; a record its expressions fail on is a
// dead letter with the reason; filtered records are counted and covered by
// the offsets, so a restart reads none of them again.
func TestPipelineTransforms(t *testing.T) {
	h := newHarness(t, nil, ingest.KafkaConfig{})
	p := ingest.PipelineConfig{
		Schema: []ingest.Column{
			{Name: "id", Type: "long", Required: true},
			{Name: "country", Type: "string"},
			{Name: "amount", Type: "long"},
			{Name: "qty", Type: "long"},
			{Name: "secret", Type: "string"},
		},
		KafkaMetadata: []string{"offset"},
		PartitionBy:   []string{"region"},
		Transform: &transform.Config{
			Filter: `country != "XX"`,
			Columns: []transform.Column{
				{Name: "region", Expr: `country in ["DE", "FR"] ? "eu" : "other"`},
				{Name: "unit_price", Expr: `amount / qty`},
			},
			Rename: map[string]string{"country": "cc"},
			Drop:   []string{"secret"},
		},
	}
	var values []string
	for i := range 30 {
		cc := []string{"DE", "FR", "US", "XX"}[i%4]
		qty := i % 5 // 0 fails the division: a dead letter
		values = append(values, fmt.Sprintf(`{"id":%d,"country":%q,"amount":%d,"qty":%d,"secret":"s%d"}`, i, cc, 10*i, qty, i))
	}
	h.produce(values...)
	// 30 records: ids with i%4 == 3 are filtered (7 of them, 3..27); of the
	// other 23, those with i%5 == 0 fail (0, 5, 10, 20, 25 — not 15, which
	// is XX) and go to the dead-letter table.
	wantRows, wantDL := 0, 0
	for i := range 30 {
		switch {
		case i%4 == 3:
		case i%5 == 0:
			wantDL++
		default:
			wantRows++
		}
	}
	pl := h.run(p, int64(wantRows+wantDL))
	st := pl.Stats()
	require.EqualValues(t, 30, st.RecordsIn)
	require.EqualValues(t, 30-wantRows-wantDL, st.Filtered)
	require.EqualValues(t, wantDL, st.DeadLetters)

	tbl, err := h.cat.LoadTable(context.Background(), catalog.Ident("ns.events"))
	require.NoError(t, err)
	var names []string
	for _, f := range tbl.Schema().Fields() {
		names = append(names, f.Name)
	}
	require.Equal(t, "id,cc,amount,qty,_kafka_offset,region,unit_price", strings.Join(names, ","))
	spec := tbl.Spec()
	require.Equal(t, 1, spec.NumFields())
	require.Equal(t, "region", spec.Field(0).Name)
	require.Equal(t, iceberg.IdentityTransform{}, spec.Field(0).Transform)

	rows := tableRows(t, h, "ns.events")
	require.Len(t, rows, wantRows)
	for _, r := range rows {
		id := int(r["id"].(float64))
		require.NotEqual(t, 3, id%4, "filtered record %d written", id)
		cc := r["cc"].(string)
		wantRegion := "other"
		if cc == "DE" || cc == "FR" {
			wantRegion = "eu"
		}
		require.Equal(t, wantRegion, r["region"], "row %v", r)
		require.EqualValues(t, (10*id)/(id%5), r["unit_price"], "row %v", r)
	}
	dl := tableRows(t, h, "ns.events__dlq")
	require.Len(t, dl, wantDL)
	for _, r := range dl {
		require.Contains(t, r["error"], "division by zero", "dead letter %v", r)
	}

	// Filtered records' offsets are committed with the others: a restart
	// with two new records (one filtered) reads exactly those two.
	h.produce(`{"id":100,"country":"XX","amount":1,"qty":1}`, `{"id":101,"country":"DE","amount":4,"qty":2}`)
	pl = h.run(p, 1)
	require.EqualValues(t, 2, pl.Stats().RecordsIn, "a restart re-read records")
	rows = tableRows(t, h, "ns.events")
	require.Len(t, rows, wantRows+1)
	ids := make([]int, len(rows))
	for i, r := range rows {
		ids[i] = int(r["id"].(float64))
	}
	slices.Sort(ids)
	require.Equal(t, len(ids), len(slices.Compact(ids)), "duplicate ids %v", ids)
}

// tableRows reads a table's rows as JSON objects.
func tableRows(t *testing.T, h *harness, name string) []map[string]any {
	t.Helper()
	tbl, err := h.cat.LoadTable(context.Background(), catalog.Ident(name))
	require.NoError(t, err)
	at, err := tbl.Scan().ToArrowTable(context.Background())
	require.NoError(t, err)
	defer at.Release()
	var rows []map[string]any
	tr := array.NewTableReader(at, 0)
	defer tr.Release()
	for tr.Next() {
		b, err := tr.RecordBatch().MarshalJSON()
		require.NoError(t, err)
		var part []map[string]any
		require.NoError(t, json.Unmarshal(b, &part))
		rows = append(rows, part...)
	}
	return rows
}
