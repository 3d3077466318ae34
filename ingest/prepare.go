package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/internal/fileio"
	"github.com/floelake/floe/internal/schema"
)

// prepared is a pipeline's tables, loaded at their current snapshots, with
// a start offset recorded in each for every partition of its topics.
type prepared struct {
	baseOpts []kgo.Opt
	// outs holds the pipeline's outputs; committers, infos and committed
	// hold each output's, in the same order.
	outs       []Output
	committers []*commit.Committer
	infos      []fileio.TableInfo
	committed  []commit.Offsets
	parts      map[string][]int32
	starts     map[topicPartition]int64
	adm        *kgo.Client
}

// prepare loads or creates the tables and makes the start position durable.
// The caller closes the returned admin client.
//
// The tables' file IO is opened with fsCtx: on an object store, uploads in
// flight die with it, so it must outlive the final commit.
func (p *Pipeline) prepare(ctx, fsCtx context.Context) (*prepared, error) {
	cfg := p.opts.Pipeline
	if err := dialCheck(ctx, p.opts.Kafka.Brokers); err != nil {
		return nil, err
	}
	baseOpts, err := ClientOpts(p.opts.Kafka)
	if err != nil {
		return nil, &configError{err}
	}

	tables, err := p.ensureTables(ctx, baseOpts)
	if err != nil {
		return nil, err
	}
	outs := p.Outputs()
	pr := &prepared{baseOpts: baseOpts, outs: outs, committers: make([]*commit.Committer, len(outs)),
		infos: make([]fileio.TableInfo, len(outs)), committed: make([]commit.Offsets, len(outs))}
	for t, tbl := range tables {
		c, err := commit.New(ctx, p.opts.Catalog, commit.Config{
			Pipeline: cfg.Name, Table: tbl.Identifier(), Logger: p.log, Metrics: p.metrics(),
		})
		if err != nil {
			return nil, err
		}
		pr.committers[t] = c
		pr.committed[t] = c.Offsets()
		if pr.infos[t], err = fileio.InfoFromTable(fsCtx, c.Table()); err != nil {
			return nil, err
		}
	}

	adm, err := kgo.NewClient(baseOpts...)
	if err != nil {
		return nil, &configError{fmt.Errorf("ingest: kafka client: %w", err)}
	}
	ok := false
	defer func() {
		if !ok {
			adm.Close()
		}
	}()
	kadmCl := kadm.NewClient(adm)
	parts, hwm, err := listPartitions(ctx, kadmCl, cfg.Topics, func(err error) {
		p.setHealth(err)
		p.log.Warn("waiting for topics", "err", err)
	})
	if err != nil {
		return nil, err
	}
	p.setHWM(hwm)
	waitOffsets := func(err error) {
		p.setHealth(err)
		p.log.Warn("waiting for start offsets", "err", err)
	}
	starts, err := resolveStart(ctx, kadmCl, cfg.Topics, cfg.Start, hwm, waitOffsets)
	if err != nil {
		return nil, err
	}
	if err := startNewPartitionsAtEarliest(ctx, kadmCl, pr.committed, starts, waitOffsets); err != nil {
		return nil, err
	}
	// Make the start position durable before consuming anything: a table
	// with no offsets for a partition gets an empty snapshot recording the
	// resolved start. Otherwise a crash between the first commits of two
	// tables would leave one without offsets, and "latest" resolved again
	// on restart would skip what the other table's rows were read with.
	//
	// Where another table already has an offset, that is the start (the
	// lowest, if several have one): the pipeline got there with the other
	// table (a crash between the start commits, or a dead-letter table
	// recreated by an operator), and a start resolved now could lie past
	// records no table holds.
	for t, c := range pr.committers {
		missing := commit.Offsets{}
		for tp, o := range starts {
			if _, ok := pr.committed[t].Get(tp.topic, tp.partition); ok {
				continue
			}
			if sib, ok := lowestOther(pr.committed, t, tp); ok {
				o = sib
			}
			missing.Set(tp.topic, tp.partition, o)
		}
		if missing.Len() == 0 {
			continue
		}
		if _, err := c.RecordStart(ctx, missing); err != nil {
			return nil, fmt.Errorf("ingest: record start offsets of %s: %w", strings.Join(c.Table().Identifier(), "."), err)
		}
		pr.committed[t] = c.Offsets()
		p.log.Info("recorded start offsets", "table", strings.Join(c.Table().Identifier(), "."), "offsets", missing.Encode())
	}
	pr.parts, pr.starts, pr.adm = parts, starts, adm
	ok = true
	return pr, nil
}

