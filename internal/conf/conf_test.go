package conf

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestJoin(t *testing.T) {
	for _, c := range []struct{ prefix, field, want string }{
		{"kafka", "brokers[0]", "kafka.brokers[0]"},
		{"pipelines[0]", "commit_interval", "pipelines[0].commit_interval"},
		{"cluster", "tls.ca_file", "cluster.tls.ca_file"},
		{"kafka.brokers", "[2]", "kafka.brokers[2]"},
		{"", "node.log_level", "node.log_level"},
		{"kafka.tls", "", "kafka.tls"},
	} {
		require.Equal(t, c.want, Join(c.prefix, c.field), "%q + %q", c.prefix, c.field)
	}
}

func TestProblemsNestKeepsEveryProblem(t *testing.T) {
	var inner Problems
	inner.Addf("commit_interval", "must be at least %s", "100ms")
	inner.Addf("kafka_metadata[1]", "unknown")

	var outer Problems
	outer.Addf("node.log_level", "loud")
	outer.Nest("pipelines[3]", inner.Err())
	outer.Nest("catalog", errors.New("cannot open"))
	outer.Nest("kafka", nil)
	err := outer.Err()

	var got []string
	for _, fe := range Fields(err) {
		got = append(got, fe.Field+": "+fe.Reason)
	}
	require.Equal(t, []string{
		"node.log_level: loud",
		"pipelines[3].commit_interval: must be at least 100ms",
		"pipelines[3].kafka_metadata[1]: unknown",
		"catalog: cannot open",
	}, got)
	require.Contains(t, err.Error(), "config: pipelines[3].commit_interval: must be at least 100ms")

	// Nesting copies: the component's own error is left as it was.
	require.Equal(t, "commit_interval", Fields(inner.Err())[0].Field)
}

func TestNestNil(t *testing.T) {
	require.NoError(t, Nest("kafka", nil))
	var p Problems
	require.NoError(t, p.Err())
}

func TestFieldsUnwraps(t *testing.T) {
	err := fmt.Errorf("load: %w", &FieldError{Field: "a.b", Reason: "bad"})
	require.Len(t, Fields(errors.Join(err, errors.New("other"))), 1)
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"128MiB": 128 << 20, "64MB": 64e6, "1g": 1 << 30, "1048576": 1 << 20, "512k": 512 << 10} {
		got, err := ParseByteSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	_, err := ParseByteSize("lots")
	require.ErrorContains(t, err, "want a size")

	var s ByteSize
	require.NoError(t, s.UnmarshalText([]byte("2MiB")))
	require.Equal(t, ByteSize(2<<20), s)
}

func TestDuration(t *testing.T) {
	var d Duration
	require.NoError(t, d.UnmarshalText([]byte("1m30s")))
	require.Equal(t, "1m30s", d.String())
	require.ErrorContains(t, d.UnmarshalText([]byte("soon")), "want a duration")
}

func TestFieldErrorNamesWhere(t *testing.T) {
	for _, c := range []struct {
		err  FieldError
		want string
	}{
		{FieldError{Field: "pipelines[0].commit_interval", Reason: "bad", Pos: Pos{File: "floe.yaml", Line: 12, Column: 5}},
			"config: floe.yaml:12:5: pipelines[0].commit_interval: bad"},
		{FieldError{Field: "kafka", Reason: "bad", Pos: Pos{Line: 3, Column: 1}}, "config: 3:1: kafka: bad"},
		{FieldError{Field: "kafka", Reason: "bad", Pos: Pos{File: "f.yaml", Line: 3}}, "config: f.yaml:3: kafka: bad"},
		{FieldError{Field: "pipelines[0].start", Reason: "bad", Env: "FLOE_PIPELINES_0_START"},
			"config: FLOE_PIPELINES_0_START: pipelines[0].start: bad"},
		{FieldError{Field: "kafka.brokers", Reason: "bad", Pos: Pos{File: "f.yaml"}}, "config: kafka.brokers: bad"},
	} {
		require.Equal(t, c.want, c.err.Error())
	}
}

func TestNestKeepsPosition(t *testing.T) {
	err := Nest("pipelines[1]", &FieldError{Field: "start", Reason: "bad", Pos: Pos{Line: 7, Column: 3}, Env: "X"})
	fe := Fields(err)[0]
	require.Equal(t, "pipelines[1].start", fe.Field)
	require.Equal(t, 7, fe.Line)
	require.Equal(t, "X", fe.Env)
}

func TestByteSizeOverflow(t *testing.T) {
	_, err := ParseByteSize("9999999999999999999")
	require.ErrorContains(t, err, "want a size")
	_, err = ParseByteSize("99999999999GiB")
	require.ErrorContains(t, err, "want a size")
}
