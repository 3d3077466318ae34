package ingest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/schema"
	"github.com/floelake/floe/internal/testutil"
)

// tablePipeline is a pipeline over ns.events with a declared schema (id,
// region, both required), changed by mod.
func tablePipeline(t *testing.T, cat *catalog.Catalog, mod func(*PipelineConfig)) *Pipeline {
	t.Helper()
	cfg := PipelineConfig{Name: "events", Table: "ns.events", Topics: []string{"events"}, Format: "json", Start: "earliest",
		CommitInterval: conf.Duration(time.Second), TargetFileSize: 128 << 20, OnDataLoss: OnDataLossFail,
		FormatVersion: DefaultFormatVersion,
		Schema:        []Column{{Name: "id", Type: "long", Required: true}, {Name: "region", Type: "string", Required: true}}}
	mod(&cfg)
	p, err := New(Options{Pipeline: cfg, Catalog: cat})
	require.NoError(t, err)
	return p
}

func identifierNames(t *testing.T, sch *iceberg.Schema) []string {
	t.Helper()
	var names []string
	for _, id := range sch.IdentifierFieldIDs {
		n, ok := sch.FindColumnName(id)
		require.True(t, ok, "identifier field %d", id)
		names = append(names, n)
	}
	return names
}

// TestEnsureTablesFormatVersionAndKey: the main table is created with the
// configured format version and the key as its identifier fields, and with
// the columns that order a key's rows; the dead-letter table stays a v2
// table without key.
func TestEnsureTablesFormatVersionAndKey(t *testing.T) {
	for _, c := range []struct {
		name    string
		version int
		key     []string
		meta    []string
	}{
		{"unset version", 0, nil, nil},
		{"v2", 2, nil, []string{"timestamp"}},
		{"v3", 3, nil, nil},
		{"keyed v2", 2, []string{"id"}, nil},
		{"keyed v3", 3, []string{"region", "id"}, []string{"offset", "timestamp"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cat := testutil.SQLiteCatalog(t)
			p := tablePipeline(t, cat, func(cfg *PipelineConfig) {
				cfg.FormatVersion, cfg.Key, cfg.KafkaMetadata = c.version, c.key, c.meta
			})
			tables, err := p.ensureTables(context.Background(), nil)
			require.NoError(t, err)
			main, dlq := tables[0], tables[1]

			want := c.version
			if want == 0 {
				want = DefaultFormatVersion
			}
			require.Equal(t, want, main.Metadata().Version())
			require.Equal(t, c.key, identifierNames(t, main.Schema()))
			_, hasPartition := main.Schema().FindFieldByName("_kafka_partition")
			_, hasOffset := main.Schema().FindFieldByName("_kafka_offset")
			require.Equal(t, len(c.key) > 0, hasPartition && hasOffset, "a keyed table has the columns that order a key's rows")
			require.Equal(t, 2, dlq.Metadata().Version())
			require.Empty(t, dlq.Schema().IdentifierFieldIDs)

			// Loading the tables again (a restart) checks them and passes.
			again, err := p.ensureTables(context.Background(), nil)
			require.NoError(t, err)
			require.Equal(t, main.MetadataLocation(), again[0].MetadataLocation())
		})
	}
}

