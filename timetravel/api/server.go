package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/maintain"
	floev1 "github.com/floelake/floe/proto/floe/v1"
	"github.com/floelake/floe/timetravel"
)

// TableRef is one table a node's pipelines write.
type TableRef struct {
	// Name is "namespace.table".
	Name     string
	Pipeline string
	// Kind is "data" or "dead_letter".
	Kind           string
	Keyed          bool
	TargetFileSize int64
}

// Backend is what the API needs from the node that serves it.
type Backend interface {
	// Tables lists the tables of the node's pipelines, in configuration
	// order.
	Tables() []TableRef
	// LoadTable loads a table from the catalog.
	LoadTable(ctx context.Context, name string) (*table.Table, error)
	// Ends returns the high watermarks the node knows, per pipeline,
	// topic and partition (for lag); missing entries are unknown.
	Ends(ctx context.Context) map[commit.PartitionKey]int64
	// Do runs f on the table's writer, between two of its commits. It
	// fails with an error that Is timetravel.ErrConflict when this node
	// does not write the table (it is not the leader: the error names
	// it) and timetravel.ErrNotFound when no pipeline writes it.
	Do(ctx context.Context, table string, f func(context.Context, *commit.Committer) error) error
	// Writes returns nil when this node writes the table now, else the
	// error Do would return.
	Writes(table string) error
	// Compact compacts the table now, on its writer, reporting progress.
	Compact(ctx context.Context, table string, progress func(maintain.Progress)) (maintain.Summary, error)
}

// Server implements floev1.TableServiceServer over a Backend.
type Server struct {
	floev1.UnimplementedTableServiceServer
	b    Backend
	cfg  Config
	log  *slog.Logger
	sem  chan struct{}
	jobs *jobs
	// files caches each table's file statistics by snapshot: GetTable
	// would read every manifest of the current snapshot on each call, and
	// the console calls it after every commit it sees.
	files sync.Map // table name → cachedFiles
	// now is time.Now, replaceable in tests.
	now func() time.Time
}

// NewServer returns the table service. ctx bounds the compactions it
// starts (they outlive the call that starts them).
func NewServer(ctx context.Context, b Backend, cfg Config, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.WithDefaults()
	return &Server{b: b, cfg: cfg, log: log, sem: make(chan struct{}, cfg.MaxConcurrentQueries), jobs: newJobs(ctx), now: time.Now}
}

func (s *Server) ref(name string) (TableRef, error) {
	if name == "" {
		return TableRef{}, invalidf("a table name is required (namespace.table)")
	}
	var names []string
	for _, t := range s.b.Tables() {
		if t.Name == name {
			return t, nil
		}
		names = append(names, t.Name)
	}
	return TableRef{}, notFoundf("no pipeline of this node writes table %q; its tables are %s", name, strings.Join(names, ", "))
}

func (s *Server) load(ctx context.Context, name string) (TableRef, *table.Table, error) {
	ref, err := s.ref(name)
	if err != nil {
		return ref, nil, err
	}
	tbl, err := s.b.LoadTable(ctx, name)
	if errors.Is(err, icecat.ErrNoSuchTable) {
		return ref, nil, notFoundf("table %s is configured but does not exist yet: its pipeline creates it when it starts", name)
	}
	if err != nil {
		return ref, nil, fmt.Errorf("%w: load %s: %w", timetravel.ErrUnavailable, name, err)
	}
	return ref, tbl, nil
}

// ListTables implements floev1.TableServiceServer.
func (s *Server) ListTables(ctx context.Context, _ *floev1.ListTablesRequest) (*floev1.ListTablesResponse, error) {
	out := &floev1.ListTablesResponse{}
	ends := s.b.Ends(ctx)
	for _, ref := range s.b.Tables() {
		tbl, err := s.b.LoadTable(ctx, ref.Name)
		if err != nil {
			// A table not created yet (its pipeline has not started)
			// is listed with what is known.
			out.Tables = append(out.Tables, &floev1.TableSummary{Name: ref.Name, Pipeline: ref.Pipeline, Kind: ref.Kind, Keyed: ref.Keyed, Lag: -1})
			continue
		}
		out.Tables = append(out.Tables, s.summary(ref, tbl, ends))
	}
	return out, toStatus(ctx.Err())
}

