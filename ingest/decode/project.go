package decode

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Projector appends some top-level columns of a decoder's last parsed row to
// the fields of RecordBuilders of another schema: the columns a transform
// passes through to its output, where they may sit at other positions, under
// other names, beside columns the decoder does not fill. It appends exactly
// one value to each field it maps and leaves the other fields to the
// caller. Like its decoder, it is used by one goroutine.
type Projector struct {
	d *JSONDecoder
	// from[k] is the decoder column appended to field to[k].
	from, to []int
	schema   *arrow.Schema
	builders []*builderSet
}

// Projector maps decoder column from[k] to field to[k] of out, whose types
// must be the columns' Arrow types (names and metadata may differ).
func (d *JSONDecoder) Projector(out *arrow.Schema, from, to []int) (*Projector, error) {
	if len(from) != len(to) {
		return nil, fmt.Errorf("ingest: projector: %d columns for %d fields", len(from), len(to))
	}
	for k := range from {
		i, j := from[k], to[k]
		if i < 0 || i >= len(d.root.children) || j < 0 || j >= out.NumFields() {
			return nil, fmt.Errorf("ingest: projector: column %d to field %d is out of range", i, j)
		}
		if in, o := d.schema.Field(i), out.Field(j); !arrow.TypeEqual(in.Type, o.Type) {
			return nil, fmt.Errorf("ingest: projector: column %q is %s, field %q is %s", in.Name, in.Type, o.Name, o.Type)
		}
	}
	return &Projector{d: d, from: from, to: to, schema: out}, nil
}

// Append appends the mapped columns of the decoder's last parsed row to b,
// a builder of the projector's schema.
func (p *Projector) Append(b *array.RecordBuilder) {
	d := p.d
	if d.last < 0 {
		panic("ingest: Projector.Append called before a successful Parse")
	}
	nbs := p.buildersFor(b)
	s := &d.slots[d.last]
	for _, i := range p.from {
		d.tapePos = s.tapeAt[i]
		d.appendValue(s, d.root.children[i], nbs, &s.cells[i])
	}
}

// buildersFor returns the typed builders of b for the mapped columns,
// binding them on first use.
func (p *Projector) buildersFor(b *array.RecordBuilder) []nodeBuilder {
	return cachedBuilders(&p.builders, b, p.d.nnodes, func(nodes []nodeBuilder) {
		if !sameColumns(b.Schema(), p.schema) {
			panic(fmt.Sprintf("ingest: RecordBuilder schema %s does not match the projector's %s", b.Schema(), p.schema))
		}
		for k, i := range p.from {
			bindBuilder(p.d.root.children[i], b.Field(p.to[k]), nodes)
		}
	})
}
