package rest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRoutesCoverTheProtocol counts the operations of the route table:
// the OpenAPI document defines 35, one route per path.
func TestRoutesCoverTheProtocol(t *testing.T) {
	ops, paths := 0, map[string]bool{}
	for _, rt := range routes {
		require.False(t, paths[rt.template()], "%s is there twice", rt.template())
		paths[rt.template()] = true
		methods := map[string]bool{}
		for _, o := range rt.ops {
			require.False(t, methods[o.method], "%s %s is there twice", o.method, rt.template())
			methods[o.method] = true
			require.NotNil(t, o.serve)
			ops++
		}
	}
	assert.Equal(t, 35, ops)
	assert.Len(t, paths, 23)
}

func TestParseNamespace(t *testing.T) {
	good := map[string][]string{
		"a":             {"a"},
		"a\x1fb":        {"a", "b"},
		"a\x1fb\x1fc":   {"a", "b", "c"},
		"a.b":           {"a.b"},
		"with space/%2": {"with space/%2"},
	}
	for in, want := range good {
		got, err := parseNamespace("namespace", in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "\x1f", "a\x1f", "\x1fa", "a\x1f\x1fb"} {
		_, err := parseNamespace("parent", in)
		var ae *apiError
		require.ErrorAs(t, err, &ae, "%q", in)
		assert.Equal(t, http.StatusBadRequest, ae.status)
		assert.True(t, strings.HasPrefix(ae.msg, "invalid parent "), ae.msg)
	}
}

func TestCandidates(t *testing.T) {
	assert.Equal(t, [][]string{{"a"}}, candidates([]string{"a"}))
	assert.Equal(t, [][]string{{"a", "b"}}, candidates([]string{"a", "b"}))
	assert.Equal(t, [][]string{{"a.b"}, {"a", "b"}}, candidates([]string{"a.b"}))
	assert.Equal(t, [][]string{{"a.b.c"}, {"a", "b", "c"}}, candidates([]string{"a.b.c"}))
	assert.Equal(t, [][]string{{"a..b"}}, candidates([]string{"a..b"}), "no empty levels")
	assert.Equal(t, [][]string{{".a"}}, candidates([]string{".a"}))
	assert.Equal(t, [][]string{{"a.b", "c"}}, candidates([]string{"a.b", "c"}), "only a single level")
}

func TestSplitPath(t *testing.T) {
	segs, err := splitPath("/v1/namespaces/a%1Fb/tables/x%2Fy")
	require.NoError(t, err)
	assert.Equal(t, []string{"v1", "namespaces", "a\x1fb", "tables", "x/y"}, segs)
	segs, err = splitPath("/")
	require.NoError(t, err)
	assert.Equal(t, []string{""}, segs)
	_, err = splitPath("/v1/namespaces/%zz")
	var ae *apiError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusBadRequest, ae.status)
}

func TestEtagMatches(t *testing.T) {
	const etag = `"abc"`
	for header, want := range map[string]bool{
		``:               false,
		`"abc"`:          true,
		`W/"abc"`:        true,
		`*`:              true,
		`"x", "abc"`:     true,
		` "x" ,W/"abc" `: true,
		`"abcd"`:         false,
		`abc`:            false,
		`"x", "y"`:       false,
	} {
		assert.Equal(t, want, etagMatches(header, etag), header)
	}
}
