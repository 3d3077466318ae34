package timetravel

import "github.com/apache/arrow-go/v18/arrow"

// Batch is one Arrow record batch of a query's or a changes call's rows.
type Batch = arrow.RecordBatch
