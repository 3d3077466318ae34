package registry

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/avro"
)

// Schema types.
const (
	TypeAvro     = "AVRO"
	TypeProtobuf = "PROTOBUF"
	TypeJSON     = "JSON"
)

// Compatibility levels.
const (
	CompatNone               = "NONE"
	CompatBackward           = "BACKWARD"
	CompatBackwardTransitive = "BACKWARD_TRANSITIVE"
	CompatForward            = "FORWARD"
	CompatForwardTransitive  = "FORWARD_TRANSITIVE"
	CompatFull               = "FULL"
	CompatFullTransitive     = "FULL_TRANSITIVE"
)

// Registry error codes (the error_code of an error body). Errors of no
// specific kind have their HTTP status as their code (401, 404, 405).
const (
	CodeSubjectNotFound       = 40401
	CodeVersionNotFound       = 40402
	CodeSchemaNotFound        = 40403
	CodeSubjectSoftDeleted    = 40404
	CodeSubjectNotSoftDeleted = 40405
	CodeVersionSoftDeleted    = 40406
	CodeVersionNotSoftDeleted = 40407
	CodeSubjectCompatNotSet   = 40408
	CodeIncompatibleSchema    = 409
	CodeInvalidSchema         = 42201
	CodeInvalidVersion        = 42202
	CodeInvalidCompatibility  = 42203
	CodeReferenceExists       = 42206
	CodeIDDoesNotMatch        = 42207
	CodeInvalidSubject        = 42208
	CodeSchemaTooLarge        = 42209
	CodeUnauthorized          = 401
	CodeInternal              = 50001
)

// maxVersion is the highest version number.
const maxVersion = 1<<31 - 1

// Schema is a schema as it is registered: the body of POST
// /subjects/{subject}/versions.
type Schema struct {
	Schema string `json:"schema"`
	// SchemaType is AVRO (or empty), PROTOBUF or JSON.
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
	// ID registers the schema under this id, as a registry in IMPORT mode
	// does (this one always allows it); 0: the next id.
	ID int `json:"id,omitempty"`
}

