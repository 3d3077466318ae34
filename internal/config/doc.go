// Package config reads floe's configuration: a YAML file over built-in
// defaults, then FLOE_* environment variables, then flags. Validate reports
// every bad field at once, each as a FieldError naming the field's path
// (pipelines[0].commit_interval) and what is allowed there.
// floe.example.yaml at the repository root documents every field.
package config