// lowestOther is the lowest offset of tp committed to an output other than
// t, if any has one.
func lowestOther(committed []commit.Offsets, t int, tp topicPartition) (int64, bool) {
	low, found := int64(0), false
	for i, c := range committed {
		if i == t {
			continue
		}
		if o, ok := c.Get(tp.topic, tp.partition); ok && (!found || o < low) {
			low, found = o, true
		}
	}
	return low, found
}

// ensureTables loads or creates the table of every output, in Outputs
// order.
func (p *Pipeline) ensureTables(ctx context.Context, baseOpts []kgo.Opt) ([]*table.Table, error) {
	outs := p.Outputs()
	tables := make([]*table.Table, len(outs))
	for i, o := range outs {
		var err error
		switch o.Role {
		case RoleMain:
			tables[i], err = p.ensureMainTable(ctx, baseOpts, o.Table)
		case RoleDeadLetter:
			tables[i], _, err = catalog.EnsureTable(ctx, p.opts.Catalog, catalog.Ident(o.Table),
				DeadLetterSchema(), *iceberg.UnpartitionedSpec, nil)
		default:
			err = fmt.Errorf("ingest: output %s: unknown role %q", o.Table, o.Role)
		}
		if err != nil {
			return nil, err
		}
	}
	return tables, nil
}

// ensureMainTable loads the main table, or creates it with the declared (or
// inferred) schema, the configured partitioning and format version. A keyed
// pipeline's existing table must have the pipeline's key columns as its
// identifier fields.
func (p *Pipeline) ensureMainTable(ctx context.Context, baseOpts []kgo.Opt, name string) (*table.Table, error) {
	cfg := p.opts.Pipeline
	ident := catalog.Ident(name)
	tbl, err := p.opts.Catalog.LoadTable(ctx, ident)
	switch {
	case err == nil:
		if err := p.checkExistingTable(tbl, name); err != nil {
			return nil, err
		}
		return p.ensureUnpartitionedSpec(ctx, tbl, name)
	case errors.Is(err, icecat.ErrNoSuchTable):
	default:
		return nil, fmt.Errorf("ingest: load %s: %w", name, err)
	}
	sch, err := p.declaredOrInferredSchema(ctx, baseOpts)
	if err != nil {
		return nil, err
	}
	spec, err := schema.Partition(cfg.PartitionBy, sch)
	if err != nil {
		return nil, &configError{fmt.Errorf("pipelines[%s].partition_by: %w", cfg.Name, err)}
	}
	props := iceberg.Properties{}
	maps.Copy(props, cfg.TableProperties)
	props[table.PropertyFormatVersion] = strconv.Itoa(cfg.tableFormatVersion())
	if p.prog != nil && p.prog.Windowed() {
		props[transform.PropWindow] = p.prog.WindowSignature()
	}
	tbl, created, err := catalog.EnsureTable(ctx, p.opts.Catalog, ident, sch, spec, props)
	if err != nil {
		return nil, err
	}
	if !created {
		// Another creator was first: its table is checked as any other
		// existing one.
		if err := p.checkExistingTable(tbl, name); err != nil {
			return nil, err
		}
		return p.ensureUnpartitionedSpec(ctx, tbl, name)
	}
	p.log.Info("created table", "table", name, "schema", sch.String(), "partition_spec", spec.String(),
		"format_version", tbl.Metadata().Version(), "key", cfg.Key)
	return p.ensureUnpartitionedSpec(ctx, tbl, name)
}

// maxSpecAttempts bounds the attempts to add an unpartitioned spec that
// lose a race with another commit to the table.
const maxSpecAttempts = 5