func (s *Server) summary(ref TableRef, tbl *table.Table, ends map[commit.PartitionKey]int64) *floev1.TableSummary {
	sum := &floev1.TableSummary{Name: ref.Name, Pipeline: ref.Pipeline, Kind: ref.Kind, Keyed: ref.Keyed, Lag: -1}
	meta := tbl.Metadata()
	sum.Snapshots = int64(len(meta.Snapshots()))
	if cur := meta.CurrentSnapshot(); cur != nil {
		sum.CurrentSnapshotId = cur.SnapshotID
		sum.LastCommit = timestamppb.New(time.UnixMilli(cur.TimestampMs))
		sum.TotalRecords = summaryInt(cur, "total-records")
	}
	offs := s.offsets(ref, tbl, ends)
	if len(offs) > 0 {
		sum.Lag = 0
		for _, o := range offs {
			if o.Lag < 0 {
				sum.Lag = -1
				break
			}
			sum.Lag += o.Lag
		}
	}
	return sum
}

// offsets are the table's offsets for its pipeline, with the lag where the
// partition's end is known.
func (s *Server) offsets(ref TableRef, tbl *table.Table, ends map[commit.PartitionKey]int64) []*floev1.PartitionOffset {
	off, _, found, err := commit.TableOffsets(tbl, ref.Pipeline)
	if err != nil || !found {
		return nil
	}
	return partitionOffsets(off, func(topic string, p int32) (int64, bool) {
		e, ok := ends[commit.PartitionKey{Pipeline: ref.Pipeline, Topic: topic, Partition: p}]
		return e, ok
	})
}

func partitionOffsets(off commit.Offsets, end func(string, int32) (int64, bool)) []*floev1.PartitionOffset {
	var out []*floev1.PartitionOffset
	for _, topic := range slices.Sorted(maps.Keys(off)) {
		for _, p := range slices.Sorted(maps.Keys(off[topic])) {
			po := &floev1.PartitionOffset{Topic: topic, Partition: p, Offset: off[topic][p], End: -1, Lag: -1}
			if end != nil {
				// The end is sampled now and then; a table past it has
				// caught up with it.
				if e, ok := end(topic, p); ok {
					po.End = max(e, po.Offset)
					po.Lag = po.End - po.Offset
				}
			}
			out = append(out, po)
		}
	}
	return out
}

