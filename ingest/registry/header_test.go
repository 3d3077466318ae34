package registry_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/floelake/floe/ingest/registry"
)

func TestHeader(t *testing.T) {
	id, rest, err := registry.Header([]byte{0, 0, 0, 1, 2, 'a', 'b'})
	require.NoError(t, err)
	require.Equal(t, uint32(258), id)
	require.Equal(t, []byte("ab"), rest)

	id, rest, err = registry.Header([]byte{0, 0xff, 0xff, 0xff, 0xff})
	require.NoError(t, err)
	require.Equal(t, uint32(0xffffffff), id)
	require.Empty(t, rest)
}

func TestHeaderNotFramed(t *testing.T) {
	for _, c := range []struct {
		name  string
		value []byte
		want  string
	}{
		{"nil", nil, "the value is empty"},
		{"empty", []byte{}, "the value is empty"},
		{"magic only", []byte{0}, "the value is 1 bytes, too short"},
		{"4 bytes", []byte{0, 0, 0, 1}, "the value is 4 bytes, too short"},
		{"json object", []byte(`{"id":1}`), `its first byte is 0x7b '{'): is the topic JSON? set format: json`},
		{"json array", []byte(`[1,2]`), "is the topic JSON? set format: json"},
		{"json after spaces", []byte("  \n{}"), "is the topic JSON? set format: json"},
		{"json string", []byte(`"hello"`), "is the topic JSON? set format: json"},
		{"text", []byte("hello"), "its first byte is 0x68 'h'): was it written without a schema registry serializer?"},
		{"binary", []byte{1, 0, 0, 0, 1, 9}, "its first byte is 0x01): was it written without a schema registry serializer?"},
		{"short binary", []byte{0xff}, "does not start with the schema registry's magic byte 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			id, rest, err := registry.Header(c.value)
			require.ErrorIs(t, err, registry.ErrNotFramed)
			require.ErrorContains(t, err, c.want)
			require.Zero(t, id)
			require.Nil(t, rest)
			for _, other := range []error{registry.ErrUnknownSchema, registry.ErrUnreachable, registry.ErrAuth} {
				require.False(t, errors.Is(err, other))
			}
		})
	}
}

// TestHeaderAgreesWithFranzGo checks the framing against franz-go's
// serializer's.
func TestHeaderAgreesWithFranzGo(t *testing.T) {
	var h sr.ConfluentHeader
	for _, id := range []int{1, 7, 1 << 20, 1<<31 - 1} {
		b, err := h.AppendEncode(nil, id, nil)
		require.NoError(t, err)
		b = append(b, "payload"...)
		got, rest, err := registry.Header(b)
		require.NoError(t, err)
		require.Equal(t, uint32(id), got)
		require.Equal(t, []byte("payload"), rest)
		require.Equal(t, b, append(registry.AppendHeader(nil, uint32(id)), "payload"...))
	}
}

func FuzzHeader(f *testing.F) {
	for _, seed := range [][]byte{nil, {0}, {0, 0, 0, 0, 1}, {0, 0, 0, 0, 1, 2, 3}, []byte(`{"a":1}`), {1, 2, 3, 4, 5, 6}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		id, rest, err := registry.Header(value)
		if err != nil {
			if !errors.Is(err, registry.ErrNotFramed) {
				t.Fatalf("error %v does not wrap ErrNotFramed", err)
			}
			if len(value) >= registry.HeaderSize && value[0] == 0 {
				t.Fatalf("framed value %x rejected: %v", value, err)
			}
			return
		}
		if len(value) < registry.HeaderSize || value[0] != 0 {
			t.Fatalf("value %x accepted", value)
		}
		if id != binary.BigEndian.Uint32(value[1:5]) || !bytes.Equal(rest, value[5:]) {
			t.Fatalf("value %x: id %d rest %x", value, id, rest)
		}
		if !bytes.Equal(append(registry.AppendHeader(nil, id), rest...), value) {
			t.Fatalf("value %x does not round-trip", value)
		}
	})
}

func BenchmarkHeader(b *testing.B) {
	value := append(registry.AppendHeader(nil, 42), make([]byte, 200)...)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := registry.Header(value); err != nil {
			b.Fatal(err)
		}
	}
}