// TestEnsureMainTableRefusesAnotherKey: a keyed pipeline over an existing
// table stops with a configuration error unless the table's identifier
// fields are its key columns, in any order.
func TestEnsureMainTableRefusesAnotherKey(t *testing.T) {
	for _, c := range []struct {
		name       string
		tableKey   []string
		tableMeta  []string
		key        []string
		wantErr    string
		wantConfig bool
	}{
		{"same key", []string{"id"}, nil, []string{"id"}, "", false},
		{"same key, other order", []string{"id", "region"}, nil, []string{"region", "id"}, "", false},
		{"append-only table", nil, []string{"partition", "offset"}, []string{"id"},
			"ingest: pipelines[events].key: table ns.events was created without key columns; a keyed pipeline needs a table whose identifier fields are its key [id] (write to a new table, or remove key to append)", true},
		{"other key", []string{"region"}, nil, []string{"id"},
			"ingest: pipelines[events].key: table ns.events has key columns (identifier fields) [region], but key is [id]; key must name the table's key columns", true},
		{"more key columns", []string{"id", "region"}, nil, []string{"id"},
			"table ns.events has key columns (identifier fields) [id, region], but key is [id]", true},
		{"no order columns", []string{"id"}, []string{"partition"}, []string{"id"},
			"ingest: pipelines[events]: table ns.events has no column _kafka_offset, which a keyed pipeline needs", true},
		{"append-only pipeline over a keyed table", []string{"id"}, nil, nil, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cat := testutil.SQLiteCatalog(t)
			ctx := context.Background()
			// The existing table, made by another program or an earlier
			// configuration.
			owner := tablePipeline(t, cat, func(cfg *PipelineConfig) { cfg.Key, cfg.KafkaMetadata = c.tableKey, c.tableMeta })
			sch, err := owner.opts.Pipeline.DeclaredSchema()
			require.NoError(t, err)
			if len(c.tableKey) > 0 && len(c.tableMeta) > 0 {
				// Without the metadata columns a keyed pipeline adds.
				var fields []iceberg.NestedField
				for _, f := range sch.Fields() {
					if f.Name != "_kafka_offset" {
						fields = append(fields, f)
					}
				}
				sch = iceberg.NewSchemaWithIdentifiers(0, sch.IdentifierFieldIDs, fields...)
			}
			_, created, err := catalog.EnsureTable(ctx, cat, table.Identifier{"ns", "events"}, sch, *iceberg.UnpartitionedSpec, nil)
			require.NoError(t, err)
			require.True(t, created)

			p := tablePipeline(t, cat, func(cfg *PipelineConfig) { cfg.Key = c.key })
			tbl, err := p.ensureMainTable(ctx, nil, "ns.events")
			if c.wantErr == "" {
				require.NoError(t, err)
				require.ElementsMatch(t, c.tableKey, identifierNames(t, tbl.Schema()))
				return
			}
			require.ErrorContains(t, err, c.wantErr)
			var cfgErr *configError
			require.Equal(t, c.wantConfig, errors.As(err, &cfgErr), "a configuration error: %v", err)
		})
	}
}

// unpartitionedSpecIDs lists the ids of the table's unpartitioned specs.
func unpartitionedSpecIDs(tbl *table.Table) []int {
	var ids []int
	for _, s := range tbl.Metadata().PartitionSpecs() {
		if s.IsUnpartitioned() {
			ids = append(ids, s.ID())
		}
	}
	return ids
}

// TestEnsureMainTableUnpartitionedSpec: the partitioned table of a keyed
// pipeline holds an unpartitioned spec (for equality deletes, which apply
// across partitions) besides its default partitioned one, whether floe
// created the table or found it; ensuring it again adds nothing. An
// unkeyed pipeline's table, and an unpartitioned one, get no other spec.
func TestEnsureMainTableUnpartitionedSpec(t *testing.T) {
	ts := func(cfg *PipelineConfig) {
		cfg.Schema = append(cfg.Schema, Column{Name: "ts", Type: "timestamptz"})
		cfg.PartitionBy = []string{"day(ts)", "bucket(4, id)"}
	}
	for _, c := range []struct {
		name        string
		mod         func(*PipelineConfig)
		existing    bool
		wantSpecs   int
		wantUnpartd []int
	}{
		{"keyed, partitioned", func(cfg *PipelineConfig) { ts(cfg); cfg.Key = []string{"id"} }, false, 2, []int{1}},
		{"keyed, partitioned, equality deletes v3", func(cfg *PipelineConfig) {
			ts(cfg)
			cfg.Key, cfg.DeleteMode, cfg.FormatVersion = []string{"region", "id"}, DeleteModeEquality, 3
		}, false, 2, []int{1}},
		{"keyed, partitioned, existing table", func(cfg *PipelineConfig) { ts(cfg); cfg.Key = []string{"id"} }, true, 2, []int{1}},
		{"keyed, unpartitioned", func(cfg *PipelineConfig) { cfg.Key = []string{"id"} }, false, 1, []int{0}},
		{"unkeyed, partitioned", ts, false, 1, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cat := testutil.SQLiteCatalog(t)
			ctx := context.Background()
			p := tablePipeline(t, cat, c.mod)
			if c.existing {
				// Created by an earlier version, without the spec.
				sch, err := p.opts.Pipeline.DeclaredSchema()
				require.NoError(t, err)
				spec, err := schema.Partition(p.opts.Pipeline.PartitionBy, sch)
				require.NoError(t, err)
				tbl, created, err := catalog.EnsureTable(ctx, cat, catalog.Ident("ns.events"), sch, spec, nil)
				require.NoError(t, err)
				require.True(t, created)
				require.Len(t, tbl.Metadata().PartitionSpecs(), 1)
			}
			tbl, err := p.ensureMainTable(ctx, nil, "ns.events")
			require.NoError(t, err)
			meta := tbl.Metadata()
			require.Len(t, meta.PartitionSpecs(), c.wantSpecs)
			require.Equal(t, c.wantUnpartd, unpartitionedSpecIDs(tbl))
			require.Equal(t, 0, meta.DefaultPartitionSpec(), "the default spec stays the table's partitioning")
			def := meta.PartitionSpec()
			require.Equal(t, len(p.opts.Pipeline.PartitionBy), def.NumFields())
			if c.wantUnpartd != nil {
				got, ok := schema.UnpartitionedSpec(meta)
				require.True(t, ok)
				require.Equal(t, c.wantUnpartd[0], got.ID())
			}

			// The returned table is the catalog's.
			loaded, err := cat.LoadTable(ctx, catalog.Ident("ns.events"))
			require.NoError(t, err)
			require.Equal(t, loaded.MetadataLocation(), tbl.MetadataLocation())

			// A restart finds the spec and commits nothing.
			again, err := p.ensureMainTable(ctx, nil, "ns.events")
			require.NoError(t, err)
			require.Equal(t, tbl.MetadataLocation(), again.MetadataLocation())
			require.Len(t, again.Metadata().PartitionSpecs(), c.wantSpecs)
		})
	}
}

