// Package conftest checks configuration problems in tests.
package conftest

import (
	"strings"
	"testing"

	"github.com/floelake/floe/internal/conf"
)

// RequireField fails t unless err holds a FieldError for field whose reason
// contains reason, and err's message shows that field's path.
func RequireField(t testing.TB, err error, field, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one for field %q containing %q", field, reason)
	}
	var found []string
	for _, fe := range conf.Fields(err) {
		found = append(found, fe.Field+": "+fe.Reason)
		if fe.Field == field && strings.Contains(fe.Reason, reason) {
			if !strings.Contains(err.Error(), "config: "+field+": ") {
				t.Fatalf("error message %q does not show field %q", err, field)
			}
			return
		}
	}
	t.Fatalf("no error for field %q containing %q; got %q", field, reason, found)
}

// RequireValid fails t with every problem in err.
func RequireValid(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("want valid, got %v", err)
	}
}
