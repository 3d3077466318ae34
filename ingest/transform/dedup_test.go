package transform_test

import (
	"strings"
	"testing"
	"time"

	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/ingest/transform/dedup"
	"github.com/floelake/floe/internal/conf"
)

// dedupKey compiles a dedup on keys, parses record and returns its key.
func dedupKey(t *testing.T, keys []string, record string) (dedup.Key, error) {
	t.Helper()
	in := inputSchema(t)
	p, err := transform.Compile(transform.Config{Dedup: &transform.DedupConfig{Key: keys, Horizon: conf.Duration(time.Hour)}}, in)
	if err != nil {
		t.Fatalf("compile %v: %v", keys, err)
	}
	dec, r, _ := bind(t, p, in)
	if err := dec.Parse([]byte(record), decode.RecordMeta{}); err != nil {
		t.Fatalf("parse %s: %v", record, err)
	}
	return r.DedupKey()
}

// TestDedupKey: a record's key depends on exactly its key values: equal
// values give equal keys whatever the other columns, different values (a
// null included) different keys; expressions are keys as well as columns.
func TestDedupKey(t *testing.T) {
	key := func(keys []string, record string) dedup.Key {
		k, err := dedupKey(t, keys, record)
		if err != nil {
			t.Fatalf("key of %s: %v", record, err)
		}
		return k
	}
	byID := []string{"id", "country"}
	a := key(byID, `{"id":1,"country":"DE","amount":1}`)
	if b := key(byID, `{"id":1,"country":"DE","amount":2,"qty":3}`); a != b {
		t.Fatalf("other columns changed the key")
	}
	for _, rec := range []string{`{"id":2,"country":"DE"}`, `{"id":1,"country":"FR"}`, `{"id":1}`, `{"id":1,"country":""}`} {
		if key(byID, rec) == a {
			t.Fatalf("%s has the key of id 1, DE", rec)
		}
	}
	if key(byID, `{"id":1}`) != key(byID, `{"id":1,"country":null}`) {
		t.Fatalf("a missing column and a null one differ")
	}
	lower := []string{`country.lowerAscii()`}
	if key(lower, `{"id":1,"country":"DE"}`) != key(lower, `{"id":2,"country":"de"}`) {
		t.Fatalf("an expression key did not fold the case")
	}
	ts := []string{`ts`, `qty`}
	if key(ts, `{"id":1,"ts":"2026-01-02T03:04:05Z","qty":1}`) == key(ts, `{"id":1,"ts":"2026-01-02T03:04:06Z","qty":1}`) {
		t.Fatalf("timestamps a second apart share a key")
	}
}

// TestDedupKeyFailure: a key expression that fails on a record is a dead
// letter naming the expression.
func TestDedupKeyFailure(t *testing.T) {
	_, err := dedupKey(t, []string{"id", "100 / qty"}, `{"id":1,"qty":0}`)
	de, ok := err.(*decode.DecodeError)
	if !ok {
		t.Fatalf("error %T %v, want a dead letter", err, err)
	}
	if !strings.Contains(de.Reason, "dedup.key[1]") || !strings.Contains(de.Reason, "division by zero") {
		t.Fatalf("reason %q does not name the expression and the failure", de.Reason)
	}
}

// TestDedupConfigErrors: every problem of a dedup section is reported
// with its field.
func TestDedupConfigErrors(t *testing.T) {
	in := inputSchema(t)
	for _, tc := range []struct {
		d    transform.DedupConfig
		want []string
	}{
		{transform.DedupConfig{Key: []string{"id"}}, []string{"dedup.horizon: must be set"}},
		{transform.DedupConfig{Key: []string{"id"}, Horizon: conf.Duration(-time.Second)}, []string{"dedup.horizon: must be set"}},
		{transform.DedupConfig{Key: []string{"id"}, Horizon: conf.Duration(31 * 24 * time.Hour)}, []string{"dedup.horizon: must be at most"}},
		{transform.DedupConfig{Horizon: conf.Duration(time.Hour)}, []string{"dedup.key: must list the key", "id, country"}},
		{transform.DedupConfig{Key: []string{"id", " "}, Horizon: conf.Duration(time.Hour)}, []string{"dedup.key[1]: must not be empty"}},
		{transform.DedupConfig{Key: []string{"nosuch"}, Horizon: conf.Duration(time.Hour)}, []string{"dedup.key[0]:", "nosuch"}},
		{transform.DedupConfig{Key: []string{"id", "[id, qty]"}, Horizon: conf.Duration(time.Hour)}, []string{"dedup.key[1]: a key value must be", "list"}},
	} {
		_, err := transform.Compile(transform.Config{Dedup: &tc.d}, in)
		if err == nil {
			t.Fatalf("%+v compiled", tc.d)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q does not say %q", tc.d, err, w)
			}
		}
	}
}

// FuzzDedupKey: whatever the key expressions and the record, compiling
// either fails with a config error or gives a program whose key is the
// same on every evaluation of a record, or a dead letter.
func FuzzDedupKey(f *testing.F) {
	f.Add("id", "country", `{"id":1,"country":"DE"}`)
	f.Add("ts", "amount * 2.0", `{"id":1,"ts":"2026-01-02T03:04:05Z","amount":1.5}`)
	f.Add("100 / qty", "", `{"id":1,"qty":0}`)
	f.Add("dyn(tags)", "null", `{"id":1,"tags":["a"]}`)
	f.Add("price", "b'x'", `{"id":1,"price":"1.25"}`)
	in := inputSchema(f)
	f.Fuzz(func(t *testing.T, k1, k2, record string) {
		keys := []string{k1}
		if k2 != "" {
			keys = append(keys, k2)
		}
		p, err := transform.Compile(transform.Config{Dedup: &transform.DedupConfig{Key: keys, Horizon: conf.Duration(time.Hour)}}, in)
		if err != nil {
			return
		}
		dec, r, _ := bind(t, p, in)
		if dec.Parse([]byte(record), decode.RecordMeta{}) != nil {
			return
		}
		a, err := r.DedupKey()
		if err != nil {
			if _, ok := err.(*decode.DecodeError); !ok {
				t.Fatalf("key error %T %v is not a dead letter", err, err)
			}
			return
		}
		if b, err := r.DedupKey(); err != nil || a != b {
			t.Fatalf("the key changed between two evaluations: %x, %x (%v)", a, b, err)
		}
	})
}
