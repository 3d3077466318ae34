package ingest

import (
	"testing"
	"unicode/utf8"
)

// A dead-letter reason quotes the record's bytes; whatever they are, the
// reason written to the table's string column is valid UTF-8, with the
// invalid bytes escaped and everything else kept.
func TestValidUTF8(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                          "plain",
		"héllo, 世界":                      "héllo, 世界",
		"got \"\xff\xfe\"":               "got \"\\xff\\xfe\"",
		"2026-11-29\xff and é":           "2026-11-29\\xff and é",
		"cut rune \xe4\xb8":              "cut rune \\xe4\\xb8",
		`already escaped \x41 stays put`: `already escaped \x41 stays put`,
	} {
		got := validUTF8(in)
		if got != want {
			t.Errorf("validUTF8(%q) = %q, want %q", in, got, want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("validUTF8(%q) = %q is not valid UTF-8", in, got)
		}
	}
}
