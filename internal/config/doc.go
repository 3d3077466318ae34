// Package config reads floe's configuration: a YAML file over built-in
// defaults, then FLOE_* environment variables, then flags.
// floe.example.yaml at the repository root documents every field.
//
// The package composes; it does not define the components' settings. Each
// component owns its section's type, its defaults and its rules:
// catalog.Config and catalog.StorageConfig (catalog, storage),
// ingest.KafkaConfig and ingest.PipelineConfig (kafka, pipelines[]),
// cluster.Config (cluster). Config puts them under their YAML keys and adds
// what belongs to the process alone (Node, and the Defaults it copies into
// pipelines). The rules live next to the code that relies on them, so a
// component's tests, and a program that embeds it without this package,
// check the same rules floe serve does, and a component never reaches into
// the whole configuration for its own settings.
//
// Validate runs each component's Validate, which names bad fields relative
// to its section, and nests the problems under the section's path
// (commit_interval becomes pipelines[0].commit_interval) with the shared
// mechanics of package conf; then it checks what spans components: at
// least one pipeline, one name per pipeline, one writer per table,
// brokers for the pipelines, no in-memory catalog in a cluster.
// Defaults are checked by the pipelines' rules, and a bad default is
// reported once, under defaults, not again in each pipeline that takes it.
//
// Load and Parse decode the file in two steps so that no problem hides
// another: YAML parses it into a node tree, and a walk of the tree against
// Config, by the yaml tags, sets each field, decoding each single value
// (a string, a number, a duration) with YAML's own rules. A value of the
// wrong type or an unknown key (with the closest known key as a
// suggestion) is a problem of its field and the walk goes on; the walk
// also records where each path is in the file. The environment is applied,
// the configuration validated, and validation problems are placed at their
// field's position, or named by the variable that set the value, or given
// no position for a field that is not in the file. Every problem is
// reported at once, in the order of the file, each a conf.FieldError:
//
//	config: floe.yaml:12:5: pipelines[0].commit_interval: want a duration such as 500ms, 10s or 1m, got "fast"
//	config: floe.yaml:13:5: pipelines[0].comit_interval: unknown field; did you mean commit_interval?
//	config: FLOE_PIPELINES_1_START: pipelines[1].start: must be earliest, latest or an RFC 3339 timestamp, got "soon"
//	config: kafka.brokers: must list at least one host:port
//
// A YAML syntax error stops decoding; it is reported alone, on its line.
package config