// GetTable implements floev1.TableServiceServer.
func (s *Server) GetTable(ctx context.Context, req *floev1.GetTableRequest) (*floev1.Table, error) {
	ref, tbl, err := s.load(ctx, req.GetTable())
	if err != nil {
		return nil, toStatus(err)
	}
	ends := s.b.Ends(ctx)
	meta := tbl.Metadata()
	sch := tbl.Schema()
	out := &floev1.Table{
		Summary:          s.summary(ref, tbl, ends),
		Location:         tbl.Location(),
		FormatVersion:    int32(meta.Version()),
		Properties:       tbl.Properties(),
		Offsets:          s.offsets(ref, tbl, ends),
		FreshnessSeconds: -1,
	}
	for _, f := range sch.Fields() {
		out.Columns = append(out.Columns, &floev1.Column{Id: int32(f.ID), Name: f.Name, Type: f.Type.String(), Required: f.Required, Doc: f.Doc})
	}
	spec := tbl.Spec()
	for _, pf := range spec.Fields() {
		src, _ := sch.FindColumnName(pf.SourceID())
		out.PartitionSpec = append(out.PartitionSpec, fmt.Sprintf("%s(%s)", pf.Transform, src))
	}
	for _, id := range sch.IdentifierFieldIDs {
		if n, ok := sch.FindColumnName(id); ok {
			out.IdentifierFields = append(out.IdentifierFields, n)
		}
	}
	refsByID := refsBySnapshot(meta)
	ancestors := ancestorSet(tbl)
	if cur := meta.CurrentSnapshot(); cur != nil {
		out.CurrentSnapshot = snapshotProto(cur, meta, refsByID, ancestors)
		out.FreshnessSeconds = s.now().Sub(time.UnixMilli(cur.TimestampMs)).Seconds()
		fs, err := s.fileStats(ctx, ref, tbl)
		if err != nil {
			return nil, toStatus(fmt.Errorf("%w: file statistics of %s: %w", timetravel.ErrUnavailable, ref.Name, err))
		}
		out.Files = fs
	}
	for name, r := range meta.Refs() {
		rp := &floev1.Ref{Name: name, Type: string(r.SnapshotRefType), SnapshotId: r.SnapshotID}
		if r.MaxRefAgeMs != nil && *r.MaxRefAgeMs < 1<<62 {
			rp.MaxRefAgeMs = *r.MaxRefAgeMs
		}
		out.Refs = append(out.Refs, rp)
	}
	slices.SortFunc(out.Refs, func(a, b *floev1.Ref) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

type cachedFiles struct {
	snapshot int64
	stats    *floev1.FileStats
}

// fileStats returns the file statistics of tbl's current snapshot, read
// once per snapshot.
func (s *Server) fileStats(ctx context.Context, ref TableRef, tbl *table.Table) (*floev1.FileStats, error) {
	snap := commit.HeadID(tbl)
	if c, ok := s.files.Load(ref.Name); ok && c.(cachedFiles).snapshot == snap {
		return proto.Clone(c.(cachedFiles).stats).(*floev1.FileStats), nil
	}
	fs, err := fileStats(ctx, tbl, ref.TargetFileSize)
	if err != nil {
		return nil, err
	}
	s.files.Store(ref.Name, cachedFiles{snapshot: snap, stats: fs})
	return proto.Clone(fs).(*floev1.FileStats), nil
}

// fileStats reads the current snapshot's manifests.
func fileStats(ctx context.Context, tbl *table.Table, target int64) (*floev1.FileStats, error) {
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	meta := tbl.Metadata()
	mfs, err := meta.CurrentSnapshot().Manifests(fs)
	if err != nil {
		return nil, err
	}
	out := &floev1.FileStats{TargetFileSize: target}
	parts := map[string]*floev1.PartitionFiles{}
	for _, mf := range mfs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		entries, err := mf.FetchEntries(fs, true)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			df := e.DataFile()
			key := partitionKey(meta, df)
			pf := parts[key]
			if pf == nil {
				pf = &floev1.PartitionFiles{Partition: key}
				parts[key] = pf
			}
			if df.ContentType() == iceberg.EntryContentData {
				out.DataFiles++
				out.DataBytes += df.FileSizeBytes()
				out.Records += df.Count()
				pf.DataFiles++
				pf.DataBytes += df.FileSizeBytes()
				pf.Records += df.Count()
				if target > 0 && df.FileSizeBytes() < target/2 {
					out.SmallFiles++
					pf.SmallFiles++
				}
			} else {
				out.DeleteFiles++
				out.DeleteBytes += df.FileSizeBytes()
				pf.DeleteFiles++
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(parts)) {
		out.Partitions = append(out.Partitions, parts[k])
	}
	return out, nil
}

// partitionKey renders a file's partition as "name=value/name=value".
func partitionKey(meta table.Metadata, df iceberg.DataFile) string {
	spec := meta.PartitionSpecByID(int(df.SpecID()))
	if spec == nil || spec.NumFields() == 0 {
		return ""
	}
	vals := df.Partition()
	var parts []string
	for _, pf := range spec.Fields() {
		v, ok := vals[pf.FieldID]
		s := "null"
		if ok && v != nil {
			s = fmt.Sprint(v)
		}
		parts = append(parts, pf.Name+"="+s)
	}
	return strings.Join(parts, "/")
}

func refsBySnapshot(meta table.Metadata) map[int64][]string {
	out := map[int64][]string{}
	for name, r := range meta.Refs() {
		out[r.SnapshotID] = append(out[r.SnapshotID], name)
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

func ancestorSet(tbl *table.Table) map[int64]bool {
	out := map[int64]bool{}
	for _, a := range commit.Ancestors(tbl) {
		out[a.SnapshotID] = true
	}
	return out
}

func summaryInt(s *table.Snapshot, key string) int64 {
	if s.Summary == nil {
		return 0
	}
	v, _ := strconv.ParseInt(s.Summary.Properties[key], 10, 64)
	return v
}

func snapshotProto(sn *table.Snapshot, meta table.Metadata, refs map[int64][]string, ancestors map[int64]bool) *floev1.Snapshot {
	out := &floev1.Snapshot{
		SnapshotId:       sn.SnapshotID,
		SequenceNumber:   sn.SequenceNumber,
		Timestamp:        timestamppb.New(time.UnixMilli(sn.TimestampMs)),
		AddedRecords:     summaryInt(sn, "added-records"),
		DeletedRecords:   summaryInt(sn, "deleted-records"),
		TotalRecords:     summaryInt(sn, "total-records"),
		AddedFiles:       summaryInt(sn, "added-data-files"),
		AddedDeleteFiles: summaryInt(sn, "added-delete-files"),
		Refs:             refs[sn.SnapshotID],
		Ancestor:         ancestors[sn.SnapshotID],
	}
	if cur := meta.CurrentSnapshot(); cur != nil && cur.SnapshotID == sn.SnapshotID {
		out.Current = true
	}
	if sn.ParentSnapshotID != nil {
		out.ParentId = *sn.ParentSnapshotID
	}
	if sn.SchemaID != nil {
		out.SchemaId = int64(*sn.SchemaID)
	}
	if sn.Summary != nil {
		out.Operation = string(sn.Summary.Operation)
		out.Summary = maps.Clone(map[string]string(sn.Summary.Properties))
		if v := sn.Summary.Properties[commit.PropOffsets]; v != "" {
			if off, err := commit.ParseOffsets(v); err == nil {
				out.Offsets = partitionOffsets(off, nil)
			}
		}
		// Position and equality deletes count as deleted records too.
		if out.DeletedRecords == 0 {
			out.DeletedRecords = summaryInt(sn, "added-position-deletes") + summaryInt(sn, "added-equality-deletes")
		}
	}
	return out
}

// snapshotsNewestFirst orders a table's snapshots by sequence number then
// time, newest first.
func snapshotsNewestFirst(meta table.Metadata) []table.Snapshot {
	snaps := slices.Clone(meta.Snapshots())
	slices.SortFunc(snaps, func(a, b table.Snapshot) int {
		if a.SequenceNumber != b.SequenceNumber {
			return cmp.Compare(b.SequenceNumber, a.SequenceNumber)
		}
		if a.TimestampMs != b.TimestampMs {
			return cmp.Compare(b.TimestampMs, a.TimestampMs)
		}
		return cmp.Compare(b.SnapshotID, a.SnapshotID)
	})
	return snaps
}

// ListSnapshots implements floev1.TableServiceServer. The page token is
// the id of the last snapshot of the previous page: a page starts after
// it, so snapshots committed between two pages do not shift the pages.
func (s *Server) ListSnapshots(ctx context.Context, req *floev1.ListSnapshotsRequest) (*floev1.ListSnapshotsResponse, error) {
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, toStatus(invalidf("page_size must not be negative, got %d", size))
	case size == 0:
		size = min(100, s.cfg.MaxPageSize)
	case size > s.cfg.MaxPageSize:
		return nil, toStatus(invalidf("page_size %d is above this node's api.max_page_size (%d)", size, s.cfg.MaxPageSize))
	}
	_, tbl, err := s.load(ctx, req.GetTable())
	if err != nil {
		return nil, toStatus(err)
	}
	meta := tbl.Metadata()
	snaps := snapshotsNewestFirst(meta)
	start := 0
	if tok := req.GetPageToken(); tok != "" {
		after, err := strconv.ParseInt(tok, 10, 64)
		if err != nil {
			return nil, toStatus(invalidf("page_token %q is not one this call returned", tok))
		}
		i := slices.IndexFunc(snaps, func(sn table.Snapshot) bool { return sn.SnapshotID == after })
		if i < 0 {
			return nil, toStatus(invalidf("page_token %q names a snapshot the table no longer has (expired): list again from the first page", tok))
		}
		start = i + 1
	}
	end := min(len(snaps), start+size)
	refs, anc := refsBySnapshot(meta), ancestorSet(tbl)
	out := &floev1.ListSnapshotsResponse{Total: int64(len(snaps))}
	for i := start; i < end; i++ {
		out.Snapshots = append(out.Snapshots, snapshotProto(&snaps[i], meta, refs, anc))
	}
	if end < len(snaps) && end > start {
		out.NextPageToken = strconv.FormatInt(snaps[end-1].SnapshotID, 10)
	}
	return out, nil
}

// GetSnapshot implements floev1.TableServiceServer.
func (s *Server) GetSnapshot(ctx context.Context, req *floev1.GetSnapshotRequest) (*floev1.Snapshot, error) {
	_, tbl, err := s.load(ctx, req.GetTable())
	if err != nil {
		return nil, toStatus(err)
	}
	meta := tbl.Metadata()
	sn := meta.SnapshotByID(req.GetSnapshotId())
	if sn == nil {
		return nil, toStatus(notFoundf("table %s has no snapshot %d (expired, or never there); ListSnapshots lists those it has", req.GetTable(), req.GetSnapshotId()))
	}
	return snapshotProto(sn, meta, refsBySnapshot(meta), ancestorSet(tbl)), nil
}

// asOf converts the request's AsOf.
func asOf(a *floev1.AsOf) timetravel.AsOf {
	switch p := a.GetPoint().(type) {
	case *floev1.AsOf_SnapshotId:
		return timetravel.AsOf{SnapshotID: p.SnapshotId}
	case *floev1.AsOf_Timestamp:
		return timetravel.AsOf{Time: p.Timestamp.AsTime()}
	case *floev1.AsOf_Tag:
		return timetravel.AsOf{Tag: p.Tag}
	case *floev1.AsOf_Branch:
		return timetravel.AsOf{Branch: p.Branch}
	}
	return timetravel.AsOf{}
}

func (s *Server) limits() timetravel.Limits {
	return timetravel.Limits{MaxRows: s.cfg.MaxRows, MaxBytes: int64(s.cfg.MaxBytes), Timeout: s.cfg.QueryTimeout.D()}
}

// acquire takes one of the query slots, waiting at most QueueTimeout.
func (s *Server) acquire(ctx context.Context) (release func(), err error) {
	t := time.NewTimer(s.cfg.QueueTimeout.D())
	defer t.Stop()
	select {
	case s.sem <- struct{}{}:
		return func() { <-s.sem }, nil
	case <-t.C:
		return nil, fmt.Errorf("%w: %d queries are running (api.max_concurrent_queries); retry shortly", timetravel.ErrExhausted, cap(s.sem))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// checkLimit refuses a negative limit, and one above api.max_rows: the
// caller asked for rows the node will not return.
func (s *Server) checkLimit(n int64) error {
	switch {
	case n < 0:
		return invalidf("limit must not be negative, got %d", n)
	case n > s.cfg.MaxRows:
		return invalidf("limit %d is above this node's api.max_rows (%d): ask for fewer rows, or page with --where", n, s.cfg.MaxRows)
	}
	return nil
}

// RunQuery runs a query, calling emit with each batch: the gRPC and HTTP
// forms share it.
func (s *Server) RunQuery(ctx context.Context, req *floev1.QueryRequest, emit func(timetravel.Batch) error) (timetravel.QueryStats, error) {
	if err := s.checkLimit(req.GetLimit()); err != nil {
		return timetravel.QueryStats{}, err
	}
	_, tbl, err := s.load(ctx, req.GetTable())
	if err != nil {
		return timetravel.QueryStats{}, err
	}
	release, err := s.acquire(ctx)
	if err != nil {
		return timetravel.QueryStats{}, err
	}
	defer release()
	return timetravel.Query(ctx, tbl, timetravel.QueryRequest{
		AsOf: asOf(req.GetAsOf()), Columns: req.GetColumns(), Where: req.GetWhere(), Limit: req.GetLimit(),
	}, s.limits(), emit)
}

// RunChanges runs a changes call, calling emit with each batch.
func (s *Server) RunChanges(ctx context.Context, req *floev1.ChangesRequest, emit func(timetravel.Batch) error) (timetravel.ChangesStats, error) {
	if err := s.checkLimit(req.GetLimit()); err != nil {
		return timetravel.ChangesStats{}, err
	}
	_, tbl, err := s.load(ctx, req.GetTable())
	if err != nil {
		return timetravel.ChangesStats{}, err
	}
	release, err := s.acquire(ctx)
	if err != nil {
		return timetravel.ChangesStats{}, err
	}
	defer release()
	return timetravel.Changes(ctx, tbl, timetravel.ChangesRequest{
		From: req.GetFromSnapshotId(), To: req.GetToSnapshotId(), Columns: req.GetColumns(), Limit: req.GetLimit(),
	}, s.limits(), emit)
}

// Query implements floev1.TableServiceServer: Arrow IPC, one stream per
// message.
func (s *Server) Query(req *floev1.QueryRequest, stream floev1.TableService_QueryServer) error {
	ctx, send, done := s.sender(stream.Context(), stream.Send)
	defer done()
	st, err := s.RunQuery(ctx, req, sendBatch(send))
	if err != nil {
		return toStatus(err)
	}
	return toStatus(send(&floev1.QueryResponse{Stats: queryStats(st)}))
}

// sender bounds a streaming answer by the query timeout, sends included:
// a client that stops reading blocks a send on flow control, and would
// hold its query slot forever. A send that outlives the deadline returns
// the deadline's error; returning from the handler then resets the
// stream, which ends the blocked send.
func (s *Server) sender(parent context.Context, raw func(*floev1.QueryResponse) error) (context.Context, func(*floev1.QueryResponse) error, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, s.cfg.QueryTimeout.D()+sendGrace)
	send := func(m *floev1.QueryResponse) error {
		errc := make(chan error, 1)
		go func() { errc <- raw(m) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			return fmt.Errorf("%w: the client did not read the answer within api.query_timeout (%s)", timetravel.ErrExhausted, s.cfg.QueryTimeout)
		}
	}
	return ctx, send, cancel
}

// sendGrace is how long past the query timeout the last messages may take.
const sendGrace = 5 * time.Second

// sendBatch sends each batch as one Arrow IPC stream.
func sendBatch(send func(*floev1.QueryResponse) error) func(timetravel.Batch) error {
	return func(b timetravel.Batch) error {
		data, err := timetravel.IPCBatch(b)
		if err != nil {
			return err
		}
		return send(&floev1.QueryResponse{ArrowIpc: data})
	}
}

func queryStats(st timetravel.QueryStats) *floev1.QueryStats {
	return &floev1.QueryStats{
		SnapshotId: st.SnapshotID, Rows: st.Rows, Truncated: st.Truncated, TruncatedBy: st.TruncatedBy,
		DataFiles: st.DataFiles, DeleteFiles: st.DeleteFiles, ElapsedSeconds: st.Elapsed.Seconds(),
	}
}

func changesStats(st timetravel.ChangesStats) *floev1.QueryStats {
	return &floev1.QueryStats{
		Rows: st.Inserts + st.Deletes, Truncated: st.Truncated, TruncatedBy: st.TruncatedBy, ElapsedSeconds: st.Elapsed.Seconds(),
		Snapshots: st.Snapshots, Inserts: st.Inserts, Deletes: st.Deletes,
	}
}

// Changes implements floev1.TableServiceServer.
func (s *Server) Changes(req *floev1.ChangesRequest, stream floev1.TableService_ChangesServer) error {
	ctx, send, done := s.sender(stream.Context(), stream.Send)
	defer done()
	st, err := s.RunChanges(ctx, req, sendBatch(send))
	if err != nil {
		return toStatus(err)
	}
	return toStatus(send(&floev1.QueryResponse{Stats: changesStats(st)}))
}

// Rollback implements floev1.TableServiceServer.
func (s *Server) Rollback(ctx context.Context, req *floev1.RollbackRequest) (*floev1.RollbackResponse, error) {
	var mode commit.RollbackMode
	switch req.GetMode() {
	case floev1.RollbackMode_ROLLBACK_MODE_REPLAY:
		mode = commit.RollbackReplay
	case floev1.RollbackMode_ROLLBACK_MODE_SKIP:
		mode = commit.RollbackSkip
	default:
		return nil, toStatus(invalidf("mode must be replay (read the records since the snapshot again) or skip (drop them)"))
	}
	ref, tbl, err := s.load(ctx, req.GetTable())
	if err != nil {
		return nil, toStatus(err)
	}
	plan, err := planRollback(ref, tbl, req, mode)
	if err != nil {
		return nil, toStatus(err)
	}
	if req.GetDryRun() {
		plan.Description = "dry run: " + plan.Description
		return plan, nil
	}
	if mode == commit.RollbackReplay {
		// The pipeline's dead-letter table goes back to the same offsets
		// first, so that every record read again lands in exactly one of
		// the two tables, whatever the transform decides this time.
		// Trimmed first: should the node die between the two, the table
		// keeps its rows and the same rollback can be run again.
		to, err := commit.ReplayOffsets(tbl, tbl.Metadata().SnapshotByID(plan.TargetSnapshotId), ref.Pipeline)
		if err != nil {
			return nil, toStatus(err)
		}
		for _, sib := range s.b.Tables() {
			if sib.Pipeline != ref.Pipeline || sib.Name == ref.Name || sib.Kind != "dead_letter" {
				continue
			}
			err := s.b.Do(ctx, sib.Name, func(wctx context.Context, c *commit.Committer) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				_, err := c.TrimDeadLetters(wctx, to)
				return err
			})
			if err != nil {
				return nil, toStatus(fmt.Errorf("trimming the dead-letter table %s to the snapshot's offsets: %w", sib.Name, err))
			}
		}
	}
	var after *table.Table
	err = s.b.Do(ctx, ref.Name, func(wctx context.Context, c *commit.Committer) error {
		// A request that ended while the task waited is not applied.
		if err := ctx.Err(); err != nil {
			return err
		}
		// Planned again on the writer: the table may have moved since.
		cur, err := planRollback(ref, c.Table(), req, mode)
		if err != nil {
			return err
		}
		plan = cur
		after, err = c.Rollback(wctx, plan.TargetSnapshotId, mode)
		return err
	})
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return nil, toStatus(fmt.Errorf("%w (the rollback may or may not have been applied: list the snapshots to see)", err))
	default:
		return nil, toStatus(err)
	}
	plan.Applied = true
	plan.NewSnapshotId = commit.HeadID(after)
	if target := after.Metadata().SnapshotByID(plan.TargetSnapshotId); target != nil {
		plan.Description = describeRollback(ref, target, mode, plan, true)
	}
	if off, _, found, err := commit.TableOffsets(after, ref.Pipeline); err == nil && found {
		plan.OffsetsAfter = partitionOffsets(off, nil)
	}
	s.log.Warn("table rolled back through the API", "table", ref.Name, "mode", mode.String(),
		"from", plan.FromSnapshotId, "to", plan.TargetSnapshotId, "current", plan.NewSnapshotId)
	return plan, nil
}

// planRollback says what rolling tbl back as req asks would do.
func planRollback(ref TableRef, tbl *table.Table, req *floev1.RollbackRequest, mode commit.RollbackMode) (*floev1.RollbackResponse, error) {
	if mode == commit.RollbackReplay && ref.Kind == "dead_letter" {
		return nil, invalidf("%s is a dead-letter table: replay its pipeline's table, which takes the dead-letter table back with it", ref.Name)
	}
	head := tbl.CurrentSnapshot()
	if head == nil {
		return nil, invalidf("table %s has no snapshot yet: there is nothing to roll back", ref.Name)
	}
	ancestors := commit.Ancestors(tbl)
	var target *table.Snapshot
	undone := int64(0)
	switch t := req.GetTarget().(type) {
	case *floev1.RollbackRequest_SnapshotId:
		for i, a := range ancestors {
			if a.SnapshotID == t.SnapshotId {
				target, undone = a, int64(i)
				break
			}
		}
		if target == nil {
			if tbl.Metadata().SnapshotByID(t.SnapshotId) == nil {
				return nil, notFoundf("table %s has no snapshot %d", ref.Name, t.SnapshotId)
			}
			return nil, invalidf("snapshot %d is not in the current history of %s (it was rolled back past, or is on another branch); roll back to an ancestor of %d", t.SnapshotId, ref.Name, head.SnapshotID)
		}
	case *floev1.RollbackRequest_Timestamp:
		at := t.Timestamp.AsTime()
		for i, a := range ancestors {
			if !time.UnixMilli(a.TimestampMs).After(at) {
				target, undone = a, int64(i)
				break
			}
		}
		if target == nil {
			return nil, notFoundf("table %s has no snapshot at or before %s in its current history", ref.Name, at.UTC().Format(time.RFC3339))
		}
	default:
		return nil, invalidf("a rollback needs a target: snapshot_id or timestamp")
	}
	if target.SnapshotID == head.SnapshotID {
		return nil, invalidf("snapshot %d is already the current snapshot of %s: nothing to roll back", target.SnapshotID, ref.Name)
	}
	out := &floev1.RollbackResponse{
		Mode:             req.GetMode(),
		FromSnapshotId:   head.SnapshotID,
		TargetSnapshotId: target.SnapshotID,
		SnapshotsUndone:  undone,
		RecordsBefore:    summaryInt(head, "total-records"),
		RecordsAfter:     summaryInt(target, "total-records"),
	}
	before, _, _, err := commit.TableOffsets(tbl, ref.Pipeline)
	if err != nil {
		return nil, err
	}
	out.OffsetsBefore = partitionOffsets(before, nil)
	after := before
	if mode == commit.RollbackReplay {
		if after, err = commit.ReplayOffsets(tbl, target, ref.Pipeline); err != nil {
			return nil, err
		}
		out.NewSnapshotId = target.SnapshotID
	}
	out.OffsetsAfter = partitionOffsets(after, nil)
	out.Description = describeRollback(ref, target, mode, out, false)
	return out, nil
}

// describeRollback says in words what the rollback does (done: did).
func describeRollback(ref TableRef, target *table.Snapshot, mode commit.RollbackMode, r *floev1.RollbackResponse, done bool) string {
	when := time.UnixMilli(target.TimestampMs).UTC().Format("2006-01-02T15:04:05.000Z07:00")
	snaps := plural(r.SnapshotsUndone, "snapshot")
	switch mode {
	case commit.RollbackReplay:
		verb, then := "goes", "then reads"
		if done {
			verb, then = "went", "now reads"
		}
		return fmt.Sprintf("%s %s back to snapshot %d (%s), undoing %s (%d records before, %d after); "+
			"pipeline %s %s its topics again from the snapshot's offsets, so the records since are ingested again with the transform as configured now",
			ref.Name, verb, target.SnapshotID, when, snaps, r.RecordsBefore, r.RecordsAfter, ref.Pipeline, then)
	default:
		verb, drop := "gets", "dropping"
		if done {
			verb, drop = "got", "dropping"
		}
		return fmt.Sprintf("%s %s a new snapshot with the rows of snapshot %d (%s), %s what the %s since added or changed (%d records before, %d after); "+
			"pipeline %s keeps its offsets, so those records are not read again",
			ref.Name, verb, target.SnapshotID, when, drop, snaps, r.RecordsBefore, r.RecordsAfter, ref.Pipeline)
	}
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// reservedTag says why a tag name is not the user's to set.
func reservedTag(name string) string {
	switch {
	case name == "":
		return "a tag name is required"
	case name == table.MainBranch:
		return "main is the table's branch, not a tag"
	case strings.HasPrefix(name, "floe-"):
		return "tags named floe-* are floe's own (they pin each pipeline's last commit)"
	case len(name) > 255 || strings.ContainsAny(name, "/\x00"):
		return "a tag name must be at most 255 characters, without / or NUL"
	}
	return ""
}

// CreateTag implements floev1.TableServiceServer.
func (s *Server) CreateTag(ctx context.Context, req *floev1.CreateTagRequest) (*floev1.Tag, error) {
	if why := reservedTag(req.GetName()); why != "" {
		return nil, toStatus(invalidf("tag %q: %s", req.GetName(), why))
	}
	if req.GetMaxRefAgeMs() < 0 {
		return nil, toStatus(invalidf("max_ref_age_ms must not be negative"))
	}
	ref, err := s.ref(req.GetTable())
	if err != nil {
		return nil, toStatus(err)
	}
	out := &floev1.Tag{Table: ref.Name, Name: req.GetName(), SnapshotId: req.GetSnapshotId(), MaxRefAgeMs: req.GetMaxRefAgeMs()}
	err = s.b.Do(ctx, ref.Name, func(ctx context.Context, c *commit.Committer) error {
		tbl := c.Table()
		if out.SnapshotId == 0 {
			out.SnapshotId = commit.HeadID(tbl)
			if out.SnapshotId == 0 {
				return invalidf("table %s has no snapshot to tag yet", ref.Name)
			}
		} else if tbl.Metadata().SnapshotByID(out.SnapshotId) == nil {
			return notFoundf("table %s has no snapshot %d", ref.Name, out.SnapshotId)
		}
		for name, r := range tbl.Metadata().Refs() {
			if name == out.Name {
				return conflictf("table %s already has a %s named %q (at snapshot %d); delete it first", ref.Name, r.SnapshotRefType, name, r.SnapshotID)
			}
		}
		return c.SetTag(ctx, out.Name, out.SnapshotId, out.MaxRefAgeMs)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}

// DeleteTag implements floev1.TableServiceServer.
func (s *Server) DeleteTag(ctx context.Context, req *floev1.DeleteTagRequest) (*floev1.DeleteTagResponse, error) {
	if why := reservedTag(req.GetName()); why != "" {
		return nil, toStatus(invalidf("tag %q: %s", req.GetName(), why))
	}
	ref, err := s.ref(req.GetTable())
	if err != nil {
		return nil, toStatus(err)
	}
	err = s.b.Do(ctx, ref.Name, func(ctx context.Context, c *commit.Committer) error {
		for name, r := range c.Table().Metadata().Refs() {
			if name == req.GetName() {
				if r.SnapshotRefType != table.TagRef {
					return invalidf("%q is a branch of %s, not a tag", name, ref.Name)
				}
				return c.RemoveTag(ctx, name)
			}
		}
		return notFoundf("table %s has no tag %q", ref.Name, req.GetName())
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &floev1.DeleteTagResponse{}, nil
}

// Compact implements floev1.TableServiceServer: the compaction runs in
// the background; GetCompaction polls it.
func (s *Server) Compact(ctx context.Context, req *floev1.CompactRequest) (*floev1.CompactionJob, error) {
	ref, err := s.ref(req.GetTable())
	if err != nil {
		return nil, toStatus(err)
	}
	// A member that does not write the table says so now, not in a job
	// that fails later.
	if err := s.b.Writes(ref.Name); err != nil {
		return nil, toStatus(err)
	}
	return s.jobs.start(ref.Name, func(ctx context.Context, progress func(maintain.Progress)) (maintain.Summary, error) {
		return s.b.Compact(ctx, ref.Name, progress)
	}), nil
}

// GetCompaction implements floev1.TableServiceServer.
func (s *Server) GetCompaction(_ context.Context, req *floev1.GetCompactionRequest) (*floev1.CompactionJob, error) {
	j, ok := s.jobs.get(req.GetJobId())
	if !ok {
		return nil, toStatus(notFoundf("no compaction job %q on this node (jobs are kept in memory: the %d most recent)", req.GetJobId(), maxJobs))
	}
	return j, nil
}
