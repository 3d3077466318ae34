// Package conf holds the mechanics every component's configuration shares:
// the YAML value types (Duration, ByteSize) and the way problems are
// reported (FieldError, Problems).
//
// A component owns its configuration type, its defaults and a Validate that
// names bad fields relative to itself (commit_interval, tls.cert_file).
// Whoever composes components into a larger configuration nests their
// problems under the component's path (pipelines[0] + commit_interval =
// pipelines[0].commit_interval), so an operator reads the full path of the
// field in the file, and every problem is reported at once. Whoever reads
// the file then places each problem at its field's position (Pos), or
// names the environment variable the value came from (Env):
//
//	config: floe.yaml:12:5: pipelines[0].commit_interval: want a duration such as 500ms, 10s or 1m, got "fast"
package conf