// Reference is a schema's use of a subject's version. A version of -1 (or
// 0) registers as the subject's latest version at the time.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// APIError is an error answer: the HTTP status and the body's error_code
// and message.
type APIError struct {
	Status  int    `json:"-"`
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %d: %s", e.Status, e.Code, e.Message) }

func apiErr(status, code int, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func subjectNotFound(subject string) *APIError {
	return apiErr(http.StatusNotFound, CodeSubjectNotFound, "Subject '%s' not found.", subject)
}

func versionNotFound(v int) *APIError {
	return apiErr(http.StatusNotFound, CodeVersionNotFound, "Version %d not found.", v)
}

func schemaNotFound(id int) *APIError {
	return apiErr(http.StatusNotFound, CodeSchemaNotFound, "Schema %d not found", id)
}

// schemaRec is a registered schema, by id.
type schemaRec struct {
	id   int
	typ  string
	text string
	refs []Reference // versions resolved
}

func (s *schemaRec) key() string { return contentKey(s.typ, s.text, s.refs) }

func contentKey(typ, text string, refs []Reference) string {
	var b strings.Builder
	b.WriteString(typ)
	b.WriteByte(0)
	b.WriteString(text)
	for _, r := range refs {
		fmt.Fprintf(&b, "\x00%s\x00%s\x00%d", r.Name, r.Subject, r.Version)
	}
	return b.String()
}

type versionRec struct {
	version int
	id      int
	deleted bool
}

type subjectRec struct {
	versions []*versionRec // by version, ascending
	compat   string        // "": the global level
}

// visible returns the subject's versions that are not deleted, or all with
// deleted.
func (s *subjectRec) visible(deleted bool) []*versionRec {
	var out []*versionRec
	for _, v := range s.versions {
		if deleted || !v.deleted {
			out = append(out, v)
		}
	}
	return out
}

func (s *subjectRec) find(version int) *versionRec {
	for _, v := range s.versions {
		if v.version == version {
			return v
		}
	}
	return nil
}

// store is the registry's state. Its methods are called with the server's
// lock held.
type store struct {
	nextID    int
	schemas   map[int]*schemaRec
	byContent map[string]int
	subjects  map[string]*subjectRec
	compat    string
}

func newStore(compat string) *store {
	return &store{nextID: 1, schemas: map[int]*schemaRec{}, byContent: map[string]int{}, subjects: map[string]*subjectRec{}, compat: compat}
}

func normalizeType(t string) (string, *APIError) {
	switch u := strings.ToUpper(t); u {
	case "", TypeAvro:
		return TypeAvro, nil
	case TypeProtobuf, TypeJSON:
		return u, nil
	default:
		return "", apiErr(http.StatusUnprocessableEntity, CodeInvalidSchema, "Invalid schema type %s", t)
	}
}

// parseVersion reads a version: "latest" or "-1" (-1), or 1..2^31-1.
func parseVersion(s string) (int, *APIError) {
	if s == "latest" || s == "-1" {
		return -1, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > maxVersion {
		return 0, apiErr(http.StatusUnprocessableEntity, CodeInvalidVersion,
			"The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", s)
	}
	return v, nil
}

// lookupVersion finds a subject's version (-1: the latest visible).
func (st *store) lookupVersion(subject string, version int, deleted bool) (*versionRec, *APIError) {
	sub := st.subjects[subject]
	if sub == nil || len(sub.visible(deleted)) == 0 {
		return nil, subjectNotFound(subject)
	}
	vis := sub.visible(deleted)
	if version == -1 {
		return vis[len(vis)-1], nil
	}
	for _, v := range vis {
		if v.version == version {
			return v, nil
		}
	}
	return nil, versionNotFound(version)
}

// resolveRefs pins each reference's version and checks that it exists.
func (st *store) resolveRefs(refs []Reference) ([]Reference, *APIError) {
	out := make([]Reference, len(refs))
	for i, r := range refs {
		if r.Name == "" || r.Subject == "" {
			return nil, apiErr(http.StatusUnprocessableEntity, CodeInvalidSchema, "Invalid schema: reference %d needs a name and a subject", i)
		}
		v := r.Version
		if v == 0 {
			v = -1
		}
		rec, err := st.lookupVersion(r.Subject, v, false)
		if err != nil {
			return nil, apiErr(http.StatusUnprocessableEntity, CodeInvalidSchema,
				"Invalid schema: reference %q to subject '%s' version %d: %s", r.Name, r.Subject, r.Version, err.Message)
		}
		out[i] = Reference{Name: r.Name, Subject: r.Subject, Version: rec.version}
	}
	return out, nil
}

// register adds a schema to a subject, or finds it there, and returns its
// id.
func (st *store) register(subject string, in Schema) (int, *APIError) {
	if subject == "" {
		return 0, apiErr(http.StatusUnprocessableEntity, CodeInvalidSubject, "Subject name is invalid")
	}
	typ, aerr := normalizeType(in.SchemaType)
	if aerr != nil {
		return 0, aerr
	}
	if strings.TrimSpace(in.Schema) == "" {
		return 0, apiErr(http.StatusUnprocessableEntity, CodeInvalidSchema, "Empty schema")
	}
	refs, aerr := st.resolveRefs(in.References)
	if aerr != nil {
		return 0, aerr
	}
	cand := &schemaRec{typ: typ, text: in.Schema, refs: refs}
	if err := st.validate(cand); err != nil {
		return 0, apiErr(http.StatusUnprocessableEntity, CodeInvalidSchema, "Invalid schema %s: %v", shorten(in.Schema), err)
	}
	key := cand.key()
	sub := st.subjects[subject]
	if sub != nil {
		for _, v := range sub.visible(false) {
			if st.schemas[v.id].key() == key {
				if in.ID > 0 && in.ID != v.id {
					return 0, apiErr(http.StatusUnprocessableEntity, CodeIDDoesNotMatch, "Schema already registered with id %d instead of input id %d", v.id, in.ID)
				}
				return v.id, nil
			}
		}
	}
	if msgs := st.incompatible(subject, cand, ""); len(msgs) > 0 {
		return 0, apiErr(http.StatusConflict, CodeIncompatibleSchema,
			"Schema being registered is incompatible with an earlier schema for subject \"%s\", details: %s", subject, strings.Join(msgs, "; "))
	}
	id, known := st.byContent[key]
	switch {
	case known && in.ID > 0 && in.ID != id:
		return 0, apiErr(http.StatusUnprocessableEntity, CodeIDDoesNotMatch, "Schema already registered with id %d instead of input id %d", id, in.ID)
	case known:
	case in.ID > 0:
		if _, taken := st.schemas[in.ID]; taken {
			return 0, apiErr(http.StatusUnprocessableEntity, CodeIDDoesNotMatch, "Overwrite new schema with id %d is not permitted", in.ID)
		}
		id = in.ID
	default:
		id = st.nextID
	}
	if !known {
		cand.id = id
		st.schemas[id] = cand
		st.byContent[key] = id
		if id >= st.nextID {
			st.nextID = id + 1
		}
	}
	if sub == nil {
		sub = &subjectRec{}
		st.subjects[subject] = sub
	}
	next := 1
	if n := len(sub.versions); n > 0 {
		next = sub.versions[n-1].version + 1
	}
	sub.versions = append(sub.versions, &versionRec{version: next, id: id})
	return id, nil
}

// lookup finds a schema among a subject's live versions (POST
// /subjects/{subject}).
func (st *store) lookup(subject string, in Schema, deleted bool) (*versionRec, *APIError) {
	sub := st.subjects[subject]
	if sub == nil || len(sub.visible(deleted)) == 0 {
		return nil, subjectNotFound(subject)
	}
	typ, aerr := normalizeType(in.SchemaType)
	if aerr != nil {
		return nil, aerr
	}
	refs, aerr := st.resolveRefs(in.References)
	if aerr != nil {
		return nil, aerr
	}
	key := contentKey(typ, in.Schema, refs)
	for _, v := range sub.visible(deleted) {
		if st.schemas[v.id].key() == key {
			return v, nil
		}
	}
	return nil, apiErr(http.StatusNotFound, CodeSchemaNotFound, "Schema not found")
}

// level is the compatibility level that applies to subject.
func (st *store) level(subject string) string {
	if sub := st.subjects[subject]; sub != nil && sub.compat != "" {
		return sub.compat
	}
	return st.compat
}

// incompatible checks cand against the subject's live versions at its
// compatibility level (or level, when set) and returns why it is not
// compatible. Only Avro is checked.
func (st *store) incompatible(subject string, cand *schemaRec, level string) []string {
	if level == "" {
		level = st.level(subject)
	}
	sub := st.subjects[subject]
	if level == CompatNone || cand.typ != TypeAvro || sub == nil {
		return nil
	}
	live := sub.visible(false)
	if len(live) == 0 {
		return nil
	}
	if !strings.HasSuffix(level, "_TRANSITIVE") {
		live = live[len(live)-1:]
	}
	return st.checkAgainst(cand, live, level)
}

func (st *store) checkAgainst(cand *schemaRec, against []*versionRec, level string) []string {
	newer, err := st.parseAvro(cand)
	if err != nil {
		return []string{err.Error()}
	}
	backward := strings.HasPrefix(level, "BACKWARD") || strings.HasPrefix(level, "FULL")
	forward := strings.HasPrefix(level, "FORWARD") || strings.HasPrefix(level, "FULL")
	var msgs []string
	for _, v := range against {
		old := st.schemas[v.id]
		if old.typ != TypeAvro {
			msgs = append(msgs, fmt.Sprintf("version %d is %s, not AVRO", v.version, old.typ))
			continue
		}
		older, err := st.parseAvro(old)
		if err != nil {
			msgs = append(msgs, err.Error())
			continue
		}
		if backward {
			if err := avro.CheckCompatibility(older, newer); err != nil {
				msgs = append(msgs, fmt.Sprintf("version %d: the new schema cannot read data written with it (%v)", v.version, err))
			}
		}
		if forward {
			if err := avro.CheckCompatibility(newer, older); err != nil {
				msgs = append(msgs, fmt.Sprintf("version %d: it cannot read data written with the new schema (%v)", v.version, err))
			}
		}
	}
	return msgs
}

// validate checks a schema as far as this registry can (see the package
// documentation).
func (st *store) validate(s *schemaRec) error {
	switch s.typ {
	case TypeAvro:
		_, err := st.parseAvro(s)
		return err
	case TypeJSON:
		var v any
		if err := json.Unmarshal([]byte(s.text), &v); err != nil {
			return fmt.Errorf("not JSON: %v", err)
		}
		switch v.(type) {
		case map[string]any, bool:
			return nil
		}
		return fmt.Errorf("a JSON Schema is an object or a boolean")
	case TypeProtobuf:
		return checkProto(s.text)
	}
	return fmt.Errorf("unknown type %s", s.typ)
}

// parseAvro parses an Avro schema with its references, dependencies first.
func (st *store) parseAvro(s *schemaRec) (*avro.Schema, error) {
	var cache avro.SchemaCache
	seen := map[[2]string]bool{}
	var deps func(refs []Reference, depth int) error
	deps = func(refs []Reference, depth int) error {
		if depth > 32 {
			return fmt.Errorf("references nest too deep")
		}
		for _, r := range refs {
			k := [2]string{r.Subject, strconv.Itoa(r.Version)}
			if seen[k] {
				continue
			}
			seen[k] = true
			v, aerr := st.lookupVersion(r.Subject, r.Version, true)
			if aerr != nil {
				return fmt.Errorf("reference %q: %s", r.Name, aerr.Message)
			}
			dep := st.schemas[v.id]
			if err := deps(dep.refs, depth+1); err != nil {
				return err
			}
			if dep.typ != TypeAvro {
				return fmt.Errorf("reference %q is %s, not AVRO", r.Name, dep.typ)
			}
			if _, err := cache.Parse(dep.text); err != nil {
				return fmt.Errorf("reference %q: %v", r.Name, err)
			}
		}
		return nil
	}
	if err := deps(s.refs, 0); err != nil {
		return nil, err
	}
	return cache.Parse(s.text)
}

// checkProto is a shallow check of a .proto file: some text that is not
// JSON (a common mistake: an Avro schema registered as PROTOBUF), with
// balanced braces outside strings and comments, that declares something.
func checkProto(text string) error {
	t := strings.TrimSpace(text)
	if strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") || strings.HasPrefix(t, `"`) {
		return fmt.Errorf("a .proto file does not start with %q (is it an Avro or JSON schema?)", t[:1])
	}
	depth := 0
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c == '/' && i+1 < len(t) && t[i+1] == '/':
			for i < len(t) && t[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(t) && t[i+1] == '*':
			end := strings.Index(t[i+2:], "*/")
			if end < 0 {
				return fmt.Errorf("unterminated comment")
			}
			i += end + 3
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(t) && t[j] != c {
				if t[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(t) {
				return fmt.Errorf("unterminated string")
			}
			i = j
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth < 0 {
				return fmt.Errorf("unbalanced '}'")
			}
		}
	}
	if depth != 0 {
		return fmt.Errorf("unbalanced '{'")
	}
	for _, kw := range strings.Fields(strings.NewReplacer("{", " ", "}", " ", ";", " ", "=", " ").Replace(t)) {
		switch kw {
		case "syntax", "edition", "package", "import", "message", "enum", "service", "option":
			return nil
		}
	}
	return fmt.Errorf("declares nothing (no syntax, package, import, message, enum or service)")
}

// referencedBy lists the ids of the live versions' schemas that reference
// subject's version.
func (st *store) referencedBy(subject string, version int) []int {
	var ids []int
	for _, sub := range st.subjects {
		for _, v := range sub.visible(false) {
			for _, r := range st.schemas[v.id].refs {
				if r.Subject == subject && r.Version == version && !slices.Contains(ids, v.id) {
					ids = append(ids, v.id)
				}
			}
		}
	}
	sort.Ints(ids)
	return ids
}

// deleteVersion deletes one version of a subject, softly or for good.
func (st *store) deleteVersion(subject string, version int, permanent bool) (int, *APIError) {
	sub := st.subjects[subject]
	if sub == nil || len(sub.versions) == 0 {
		return 0, subjectNotFound(subject)
	}
	var v *versionRec
	if version == -1 {
		vis := sub.visible(permanent)
		if len(vis) == 0 {
			return 0, subjectNotFound(subject)
		}
		v = vis[len(vis)-1]
	} else if v = sub.find(version); v == nil {
		return 0, versionNotFound(version)
	}
	if !permanent {
		if v.deleted {
			return 0, apiErr(http.StatusNotFound, CodeVersionSoftDeleted,
				"Subject '%s' Version %d was soft deleted. Set permanent=true to delete permanently", subject, v.version)
		}
		if ids := st.referencedBy(subject, v.version); len(ids) > 0 {
			return 0, apiErr(http.StatusUnprocessableEntity, CodeReferenceExists,
				"One or more references exist to the schema {subject=%s,version=%d}: ids %v", subject, v.version, ids)
		}
		v.deleted = true
		return v.version, nil
	}
	if !v.deleted {
		return 0, apiErr(http.StatusNotFound, CodeVersionNotSoftDeleted,
			"Subject '%s' Version %d was not deleted first before being permanently deleted", subject, v.version)
	}
	sub.versions = slices.DeleteFunc(sub.versions, func(x *versionRec) bool { return x == v })
	st.dropUnused(v.id)
	if len(sub.versions) == 0 {
		delete(st.subjects, subject)
	}
	return v.version, nil
}

// deleteSubject deletes every version of a subject, softly or for good.
func (st *store) deleteSubject(subject string, permanent bool) ([]int, *APIError) {
	sub := st.subjects[subject]
	if sub == nil || len(sub.versions) == 0 {
		return nil, subjectNotFound(subject)
	}
	live := sub.visible(false)
	var out []int
	if !permanent {
		if len(live) == 0 {
			return nil, apiErr(http.StatusNotFound, CodeSubjectSoftDeleted,
				"Subject '%s' was soft deleted. Set permanent=true to delete permanently", subject)
		}
		for _, v := range live {
			if ids := st.referencedBy(subject, v.version); len(ids) > 0 {
				return nil, apiErr(http.StatusUnprocessableEntity, CodeReferenceExists,
					"One or more references exist to the schema {subject=%s,version=%d}: ids %v", subject, v.version, ids)
			}
		}
		for _, v := range live {
			v.deleted = true
			out = append(out, v.version)
		}
		return out, nil
	}
	if len(live) > 0 {
		return nil, apiErr(http.StatusNotFound, CodeSubjectNotSoftDeleted,
			"Subject '%s' was not deleted first before being permanently deleted", subject)
	}
	for _, v := range sub.versions {
		out = append(out, v.version)
	}
	delete(st.subjects, subject)
	for _, v := range sub.versions {
		st.dropUnused(v.id)
	}
	return out, nil
}

// dropUnused forgets schema id once no subject version uses it: a hard
// delete removes the id (its number is never given out again).
func (st *store) dropUnused(id int) {
	for _, sub := range st.subjects {
		for _, v := range sub.versions {
			if v.id == id {
				return
			}
		}
	}
	if s := st.schemas[id]; s != nil {
		delete(st.byContent, s.key())
		delete(st.schemas, id)
	}
}

func validLevel(l string) (string, bool) {
	switch u := strings.ToUpper(l); u {
	case CompatNone, CompatBackward, CompatBackwardTransitive, CompatForward, CompatForwardTransitive, CompatFull, CompatFullTransitive:
		return u, true
	}
	return "", false
}

func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// setLevel sets a subject's level, or the global one for subject "".
func (st *store) setLevel(subject, level string) {
	if subject == "" {
		st.compat = level
		return
	}
	sub := st.subjects[subject]
	if sub == nil {
		sub = &subjectRec{}
		st.subjects[subject] = sub
	}
	sub.compat = level
}
