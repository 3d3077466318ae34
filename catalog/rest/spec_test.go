package rest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// jsonSchema is the part of an OpenAPI schema the tests check: types,
// nullability, required and additional properties, item uniqueness and
// integer bounds.
type jsonSchema struct {
	typ        string // object, array, string or integer
	nullable   bool
	required   []string
	properties map[string]*jsonSchema
	items      *jsonSchema
	// additional is the schema of properties not in properties; nil with
	// closed set allows none, nil without it allows anything.
	additional *jsonSchema
	closed     bool
	unique     bool
	min, max   *int64
}

func bound(n int64) *int64 { return &n }

// The schemas below are copied from components/schemas of the Iceberg REST
// catalog OpenAPI document (open-api/rest-catalog-open-api.yaml in the
// Apache Iceberg repository), reduced to what this catalog returns.
var (
	stringSchema    = &jsonSchema{typ: "string"}
	stringMapSchema = &jsonSchema{typ: "object", additional: stringSchema}

	// Namespace
	namespaceSchema = &jsonSchema{typ: "array", items: stringSchema}
	// PageToken
	pageTokenSchema = &jsonSchema{typ: "string", nullable: true}
	// TableIdentifier
	tableIdentifierSchema = &jsonSchema{typ: "object", required: []string{"namespace", "name"},
		properties: map[string]*jsonSchema{"namespace": namespaceSchema, "name": stringSchema}}

	// CatalogConfig
	catalogConfigSchema = &jsonSchema{typ: "object", required: []string{"defaults", "overrides"},
		properties: map[string]*jsonSchema{
			"defaults":  stringMapSchema,
			"overrides": stringMapSchema,
			"endpoints": {typ: "array", items: stringSchema},
		}}
	// ListNamespacesResponse
	listNamespacesSchema = &jsonSchema{typ: "object", properties: map[string]*jsonSchema{
		"next-page-token": pageTokenSchema,
		"namespaces":      {typ: "array", unique: true, items: namespaceSchema},
	}}
	// GetNamespaceResponse
	getNamespaceSchema = &jsonSchema{typ: "object", required: []string{"namespace"},
		properties: map[string]*jsonSchema{
			"namespace":  namespaceSchema,
			"properties": {typ: "object", nullable: true, additional: stringSchema},
		}}
	// ListTablesResponse
	listTablesSchema = &jsonSchema{typ: "object", properties: map[string]*jsonSchema{
		"next-page-token": pageTokenSchema,
		"identifiers":     {typ: "array", unique: true, items: tableIdentifierSchema},
	}}
	// TableMetadata (its required fields; the rest is iceberg-go's)
	tableMetadataSchema = &jsonSchema{typ: "object", required: []string{"format-version", "table-uuid"},
		properties: map[string]*jsonSchema{
			"format-version": {typ: "integer", min: bound(1), max: bound(3)},
			"table-uuid":     stringSchema,
			"location":       stringSchema,
			"properties":     stringMapSchema,
			"snapshots":      {typ: "array", items: &jsonSchema{typ: "object"}},
		}}
	// LoadTableResult
	loadTableSchema = &jsonSchema{typ: "object", required: []string{"metadata"},
		properties: map[string]*jsonSchema{
			"metadata-location": {typ: "string", nullable: true},
			"metadata":          tableMetadataSchema,
			"config":            stringMapSchema,
		}}
	// ErrorModel
	errorModelSchema = &jsonSchema{typ: "object", required: []string{"message", "type", "code"},
		properties: map[string]*jsonSchema{
			"message": stringSchema,
			"type":    stringSchema,
			"code":    {typ: "integer", min: bound(400), max: bound(600)},
			"stack":   {typ: "array", items: stringSchema},
		}}
	// IcebergErrorResponse
	icebergErrorSchema = &jsonSchema{typ: "object", required: []string{"error"}, closed: true,
		properties: map[string]*jsonSchema{"error": errorModelSchema}}
	// OAuthError
	oauthErrorSchema = &jsonSchema{typ: "object", required: []string{"error"},
		properties: map[string]*jsonSchema{
			"error":             stringSchema,
			"error_description": stringSchema,
			"error_uri":         stringSchema,
		}}
)

