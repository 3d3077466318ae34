// Package rest serves an Iceberg catalog read-only over the Iceberg REST
// catalog protocol, so that Spark, Trino, ClickHouse, PyIceberg and other
// REST clients can find and read the tables floe writes without access to
// the catalog's database.
//
// NewHandler wraps an iceberg-go catalog.Catalog in an http.Handler whose
// routes start at /v1/. The caller mounts it (under /iceberg, say, with
// http.StripPrefix) and owns the server, TLS and authentication.
//
// # What is served
//
// Relative to the handler's root, with {prefix} as described under Prefix:
//
//	GET  /v1/config                                         200 CatalogConfig; 404 for another ?warehouse=
//	GET  /v1/{prefix}/namespaces                            200 the namespaces directly under ?parent= (top level without it)
//	GET  /v1/{prefix}/namespaces/{namespace}                200 the namespace's properties; 404
//	HEAD /v1/{prefix}/namespaces/{namespace}                204; 404
//	GET  /v1/{prefix}/namespaces/{namespace}/tables         200 the namespace's table identifiers; 404
//	GET  /v1/{prefix}/namespaces/{namespace}/tables/{table} 200 LoadTableResult; 304; 404
//	HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table} 204; 404
//
// The "endpoints" of GET /v1/config name exactly the six {prefix} routes
// above. Its "defaults", and the "config" of every loaded table, are
// Options.TableConfig: the storage properties (s3.endpoint,
// s3.access-key-id, ...) a client needs to read the table's files. A loaded
// table's "metadata" is its full table metadata as iceberg-go writes it to
// the metadata file, and "metadata-location" is that file.
//
// A table load honours the snapshots parameter: all (the default) returns
// every valid snapshot, refs only those a branch or tag references, which
// always includes the current one. Its response carries an ETag derived
// from the metadata file, the snapshots mode and the table config; a
// request whose If-None-Match names it is answered 304 Not Modified.
//
// # Read-only
//
// Every other route the protocol defines is refused with 406 and an
// UnsupportedOperationException: creating, dropping, renaming,
// registering and unregistering tables and views, committing to tables,
// multi-table transactions, namespace creation, deletion and property
// updates say that the catalog is read-only and that floe's tables are
// written by floe; reading views and functions, server-side scan planning,
// vended credentials, remote signing and metrics reports say they are not
// supported. POST /v1/oauth/tokens, whose errors the protocol defines in
// OAuth's form rather than as the error model, is answered 400 with the
// OAuth error unsupported_grant_type: the catalog issues no tokens. Clients
// that negotiate endpoints (Iceberg Java 1.7 and later, iceberg-go) refuse
// those operations themselves, before any request, because GET /v1/config
// does not advertise them.
//
// # Namespaces
//
// A namespace in a path, and in the parent parameter, is its levels joined
// by the unit separator 0x1F, percent-encoded %1F: the namespace a.b is
// /v1/namespaces/a%1Fb and ?parent=a%1Fb. An empty level (a%1F%1Fb, a
// trailing %1F) is a 400. A path namespace of one level containing dots
// that names no namespace is also tried as the dot-separated levels, since
// some clients (ClickHouse among them) write nested namespaces that way in
// paths.
//
// Listing with ?parent=p returns the namespaces one level below p, and an
// empty list below a leaf, so that clients walking the tree from the top
// (ClickHouse does) stop. A namespace that exists only as the ancestor of a
// deeper one (a catalog may hold a.b without a) is listed, and loads with
// no properties and no tables.
//
// # Paging
//
// GET /v1/{prefix}/namespaces and GET .../tables page their results when
// the request has a pageToken parameter: an empty pageToken asks for the
// first page; each page's next-page-token, null on the last page, asks for
// the next. pageSize (1 to Options.MaxPageSize, which is also the default)
// bounds a page. Without pageToken the whole listing is one response, as
// the protocol requires. Namespaces are sorted by their levels and tables
// by name; a token records where the previous page ended, so tables added
// or removed between pages make no page repeat or skip the others. A token
// that is not the next-page-token of the same kind of listing is a 400.
//
// # Errors
//
// Every error but those of POST /v1/oauth/tokens is a JSON
// IcebergErrorResponse {"error": {"message", "type", "code"}} with
// Content-Type application/json (HEAD responses have no body):
//
//	400 BadRequestException           bad pageToken or pageSize, snapshots not all or refs,
//	                                  malformed namespace, query string or path
//	404 NoSuchNamespaceException      the namespace does not exist
//	404 NoSuchTableException          the table (or its namespace) does not exist
//	404 NoSuchWarehouseException      ?warehouse= names another warehouse
//	404 NotFoundException             a path the protocol does not define
//	405 MethodNotAllowedException     a method the protocol does not define for the path;
//	                                  the Allow header lists those it does
//	406 UnsupportedOperationException an operation this catalog refuses
//	500 InternalServerError           the underlying catalog failed; the details are
//	                                  logged to Options.Logger, not sent
//
// A table load answers NoSuchTableException whether the table or its
// namespace is missing, as Iceberg's own REST server does: clients such as
// Spark try a missing table as a metadata table (db.t.snapshots) only on
// that type.
//
// # Prefix
//
// With Options.Prefix set, GET /v1/config returns it as the "prefix"
// override and the routes are served both under /v1/<prefix>/ and directly
// under /v1/, for clients that ignore the override; where a path reads both
// ways (a prefix equal to "namespaces", say), the prefixed reading wins.
// Without a prefix the routes are served under /v1/ only, and the
// overrides are empty.
//
// # Client configuration
//
// The catalog type is rest, the URI is the node's address and the mount
// point (without /v1), and the warehouse is Options.Warehouse ("floe" by
// default) or left unset. With the handler mounted at /iceberg on
// node:8080:
//
//	Spark:      spark.sql.catalog.lake=org.apache.iceberg.spark.SparkCatalog
//	            spark.sql.catalog.lake.type=rest
//	            spark.sql.catalog.lake.uri=http://node:8080/iceberg
//	            spark.sql.catalog.lake.warehouse=floe
//	Trino:      connector.name=iceberg
//	            iceberg.catalog.type=rest
//	            iceberg.rest-catalog.uri=http://node:8080/iceberg
//	            iceberg.rest-catalog.warehouse=floe
//	            (plus Trino's own file-system settings for the warehouse's store)
//	PyIceberg:  load_catalog("lake", type="rest", uri="http://node:8080/iceberg", warehouse="floe")
//	ClickHouse: SET allow_database_iceberg = 1;
//	            CREATE DATABASE lake ENGINE = DataLakeCatalog('http://node:8080/iceberg/v1',
//	            '<access key>', '<secret>') SETTINGS catalog_type = 'rest', warehouse = 'floe'
//	            (ClickHouse takes the URI with /v1, which all its releases accept.
//	            The S3 access key and secret are DataLakeCatalog's second and third
//	            arguments, or none when the table config carries them. A local
//	            (file://) warehouse: no arguments and vended_credentials = 0, or
//	            the arguments 'Parquet', 'auto'. Tested with ClickHouse 26.7, which
//	            reads a table on an S3-compatible store only if the s3.endpoint of
//	            its config ends in "/" (ClickHouse issue #93283): a floe node serves it
//	            so; without the slash ClickHouse reads the metadata file at
//	            <table>/<bucket>/<table path>/metadata/..., an S3 404)
package rest
