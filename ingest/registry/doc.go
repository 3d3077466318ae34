// Package registry reads the schema registry's wire format and fetches the
// schemas it names, for pipelines whose records are Avro or Protobuf written
// by a Confluent-compatible serializer (Confluent Schema Registry, Confluent
// Cloud, Redpanda, Karapace, Apicurio's ccompat API).
//
// # The wire format
//
// A serializer that uses a schema registry registers the record's schema
// under a subject, gets back the schema's id, and writes the record value
// as:
//
//	byte 0      magic byte, always 0
//	bytes 1..4  schema id, a big-endian uint32
//	bytes 5..   the payload: for Avro the binary encoding of the datum; for
//	            Protobuf a list of message indexes (which message of the
//	            .proto file, as varints) and then the message; for JSON
//	            Schema the JSON text
//
// Header splits a value into the id and the rest; it does not look at the
// rest, whose layout depends on the schema's type. A value that does not
// start with the magic byte or is shorter than the five header bytes was not
// written by such a serializer: the error says so, wraps ErrNotFramed, and
// names the likely cause (a JSON value starts with '{', the hint is to set
// format: json). Such a record is a dead letter: no registry can decode it.
//
// # Caching
//
// A schema id names one schema forever: a registry never reuses an id for
// another schema, even after deleting one. So a Client fetches each id once
// (GET /schemas/ids/{id}) and keeps it for the life of the process, and the
// hot path, a Schema call for an id already seen, is one map lookup with no
// lock. Concurrent calls for an id not yet cached share one request
// (singleflight): a hundred workers meeting a new schema at once cost the
// registry one request. The fetch does not run under any one caller's
// context, so a caller that gives up (its context ends) does not fail the
// others; each caller waits on its own context.
//
// Resolve and Dependencies follow a schema's references (a Protobuf import,
// an Avro named type defined in another subject): each names a subject and
// a version, fetched with GET /subjects/{subject}/versions/{version}
// (deleted=true, so a soft-deleted dependency of an old schema still
// resolves) and cached the same way, since a subject's version is as
// immutable as an id. A reference to the "latest" version (which registries
// normally pin to a number when the schema is registered) is resolved when
// the schema first is, and kept with it, as Confluent's deserializers do. Dependencies lists the schemas a schema needs in dependency order
// (each after the ones it references), which an Avro parser needs; Resolve
// gives the same texts by reference name, which a Protobuf compiler's
// import resolver needs.
//
// An id the registry does not know is remembered for a short time (a few
// seconds; WithUnknownTTL), so that a topic full of records with a bad id
// does not send the registry one request per record, and asked again after
// it, because a registry replica that is behind the one a producer
// registered with answers "not found" for an id that exists.
//
// # Error classes
//
// Every error a Client returns is an *Error naming the registry URL and the
// schema id (and the reference, when it is one of the schema's references
// that failed), and it belongs to exactly one class, tested with errors.Is:
//
//   - ErrUnknownSchema: the registry answered that the id (or a referenced
//     subject version) does not exist, with a schema registry error body
//     (40403 schema not found, 40401 subject not found, 40402 version not
//     found). The registry's answer for that id: the caller decides
//     whether its records are dead letters at once, or wait a while for
//     a lagging replica (ingest's unknown_schema_wait; Client.ForgetUnknown
//     lets it ask again before the short memory above expires).
//   - ErrUnreachable: no registry gave an answer about the schema: the
//     connection was refused or reset, timed out, the registry answered 5xx,
//     429 or another status that says nothing about the schema, or the URL
//     answered with something that is not a schema registry response (a 404
//     without a registry error code, an HTML page: usually a wrong url). It
//     is transient as far as the record is concerned: the pipeline pauses and
//     retries, and never dead-letters the record, since the schema may well
//     exist. Nothing of it is cached.
//   - ErrAuth: the registry refused floe (401: the credentials are wrong;
//     403: they may not read schemas), or the TLS handshake failed
//     verification either way (the registry's certificate is not signed by
//     the configured CA or not for its host, or the registry refused floe's
//     client certificate). It is a configuration problem: the pipeline
//     stops with the error, which says which setting to check.
//   - ErrNotFramed: from Header only: the value is not in the wire format
//     (see above). The record is a dead letter.
//
// An error in none of the classes is the caller's context ending (it wraps
// context.Canceled or context.DeadlineExceeded) or, from New, a
// configuration that cannot be used (a missing CA file).
//
// With several URLs (a registry cluster's nodes), a request goes to the URL
// that last answered and moves on to the next when one fails in the
// ErrUnreachable class; an answer of another class (not found, refused) is
// the registry's answer and is not asked again elsewhere. The Client does
// not retry otherwise: the pipeline owns the retry policy (pause, back off,
// report health), and the request timeout (timeout, default 10s) bounds
// each request.
//
// # franz-go
//
// The HTTP side is franz-go's schema registry client (pkg/sr): one
// sr.Client per URL does the requests, basic auth, the schema registry
// content type and the decoding of registry error bodies
// (sr.ResponseError); this package adds the caching, the URL failover on
// 5xx (sr only moves to the next URL on a transport error), TLS from files,
// and the classification of errors. Schemas are fetched with sr.Client.Do
// and decoded here rather than with sr.Client.SchemaByID, whose decoding
// fails outright on a schemaType it does not know, and which cannot tell a
// body that is not a registry's (a wrong url) from other failures.
package registry
