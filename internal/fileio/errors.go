package fileio

import "errors"

// ErrInvalidFile marks a data file that cannot be produced from the rows it
// was given: a batch that does not match the table's schema, rows Parquet
// cannot encode, statistics that cannot be built. Writing the same rows again
// fails the same way, so retrying cannot help. Failures of the object store
// are not marked: they may pass.
var ErrInvalidFile = errors.New("fileio: invalid data file")
