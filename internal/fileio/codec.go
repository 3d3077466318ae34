package fileio

import (
	"encoding/json"
	"fmt"

	"github.com/apache/iceberg-go"
	"github.com/google/uuid"
	"github.com/twmb/avro/atype"
)

// The codec turns data files into bytes and back, so a segment accepted by
// the replicated ledger can carry its files and the committer (perhaps on
// another node, after a failover) can commit them without reading Parquet
// footers from the object store. (iceberg-go's codec package encodes a file
// as its manifest entry for one format version; the ledger's entries
// already use this encoding, so changing to it needs a versioned format.)
//
// Everything the iceberg.DataFile interface exposes is kept, except the
// deprecated distinct counts: path, format, content, counts, size,
// per-column statistics and bounds (absent and empty stay distinct), split
// offsets, sort order, equality ids, key metadata, first row id, the
// deletion-vector location and partition values. Partition values are
// stored in Iceberg's single-value binary serialization (spec, "Binary
// single-value serialization") keyed by partition field id, and decoded
// against the partition spec and schema they were written with, to the Go
// types iceberg-go's transforms produce; a null value is listed by id.

// fileRecord is one data file on the wire. Statistics maps and lists keep
// the difference between absent (null) and empty, as a manifest does.
type fileRecord struct {
	Path         string         `json:"path"`
	Format       string         `json:"format"`
	Content      int            `json:"content"`
	Records      int64          `json:"records"`
	Size         int64          `json:"size"`
	SpecID       int32          `json:"spec_id"`
	Partition    map[int][]byte `json:"partition,omitempty"`
	NullParts    []int          `json:"null_partition,omitempty"`
	ColumnSizes  map[int]int64  `json:"column_sizes"`
	ValueCounts  map[int]int64  `json:"value_counts"`
	NullCounts   map[int]int64  `json:"null_counts"`
	NaNCounts    map[int]int64  `json:"nan_counts"`
	Lower        map[int][]byte `json:"lower"`
	Upper        map[int][]byte `json:"upper"`
	SplitOffsets []int64        `json:"split_offsets"`
	SortOrderID  *int           `json:"sort_order_id,omitempty"`
	EqualityIDs  []int          `json:"equality_ids"`
	KeyMetadata  []byte         `json:"key_metadata"`
	FirstRowID   *int64         `json:"first_row_id,omitempty"`
	// ReferencedFile, ContentOffset and ContentSize locate a deletion
	// vector in its Puffin file.
	ReferencedFile *string `json:"referenced_data_file,omitempty"`
	ContentOffset  *int64  `json:"content_offset,omitempty"`
	ContentSize    *int64  `json:"content_size_in_bytes,omitempty"`
}

// EncodeDataFiles serialises data files for the ledger.
func EncodeDataFiles(files []iceberg.DataFile) ([]byte, error) {
	recs := make([]fileRecord, len(files))
	for i, f := range files {
		r := fileRecord{
			Path: f.FilePath(), Format: string(f.FileFormat()), Content: int(f.ContentType()),
			Records: f.Count(), Size: f.FileSizeBytes(), SpecID: f.SpecID(),
			ColumnSizes: f.ColumnSizes(), ValueCounts: f.ValueCounts(), NullCounts: f.NullValueCounts(),
			NaNCounts: f.NaNValueCounts(), Lower: f.LowerBoundValues(), Upper: f.UpperBoundValues(),
			SplitOffsets: f.SplitOffsets(), SortOrderID: f.SortOrderID(), EqualityIDs: f.EqualityFieldIDs(),
			KeyMetadata: f.KeyMetadata(), FirstRowID: f.FirstRowID(),
			ReferencedFile: f.ReferencedDataFile(), ContentOffset: f.ContentOffset(), ContentSize: f.ContentSizeInBytes(),
		}
		for id, v := range f.Partition() {
			if v == nil {
				r.NullParts = append(r.NullParts, id)
				continue
			}
			lit, err := literalOf(v)
			if err != nil {
				return nil, fmt.Errorf("fileio: encode %s: partition field %d: %w", f.FilePath(), id, err)
			}
			b, err := lit.MarshalBinary()
			if err != nil {
				return nil, fmt.Errorf("fileio: encode %s: partition field %d: %w", f.FilePath(), id, err)
			}
			if r.Partition == nil {
				r.Partition = map[int][]byte{}
			}
			r.Partition[id] = b
		}
		recs[i] = r
	}
	return json.Marshal(recs)
}

