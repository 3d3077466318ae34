package ingest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/iceberg-go"
	"github.com/valyala/fastjson"

	"github.com/floelake/floe/ingest/registry"
)

// Changes to a keyed table. A keyed pipeline's record is either the key's
// new row or the deletion of a key:
//
//   - upsert mode: the record's value is the row. A record with a null
//     value (a Kafka tombstone) deletes the key its Kafka key names.
//   - cdc mode: the value is a Debezium change event,
//     {"before": {...}, "after": {...}, "op": "c"|"r"|"u"|"d", ...}, or the
//     same wrapped as {"schema": {...}, "payload": {...}} by a JSON
//     converter with schemas enabled. c (create), r (snapshot read) and u
//     (update) make "after" the row; d deletes the key of "before" (of the
//     Kafka key when "before" is null). Tombstones delete as in upsert.
//     With version_from, the event's field it names (source.lsn, ts_ms)
//     is written into the version column of the row or the deletion.
//
// A deletion is a row of the key columns (and the Kafka partition and
// offset that order it among the key's rows, and the version column, if
// the pipeline has one), written to a file of deleted keys beside the
// segment's data files. The table writer never commits
// that file: it turns each deleted key into a position delete of the key's
// row (see package upsert).
//
// A Kafka key names a key as a JSON object of the key columns (Debezium's
// key format, with or without its schema wrapper) or, for a single key
// column, as the column's value: a JSON number or string, or the key's
// bytes as a string. With format avro, a key in the schema registry's wire
// format (Debezium's Avro key) is read as the JSON its Avro value stands
// for: a record of the key columns, or the single key column's value.

// framedKey reports whether a Kafka key is in the schema registry's wire
// format: the magic byte 0, a schema id and a payload. A JSON key starts
// with a printable character; a plain key that starts with a zero byte
// would be unusual.
func framedKey(key []byte) bool {
	return len(key) > registry.HeaderSize && key[0] == 0
}

// changeKind is what a keyed pipeline's record does.
type changeKind uint8

const (
	changeRow changeKind = iota
	changeDelete
	// changeFiltered: the pipeline's transform filter leaves the record
	// out; its offset is covered, no row is written.
	changeFiltered
	// changeDuplicate: the pipeline's transform dedup leaves the record
	// out; its offset is covered, no row is written.
	changeDuplicate
)

// dropped reports whether a record of kind k writes no row: filtered out,
// or a duplicate.
func (k changeKind) dropped() bool { return k == changeFiltered || k == changeDuplicate }

// changeReader splits a keyed pipeline's records into rows and deletions.
// It is used by one worker.
type changeReader struct {
	cdc  bool
	keys []string
	// versionFrom is the path of the change event's field that becomes
	// the row's versionColumn (version_from); nil: none.
	versionFrom   []string
	versionColumn string
	// framed rewrites a Kafka key in the schema registry's wire format
	// as JSON (format: avro); nil: such a key is refused.
	framed func(key []byte) ([]byte, error)
	p      fastjson.Parser
	kp     fastjson.Parser // re-parses a Kafka key object to stamp
	arena  fastjson.Arena
	buf    []byte
}

func newChangeReader(cfg PipelineConfig) *changeReader {
	c := &changeReader{cdc: cfg.Mode == ModeCDC, keys: slices.Clone(cfg.Key), versionColumn: cfg.VersionColumn}
	if cfg.VersionFrom != "" {
		c.versionFrom = strings.Split(cfg.VersionFrom, ".")
	}
	return c
}

// stamp sets the version column of obj (the event's after or before
// image) to the event's version_from field, when both exist.
func (c *changeReader) stamp(event, obj *fastjson.Value) {
	if v := c.version(event); v != nil {
		obj.Set(c.versionColumn, v)
	}
}

// version returns the event's version_from field: a number or a string
// (an object, such as the whole "after", is no version), or nil.
func (c *changeReader) version(event *fastjson.Value) *fastjson.Value {
	if c.versionFrom == nil {
		return nil
	}
	v := event.Get(c.versionFrom...)
	if v == nil || (v.Type() != fastjson.TypeNumber && v.Type() != fastjson.TypeString) {
		return nil
	}
	return v
}

// read returns what the record with this key and value does, and the JSON
// object to decode: the row, or for a deletion an object holding the key
// columns. The object may alias value or the reader's buffer until the
// next call. An error is the record's dead-letter reason.
func (c *changeReader) read(key, value []byte) (changeKind, []byte, error) {
	if value == nil {
		obj, err := c.keyObject(key)
		if err != nil {
			return changeDelete, nil, fmt.Errorf("a tombstone (null value) deletes the key its Kafka key names: %w", err)
		}
		return changeDelete, obj, nil
	}
	if !c.cdc {
		return changeRow, value, nil
	}
	if !json.Valid(value) {
		return changeRow, nil, fmt.Errorf("change event is not valid JSON")
	}
	v, err := c.p.ParseBytes(value)
	if err != nil {
		return changeRow, nil, fmt.Errorf("change event is not valid JSON: %v", err)
	}
	v = unwrapPayload(v)
	if v.Type() != fastjson.TypeObject {
		return changeRow, nil, fmt.Errorf("change event is not a JSON object")
	}
	op := string(v.GetStringBytes("op"))
	switch op {
	case "c", "r", "u":
		after := v.Get("after")
		if after == nil || after.Type() != fastjson.TypeObject {
			return changeRow, nil, fmt.Errorf("change event with op %q has no \"after\" object", op)
		}
		c.stamp(v, after)
		c.buf = after.MarshalTo(c.buf[:0])
		return changeRow, c.buf, nil
	case "d":
		before := v.Get("before")
		if before == nil || before.Type() == fastjson.TypeNull {
			// keyObject parses the key with c.p, which v belongs to: the
			// version is copied out first.
			c.arena.Reset()
			var ver *fastjson.Value
			if x := c.version(v); x != nil && x.Type() == fastjson.TypeNumber {
				ver = c.arena.NewNumberString(string(x.MarshalTo(nil)))
			} else if x != nil {
				ver = c.arena.NewStringBytes(x.GetStringBytes())
			}
			obj, err := c.keyObject(key)
			if err != nil {
				return changeDelete, nil, fmt.Errorf("delete event without \"before\": the Kafka key must name the key: %w", err)
			}
			if ver == nil {
				return changeDelete, obj, nil
			}
			// The key object, stamped with the deletion's version.
			kv, err := c.kp.ParseBytes(obj)
			if err != nil {
				return changeDelete, nil, err
			}
			kv.Set(c.versionColumn, ver)
			c.buf = kv.MarshalTo(c.buf[:0])
			return changeDelete, c.buf, nil
		}
		if before.Type() != fastjson.TypeObject {
			return changeDelete, nil, fmt.Errorf("delete event's \"before\" is not an object")
		}
		// With version_from, the deletion's version replaces the one the
		// row had.
		c.stamp(v, before)
		c.buf = before.MarshalTo(c.buf[:0])
		return changeDelete, c.buf, nil
	case "":
		return changeRow, nil, fmt.Errorf("change event has no \"op\" (mode: cdc reads Debezium change events)")
	default:
		return changeRow, nil, fmt.Errorf("change event op %q is not c, r, u or d", op)
	}
}

// unwrapPayload returns the payload of a {"schema": ..., "payload": ...}
// wrapper, else v.
func unwrapPayload(v *fastjson.Value) *fastjson.Value {
	if v.Type() != fastjson.TypeObject || v.Get("schema") == nil {
		return v
	}
	if p := v.Get("payload"); p != nil {
		return p
	}
	return v
}

// keyObject returns the JSON object of the key columns a Kafka key names.
func (c *changeReader) keyObject(key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, fmt.Errorf("the record has no Kafka key")
	}
	if framedKey(key) {
		if c.framed == nil {
			return nil, fmt.Errorf("the Kafka key is in the schema registry wire format, which floe reads for format avro and protobuf only; " +
				"name the key with a JSON or plain Kafka key")
		}
		var err error
		if key, err = c.framed(key); err != nil {
			return nil, fmt.Errorf("the Kafka key: %w", err)
		}
	}
	if json.Valid(key) {
		v, err := c.p.ParseBytes(key)
		if err != nil {
			return nil, err
		}
		v = unwrapPayload(v)
		switch v.Type() {
		case fastjson.TypeObject:
			c.buf = v.MarshalTo(c.buf[:0])
			return c.buf, nil
		case fastjson.TypeNumber, fastjson.TypeString:
			if len(c.keys) != 1 {
				return nil, fmt.Errorf("a key of %d columns needs a JSON object as Kafka key, got %s", len(c.keys), v.Type())
			}
			c.buf = append(c.buf[:0], '{')
			c.buf = strconv.AppendQuote(c.buf, c.keys[0])
			c.buf = append(c.buf, ':')
			c.buf = v.MarshalTo(c.buf)
			c.buf = append(c.buf, '}')
			return c.buf, nil
		}
	}
	if len(c.keys) != 1 {
		return nil, fmt.Errorf("a key of %d columns needs a JSON object as Kafka key", len(c.keys))
	}
	// The key's bytes are the key column's value, as a string: one that
	// is not UTF-8 cannot be a string column's value (JSON would replace
	// its bad bytes, naming another key).
	if !utf8.Valid(key) {
		return nil, fmt.Errorf("the Kafka key is neither JSON nor UTF-8 text")
	}
	s, err := json.Marshal(string(key))
	if err != nil {
		return nil, err
	}
	c.buf = append(c.buf[:0], '{')
	c.buf = strconv.AppendQuote(c.buf, c.keys[0])
	c.buf = append(c.buf, ':')
	c.buf = append(c.buf, s...)
	c.buf = append(c.buf, '}')
	return c.buf, nil
}

// keySchema is the schema of a keyed table's files of deleted keys: its key
// columns, the Kafka columns that order them and the version column, if
// any (a deletion's version), with the table's field ids.
func keySchema(sch *iceberg.Schema, keys []string, version string) (*iceberg.Schema, []int, error) {
	var fields []iceberg.NestedField
	var ids []int
	for _, k := range keys {
		f, ok := sch.FindFieldByName(k)
		if !ok {
			return nil, nil, fmt.Errorf("ingest: the table has no key column %q", k)
		}
		fields = append(fields, f)
		ids = append(ids, f.ID)
	}
	for _, name := range KeyOrderColumns {
		f, ok := sch.FindFieldByName(name)
		if !ok {
			return nil, nil, fmt.Errorf("ingest: the table has no column %s, which a keyed table orders its rows by", name)
		}
		fields = append(fields, f)
	}
	if version != "" {
		f, ok := sch.FindFieldByName(version)
		if !ok {
			return nil, nil, fmt.Errorf("ingest: the table has no version column %q", version)
		}
		f.Required = false
		fields = append(fields, f)
	}
	return iceberg.NewSchemaWithIdentifiers(0, ids, fields...), ids, nil
}
