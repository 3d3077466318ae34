// Package conftest checks configuration problems in tests.
package conftest

import (
	"strings"
	"testing"

	"github.com/floelake/floe/internal/conf"
)

// RequireField fails t unless err holds a FieldError for field whose reason
// contains reason, and err's message shows that field's path. It returns
// the FieldError.
func RequireField(t testing.TB, err error, field, reason string) *conf.FieldError {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one for field %q containing %q", field, reason)
	}
	var found []string
	for _, fe := range conf.Fields(err) {
		found = append(found, fe.Field+": "+fe.Reason)
		if fe.Field == field && strings.Contains(fe.Reason, reason) {
			if !strings.Contains(fe.Error(), " "+field+": ") || !strings.Contains(err.Error(), fe.Error()) {
				t.Fatalf("error message %q does not show field %q", err, field)
			}
			return fe
		}
	}
	t.Fatalf("no error for field %q containing %q; got %q", field, reason, found)
	return nil
}

// RequireFieldAt is RequireField for a field that is in the file at line
// (0: not in the file, so no position).
func RequireFieldAt(t testing.TB, err error, field string, line int, reason string) *conf.FieldError {
	t.Helper()
	fe := RequireField(t, err, field, reason)
	if fe.Line != line {
		t.Fatalf("%s: at line %d, want %d", fe, fe.Line, line)
	}
	return fe
}

// RequireValid fails t with every problem in err.
func RequireValid(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("want valid, got %v", err)
	}
}
