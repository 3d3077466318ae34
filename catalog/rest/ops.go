package rest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/apache/iceberg-go/table"
)

// catalogConfig is the protocol's CatalogConfig.
type catalogConfig struct {
	Defaults  map[string]string `json:"defaults"`
	Overrides map[string]string `json:"overrides"`
	Endpoints []string          `json:"endpoints"`
}

// getConfig answers GET /v1/config.
func (h *handler) getConfig(w http.ResponseWriter, r *http.Request, _ pathParams) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	if wh := q.Get("warehouse"); wh != "" && wh != h.opts.Warehouse {
		return &apiError{status: http.StatusNotFound, typ: "NoSuchWarehouseException",
			msg: fmt.Sprintf("warehouse %q is not served here: this catalog serves the warehouse %q; set the client's warehouse to %q or leave it unset",
				wh, h.opts.Warehouse, h.opts.Warehouse)}
	}
	overrides := map[string]string{}
	if h.opts.Prefix != "" {
		overrides["prefix"] = h.opts.Prefix
	}
	h.writeJSON(w, r, http.StatusOK, catalogConfig{Defaults: h.opts.TableConfig, Overrides: overrides, Endpoints: h.endpoints})
	return nil
}

// oauthError is the protocol's OAuthError, the error body of
// /v1/oauth/tokens.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// oauthTokens answers POST /v1/oauth/tokens, which the protocol answers
// with OAuth errors rather than the error model: this catalog issues no
// tokens.
func (h *handler) oauthTokens(w http.ResponseWriter, r *http.Request, _ pathParams) error {
	h.writeJSON(w, r, http.StatusBadRequest, oauthError{
		Error: "unsupported_grant_type",
		Description: "this catalog does not issue OAuth tokens: remove the credential from the client's catalog configuration, " +
			"and give it a bearer token (the token property) instead if the server asks for one",
	})
	return nil
}

// listNamespacesResponse is the protocol's ListNamespacesResponse.
type listNamespacesResponse struct {
	Namespaces    [][]string `json:"namespaces"`
	NextPageToken *string    `json:"next-page-token"`
}

// listNamespaces answers GET /v1/{prefix}/namespaces.
func (h *handler) listNamespaces(w http.ResponseWriter, r *http.Request, _ pathParams) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	pg, err := h.pageParams(q, kindNamespaces)
	if err != nil {
		return err
	}
	var parent []string
	if v := q.Get("parent"); v != "" {
		if parent, err = parseNamespace("parent", v); err != nil {
			return err
		}
	}
	kids, err := h.children(r.Context(), parent)
	if err != nil {
		return err
	}
	items, next := paginate(kids, namespaceKey, pg, kindNamespaces)
	h.writeJSON(w, r, http.StatusOK, listNamespacesResponse{Namespaces: items, NextPageToken: next})
	return nil
}

// getNamespaceResponse is the protocol's GetNamespaceResponse.
type getNamespaceResponse struct {
	Namespace  []string          `json:"namespace"`
	Properties map[string]string `json:"properties"`
}

// namespaceParam reads the {namespace} of the path.
func namespaceParam(p pathParams) ([]string, error) {
	return parseNamespace("namespace", p["namespace"])
}

// loadNamespace answers GET /v1/{prefix}/namespaces/{namespace}.
func (h *handler) loadNamespace(w http.ResponseWriter, r *http.Request, p pathParams) error {
	ns, err := namespaceParam(p)
	if err != nil {
		return err
	}
	resolved, props, err := h.namespaceProperties(r.Context(), ns)
	if err != nil {
		return err
	}
	h.writeJSON(w, r, http.StatusOK, getNamespaceResponse{Namespace: resolved, Properties: props})
	return nil
}

// namespaceExists answers HEAD /v1/{prefix}/namespaces/{namespace}.
func (h *handler) namespaceExists(w http.ResponseWriter, r *http.Request, p pathParams) error {
	ns, err := namespaceParam(p)
	if err != nil {
		return err
	}
	if _, _, err := h.namespaceProperties(r.Context(), ns); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// tableIdentifier is the protocol's TableIdentifier.
type tableIdentifier struct {
	Namespace []string `json:"namespace"`
	Name      string   `json:"name"`
}

// listTablesResponse is the protocol's ListTablesResponse.
type listTablesResponse struct {
	Identifiers   []tableIdentifier `json:"identifiers"`
	NextPageToken *string           `json:"next-page-token"`
}

// listTables answers GET /v1/{prefix}/namespaces/{namespace}/tables.
func (h *handler) listTables(w http.ResponseWriter, r *http.Request, p pathParams) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	pg, err := h.pageParams(q, kindTables)
	if err != nil {
		return err
	}
	ns, err := namespaceParam(p)
	if err != nil {
		return err
	}
	idents, err := h.tablesIn(r.Context(), ns)
	if err != nil {
		return err
	}
	items, next := paginate(idents, func(id table.Identifier) string { return id[len(id)-1] }, pg, kindTables)
	out := listTablesResponse{Identifiers: make([]tableIdentifier, len(items)), NextPageToken: next}
	for i, id := range items {
		out.Identifiers[i] = tableIdentifier{Namespace: id[:len(id)-1], Name: id[len(id)-1]}
	}
	h.writeJSON(w, r, http.StatusOK, out)
	return nil
}

// tableParams reads the {namespace} and {table} of the path.
func tableParams(p pathParams) ([]string, string, error) {
	ns, err := namespaceParam(p)
	if err != nil {
		return nil, "", err
	}
	if p["table"] == "" {
		return nil, "", badRequest("invalid table name: it is empty")
	}
	return ns, p["table"], nil
}

// loadTableResult is the protocol's LoadTableResult.
type loadTableResult struct {
	MetadataLocation string            `json:"metadata-location"`
	Metadata         json.RawMessage   `json:"metadata"`
	Config           map[string]string `json:"config"`
}

// loadTable answers GET /v1/{prefix}/namespaces/{namespace}/tables/{table}.
func (h *handler) loadTable(w http.ResponseWriter, r *http.Request, p pathParams) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	mode, err := snapshotsParam(q)
	if err != nil {
		return err
	}
	ns, name, err := tableParams(p)
	if err != nil {
		return err
	}
	tbl, err := h.findTable(r.Context(), ns, name)
	if err != nil {
		return err
	}
	etag := h.etag(tbl.MetadataLocation(), mode)
	w.Header().Set("ETag", etag)
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	meta, err := tableMetadataJSON(tbl, mode)
	if err != nil {
		return fmt.Errorf("table %s: %w", showTable(ns, name), err)
	}
	h.writeJSON(w, r, http.StatusOK, loadTableResult{
		MetadataLocation: tbl.MetadataLocation(),
		Metadata:         meta,
		Config:           h.opts.TableConfig,
	})
	return nil
}

// tableExists answers HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}.
func (h *handler) tableExists(w http.ResponseWriter, r *http.Request, p pathParams) error {
	ns, name, err := tableParams(p)
	if err != nil {
		return err
	}
	if _, err := h.findTable(r.Context(), ns, name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// snapshotsParam reads the snapshots parameter of a table load.
func snapshotsParam(q url.Values) (string, error) {
	switch v := q.Get("snapshots"); v {
	case "", snapshotsAll:
		return snapshotsAll, nil
	case snapshotsRefs:
		return snapshotsRefs, nil
	default:
		return "", badRequest("invalid snapshots %q: want %q (every valid snapshot, the default) or %q (those branches and tags reference)",
			v, snapshotsAll, snapshotsRefs)
	}
}
