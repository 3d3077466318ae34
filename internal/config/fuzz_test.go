package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/floelake/floe/internal/conf"
)

// FuzzParseConfig: any input gives either a valid configuration or an
// error made only of field errors, each naming a path and, when the field
// is in the file, its line, and of document errors (syntax); never a
// panic. What decodes without a problem decodes to what YAML itself makes
// of it.
func FuzzParseConfig(f *testing.F) {
	example, err := os.ReadFile("../../floe.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, s := range []string{
		onePipeline,
		onePipeline + "    commit_interval: \"fast\"\n",
		onePipeline + "    commit_interval: 5\n",
		onePipeline + "    commit_interval: 1 second\n",
		onePipeline + "    partition_by: day(ts)\n",
		onePipeline + "    format: {type: json}\n",
		onePipeline + "    workers: many\n",
		onePipeline + "    workers: 1.5\n",
		onePipeline + "    comit_interval: 1s\n",
		onePipeline + "    table: twice\n",
		onePipeline + "    <<: {workers: 2}\n",
		onePipeline + "    key: [id]\n",
		onePipeline + "    key: [id, id, _kafka_offset]\n    schema: [{name: id, type: long, required: true}]\n",
		onePipeline + "    key: [x]\n    format_version: 3\n    schema: [{name: x, type: double}]\n",
		onePipeline + "    format_version: 1\n    table_properties: {format-version: \"3\"}\n",
		"kafka: {brokers: [a:1]}\ndefaults: {format_version: 4}\npipelines:\n  - {topics: [a], table: a.a, key: [k], schema: [{name: k, type: string, required: true}]}\n",
		"kafka: {brokers: [a:1]}\ndefaults: {start: yesterday}\npipelines:\n  - {topics: [a], table: a.a}\n  - {topics: [b], table: a.b}\n",
		"kafka: {brokers: [a:1]}\n",
		"pipelines: []\n",
		"pipelines: [clicks]\n",
		"kafka: {brokers: [a:1]}\npipelines:\n  - &p {topics: [t], table: a.b}\n  - <<: *p\n    table: a.c\n",
		"kafka: {brokers: [a:1]}\npipelines:\n  - &p {topics: [t], table: a.b, <<: *p}\n",
		"a: b: c\n",
		"hello\n",
		"~: 1\n",
		"[a]: 1\n",
		"",
		"0: {",
		"#0\npipelines:\n  -",
		"\r0",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		// A walk that does not end would stall the fuzzer without a report.
		watchdog := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("Parse has not returned after 10s on %q", raw)) })
		defer watchdog.Stop()
		cfg, err := Parse(raw, nil)
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("Parse accepted a configuration Validate rejects: %v", verr)
			}
		} else {
			checkProblems(t, raw, err)
		}
		checkDecodesAsYAML(t, raw)
	})
}

// checkProblems checks that every problem in err names its field and
// places it in the file when the field is there.
func checkProblems(t *testing.T, raw []byte, err error) {
	msg := err.Error()
	if strings.Contains(msg, "not found in type") || strings.Contains(msg, "cannot unmarshal") {
		t.Fatalf("a message names Go types: %s", msg)
	}
	got := Default()
	doc, derr := decodeDocument("", raw, &got)
	lines := lastLine(raw) + 1
	for _, e := range leaves(err) {
		var fe *conf.FieldError
		var pe *posError
		switch {
		case errors.As(e, &fe):
			if fe.Field == "" || fe.Reason == "" {
				t.Fatalf("a field error without a field or a reason: %#v", fe)
			}
			if !strings.Contains(msg, fe.Error()) {
				t.Fatalf("the message %q does not show %q", msg, fe.Error())
			}
			if fe.Line > lines {
				t.Fatalf("%v: line %d is past the end of the file (%d lines)", fe, fe.Line, lines)
			}
			if derr == nil && fe.Env == "" && fe.Line == 0 {
				if _, in := doc.position(fe.Field); in {
					t.Fatalf("%v: the field is in the file, but has no line", fe)
				}
			}
		case errors.As(e, &pe):
			if pe.Reason == "" || pe.Line > lines {
				t.Fatalf("a document error without a reason or past the end: %#v", pe)
			}
		default:
			t.Fatalf("a problem that is neither a field's nor the document's: %T %v", e, e)
		}
	}
}

// checkDecodesAsYAML: when the walk finds no problem in a document, YAML
// decodes it strictly too, to the same configuration.
func checkDecodesAsYAML(t *testing.T, raw []byte) {
	got := Default()
	doc, err := decodeDocument("", raw, &got)
	if err != nil || len(doc.errs) > 0 {
		return
	}
	want := Default()
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&want); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("the walk accepts what YAML rejects: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the walk decodes\n%#v\nYAML decodes\n%#v", got, want)
	}
}