// ensureUnpartitionedSpec gives the partitioned table of a keyed pipeline
// an unpartitioned partition spec, besides its default one, and returns the
// table as it then is. The spec is not the default: data files keep the
// table's partitioning. Equality-delete files are written under it, so that
// they apply to every partition: the older row of a key need not sit in the
// partition of its newer one. The table of an unkeyed pipeline, and one
// that already has such a spec, are returned as they are.
func (p *Pipeline) ensureUnpartitionedSpec(ctx context.Context, tbl *table.Table, name string) (*table.Table, error) {
	if !p.opts.Pipeline.Keyed() {
		return tbl, nil
	}
	for attempt := 1; ; attempt++ {
		meta := tbl.Metadata()
		if _, ok := schema.UnpartitionedSpec(meta); ok {
			return tbl, nil
		}
		// The next free id: the id a catalog gives the spec anyway, and the
		// one under which a spec another writer added meanwhile is found
		// the same (iceberg-go's metadata builder then adds nothing).
		id := 0
		for _, s := range meta.PartitionSpecs() {
			id = max(id, s.ID()+1)
		}
		spec := iceberg.NewPartitionSpecID(id)
		_, _, err := p.opts.Catalog.CommitTable(ctx, tbl.Identifier(),
			[]table.Requirement{table.AssertTableUUID(meta.TableUUID()), table.AssertDefaultSpecID(meta.DefaultPartitionSpec())},
			[]table.Update{table.NewAddPartitionSpecUpdate(&spec, false)})
		if err != nil && (!specConflict(err) || attempt == maxSpecAttempts) {
			return nil, fmt.Errorf("ingest: add an unpartitioned partition spec to %s: %w", name, err)
		}
		// Committed, or another commit changed the table first: either
		// way the table is read again and checked.
		again, lerr := p.opts.Catalog.LoadTable(ctx, tbl.Identifier())
		if lerr != nil {
			return nil, fmt.Errorf("ingest: load %s: %w", name, lerr)
		}
		tbl = again
		if err != nil {
			continue
		}
		added, ok := schema.UnpartitionedSpec(tbl.Metadata())
		if !ok {
			return nil, fmt.Errorf("ingest: add an unpartitioned partition spec to %s: the catalog accepted the commit, but the table has no such spec", name)
		}
		p.log.Info("added an unpartitioned partition spec to the table (not its default) for equality deletes across partitions",
			"table", name, "spec_id", added.ID(), "default_spec_id", tbl.Metadata().DefaultPartitionSpec())
		return tbl, nil
	}
}

// specConflict reports whether a failed table commit lost a race with
// another commit: it changed nothing and may be tried again on the table as
// it now is. iceberg-go's SQL catalog reports a failed requirement
// unwrapped, in words.
func specConflict(err error) bool {
	return errors.Is(err, table.ErrCommitFailed) || strings.Contains(strings.ToLower(err.Error()), "requirement failed")
}

// checkExistingTable checks that a table the pipeline did not create suits
// it. A keyed pipeline replaces rows by the table's identifier fields, so
// they must be its key columns: a table keyed otherwise, or not at all,
// would have rows replaced by a key its readers do not know of. A mismatch
// is a configuration error: restarting cannot fix it.
func (p *Pipeline) checkExistingTable(tbl *table.Table, name string) error {
	cfg := p.opts.Pipeline
	if v := tbl.Metadata().Version(); v != cfg.tableFormatVersion() {
		p.log.Info("the table exists with another format version than the pipeline's format_version; the table's applies",
			"table", name, "table_format_version", v, "format_version", cfg.tableFormatVersion())
	}
	sch := tbl.Schema()
	var have []string
	for _, id := range sch.IdentifierFieldIDs {
		n, ok := sch.FindColumnName(id)
		if !ok {
			n = fmt.Sprintf("<field %d>", id)
		}
		have = append(have, n)
	}
	if cfg.Windowed() {
		if got, want := tbl.Properties()[transform.PropWindow], p.prog.WindowSignature(); got != "" && got != want {
			return &configError{fmt.Errorf("ingest: pipelines[%s].transform.window: table %s holds the windows of another definition "+
				"(%s = %q; this pipeline's is %q): its rows and state do not fit this window; write to a new table",
				cfg.Name, name, transform.PropWindow, got, want)}
		}
		if !slices.Equal(have, cfg.TableKey()) {
			return &configError{fmt.Errorf("ingest: pipelines[%s].transform.window: table %s has key columns (identifier fields) [%s], "+
				"but a window table of this pipeline is keyed by [%s] (its group columns and %s); write to a new table",
				cfg.Name, name, strings.Join(have, ", "), strings.Join(cfg.TableKey(), ", "), transform.ColWindowStart)}
		}
		return nil
	}
	if !cfg.Keyed() {
		if len(have) > 0 {
			p.log.Warn("table has key columns (identifier fields) but the pipeline has no key: records are appended, never replace a row",
				"table", name, "identifier_fields", have)
		}
		return nil
	}
	if len(have) == 0 {
		return &configError{fmt.Errorf("ingest: pipelines[%s].key: table %s was created without key columns; "+
			"a keyed pipeline needs a table whose identifier fields are its key [%s] (write to a new table, or remove key to append)",
			cfg.Name, name, strings.Join(cfg.Key, ", "))}
	}
	if !sameSet(have, cfg.Key) {
		return &configError{fmt.Errorf("ingest: pipelines[%s].key: table %s has key columns (identifier fields) [%s], but key is [%s]; "+
			"key must name the table's key columns",
			cfg.Name, name, strings.Join(have, ", "), strings.Join(cfg.Key, ", "))}
	}
	for _, col := range KeyOrderColumns {
		if _, ok := sch.FindFieldByName(col); !ok {
			return &configError{fmt.Errorf("ingest: pipelines[%s]: table %s has no column %s, which a keyed pipeline needs "+
				"to keep the newest row of a key (it orders a key's rows by _kafka_partition and _kafka_offset); add the column to the table",
				cfg.Name, name, col)}
		}
	}
	return nil
}

