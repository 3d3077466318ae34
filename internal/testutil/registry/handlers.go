package registry

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ContentType is the schema registry's content type.
const ContentType = "application/vnd.schemaregistry.v1+json"

// maxBody bounds a request body.
const maxBody = 8 << 20

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, methods map[string]func(w http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			h, ok := methods[r.Method]
			if !ok {
				writeError(w, &APIError{Status: http.StatusMethodNotAllowed, Code: http.StatusMethodNotAllowed, Message: "HTTP 405 Method Not Allowed"})
				return
			}
			h(w, r)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != "/":
			writeError(w, &APIError{Status: http.StatusNotFound, Code: http.StatusNotFound, Message: "HTTP 404 Not Found"})
		case r.Method != http.MethodGet:
			writeError(w, &APIError{Status: http.StatusMethodNotAllowed, Code: http.StatusMethodNotAllowed, Message: "HTTP 405 Method Not Allowed"})
		default:
			writeJSON(w, map[string]any{})
		}
	})
	route("/schemas/types", map[string]func(http.ResponseWriter, *http.Request){
		http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, []string{TypeAvro, TypeJSON, TypeProtobuf})
		},
	})
	route("/schemas/ids/{id}", get(s.schemaByID))
	route("/schemas/ids/{id}/schema", get(s.schemaTextByID))
	route("/schemas/ids/{id}/versions", get(s.versionsByID))
	route("/schemas/ids/{id}/subjects", get(s.subjectsByID))
	route("/subjects", get(s.listSubjects))
	route("/subjects/{subject}", map[string]func(http.ResponseWriter, *http.Request){
		http.MethodPost:   s.lookupSchema,
		http.MethodDelete: s.deleteSubject,
	})
	route("/subjects/{subject}/versions", map[string]func(http.ResponseWriter, *http.Request){
		http.MethodGet:  s.listVersions,
		http.MethodPost: s.register,
	})
	route("/subjects/{subject}/versions/{version}", map[string]func(http.ResponseWriter, *http.Request){
		http.MethodGet:    s.getVersion,
		http.MethodDelete: s.deleteVersion,
	})
	route("/subjects/{subject}/versions/{version}/schema", get(s.getVersionText))
	route("/subjects/{subject}/versions/{version}/referencedby", get(s.referencedBy))
	route("/config", map[string]func(http.ResponseWriter, *http.Request){
		http.MethodGet:    s.getConfig,
		http.MethodPut:    s.putConfig,
		http.MethodDelete: s.deleteConfig,
	})
	route("/config/{subject}", map[string]func(http.ResponseWriter, *http.Request){
		http.MethodGet:    s.getConfig,
		http.MethodPut:    s.putConfig,
		http.MethodDelete: s.deleteConfig,
	})
	route("/compatibility/subjects/{subject}/versions", map[string]func(http.ResponseWriter, *http.Request){
		http.MethodPost: s.checkCompatibility,
	})
	route("/compatibility/subjects/{subject}/versions/{version}", map[string]func(http.ResponseWriter, *http.Request){
		http.MethodPost: s.checkCompatibility,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.count(r.URL.Path)
		if !s.admit(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func get(h func(http.ResponseWriter, *http.Request)) map[string]func(http.ResponseWriter, *http.Request) {
	return map[string]func(http.ResponseWriter, *http.Request){http.MethodGet: h}
}

func (s *Server) count(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[path]++
	s.total++
}

// admit applies the delay, the failure and the authentication; it reports
// whether the request goes on.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) bool {
	if d := time.Duration(s.delay.Load()); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return false
		case <-s.closing:
			return false
		}
	}
	if f := s.fail.Load(); f != nil {
		switch {
		case f.drop:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return false
				}
			}
			panic(http.ErrAbortHandler) // closes the connection (HTTP/1) or resets the stream (HTTP/2)
		case f.hang:
			select {
			case <-r.Context().Done():
			case <-s.closing:
			}
			return false
		default:
			writeError(w, &APIError{Status: f.status, Code: f.status, Message: "injected failure: " + http.StatusText(f.status)})
			return false
		}
	}
	if s.user != "" || s.pass != "" {
		user, pass, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(s.user)) != 1 || subtle.ConstantTimeCompare([]byte(pass), []byte(s.pass)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="SchemaRegistry"`)
			writeError(w, &APIError{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "Unauthorized"})
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", ContentType)
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, &APIError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error()})
		return
	}
	w.Write(b)
}

func writeError(w http.ResponseWriter, e *APIError) {
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(e.Status)
	b, _ := json.Marshal(e)
	w.Write(b)
}

func writeText(w http.ResponseWriter, text string) {
	w.Header().Set("Content-Type", ContentType)
	io.WriteString(w, text)
}

// flag reads a boolean query parameter.
func flag(r *http.Request, name string) bool {
	v, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return v
}

func decodeBody(r *http.Request, v any) *APIError {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return &APIError{Status: http.StatusBadRequest, Code: http.StatusBadRequest, Message: err.Error()}
	}
	if len(body) > maxBody {
		return &APIError{Status: http.StatusRequestEntityTooLarge, Code: CodeSchemaTooLarge, Message: "Schema is too large"}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &APIError{Status: http.StatusBadRequest, Code: http.StatusBadRequest, Message: "Unrecognized request body: " + err.Error()}
	}
	return nil
}

// idParam reads {id}; an id that is not a positive number is not found.
func idParam(r *http.Request) (int, *APIError) {
	raw := r.PathValue("id")
	id, err := strconv.Atoi(raw)
	if err != nil || id < 1 {
		return 0, &APIError{Status: http.StatusNotFound, Code: CodeSchemaNotFound, Message: "Schema " + raw + " not found"}
	}
	return id, nil
}

// schemaJSON is a schema as GET /schemas/ids/{id} and GET
// /subjects/{subject}/versions/{version} answer it.
type schemaJSON struct {
	Subject    string      `json:"subject,omitempty"`
	Version    int         `json:"version,omitempty"`
	ID         int         `json:"id,omitempty"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
	Schema     string      `json:"schema"`
	MaxID      int         `json:"maxId,omitempty"`
}