// TestEnsureUnpartitionedSpecRaces: a pipeline whose view of the table is
// stale, because another creator added the spec first or the table's
// partitioning changed meanwhile, ends with one unpartitioned spec and the
// default spec as the other commit left it.
func TestEnsureUnpartitionedSpecRaces(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*catalog.Catalog, *Pipeline, *table.Table) {
		cat := testutil.SQLiteCatalog(t)
		p := tablePipeline(t, cat, func(cfg *PipelineConfig) {
			cfg.Key, cfg.PartitionBy = []string{"id"}, []string{"bucket(4, id)"}
		})
		sch, err := p.opts.Pipeline.DeclaredSchema()
		require.NoError(t, err)
		spec, err := schema.Partition(p.opts.Pipeline.PartitionBy, sch)
		require.NoError(t, err)
		stale, _, err := catalog.EnsureTable(ctx, cat, catalog.Ident("ns.events"), sch, spec, nil)
		require.NoError(t, err)
		return cat, p, stale
	}

	t.Run("another creator added it", func(t *testing.T) {
		cat, p, stale := setup(t)
		other := tablePipeline(t, cat, func(cfg *PipelineConfig) { *cfg = p.opts.Pipeline })
		first, err := other.ensureUnpartitionedSpec(ctx, stale, "ns.events")
		require.NoError(t, err)
		require.Equal(t, []int{1}, unpartitionedSpecIDs(first))

		tbl, err := p.ensureUnpartitionedSpec(ctx, stale, "ns.events")
		require.NoError(t, err)
		require.Equal(t, []int{1}, unpartitionedSpecIDs(tbl), "no second unpartitioned spec")
		require.Len(t, tbl.Metadata().PartitionSpecs(), 2)
	})

	t.Run("the default spec changed", func(t *testing.T) {
		cat, p, stale := setup(t)
		// Another engine repartitions the table: a new default spec.
		bucket8 := iceberg.NewPartitionSpecID(1, iceberg.PartitionField{SourceIDs: []int{1}, FieldID: 1001, Name: "id_bucket8",
			Transform: iceberg.BucketTransform{NumBuckets: 8}})
		_, _, err := cat.CommitTable(ctx, stale.Identifier(),
			[]table.Requirement{table.AssertDefaultSpecID(0)},
			[]table.Update{table.NewAddPartitionSpecUpdate(&bucket8, false), table.NewSetDefaultSpecUpdate(-1)})
		require.NoError(t, err)

		tbl, err := p.ensureUnpartitionedSpec(ctx, stale, "ns.events")
		require.NoError(t, err)
		meta := tbl.Metadata()
		require.Equal(t, 1, meta.DefaultPartitionSpec(), "the other commit's default stays")
		require.Equal(t, []int{2}, unpartitionedSpecIDs(tbl))
		require.Len(t, meta.PartitionSpecs(), 3)
	})
}
