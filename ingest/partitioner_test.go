package ingest

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/internal/schema"
)

type fakeRow []decode.Cell

func (r fakeRow) Cell(i int) decode.Cell { return r[i] }

// TestPartitionKeysAgreeWithIceberg checks the fast per-row keys against
// iceberg-go's transforms: two rows share a key exactly when their partition
// values are equal, and the values are what iceberg-go computes.
func TestPartitionKeysAgreeWithIceberg(t *testing.T) {
	sch, err := schema.Build([]schema.Column{
		{Name: "ts", Type: "timestamptz"}, {Name: "d", Type: "date"}, {Name: "s", Type: "string"}, {Name: "n", Type: "long"},
	}, nil, nil)
	require.NoError(t, err)
	for _, exprs := range [][]string{
		{"day(ts)"}, {"hour(ts)"}, {"month(ts)"}, {"year(ts)"},
		{"day(d)"}, {"month(d)"}, {"year(d)"},
		{"s"}, {"n"}, {"bucket(8, n)"}, {"truncate(2, s)"},
		{"day(ts)", "s", "bucket(4, n)"},
	} {
		t.Run(fmt.Sprint(exprs), func(t *testing.T) {
			spec, err := schema.Partition(exprs, sch)
			require.NoError(t, err)
			p, err := newPartitioner(spec, sch)
			require.NoError(t, err)
			rng := rand.New(rand.NewSource(1))
			keyToValues := map[string]map[int]any{}
			for i := 0; i < 5000; i++ {
				// Timestamps around the epoch and today, negative included.
				micros := rng.Int63n(int64(200*365*24*time.Hour/time.Microsecond)) - int64(100*365*24*time.Hour/time.Microsecond)
				row := fakeRow{
					{Int: micros},
					{Int: micros / 86_400_000_000},
					{Bytes: []byte([]string{"DE", "DK", "US", "UK", "FR"}[rng.Intn(5)])},
					{Int: rng.Int63n(100) - 50},
				}
				if rng.Intn(20) == 0 {
					row[rng.Intn(4)] = decode.Cell{Null: true}
				}
				key := string(p.keyOf(row))
				vals := p.values(row)
				for _, f := range spec.Fields() {
					src, _ := sch.FindFieldByID(f.SourceID())
					c := row[colIndex(sch, src.ID)]
					var want any
					if !c.Null {
						lit := iceberg.Optional[iceberg.Literal]{Valid: true, Val: literal(cellValue(c, src.Type))}
						if got := f.Transform.Apply(lit); got.Valid {
							want = got.Val.Any()
						}
					}
					require.Equal(t, fmt.Sprint(want), fmt.Sprint(vals[f.FieldID]), "field %s of %v", f.Name, row)
				}
				if prev, ok := keyToValues[key]; ok {
					require.True(t, reflect.DeepEqual(prev, vals), "one key, two partitions: %v vs %v", prev, vals)
				}
				keyToValues[key] = vals
			}
			// Distinct keys for distinct values.
			seen := map[string]string{}
			for k, v := range keyToValues {
				s := fmt.Sprint(v)
				if other, ok := seen[s]; ok {
					t.Fatalf("values %s under two keys %q and %q", s, k, other)
				}
				seen[s] = k
			}
		})
	}
}

func colIndex(sch *iceberg.Schema, id int) int {
	for i, f := range sch.Fields() {
		if f.ID == id {
			return i
		}
	}
	return -1
}

func literal(v any) iceberg.Literal {
	switch x := v.(type) {
	case iceberg.Timestamp:
		return iceberg.NewLiteral(x)
	case iceberg.Date:
		return iceberg.NewLiteral(x)
	case string:
		return iceberg.NewLiteral(x)
	case int64:
		return iceberg.NewLiteral(x)
	}
	panic(fmt.Sprintf("unexpected %T", v))
}
