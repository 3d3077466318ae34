package catalog_test

import (
	"testing"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/internal/conf/conftest"
)

func TestConfigValidate(t *testing.T) {
	conftest.RequireValid(t, catalog.DefaultConfig().Validate())
	for name, cfg := range map[string]catalog.Config{
		"sqlite file":  {Type: "sql", Name: "floe", URI: "sqlite:///var/lib/floe/c.db"},
		"postgres":     {Type: "sql", Name: "floe", URI: "postgresql://u@h/db", Warehouse: "s3://b/w"},
		"rest":         {Type: "rest", Name: "floe", URI: "https://catalog.example.com", Warehouse: "s3a://b/w"},
		"local path":   {Type: "sql", Name: "floe", Warehouse: "/data/warehouse"},
		"file scheme":  {Type: "sql", Name: "floe", Warehouse: "file:///data/warehouse"},
		"memory (one)": {Type: "sql", Name: "floe", URI: "sqlite::memory:"},
	} {
		t.Run("valid "+name, func(t *testing.T) { conftest.RequireValid(t, cfg.Validate()) })
	}

	cases := []struct {
		name          string
		cfg           catalog.Config
		field, reason string
	}{
		{"type", catalog.Config{Type: "hive", Name: "floe"}, "type", `must be sql or rest, got "hive"`},
		{"sql uri", catalog.Config{Type: "sql", Name: "floe", URI: "mysql://x"}, "uri", "for type sql must start with sqlite: or postgres://"},
		{"rest uri", catalog.Config{Type: "rest", Name: "floe", URI: "ftp://x"}, "uri", "for type rest must be an http(s) URL"},
		{"rest no uri", catalog.Config{Type: "rest", Name: "floe"}, "uri", "http(s) URL"},
		{"name", catalog.Config{Type: "sql"}, "name", "must not be empty"},
		{"warehouse", catalog.Config{Type: "sql", Name: "floe", Warehouse: "gs://b/x"}, "warehouse", "scheme must be file:// or s3://"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conftest.RequireField(t, c.cfg.Validate(), c.field, c.reason)
		})
	}
}

func TestStorageConfigValidate(t *testing.T) {
	conftest.RequireValid(t, catalog.StorageConfig{}.Validate())
	conftest.RequireValid(t, catalog.StorageConfig{S3: catalog.S3Config{Endpoint: "http://127.0.0.1:7070", PathStyle: true}}.Validate())
}
