package schema

import (
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"
)

// TestUnpartitionedSpec: the default spec when it is unpartitioned, else
// the first unpartitioned spec the table holds, else none.
func TestUnpartitionedSpec(t *testing.T) {
	sch, err := Build([]Column{{Name: "id", Type: "long", Required: true}, {Name: "ts", Type: "timestamptz"}}, nil, nil)
	require.NoError(t, err)
	partitioned, err := Partition([]string{"day(ts)"}, sch)
	require.NoError(t, err)
	create := func(t *testing.T, spec iceberg.PartitionSpec) table.Metadata {
		t.Helper()
		meta, err := table.NewMetadata(sch, &spec, table.UnsortedSortOrder, "file:///tmp/t", iceberg.Properties{table.PropertyFormatVersion: "2"})
		require.NoError(t, err)
		return meta
	}
	// evolve adds spec to meta, making it the default when def.
	evolve := func(t *testing.T, meta table.Metadata, spec iceberg.PartitionSpec, def bool) table.Metadata {
		t.Helper()
		b, err := table.MetadataBuilderFromBase(meta, "")
		require.NoError(t, err)
		require.NoError(t, b.AddPartitionSpec(&spec, false))
		if def {
			require.NoError(t, b.SetDefaultSpecID(-1))
		}
		out, err := b.Build()
		require.NoError(t, err)
		return out
	}

	t.Run("unpartitioned table", func(t *testing.T) {
		spec, ok := UnpartitionedSpec(create(t, *iceberg.UnpartitionedSpec))
		require.True(t, ok)
		require.Equal(t, 0, spec.ID())
		require.True(t, spec.IsUnpartitioned())
	})
	t.Run("partitioned table", func(t *testing.T) {
		_, ok := UnpartitionedSpec(create(t, partitioned))
		require.False(t, ok)
	})
	t.Run("partitioned table holding an unpartitioned spec", func(t *testing.T) {
		meta := evolve(t, create(t, partitioned), iceberg.NewPartitionSpecID(1), false)
		require.Equal(t, 0, meta.DefaultPartitionSpec())
		spec, ok := UnpartitionedSpec(meta)
		require.True(t, ok)
		require.Equal(t, 1, spec.ID())
	})
	t.Run("unpartitioned, partitioned, unpartitioned again", func(t *testing.T) {
		meta := evolve(t, create(t, *iceberg.UnpartitionedSpec), partitioned, true)
		require.Equal(t, 1, meta.DefaultPartitionSpec())
		spec, ok := UnpartitionedSpec(meta)
		require.True(t, ok)
		require.Equal(t, 0, spec.ID())
		meta = evolve(t, meta, iceberg.NewPartitionSpecID(2), true)
		require.Equal(t, 2, meta.DefaultPartitionSpec())
		spec, ok = UnpartitionedSpec(meta)
		require.True(t, ok)
		require.Equal(t, 2, spec.ID(), "the default spec")
	})
}