// DecodeDataFiles rebuilds data files encoded by EncodeDataFiles, against the
// partition spec and schema the files were written with.
func DecodeDataFiles(data []byte, spec iceberg.PartitionSpec, sch *iceberg.Schema) ([]iceberg.DataFile, error) {
	var recs []fileRecord
	if err := json.Unmarshal(data, &recs); err != nil {
		return nil, fmt.Errorf("fileio: decode data files: %w", err)
	}
	out := make([]iceberg.DataFile, 0, len(recs))
	for _, r := range recs {
		if int(r.SpecID) != spec.ID() {
			return nil, fmt.Errorf("fileio: decode %s: written with partition spec %d, decoding with %d", r.Path, r.SpecID, spec.ID())
		}
		parts := map[int]any{}
		logical := map[int]string{}
		for _, id := range r.NullParts {
			parts[id] = nil
		}
		for _, pf := range spec.Fields() {
			src, ok := sch.FindFieldByID(pf.SourceID())
			if !ok {
				return nil, fmt.Errorf("fileio: decode %s: partition source %d not in schema", r.Path, pf.SourceID())
			}
			rt := pf.Transform.ResultType(src.Type)
			switch rt.(type) {
			case iceberg.DateType:
				logical[pf.FieldID] = atype.Date
			case iceberg.TimeType:
				logical[pf.FieldID] = atype.TimeMicros
			case iceberg.TimestampType, iceberg.TimestampTzType:
				logical[pf.FieldID] = atype.TimestampMicros
			case iceberg.DecimalType:
				logical[pf.FieldID] = atype.Decimal
			case iceberg.UUIDType:
				logical[pf.FieldID] = atype.UUID
			}
			b, ok := r.Partition[pf.FieldID]
			if !ok {
				continue
			}
			lit, err := iceberg.LiteralFromBytes(rt, b)
			if err != nil {
				return nil, fmt.Errorf("fileio: decode %s: partition field %d: %w", r.Path, pf.FieldID, err)
			}
			parts[pf.FieldID] = lit.Any()
		}
		if spec.NumFields() == 0 {
			parts = nil
		}
		bld, err := iceberg.NewDataFileBuilder(spec, iceberg.ManifestEntryContent(r.Content), r.Path,
			iceberg.FileFormat(r.Format), parts, logical, nil, r.Records, r.Size)
		if err != nil {
			return nil, fmt.Errorf("fileio: decode %s: %w", r.Path, err)
		}
		bld.ColumnSizes(r.ColumnSizes).ValueCounts(r.ValueCounts).NullValueCounts(r.NullCounts).
			NaNValueCounts(r.NaNCounts).LowerBoundValues(r.Lower).UpperBoundValues(r.Upper)
		if r.SplitOffsets != nil {
			bld.SplitOffsets(r.SplitOffsets)
		}
		if r.SortOrderID != nil {
			bld.SortOrderID(*r.SortOrderID)
		}
		if r.EqualityIDs != nil {
			bld.EqualityFieldIDs(r.EqualityIDs)
		}
		if r.KeyMetadata != nil {
			bld.KeyMetadata(r.KeyMetadata)
		}
		if r.FirstRowID != nil {
			bld.FirstRowID(*r.FirstRowID)
		}
		if r.ReferencedFile != nil {
			bld.ReferencedDataFile(*r.ReferencedFile)
		}
		if r.ContentOffset != nil {
			bld.ContentOffset(*r.ContentOffset)
		}
		if r.ContentSize != nil {
			bld.ContentSizeInBytes(*r.ContentSize)
		}
		out = append(out, bld.Build())
	}
	return out, nil
}

func literalOf(v any) (iceberg.Literal, error) {
	switch x := v.(type) {
	case bool:
		return iceberg.NewLiteral(x), nil
	case int32:
		return iceberg.NewLiteral(x), nil
	case int64:
		return iceberg.NewLiteral(x), nil
	case float32:
		return iceberg.NewLiteral(x), nil
	case float64:
		return iceberg.NewLiteral(x), nil
	case string:
		return iceberg.NewLiteral(x), nil
	case []byte:
		return iceberg.NewLiteral(x), nil
	case iceberg.Date:
		return iceberg.NewLiteral(x), nil
	case iceberg.Time:
		return iceberg.NewLiteral(x), nil
	case iceberg.Timestamp:
		return iceberg.NewLiteral(x), nil
	case iceberg.TimestampNano:
		return iceberg.NewLiteral(x), nil
	case iceberg.Decimal:
		return iceberg.NewLiteral(x), nil
	case uuid.UUID:
		return iceberg.NewLiteral(x), nil
	case iceberg.Literal:
		return x, nil
	default:
		return nil, fmt.Errorf("unsupported partition value %T", v)
	}
}
