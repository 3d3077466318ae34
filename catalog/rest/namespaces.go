package rest

import (
	"context"
	"errors"
	"iter"
	"net/url"
	"slices"
	"strings"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// separator joins the levels of a namespace in a path segment or in the
// parent query parameter: the unit separator 0x1F, %1F in a URL.
const separator = "\x1f"

// parseNamespace splits a decoded namespace (a path segment or the parent
// parameter) into its levels. what names the value in the error.
func parseNamespace(what, s string) ([]string, error) {
	levels := strings.Split(s, separator)
	if slices.Contains(levels, "") {
		return nil, badRequest("invalid %s %q: a namespace is one or more non-empty levels separated by the unit separator 0x1F (%%1F in a URL), as in a%%1Fb for the namespace a.b",
			what, url.PathEscape(s))
	}
	return levels, nil
}

// showNamespace renders a namespace for a message: its levels joined by
// dots, as query engines write it.
func showNamespace(ns []string) string { return strings.Join(ns, ".") }

// showTable renders a table identifier for a message.
func showTable(ns []string, name string) string { return showNamespace(append(slices.Clone(ns), name)) }

// namespaceKey is a namespace's sort and paging key.
func namespaceKey(ns []string) string { return strings.Join(ns, separator) }

// candidates are the namespaces a namespace path segment may name, in the
// order to try them: the namespace as decoded and, for a single level with
// dots in it (the way some clients, ClickHouse among them, write nested
// namespaces in paths), its dot-separated levels.
func candidates(ns []string) [][]string {
	out := [][]string{ns}
	if len(ns) == 1 && strings.Contains(ns[0], ".") {
		if dotted := strings.Split(ns[0], "."); !slices.Contains(dotted, "") {
			out = append(out, dotted)
		}
	}
	return out
}

// implied reports whether ns is the ancestor of a namespace the catalog
// has: catalogs (the SQL catalog among them) may hold a.b without a, but
// a.b implies a, and clients walking the tree from the top must be able to
// descend through it.
func (h *handler) implied(ctx context.Context, ns []string) (bool, error) {
	all, err := h.cat.ListNamespaces(ctx, nil)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(all, func(n table.Identifier) bool { return isDescendant(n, ns) }), nil
}

// isDescendant reports whether n lies strictly below ns.
func isDescendant(n, ns []string) bool {
	return len(n) > len(ns) && slices.Equal(n[:len(ns)], ns)
}

// namespaceProperties returns the namespace ns names (see candidates) and
// its properties; an implied namespace has none.
func (h *handler) namespaceProperties(ctx context.Context, ns []string) ([]string, map[string]string, error) {
	for _, c := range candidates(ns) {
		props, err := h.cat.LoadNamespaceProperties(ctx, c)
		if err == nil {
			if props == nil {
				props = map[string]string{}
			}
			return c, props, nil
		}
		if !errors.Is(err, icecat.ErrNoSuchNamespace) {
			return nil, nil, err
		}
		ok, err := h.implied(ctx, c)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			return c, map[string]string{}, nil
		}
	}
	return nil, nil, noSuchNamespace(ns)
}

// children returns the namespaces directly below parent (the top-level
// ones for an empty parent), sorted by namespaceKey. Catalogs answer
// ListNamespaces differently (all descendants, or the direct children
// only); both are reduced to the direct children, including those only
// implied by deeper namespaces. A leaf has none.
func (h *handler) children(ctx context.Context, parent []string) ([][]string, error) {
	listed, err := h.cat.ListNamespaces(ctx, parent)
	if errors.Is(err, icecat.ErrNoSuchNamespace) && len(parent) > 0 {
		// The parent may be implied: look for its descendants among all.
		listed, err = h.cat.ListNamespaces(ctx, nil)
		if err == nil && !slices.ContainsFunc(listed, func(n table.Identifier) bool { return isDescendant(n, parent) }) {
			return nil, noSuchNamespace(parent)
		}
	}
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	out := [][]string{}
	for _, n := range listed {
		if !isDescendant(n, parent) {
			continue
		}
		child := slices.Clone(n[:len(parent)+1])
		if k := namespaceKey(child); !seen[k] {
			seen[k] = true
			out = append(out, child)
		}
	}
	slices.SortFunc(out, func(a, b []string) int { return strings.Compare(namespaceKey(a), namespaceKey(b)) })
	return out, nil
}

// tablesIn returns the identifiers of the tables in the namespace ns names
// (see candidates), sorted by name. An implied namespace has none.
func (h *handler) tablesIn(ctx context.Context, ns []string) ([]table.Identifier, error) {
	for _, c := range candidates(ns) {
		idents, err := collect(h.cat.ListTables(ctx, c))
		if err == nil {
			slices.SortFunc(idents, func(a, b table.Identifier) int { return strings.Compare(a[len(a)-1], b[len(b)-1]) })
			return idents, nil
		}
		if !errors.Is(err, icecat.ErrNoSuchNamespace) {
			return nil, err
		}
		ok, err := h.implied(ctx, c)
		if err != nil {
			return nil, err
		}
		if ok {
			return []table.Identifier{}, nil
		}
	}
	return nil, noSuchNamespace(ns)
}

// collect drains a listing, dropping malformed identifiers (a table needs
// a namespace and a name).
func collect(seq iter.Seq2[table.Identifier, error]) ([]table.Identifier, error) {
	out := []table.Identifier{}
	for ident, err := range seq {
		if err != nil {
			return nil, err
		}
		if len(ident) >= 2 {
			out = append(out, ident)
		}
	}
	return out, nil
}

// findTable loads the table name in the namespace ns names (see
// candidates).
func (h *handler) findTable(ctx context.Context, ns []string, name string) (*table.Table, error) {
	for _, c := range candidates(ns) {
		tbl, err := h.cat.LoadTable(ctx, append(slices.Clone(c), name))
		if err == nil {
			return tbl, nil
		}
		if !errors.Is(err, icecat.ErrNoSuchTable) && !errors.Is(err, icecat.ErrNoSuchNamespace) {
			return nil, err
		}
	}
	return nil, noSuchTable(ns, name)
}
