package testutil

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	icebergio "github.com/apache/iceberg-go/io"
	_ "github.com/apache/iceberg-go/io/gocloud/s3"
	"github.com/stretchr/testify/require"
)

// payload is deterministic and position-dependent, so a ranged read that
// returns the wrong range cannot pass by accident.
func payload(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func TestS3ServerRoundTrip(t *testing.T) {
	s := StartS3(t)
	ctx := context.Background()
	require.Equal(t, "s3://"+s.Bucket+"/wh", s.Warehouse("/wh/"))
	require.Equal(t, "s3://"+s.Bucket, s.Warehouse(""))

	fsys, err := icebergio.LoadFS(ctx, s.Props(), s.Warehouse("x"))
	require.NoError(t, err)
	wfs, ok := fsys.(icebergio.WriteFileIO)
	require.True(t, ok, "s3 FileIO %T cannot write", fsys)

	for _, tc := range []struct {
		name string
		size int
	}{
		{"small", 1 << 10},
		// Larger than the 5 MiB part size of the upload manager behind
		// gocloud's s3blob, so this goes through a multipart upload, as
		// big data files do.
		{"multipart", 11 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := payload(tc.size)
			loc := s.Warehouse("x/" + tc.name + ".bin")

			w, err := wfs.Create(loc)
			require.NoError(t, err)
			_, err = w.Write(want)
			require.NoError(t, err)
			require.NoError(t, w.Close())

			// The bytes must be on the server's disk: a fake that kept them
			// in the client would pass the reads below.
			onDisk, err := os.ReadFile(filepath.Join(s.root, s.Bucket, "x", tc.name+".bin"))
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, onDisk), "object on disk differs")

			f, err := fsys.Open(loc)
			require.NoError(t, err)
			defer f.Close()
			fi, err := f.Stat()
			require.NoError(t, err)
			require.EqualValues(t, tc.size, fi.Size())
			got, err := io.ReadAll(f)
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got), "object read back differs")

			// Ranged reads are how Parquet footers and row groups are read.
			off, n := int64(tc.size/3), tc.size/4
			part := make([]byte, n)
			_, err = f.ReadAt(part, off)
			require.NoError(t, err)
			require.True(t, bytes.Equal(want[off:off+int64(n)], part), "ranged read differs")

			tail := make([]byte, 8)
			_, err = f.ReadAt(tail, int64(tc.size-8))
			require.NoError(t, err)
			require.Equal(t, want[tc.size-8:], tail)

			require.NoError(t, fsys.Remove(loc))
			_, err = fsys.Open(loc)
			require.True(t, errors.Is(err, fs.ErrNotExist), "open after remove: %v", err)
		})
	}
}

func TestS3ServersAreIndependent(t *testing.T) {
	a, b := StartS3(t), StartS3(t)
	require.NotEqual(t, a.Endpoint, b.Endpoint)

	ctx := context.Background()
	fa, err := icebergio.LoadFS(ctx, a.Props(), a.Warehouse(""))
	require.NoError(t, err)
	require.NoError(t, fa.(icebergio.WriteFileIO).WriteFile(a.Warehouse("only-in-a"), []byte("a")))

	fb, err := icebergio.LoadFS(ctx, b.Props(), b.Warehouse(""))
	require.NoError(t, err)
	_, err = fb.Open(b.Warehouse("only-in-a"))
	require.True(t, errors.Is(err, fs.ErrNotExist), "server b sees a's object: %v", err)
}

func TestS3WrongCredentialsRejected(t *testing.T) {
	s := StartS3(t)
	props := s.Props()
	props[icebergio.S3SecretAccessKey] = "wrong"
	fsys, err := icebergio.LoadFS(context.Background(), props, s.Warehouse(""))
	require.NoError(t, err)
	err = fsys.(icebergio.WriteFileIO).WriteFile(s.Warehouse("denied"), []byte("x"))
	require.Error(t, err, "the server must check signatures, or auth bugs go unnoticed")
}
