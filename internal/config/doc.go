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
// mechanics of package conf; then it checks what spans components: one
// name per pipeline, one writer per table, brokers when there are
// pipelines, no in-memory catalog in a cluster. Every problem is reported
// at once, each a conf.FieldError naming the field's path in the file and
// what is allowed there.
package config
