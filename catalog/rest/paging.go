package rest

import (
	"encoding/base64"
	"net/url"
	"sort"
	"strconv"
)

// Listing kinds, recorded in page tokens so that a token is only accepted
// by the listing that issued it.
const (
	kindNamespaces byte = 'n'
	kindTables     byte = 't'
)

// tokenVersion is the first byte of every page token.
const tokenVersion byte = '1'

// page is the paging a listing request asks for.
type page struct {
	// paged is set when the request has a pageToken parameter, even an
	// empty one; without it the whole listing is one response.
	paged bool
	// after is the key of the last item of the previous page; items
	// follow it in key order. Empty for the first page.
	after string
	size  int
}

// pageParams reads pageToken and pageSize. A token is the next-page-token
// of an earlier response: the key of the last item served, so that a page
// neither repeats nor skips items when others are added or removed
// between requests.
func (h *handler) pageParams(q url.Values, kind byte) (page, error) {
	pg := page{size: h.opts.MaxPageSize}
	if vs, ok := q["pageSize"]; ok {
		n, err := strconv.Atoi(vs[0])
		if err != nil || n < 1 || n > h.opts.MaxPageSize {
			return page{}, badRequest("invalid pageSize %q: want an integer from 1 to %d", vs[0], h.opts.MaxPageSize)
		}
		pg.size = n
	}
	vs, ok := q["pageToken"]
	if !ok {
		return pg, nil
	}
	pg.paged = true
	if vs[0] == "" {
		return pg, nil
	}
	after, ok := decodeToken(vs[0], kind)
	if !ok {
		return page{}, badRequest("invalid pageToken %q: pass the next-page-token of the previous response of the same listing unchanged, or an empty pageToken to start from the first page", vs[0])
	}
	pg.after = after
	return pg, nil
}

// encodeToken makes the page token of a listing that continues after key.
func encodeToken(kind byte, key string) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{tokenVersion, kind}, key...))
}

// decodeToken returns the key a token of the given listing kind continues
// after.
func decodeToken(tok string, kind byte) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 3 || b[0] != tokenVersion || b[1] != kind {
		return "", false
	}
	return string(b[2:]), true
}

// paginate cuts the page pg asks for out of items, which are sorted by
// key, and returns the token of the next page: nil on the last page.
func paginate[T any](items []T, key func(T) string, pg page, kind byte) ([]T, *string) {
	if !pg.paged {
		return items, nil
	}
	start := 0
	if pg.after != "" {
		start = sort.Search(len(items), func(i int) bool { return key(items[i]) > pg.after })
	}
	end := min(start+pg.size, len(items))
	if end >= len(items) {
		return items[start:], nil
	}
	next := encodeToken(kind, key(items[end-1]))
	return items[start:end], &next
}