// sameSet reports whether a and b hold the same names, in any order.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func (p *Pipeline) declaredOrInferredSchema(ctx context.Context, baseOpts []kgo.Opt) (*iceberg.Schema, error) {
	cfg := p.opts.Pipeline
	if len(cfg.Schema) > 0 {
		sch, err := cfg.TableSchema()
		if err != nil {
			return nil, &configError{err}
		}
		return sch, nil
	}
	return p.inferSchema(ctx, baseOpts)
}

// inferSchema reads the first records of the topics (from the configured
// start) and infers a schema from those that are JSON objects.
func (p *Pipeline) inferSchema(ctx context.Context, baseOpts []kgo.Opt) (*iceberg.Schema, error) {
	cfg := p.opts.Pipeline
	cl, err := kgo.NewClient(append(baseOpts, kgo.ConsumeTopics(cfg.Topics...), kgo.ConsumeResetOffset(startOffset(cfg.Start)))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var meta []string
	for _, m := range cfg.KafkaMetadata {
		name, err := schema.MetaColumnName(m)
		if err != nil {
			return nil, &configError{err}
		}
		meta = append(meta, name)
	}
	// Inference reads the topics before anything else does: say so when
	// they do not exist yet, or hold nothing to infer from.
	if _, _, err := listPartitions(ctx, kadm.NewClient(cl), cfg.Topics, func(err error) {
		p.setHealth(fmt.Errorf("%w; schema inference waits for it", err))
		p.log.Warn("waiting for topics to infer the schema from their first records", "err", err)
	}); err != nil {
		return nil, err
	}
	var samples [][]byte
	var firstAt time.Time
	p.log.Info("no schema declared: taking it from the first records", "topics", cfg.Topics, "format", cfg.Format)
	for polls := 0; len(samples) < 1000; polls++ {
		if polls == 3 && len(samples) == 0 {
			err := fmt.Errorf("waiting for the first records of %v to infer the schema from (no schema declared)", cfg.Topics)
			p.setHealth(err)
			p.log.Warn("no records to infer the schema from yet; waiting", "topics", cfg.Topics)
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollRecords(pctx, 1000)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fetches.EachRecord(func(r *kgo.Record) {
			first := byte('{')
			if p.schemas != nil {
				first = 0 // the schema registry's magic byte
			}
			if len(r.Value) > 0 && r.Value[0] == first {
				samples = append(samples, append([]byte(nil), r.Value...))
			}
		})
		if len(samples) > 0 && firstAt.IsZero() {
			firstAt = time.Now()
		}
		if len(samples) > 0 && p.schemas != nil {
			// A registry format's table takes its first record's writer
			// schema: no more samples needed.
			break
		}
		if !firstAt.IsZero() && time.Since(firstAt) > 3*time.Second {
			break
		}
	}
	if p.schemas != nil {
		sch, id, err := p.schemas.tableSchemaOf(ctx, samples, meta, cfg.tableFormatVersion())
		if err != nil {
			return nil, fmt.Errorf("ingest: pipelines[%s]: the table's schema: %w", cfg.Name, err)
		}
		p.log.Info("the table takes the writer schema of its first record", "schema_id", id)
		return sch, nil
	}
	// Malformed records are dead letters, not evidence about the schema.
	valid := samples[:0]
	for _, v := range samples {
		if json.Valid(v) {
			valid = append(valid, v)
		}
	}
	if len(valid) == 0 {
		return nil, fmt.Errorf("ingest: pipelines[%s]: no JSON object among the first records to infer a schema from", cfg.Name)
	}
	sch, err := decode.InferSchema(valid, meta, decode.InferOptions{ConflictsAsString: cfg.InferConflicts == InferConflictsString})
	if err == nil {
		return sch, nil
	}
	return nil, &configError{fmt.Errorf("pipelines[%s]: cannot infer a schema (declare one under schema:): %w", cfg.Name, err)}
}