// requireSchema fails the test unless body is one JSON value that s
// accepts.
func requireSchema(t *testing.T, s *jsonSchema, body []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v), "%s", body)
	require.False(t, dec.More(), "more than one JSON value: %s", body)
	require.Empty(t, validate("$", s, v), "%s", body)
}

// validate returns what in v breaks s.
func validate(path string, s *jsonSchema, v any) []string {
	if v == nil {
		if s.nullable {
			return nil
		}
		return []string{path + ": null where the schema does not allow it"}
	}
	switch s.typ {
	case "object":
		return validateObject(path, s, v)
	case "array":
		return validateArray(path, s, v)
	case "string":
		if _, ok := v.(string); !ok {
			return []string{fmt.Sprintf("%s: %T, want a string", path, v)}
		}
	case "integer":
		return validateInteger(path, s, v)
	}
	return nil
}

func validateObject(path string, s *jsonSchema, v any) []string {
	obj, ok := v.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("%s: %T, want an object", path, v)}
	}
	var errs []string
	for _, k := range s.required {
		if _, ok := obj[k]; !ok {
			errs = append(errs, fmt.Sprintf("%s: required property %q is missing", path, k))
		}
	}
	for k, pv := range obj {
		ps := s.properties[k]
		if ps == nil {
			ps = s.additional
		}
		switch {
		case ps != nil:
			errs = append(errs, validate(path+"."+k, ps, pv)...)
		case s.closed:
			errs = append(errs, fmt.Sprintf("%s: property %q is not allowed", path, k))
		}
	}
	return errs
}

func validateArray(path string, s *jsonSchema, v any) []string {
	arr, ok := v.([]any)
	if !ok {
		return []string{fmt.Sprintf("%s: %T, want an array", path, v)}
	}
	var errs []string
	seen := map[string]bool{}
	for i, item := range arr {
		errs = append(errs, validate(fmt.Sprintf("%s[%d]", path, i), s.items, item)...)
		if s.unique {
			b, _ := json.Marshal(item)
			if seen[string(b)] {
				errs = append(errs, fmt.Sprintf("%s[%d]: %s is there twice", path, i, b))
			}
			seen[string(b)] = true
		}
	}
	return errs
}

func validateInteger(path string, s *jsonSchema, v any) []string {
	num, ok := v.(json.Number)
	if !ok {
		return []string{fmt.Sprintf("%s: %T, want an integer", path, v)}
	}
	n, err := num.Int64()
	if err != nil {
		return []string{fmt.Sprintf("%s: %s is not an integer", path, num)}
	}
	if (s.min != nil && n < *s.min) || (s.max != nil && n > *s.max) {
		return []string{fmt.Sprintf("%s: %d is out of bounds", path, n)}
	}
	return nil
}

// TestValidatorCatchesViolations keeps the validator honest.
func TestValidatorCatchesViolations(t *testing.T) {
	bad := map[string]struct {
		s    *jsonSchema
		body string
	}{
		"missing required":   {icebergErrorSchema, `{}`},
		"closed object":      {icebergErrorSchema, `{"error": {"message": "m", "type": "T", "code": 404}, "x": 1}`},
		"code out of bounds": {icebergErrorSchema, `{"error": {"message": "m", "type": "T", "code": 200}}`},
		"code not integer":   {icebergErrorSchema, `{"error": {"message": "m", "type": "T", "code": 404.5}}`},
		"null defaults":      {catalogConfigSchema, `{"defaults": null, "overrides": {}}`},
		"non-string value":   {catalogConfigSchema, `{"defaults": {"a": 1}, "overrides": {}}`},
		"duplicate item":     {listNamespacesSchema, `{"namespaces": [["a"], ["a"]]}`},
		"identifier no name": {listTablesSchema, `{"identifiers": [{"namespace": ["a"]}]}`},
		"null name":          {listTablesSchema, `{"identifiers": [{"namespace": ["a"], "name": null}]}`},
		"no table-uuid":      {loadTableSchema, `{"metadata": {"format-version": 2}}`},
	}
	for name, c := range bad {
		var v any
		dec := json.NewDecoder(bytes.NewReader([]byte(c.body)))
		dec.UseNumber()
		require.NoError(t, dec.Decode(&v))
		require.NotEmpty(t, validate("$", c.s, v), name)
	}
}
