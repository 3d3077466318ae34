package ingest

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestChangeReader(t *testing.T) {
	one := newChangeReader(PipelineConfig{Key: []string{"id"}})
	two := newChangeReader(PipelineConfig{Key: []string{"a", "b"}})
	cdc := newChangeReader(PipelineConfig{Key: []string{"id"}, Mode: ModeCDC})
	lsn := newChangeReader(PipelineConfig{Key: []string{"id"}, Mode: ModeCDC, VersionColumn: "v", VersionFrom: "source.lsn"})
	tsms := newChangeReader(PipelineConfig{Key: []string{"id"}, Mode: ModeCDC, VersionColumn: "v", VersionFrom: "ts_ms"})
	for _, c := range []struct {
		name       string
		r          *changeReader
		key, value string
		null       bool // value is null (a tombstone)
		kind       changeKind
		want, err  string
	}{
		{name: "upsert row", r: one, value: `{"id":1,"x":2}`, kind: changeRow, want: `{"id":1,"x":2}`},
		{name: "tombstone, raw string key", r: one, key: "k-1", null: true, kind: changeDelete, want: `{"id":"k-1"}`},
		{name: "tombstone, JSON number key", r: one, key: "42", null: true, kind: changeDelete, want: `{"id":42}`},
		{name: "tombstone, JSON string key", r: one, key: `"k"`, null: true, kind: changeDelete, want: `{"id":"k"}`},
		{name: "tombstone, key object", r: two, key: `{"a":1,"b":"x"}`, null: true, kind: changeDelete, want: `{"a":1,"b":"x"}`},
		{name: "tombstone, wrapped key object", r: one, key: `{"schema":{"type":"struct"},"payload":{"id":7}}`, null: true, kind: changeDelete, want: `{"id":7}`},
		{name: "tombstone without key", r: one, null: true, kind: changeDelete, err: "no Kafka key"},
		{name: "tombstone, key neither JSON nor UTF-8", r: one, key: "k\xff", null: true, kind: changeDelete, err: "neither JSON nor UTF-8"},
		{name: "tombstone, scalar key for two columns", r: two, key: "7", null: true, kind: changeDelete, err: "needs a JSON object"},
		{name: "cdc create", r: cdc, value: `{"before":null,"after":{"id":1,"s":"a"},"op":"c"}`, kind: changeRow, want: `{"id":1,"s":"a"}`},
		{name: "cdc snapshot read", r: cdc, value: `{"after":{"id":1},"op":"r"}`, kind: changeRow, want: `{"id":1}`},
		{name: "cdc update, wrapped", r: cdc, value: `{"schema":{},"payload":{"before":{"id":1},"after":{"id":1,"s":"b"},"op":"u"}}`, kind: changeRow, want: `{"id":1,"s":"b"}`},
		{name: "cdc delete", r: cdc, value: `{"before":{"id":3,"s":"a"},"after":null,"op":"d"}`, kind: changeDelete, want: `{"id":3,"s":"a"}`},
		{name: "cdc delete without before", r: cdc, key: `{"id":3}`, value: `{"before":null,"op":"d"}`, kind: changeDelete, want: `{"id":3}`},
		{name: "cdc tombstone", r: cdc, key: `{"id":3}`, null: true, kind: changeDelete, want: `{"id":3}`},
		{name: "cdc without op", r: cdc, value: `{"after":{"id":1}}`, err: `no "op"`},
		{name: "cdc truncate", r: cdc, value: `{"op":"t"}`, err: `op "t" is not c, r, u or d`},
		{name: "cdc update without after", r: cdc, value: `{"op":"u","after":null}`, err: `no "after" object`},
		{name: "cdc not JSON", r: cdc, value: `{"op":`, err: "not valid JSON"},
		{name: "cdc not an object", r: cdc, value: `[1]`, err: "not a JSON object"},
		{name: "version_from, create", r: lsn, value: `{"after":{"id":1},"op":"c","source":{"lsn":77}}`, kind: changeRow, want: `{"id":1,"v":77}`},
		{name: "version_from replaces the row's own", r: tsms, value: `{"after":{"id":1,"v":3},"op":"u","ts_ms":1700000000000}`, kind: changeRow,
			want: `{"id":1,"v":1700000000000}`},
		{name: "version_from, wrapped", r: lsn, value: `{"schema":{},"payload":{"after":{"id":1},"op":"r","source":{"lsn":5}}}`, kind: changeRow, want: `{"id":1,"v":5}`},
		{name: "version_from absent", r: lsn, value: `{"after":{"id":1,"v":2},"op":"c","source":{}}`, kind: changeRow, want: `{"id":1,"v":2}`},
		{name: "version_from null", r: lsn, value: `{"after":{"id":1},"op":"c","source":{"lsn":null}}`, kind: changeRow, want: `{"id":1}`},
		{name: "version_from, delete", r: lsn, value: `{"before":{"id":3,"v":1},"op":"d","source":{"lsn":9}}`, kind: changeDelete, want: `{"id":3,"v":9}`},
		{name: "version_from, delete by the Kafka key", r: lsn, key: `{"id":3}`, value: `{"before":null,"op":"d","source":{"lsn":9}}`, kind: changeDelete,
			want: `{"id":3,"v":9}`},
		{name: "version_from, delete by a scalar Kafka key", r: tsms, key: `k-3`, value: `{"op":"d","ts_ms":12}`, kind: changeDelete, want: `{"id":"k-3","v":12}`},
		{name: "version_from, Kafka key with the column", r: lsn, key: `{"id":3,"v":1}`, value: `{"op":"d","source":{"lsn":9}}`, kind: changeDelete,
			want: `{"id":3,"v":9}`},
		{name: "version_from, string version", r: lsn, value: `{"after":{"id":1},"op":"c","source":{"lsn":"0/16B3748"}}`, kind: changeRow,
			want: `{"id":1,"v":"0/16B3748"}`},
		{name: "version_from naming an object", r: newChangeReader(PipelineConfig{Key: []string{"id"}, Mode: ModeCDC, VersionColumn: "v", VersionFrom: "after"}),
			value: `{"after":{"id":1},"op":"c"}`, kind: changeRow, want: `{"id":1}`},
		{name: "version_from, tombstone", r: lsn, key: `{"id":3}`, null: true, kind: changeDelete, want: `{"id":3}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var key, value []byte
			if c.key != "" {
				key = []byte(c.key)
			}
			if !c.null {
				value = []byte(c.value)
			}
			kind, obj, err := c.r.read(key, value)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if kind != c.kind || string(obj) != c.want {
				t.Fatalf("got %v %s, want %v %s", kind, obj, c.kind, c.want)
			}
		})
	}
}

// FuzzChangeReader: whatever the key and value, the reader returns an
// error, the value itself (an upsert row, for the decoder to judge), or a
// JSON object, and never panics, with or without version_from.
func FuzzChangeReader(f *testing.F) {
	f.Add([]byte("k"), []byte(`{"op":"u","after":{"id":1}}`), false, true)
	f.Add([]byte(`{"schema":{},"payload":{"id":1}}`), []byte(nil), true, false)
	f.Add([]byte(`"x"`), []byte(`{"payload":{"op":"d","before":null}}`), false, true)
	f.Add([]byte(`{"id":2}`), []byte(`{"op":"d","source":{"lsn":4}}`), false, true)
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone, cdc bool) {
		cfg := PipelineConfig{Key: []string{"id"}}
		if cdc {
			cfg.Mode = ModeCDC
			// Half the inputs stamp a version from the envelope.
			if len(value)%2 == 0 {
				cfg.VersionColumn, cfg.VersionFrom = "v", "source.lsn"
			}
		}
		if tombstone {
			value = nil
		} else if value == nil {
			value = []byte{}
		}
		kind, obj, err := newChangeReader(cfg).read(key, value)
		if err != nil || (!cdc && kind == changeRow && string(obj) == string(value)) {
			return
		}
		var m map[string]any
		if jerr := json.Unmarshal(obj, &m); jerr != nil {
			t.Fatalf("read(%q, %q) = %q, not a JSON object: %v", key, value, obj, jerr)
		}
	})
}
