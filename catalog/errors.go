package catalog

import "fmt"

// UnreachableError is a catalog that could not be reached or refused the
// connection (a Postgres server that is down, a REST catalog that does not
// answer): a dependency that can come back, unlike a bad configuration.
// Callers retry it with a backoff, not ready meanwhile.
type UnreachableError struct {
	// URI is the catalog's address, credentials redacted.
	URI string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("catalog: %s is unreachable: %v", e.URI, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }
