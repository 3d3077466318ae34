package timetravel_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/timetravel"
)

// metadataJSON is table metadata with the given snapshots (JSON objects),
// snapshot log, refs and current snapshot.
func metadataJSON(t *testing.T, snapshots, log, refs string, current int64) table.Metadata {
	t.Helper()
	cur := ""
	if current != 0 {
		cur = fmt.Sprintf(`"current-snapshot-id": %d,`, current)
	}
	src := fmt.Sprintf(`{
		"format-version": 2,
		"table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1",
		"location": "file:///tmp/t",
		"last-sequence-number": 10,
		"last-updated-ms": 9000,
		"last-column-id": 1,
		"current-schema-id": 0,
		"schemas": [{"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "required": true, "type": "long"}]}],
		"default-spec-id": 0,
		"partition-specs": [{"spec-id": 0, "fields": []}],
		"last-partition-id": 999,
		"default-sort-order-id": 0,
		"sort-orders": [{"order-id": 0, "fields": []}],
		"properties": {},
		%s
		"snapshots": [%s],
		"snapshot-log": [%s],
		"refs": {%s}
	}`, cur, snapshots, log, refs)
	meta, err := table.ParseMetadataBytes([]byte(src))
	require.NoError(t, err)
	return meta
}

func snapJSON(id, parent, ms, seq int64) string {
	p := ""
	if parent != 0 {
		p = fmt.Sprintf(`"parent-snapshot-id": %d,`, parent)
	}
	return fmt.Sprintf(`{"snapshot-id": %d, %s "timestamp-ms": %d, "sequence-number": %d,
		"manifest-list": "file:///tmp/t/m%d.avro", "summary": {"operation": "append"}, "schema-id": 0}`, id, p, ms, seq, id)
}

// resolveMeta has snapshots 1, 2 and 3 on main (at 1 s, 2 s and 3 s),
// and 4 (at 2.5 s) on branch dev; tag v1 is snapshot 1.
func resolveMeta(t *testing.T) table.Metadata {
	return metadataJSON(t,
		strings.Join([]string{snapJSON(1, 0, 1000, 1), snapJSON(2, 1, 2000, 2), snapJSON(3, 2, 3000, 3), snapJSON(4, 2, 2500, 4)}, ","),
		`{"snapshot-id": 1, "timestamp-ms": 1000}, {"snapshot-id": 2, "timestamp-ms": 2000}, {"snapshot-id": 3, "timestamp-ms": 3000}`,
		`"main": {"snapshot-id": 3, "type": "branch"}, "dev": {"snapshot-id": 4, "type": "branch"}, "v1": {"snapshot-id": 1, "type": "tag"}`,
		3)
}

func ms(n int64) time.Time { return time.UnixMilli(n) }

func TestResolve(t *testing.T) {
	meta := resolveMeta(t)
	for _, tc := range []struct {
		at   timetravel.AsOf
		want int64
	}{
		{timetravel.AsOf{}, 3},
		{timetravel.AsOf{SnapshotID: 2}, 2},
		{timetravel.AsOf{SnapshotID: 4}, 4},
		{timetravel.AsOf{Time: ms(1000)}, 1},
		{timetravel.AsOf{Time: ms(1999)}, 1},
		{timetravel.AsOf{Time: ms(2000)}, 2},
		{timetravel.AsOf{Time: ms(2600)}, 2}, // dev's snapshot 4 was never main's
		{timetravel.AsOf{Time: ms(2999).Add(999 * time.Microsecond)}, 2},
		{timetravel.AsOf{Time: ms(3000)}, 3},
		{timetravel.AsOf{Time: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}, 3},
		{timetravel.AsOf{Tag: "v1"}, 1},
		{timetravel.AsOf{Branch: "dev"}, 4},
		{timetravel.AsOf{Branch: "main"}, 3},
	} {
		s, err := timetravel.Resolve(meta, tc.at)
		require.NoError(t, err, "%v", tc.at)
		require.Equal(t, tc.want, s.SnapshotID, "%v", tc.at)
	}
}

func TestResolveErrors(t *testing.T) {
	meta := resolveMeta(t)
	for _, tc := range []struct {
		at    timetravel.AsOf
		class error
		msg   string
	}{
		{timetravel.AsOf{SnapshotID: 1, Tag: "v1"}, timetravel.ErrInvalid,
			`read as of one of a snapshot id, a time, a tag or a branch, not several (got snapshot 1, tag "v1")`},
		{timetravel.AsOf{Time: ms(5), Branch: "dev"}, timetravel.ErrInvalid,
			`read as of one of a snapshot id, a time, a tag or a branch, not several (got time 1970-01-01T00:00:00.005Z, branch "dev")`},
		{timetravel.AsOf{SnapshotID: 99}, timetravel.ErrNotFound,
			`the table has no snapshot 99 (its snapshots, newest first, are 3, 4, 2, 1)`},
		{timetravel.AsOf{Time: ms(999)}, timetravel.ErrNotFound,
			`there is no snapshot as of 1970-01-01T00:00:00.999Z: the table's first snapshot, 1, was committed at 1970-01-01T00:00:01.000Z`},
		{timetravel.AsOf{Tag: "v2"}, timetravel.ErrNotFound, `the table has no tag "v2" (its tags are "v1")`},
		{timetravel.AsOf{Branch: "prod"}, timetravel.ErrNotFound, `the table has no branch "prod" (its branches are "dev", "main")`},
		{timetravel.AsOf{Tag: "dev"}, timetravel.ErrInvalid, `"dev" is a branch, not a tag; read it as a branch`},
		{timetravel.AsOf{Branch: "v1"}, timetravel.ErrInvalid, `"v1" is a tag, not a branch; read it as a tag`},
	} {
		s, err := timetravel.Resolve(meta, tc.at)
		require.Nil(t, s)
		require.ErrorIs(t, err, tc.class, "%v", tc.at)
		require.EqualError(t, err, tc.msg)
	}
}

