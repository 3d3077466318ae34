package schema

import (
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// UnpartitionedSpec returns the table's unpartitioned partition spec: its
// default spec when that is unpartitioned, else the first unpartitioned spec
// among its specs. ok is false when the table has none.
//
// Files written under an unpartitioned spec apply to the whole table, so
// an equality-delete file, whose older rows may sit in any partition, is
// written under it.
func UnpartitionedSpec(meta table.Metadata) (spec iceberg.PartitionSpec, ok bool) {
	if def := meta.PartitionSpec(); def.IsUnpartitioned() {
		return def, true
	}
	for _, s := range meta.PartitionSpecs() {
		if s.IsUnpartitioned() {
			return s, true
		}
	}
	return iceberg.PartitionSpec{}, false
}
