package ingest

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"

	"github.com/floelake/floe/ingest/decode"
)

// DeadLetterSchema is the schema of every dead-letter table: the record as it
// arrived (raw key and value bytes), where it came from, and why it was
// rejected.
func DeadLetterSchema() *iceberg.Schema {
	return iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "topic", Type: iceberg.PrimitiveTypes.String, Required: true},
		iceberg.NestedField{ID: 2, Name: "partition", Type: iceberg.PrimitiveTypes.Int32, Required: true},
		iceberg.NestedField{ID: 3, Name: "offset", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 4, Name: "kafka_timestamp", Type: iceberg.PrimitiveTypes.TimestampTz, Required: false},
		iceberg.NestedField{ID: 5, Name: "key", Type: iceberg.PrimitiveTypes.Binary, Required: false},
		iceberg.NestedField{ID: 6, Name: "value", Type: iceberg.PrimitiveTypes.Binary, Required: false},
		iceberg.NestedField{ID: 7, Name: "error", Type: iceberg.PrimitiveTypes.String, Required: true},
		iceberg.NestedField{ID: 8, Name: "failed_at", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
	)
}

// deadLetterRow appends rejected records to a builder of the dead-letter
// table's Arrow schema, resolving columns by name so a table created by an
// older floe with extra columns still works.
type deadLetterRow struct {
	cols [8]int
}

func newDeadLetterRow(sc *arrow.Schema) (*deadLetterRow, error) {
	names := []string{"topic", "partition", "offset", "kafka_timestamp", "key", "value", "error", "failed_at"}
	d := &deadLetterRow{}
	for i, n := range names {
		idx := sc.FieldIndices(n)
		if len(idx) != 1 {
			return nil, fmt.Errorf("dead-letter table has no column %q", n)
		}
		d.cols[i] = idx[0]
	}
	return d, nil
}

func (d *deadLetterRow) append(b *array.RecordBuilder, m decode.RecordMeta, value []byte, reason string, now time.Time) {
	b.Field(d.cols[0]).(*array.StringBuilder).Append(m.Topic)
	b.Field(d.cols[1]).(*array.Int32Builder).Append(m.Partition)
	b.Field(d.cols[2]).(*array.Int64Builder).Append(m.Offset)
	if m.Timestamp.IsZero() {
		b.Field(d.cols[3]).AppendNull()
	} else {
		b.Field(d.cols[3]).(*array.TimestampBuilder).Append(arrow.Timestamp(m.Timestamp.UnixMicro()))
	}
	if m.Key == nil {
		b.Field(d.cols[4]).AppendNull()
	} else {
		b.Field(d.cols[4]).(*array.BinaryBuilder).Append(m.Key)
	}
	if value == nil {
		b.Field(d.cols[5]).AppendNull()
	} else {
		b.Field(d.cols[5]).(*array.BinaryBuilder).Append(value)
	}
	// Iceberg strings are UTF-8, and readers refuse a file that breaks
	// that: a reason that quotes the record's bytes escapes what is not
	// valid. The raw bytes stay in the binary value column.
	b.Field(d.cols[6]).(*array.StringBuilder).Append(validUTF8(reason))
	b.Field(d.cols[7]).(*array.TimestampBuilder).Append(arrow.Timestamp(now.UnixMicro()))
	// Columns added to the table later are null for floe's rows.
	for i := 0; i < b.Schema().NumFields(); i++ {
		if b.Field(i).Len() < b.Field(d.cols[0]).Len() {
			b.Field(i).AppendNull()
		}
	}
}

// validUTF8 returns s with every byte that is not part of valid UTF-8
// written as a \xNN escape.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			fmt.Fprintf(&b, "\\x%02x", s[i])
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