func toJSON(rec *schemaRec) schemaJSON {
	out := schemaJSON{Schema: rec.text, References: rec.refs}
	if rec.typ != TypeAvro {
		out.SchemaType = rec.typ
	}
	return out
}

func (s *Server) schemaRec(w http.ResponseWriter, r *http.Request) *schemaRec {
	id, aerr := idParam(r)
	if aerr != nil {
		writeError(w, aerr)
		return nil
	}
	rec := s.st.schemas[id]
	if rec == nil {
		writeError(w, schemaNotFound(id))
	}
	return rec
}

func (s *Server) schemaByID(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.schemaRec(w, r)
	if rec == nil {
		return
	}
	out := toJSON(rec)
	if flag(r, "fetchMaxId") {
		out.MaxID = s.st.nextID - 1
	}
	writeJSON(w, out)
}

func (s *Server) schemaTextByID(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec := s.schemaRec(w, r); rec != nil {
		writeText(w, rec.text)
	}
}

type subjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// usages lists the subject versions of schema id, by subject and version.
func (s *Server) usages(id int, deleted bool) []subjectVersion {
	out := []subjectVersion{}
	for name, sub := range s.st.subjects {
		for _, v := range sub.visible(deleted) {
			if v.id == id {
				out = append(out, subjectVersion{name, v.version})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Subject != out[j].Subject {
			return out[i].Subject < out[j].Subject
		}
		return out[i].Version < out[j].Version
	})
	return out
}

func (s *Server) versionsByID(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec := s.schemaRec(w, r); rec != nil {
		writeJSON(w, s.usages(rec.id, flag(r, "deleted")))
	}
}

func (s *Server) subjectsByID(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.schemaRec(w, r)
	if rec == nil {
		return
	}
	out := []string{}
	for _, u := range s.usages(rec.id, flag(r, "deleted")) {
		if len(out) == 0 || out[len(out)-1] != u.Subject {
			out = append(out, u.Subject)
		}
	}
	writeJSON(w, out)
}

func (s *Server) listSubjects(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	deleted, deletedOnly := flag(r, "deleted"), flag(r, "deletedOnly")
	prefix := r.URL.Query().Get("subjectPrefix")
	out := []string{}
	for name, sub := range s.st.subjects {
		if !strings.HasPrefix(name, prefix) || len(sub.versions) == 0 {
			continue
		}
		live := len(sub.visible(false)) > 0
		switch {
		case deletedOnly && len(sub.visible(true)) > len(sub.visible(false)):
			out = append(out, name)
		case deletedOnly:
		case live || deleted:
			out = append(out, name)
		}
	}
	sort.Strings(out)
	writeJSON(w, out)
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	subject := r.PathValue("subject")
	sub := s.st.subjects[subject]
	if sub == nil || len(sub.visible(flag(r, "deleted"))) == 0 {
		writeError(w, subjectNotFound(subject))
		return
	}
	out := []int{}
	for _, v := range sub.visible(flag(r, "deleted")) {
		out = append(out, v.version)
	}
	writeJSON(w, out)
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var in Schema
	if aerr := decodeBody(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, aerr := s.st.register(r.PathValue("subject"), in)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, map[string]int{"id": id})
}

func (s *Server) lookupSchema(w http.ResponseWriter, r *http.Request) {
	var in Schema
	if aerr := decodeBody(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	subject := r.PathValue("subject")
	v, aerr := s.st.lookup(subject, in, flag(r, "deleted"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, s.versionJSON(subject, v))
}

func (s *Server) versionJSON(subject string, v *versionRec) schemaJSON {
	out := toJSON(s.st.schemas[v.id])
	out.Subject, out.Version, out.ID = subject, v.version, v.id
	return out
}

// version finds the request's subject version; it writes the error when
// there is none.
func (s *Server) version(w http.ResponseWriter, r *http.Request) (string, *versionRec) {
	subject := r.PathValue("subject")
	version, aerr := parseVersion(r.PathValue("version"))
	if aerr != nil {
		writeError(w, aerr)
		return "", nil
	}
	v, aerr := s.st.lookupVersion(subject, version, flag(r, "deleted"))
	if aerr != nil {
		writeError(w, aerr)
		return "", nil
	}
	return subject, v
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if subject, v := s.version(w, r); v != nil {
		writeJSON(w, s.versionJSON(subject, v))
	}
}

func (s *Server) getVersionText(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, v := s.version(w, r); v != nil {
		writeText(w, s.st.schemas[v.id].text)
	}
}

func (s *Server) referencedBy(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if subject, v := s.version(w, r); v != nil {
		ids := s.st.referencedBy(subject, v.version)
		if ids == nil {
			ids = []int{}
		}
		writeJSON(w, ids)
	}
}

func (s *Server) deleteSubject(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	versions, aerr := s.st.deleteSubject(r.PathValue("subject"), flag(r, "permanent"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, versions)
}

func (s *Server) deleteVersion(w http.ResponseWriter, r *http.Request) {
	version, aerr := parseVersion(r.PathValue("version"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, aerr := s.st.deleteVersion(r.PathValue("subject"), version, flag(r, "permanent"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, v)
}

func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	subject := r.PathValue("subject")
	if subject == "" {
		writeJSON(w, map[string]string{"compatibilityLevel": s.st.compat})
		return
	}
	if sub := s.st.subjects[subject]; sub != nil && sub.compat != "" {
		writeJSON(w, map[string]string{"compatibilityLevel": sub.compat})
		return
	}
	if flag(r, "defaultToGlobal") {
		writeJSON(w, map[string]string{"compatibilityLevel": s.st.compat})
		return
	}
	writeError(w, apiErr(http.StatusNotFound, CodeSubjectCompatNotSet,
		"Subject '%s' does not have subject-level compatibility configured", subject))
}

func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Compatibility string `json:"compatibility"`
	}
	if aerr := decodeBody(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	level, ok := validLevel(in.Compatibility)
	if !ok {
		writeError(w, apiErr(http.StatusUnprocessableEntity, CodeInvalidCompatibility,
			"Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.setLevel(r.PathValue("subject"), level)
	writeJSON(w, map[string]string{"compatibility": level})
}

func (s *Server) deleteConfig(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	subject := r.PathValue("subject")
	if subject == "" {
		prev := s.st.compat
		s.st.compat = CompatBackward
		writeJSON(w, map[string]string{"compatibility": prev})
		return
	}
	sub := s.st.subjects[subject]
	if sub == nil || sub.compat == "" {
		writeError(w, apiErr(http.StatusNotFound, CodeSubjectCompatNotSet,
			"Subject '%s' does not have subject-level compatibility configured", subject))
		return
	}
	prev := sub.compat
	sub.compat = ""
	writeJSON(w, map[string]string{"compatibility": prev})
}

func (s *Server) checkCompatibility(w http.ResponseWriter, r *http.Request) {
	var in Schema
	if aerr := decodeBody(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	subject := r.PathValue("subject")
	typ, aerr := normalizeType(in.SchemaType)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	refs, aerr := s.st.resolveRefs(in.References)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	cand := &schemaRec{typ: typ, text: in.Schema, refs: refs}
	if err := s.st.validate(cand); err != nil {
		writeError(w, apiErr(http.StatusUnprocessableEntity, CodeInvalidSchema, "Invalid schema %s: %v", shorten(in.Schema), err))
		return
	}
	var msgs []string
	if raw := r.PathValue("version"); raw != "" {
		version, aerr := parseVersion(raw)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		v, aerr := s.st.lookupVersion(subject, version, false)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		level := s.st.level(subject)
		if level != CompatNone && typ == TypeAvro {
			msgs = s.st.checkAgainst(cand, []*versionRec{v}, level)
		}
	} else {
		msgs = s.st.incompatible(subject, cand, "")
	}
	out := map[string]any{"is_compatible": len(msgs) == 0}
	if flag(r, "verbose") {
		if msgs == nil {
			msgs = []string{}
		}
		out["messages"] = msgs
	}
	writeJSON(w, out)
}
