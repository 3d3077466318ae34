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
