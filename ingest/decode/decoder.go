package decode

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Decoder is what the pipeline decodes records with, whatever their format:
// the two phases of the package doc. JSONDecoder, AvroDecoder and
// ProtoDecoder are Decoders.
type Decoder interface {
	// ArrowSchema is the schema of the RecordBuilders Append accepts.
	ArrowSchema() *arrow.Schema
	// Parse validates and converts one record value into the decoder's
	// scratch row, or refuses it with a *DecodeError (a dead letter); the
	// last good row stays as it was.
	Parse(value []byte, meta RecordMeta) error
	// Cell returns top-level column i of the last good row.
	Cell(i int) Cell
	// Append appends the last good row to b.
	Append(b *array.RecordBuilder)
}

var (
	_ Decoder = (*JSONDecoder)(nil)
	_ Decoder = (*AvroDecoder)(nil)
	_ Decoder = (*ProtoDecoder)(nil)
)
