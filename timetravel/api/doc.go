// Package api serves the floe API (proto/floe/v1, and the cluster
// service) over gRPC and HTTP/JSON; docs/api.md is the user's guide.
//
// Server implements the table service over a Backend, which the node
// provides: its tables, loading them, the Kafka ends for lag, and running
// work on a table's writer (Do) for rollback, tags and compaction. Service
// puts the Server (and the cluster service) on two gRPC servers with the
// same interceptors: the public one on node.api.grpc_addr, and an
// in-process one that grpc-gateway's HTTP handler calls (HTTPHandler,
// mounted at /api/v1), so tokens, deadlines and error mapping are written
// once. Query and Changes are served over HTTP by http.go as JSON lines.
//
// Auth checks bearer tokens (read and admin scopes) for every call, the
// node's other routes and the cluster API. Limits (page size, rows, bytes,
// time, concurrent queries) come from Config. errors.go maps error classes
// to gRPC codes and HTTP statuses.
//
// Rollback runs on the table's writer, planned again there; a replay first
// trims the pipeline's dead-letter table to the same offsets (see
// commit.Committer.Rollback and TrimDeadLetters for the rules).
package api
