package registry_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/ingest/registry"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/conf/conftest"
)

func TestConfigValid(t *testing.T) {
	conftest.RequireValid(t, registry.Config{}.Validate())
	conftest.RequireValid(t, registry.Config{URLs: []string{"http://localhost:8081"}}.Validate())
	conftest.RequireValid(t, registry.Config{
		URLs:     []string{"https://a:8081", "https://b:8081/registry/"},
		Username: "floe", PasswordFile: "/etc/floe/pw",
		TLS:     registry.TLSConfig{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", ServerName: "registry"},
		Timeout: conf.Duration(3 * time.Second),
	}.Validate())
	require.False(t, registry.Config{}.Enabled())
	require.Equal(t, conf.Duration(registry.DefaultTimeout), registry.Config{}.WithDefaults().Timeout)
}

func TestConfigUnknownSchemaWait(t *testing.T) {
	cfg := registry.Config{URLs: []string{"http://localhost:8081"}}
	require.Equal(t, registry.DefaultUnknownSchemaWait, cfg.UnknownWait(), "unset: the default")
	cfg.UnknownSchemaWait = registry.WaitFor(0)
	conftest.RequireValid(t, cfg.Validate())
	require.Zero(t, cfg.UnknownWait(), "0 is no wait, not the default")

	var w registry.Wait
	require.NoError(t, w.UnmarshalText([]byte("1m30s")))
	require.Equal(t, 90*time.Second, registry.Config{UnknownSchemaWait: w}.UnknownWait())
	require.NoError(t, w.UnmarshalText([]byte("0s")))
	require.True(t, w.IsSet())
	require.Zero(t, registry.Config{UnknownSchemaWait: w}.UnknownWait())
	require.ErrorContains(t, w.UnmarshalText([]byte("soon")), "want a duration")
	text, err := registry.WaitFor(time.Second).MarshalText()
	require.NoError(t, err)
	require.Equal(t, "1s", string(text))
	// Unset writes and reads back as empty.
	text, err = registry.Wait{}.MarshalText()
	require.NoError(t, err)
	require.NoError(t, w.UnmarshalText(text))
	require.False(t, w.IsSet())
}

func TestConfigProblems(t *testing.T) {
	for _, c := range []struct {
		cfg           registry.Config
		field, reason string
	}{
		{registry.Config{Username: "floe", Password: "pw"}, "urls", "must list at least one"},
		{registry.Config{URLs: []string{"localhost:8081"}}, "urls[0]", "must be an http:// or https:// URL"},
		{registry.Config{URLs: []string{"http://ok:1", "ftp://x"}}, "urls[1]", "must be an http:// or https:// URL"},
		{registry.Config{URLs: []string{"http://"}}, "urls[0]", "must be an http:// or https:// URL"},
		{registry.Config{URLs: []string{"https://key:secret@host"}}, "urls[0]", "must not hold credentials"},
		{registry.Config{URLs: []string{"http://host/?x=1"}}, "urls[0]", "no query"},
		{registry.Config{URLs: []string{"http://host"}, TLS: registry.TLSConfig{CAFile: "ca.pem"}}, "tls", "no URL is https://"},
		{registry.Config{URLs: []string{"https://host"}, TLS: registry.TLSConfig{CertFile: "c.pem"}}, "tls", "cert_file and key_file"},
		{registry.Config{URLs: []string{"https://host"}, TLS: registry.TLSConfig{CAFile: "ca.pem", InsecureSkipVerify: true}}, "tls.insecure_skip_verify", "set one of them"},
		{registry.Config{URLs: []string{"http://host"}, Username: "u", Password: "p", PasswordFile: "f"}, "password_file", "cannot be combined with password"},
		{registry.Config{URLs: []string{"http://host"}, Password: "p"}, "username", "is required with a password"},
		{registry.Config{URLs: []string{"http://host"}, Username: "u"}, "username", "needs password or password_file"},
		{registry.Config{URLs: []string{"http://host"}, Timeout: conf.Duration(-time.Second)}, "timeout", "must be a positive duration"},
		{registry.Config{URLs: []string{"http://host"}, UnknownSchemaWait: registry.WaitFor(-time.Second)}, "unknown_schema_wait", "must be a positive duration"},
		{registry.Config{UnknownSchemaWait: registry.WaitFor(0)}, "urls", "must list at least one"},
	} {
		conftest.RequireField(t, c.cfg.Validate(), c.field, c.reason)
		_, err := registry.New(c.cfg)
		require.Error(t, err, "New must refuse what Validate refuses")
	}
}

func TestConfigNestsUnderItsSection(t *testing.T) {
	err := conf.Nest("pipelines[2].registry", registry.Config{URLs: []string{"nope"}}.Validate())
	conftest.RequireField(t, err, "pipelines[2].registry.urls[0]", "http://")
}

func TestNewReadsFiles(t *testing.T) {
	_, err := registry.New(registry.Config{URLs: []string{"https://h"}, TLS: registry.TLSConfig{CAFile: "/nonexistent/ca.pem"}})
	require.ErrorContains(t, err, "tls.ca_file")
	_, err = registry.New(registry.Config{URLs: []string{"http://h"}, Username: "u", PasswordFile: "/nonexistent/pw"})
	require.ErrorContains(t, err, "password_file")
	_, err = registry.New(registry.Config{})
	require.ErrorContains(t, err, "no urls")
}