func TestResolveEdges(t *testing.T) {
	t.Run("no snapshots", func(t *testing.T) {
		meta := metadataJSON(t, "", "", "", 0)
		s, err := timetravel.Resolve(meta, timetravel.AsOf{})
		require.NoError(t, err)
		require.Nil(t, s)
		for _, at := range []timetravel.AsOf{{SnapshotID: 1}, {Time: ms(1)}, {Tag: "v1"}, {Branch: "main"}} {
			_, err := timetravel.Resolve(meta, at)
			require.ErrorIs(t, err, timetravel.ErrNotFound)
			require.ErrorContains(t, err, "the table has no snapshots yet")
		}
		_, err = timetravel.Resolve(meta, timetravel.AsOf{Tag: "a", Branch: "b"})
		require.ErrorIs(t, err, timetravel.ErrInvalid)
	})
	t.Run("no log", func(t *testing.T) {
		// Without a snapshot log, time travel follows the current
		// snapshot's ancestry.
		meta := metadataJSON(t,
			strings.Join([]string{snapJSON(1, 0, 1000, 1), snapJSON(2, 1, 2000, 2), snapJSON(3, 2, 3000, 3)}, ","),
			"", `"main": {"snapshot-id": 3, "type": "branch"}`, 3)
		for at, want := range map[int64]int64{1500: 1, 2000: 2, 9000: 3} {
			s, err := timetravel.Resolve(meta, timetravel.AsOf{Time: ms(at)})
			require.NoError(t, err)
			require.Equal(t, want, s.SnapshotID)
		}
		_, err := timetravel.Resolve(meta, timetravel.AsOf{Time: ms(10)})
		require.ErrorIs(t, err, timetravel.ErrNotFound)
		_, err = timetravel.Resolve(meta, timetravel.AsOf{Tag: "v1"})
		require.EqualError(t, err, `the table has no tag "v1" (it has no tags)`)
	})
	t.Run("expired and skewed", func(t *testing.T) {
		// Snapshot 7 has expired but is in the log; snapshot 2's clock
		// was behind snapshot 1's.
		meta := metadataJSON(t,
			strings.Join([]string{snapJSON(1, 0, 1000, 1), snapJSON(2, 1, 900, 2)}, ","),
			`{"snapshot-id": 7, "timestamp-ms": 500}, {"snapshot-id": 1, "timestamp-ms": 1000}, {"snapshot-id": 2, "timestamp-ms": 900}`,
			`"main": {"snapshot-id": 2, "type": "branch"}`, 2)
		_, err := timetravel.Resolve(meta, timetravel.AsOf{Time: ms(600)})
		require.ErrorIs(t, err, timetravel.ErrNotFound)
		require.ErrorContains(t, err, "7, has expired")
		s, err := timetravel.Resolve(meta, timetravel.AsOf{Time: ms(950)})
		require.NoError(t, err)
		require.Equal(t, int64(2), s.SnapshotID)
		s, err = timetravel.Resolve(meta, timetravel.AsOf{Time: ms(1000)})
		require.NoError(t, err)
		require.Equal(t, int64(1), s.SnapshotID)
		_, err = timetravel.Resolve(meta, timetravel.AsOf{Time: ms(499)})
		require.ErrorContains(t, err, "the table's first snapshot, 7, was committed at 1970-01-01T00:00:00.500Z")
	})
	t.Run("many tags", func(t *testing.T) {
		refs := []string{`"main": {"snapshot-id": 1, "type": "branch"}`}
		for i := range 12 {
			refs = append(refs, fmt.Sprintf(`"t%02d": {"snapshot-id": 1, "type": "tag"}`, i))
		}
		meta := metadataJSON(t, snapJSON(1, 0, 1000, 1), `{"snapshot-id": 1, "timestamp-ms": 1000}`, strings.Join(refs, ","), 1)
		_, err := timetravel.Resolve(meta, timetravel.AsOf{Tag: "x"})
		require.EqualError(t, err, `the table has no tag "x" (its tags are "t00", "t01", "t02", "t03", "t04", "t05", "t06", "t07", "t08", "t09" and 2 more)`)
	})
}
