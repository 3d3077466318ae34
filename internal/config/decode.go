package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/floelake/floe/internal/conf"
)

// A configuration file is decoded in two steps, so that every problem in
// it is reported at once and by its place in the file: YAML parses it into
// a node tree, then a walk of that tree against the Go type, guided by the
// yaml tags, sets each field. The walk goes on past a bad value: a value of
// the wrong type and an unknown key are problems of their field, each a
// *conf.FieldError with the field's path and position, and the rest of the
// file is still decoded. Each value that is not a section or a list (a
// string, a number, a duration) is decoded by YAML itself, one at a time,
// so values mean what they mean to YAML. The walk records where each path
// is in the file, so that problems found later (validation) can say where
// their field is.

// maxVisits bounds the nodes one walk visits: aliases can make a small file
// expand to an exponentially larger tree.
const maxVisits = 1 << 20

// document is a decoded configuration file: where each field is, and what
// was wrong with it.
type document struct {
	file string
	// pos is the position of each path that is in the file: a field's key,
	// a list element's first character.
	pos map[string]conf.Pos
	// errs are the problems found decoding, in the order of the walk.
	errs []error
	// bad lists the paths of the fields that did not decode.
	bad []string

	visits int
	// expanding holds the aliases and merges being walked, to stop at one
	// that contains itself.
	expanding map[*yaml.Node]bool
}

// posError is a problem of the document rather than of one field: a YAML
// syntax error, a document that is not a map.
type posError struct {
	conf.Pos
	Reason string
}

func (e *posError) Error() string {
	if e.Line > 0 {
		return "config: " + e.Pos.String() + ": " + e.Reason
	}
	if e.File != "" {
		return "config: " + e.File + ": " + e.Reason
	}
	return "config: " + e.Reason
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// syntaxError places a YAML syntax error in the file. YAML numbers the
// lines of its parser's errors from 0 and those of its scanner from 1, and
// leaves out a 0 (so the first line has no number); an error at the end
// of the file is on the line after the last. The errors it finds while
// building the tree (an unknown anchor) have no line.
func syntaxError(name string, raw []byte, err error) *posError {
	e := &posError{Pos: conf.Pos{File: name}, Reason: err.Error()}
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return e
	}
	e.Reason = m[2]
	line, _ := strconv.Atoi(m[1])
	switch {
	case strings.HasPrefix(e.Reason, "unknown anchor ") || strings.HasPrefix(e.Reason, "attempted to go past"):
		return e
	case parserProblem(e.Reason):
		line++
	case line == 0:
		line = 1
	}
	e.Line = max(1, min(line, lastLine(raw)))
	return e
}

// lastLine is the number of lines in raw, a final line break starting no
// other, counting lines as YAML does: a line ends at \n, \r\n, \r, or a
// Unicode line or paragraph separator (NEL, LS, PS).
func lastLine(raw []byte) int {
	lines, open := 0, false
	for i := 0; i < len(raw); i++ {
		n := 0
		switch {
		case raw[i] == '\r' && i+1 < len(raw) && raw[i+1] == '\n':
			n = 2
		case raw[i] == '\n' || raw[i] == '\r':
			n = 1
		case bytes.HasPrefix(raw[i:], []byte("\u0085")):
			n = 2
		case bytes.HasPrefix(raw[i:], []byte("\u2028")), bytes.HasPrefix(raw[i:], []byte("\u2029")):
			n = 3
		}
		if n == 0 {
			open = true
			continue
		}
		lines++
		open = false
		i += n - 1
	}
	if open {
		lines++
	}
	return lines
}

// parserProblem reports whether a YAML syntax error comes from its parser
// rather than its scanner.
func parserProblem(reason string) bool {
	for _, p := range []string{
		"did not find expected ',' or ']'", "did not find expected ',' or '}'",
		"did not find expected '-' indicator", "did not find expected <document start>",
		"did not find expected <stream-start>", "did not find expected key",
		"did not find expected node content", "found duplicate %TAG directive",
		"found duplicate %YAML directive", "found incompatible YAML document",
		"found undefined tag handle",
	} {
		if reason == p {
			return true
		}
	}
	return false
}

// decodeDocument decodes the YAML in raw over cfg. The name of the file, if
// any, goes into the positions. A syntax error, or a document that is not
// a map, is returned as a *posError, and nothing is decoded.
func decodeDocument(name string, raw []byte, cfg *Config) (*document, error) {
	doc := &document{file: name, pos: map[string]conf.Pos{}, expanding: map[*yaml.Node]bool{}}
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(raw)).Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return doc, nil
		}
		return nil, syntaxError(name, raw, err)
	}
	n := &root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return doc, nil
		}
		n = n.Content[0]
	}
	if r := doc.resolve(n); r == nil || (r.Kind != yaml.MappingNode && !isNull(r)) {
		return nil, &posError{Pos: doc.at(n), Reason: "want a map of sections (" + strings.Join(keysOf(reflect.TypeOf(*cfg)), ", ") + "), got " + describeNode(r)}
	}
	doc.value(n, n, reflect.ValueOf(cfg).Elem(), "")
	return doc, nil
}

// at is the position of n in the file.
func (d *document) at(n *yaml.Node) conf.Pos {
	return conf.Pos{File: d.file, Line: n.Line, Column: n.Column}
}

// fail records a problem of the field at path, whose key (or, for a list
// element, whose value) is at.
func (d *document) fail(path string, at *yaml.Node, format string, args ...any) {
	if path == "" {
		// The document itself: no field to name.
		d.errs = append(d.errs, &posError{Pos: d.at(at), Reason: fmt.Sprintf(format, args...)})
		return
	}
	d.errs = append(d.errs, &conf.FieldError{Field: path, Reason: fmt.Sprintf(format, args...), Pos: d.at(at)})
	d.bad = append(d.bad, path)
}

// resolve follows aliases to the node they name; nil for an alias that
// contains itself.
func (d *document) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 100 {
			return nil
		}
		n = n.Alias
	}
	return n
}

// value decodes n into v, the field at path; key is the node the field's
// position is taken from (its key, or n itself for a list element).
func (d *document) value(key, n *yaml.Node, v reflect.Value, path string) {
	if d.visits++; d.visits > maxVisits {
		if d.visits == maxVisits+1 {
			d.fail(path, key, "aliases expand to more than %d values", maxVisits)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		if d.expanding[n] || n.Alias == nil {
			d.fail(path, key, "%s", containsItself(n))
			return
		}
		d.expanding[n] = true
		defer delete(d.expanding, n)
		d.value(key, n.Alias, v, path)
		return
	}
	if isLeaf(v) {
		d.leaf(key, n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(key, n, v.Elem(), path)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.mismatch(key, n, v, path)
			return
		}
		d.mapping(n, path, map[string]bool{}, func(k string, kn, vn *yaml.Node) {
			if f, ok := fieldByKey(v, k); ok {
				d.value(kn, vn, f, fieldPath(path, k))
			} else {
				d.unknown(kn, k, v.Type(), path)
			}
		})
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.mismatch(key, n, v, path)
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		d.mapping(n, path, map[string]bool{}, func(k string, kn, vn *yaml.Node) {
			mk := reflect.ValueOf(k).Convert(v.Type().Key())
			e := reflect.New(v.Type().Elem()).Elem()
			if old := v.MapIndex(mk); old.IsValid() {
				e.Set(old)
			}
			d.value(kn, vn, e, fieldPath(path, k))
			v.SetMapIndex(mk, e)
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.mismatch(key, n, v, path)
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			at := fmt.Sprintf("%s[%d]", path, i)
			d.record(at, e)
			if r := d.resolve(e); isNull(r) && !nullable(s.Index(i)) {
				// YAML would drop the element, and the ones after it
				// would move up.
				d.fail(at, e, "want %s, got null", describeType(s.Index(i).Type()))
				continue
			}
			d.value(e, e, s.Index(i), at)
		}
		v.Set(s)
	default:
		d.leaf(key, n, v, path)
	}
}

// mapping walks the key/value pairs of a map node in order, then what it
// merges (<<: *anchor): a key set in the map itself, or by an earlier
// merge, wins over one merged later. set holds the keys already set. Each
// pair goes to use.
func (d *document) mapping(n *yaml.Node, path string, set map[string]bool, use func(k string, kn, vn *yaml.Node)) {
	var merge, mergeKey *yaml.Node
	first := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if isMerge(kn) {
			if merge != nil {
				d.fail(fieldPath(path, "<<"), kn, "duplicate key; first at line %d", mergeKey.Line)
				continue
			}
			merge, mergeKey = vn, kn
			continue
		}
		k, ok := d.key(kn, path)
		if !ok {
			continue
		}
		if f, dup := first[k]; dup {
			d.fail(fieldPath(path, k), kn, "duplicate key; first at line %d", f.Line)
			continue
		}
		first[k] = kn
		if set[k] {
			continue
		}
		set[k] = true
		d.record(fieldPath(path, k), kn)
		use(k, kn, vn)
	}
	if merge == nil {
		return
	}
	if d.expanding[merge] {
		d.fail(fieldPath(path, "<<"), mergeKey, "%s", containsItself(merge))
		return
	}
	d.expanding[merge] = true
	defer delete(d.expanding, merge)
	m := d.resolve(merge)
	var sources []*yaml.Node
	switch {
	case m != nil && m.Kind == yaml.MappingNode:
		sources = []*yaml.Node{m}
	case m != nil && m.Kind == yaml.SequenceNode:
		sources = m.Content
	}
	if sources == nil {
		d.fail(fieldPath(path, "<<"), mergeKey, "want a map or a list of maps to merge, got %s", describeNode(m))
		return
	}
	for _, s := range sources {
		if d.visits++; d.visits > maxVisits {
			return
		}
		if s.Kind == yaml.AliasNode && d.expanding[s] {
			d.fail(fieldPath(path, "<<"), mergeKey, "%s", containsItself(s))
			continue
		}
		r := d.resolve(s)
		if r == nil || r.Kind != yaml.MappingNode {
			d.fail(fieldPath(path, "<<"), mergeKey, "want a map or a list of maps to merge, got %s", describeNode(r))
			continue
		}
		if s.Kind == yaml.AliasNode {
			d.expanding[s] = true
		}
		d.mapping(r, path, set, use)
		if s.Kind == yaml.AliasNode {
			delete(d.expanding, s)
		}
	}
}

// key returns the name a key node holds, as YAML reads a string.
func (d *document) key(kn *yaml.Node, path string) (string, bool) {
	r := d.resolve(kn)
	if r == nil || r.Kind != yaml.ScalarNode || isNull(r) {
		d.fail(path, kn, "want a name as the key, got %s", describeNode(r))
		return "", false
	}
	var k string
	if err := r.Decode(&k); err != nil {
		d.fail(path, kn, "want a name as the key, got %s", describeNode(r))
		return "", false
	}
	return k, true
}

// record notes where path is, unless it is already known (a key of the map
// itself comes before one it merges).
func (d *document) record(path string, n *yaml.Node) {
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = d.at(n)
	}
}

// leaf decodes a single value with YAML's own rules, into a copy of v so
// that a null leaves v as it was and a bad value leaves it unchanged.
func (d *document) leaf(key, n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode && singleValue(v.Type()) {
		d.mismatch(key, n, v, path)
		return
	}
	if fractional(n, v.Type()) {
		// YAML would drop the fraction.
		d.mismatch(key, n, v, path)
		return
	}
	tmp := reflect.New(v.Type())
	tmp.Elem().Set(v)
	if err := n.Decode(tmp.Interface()); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			d.mismatch(key, n, v, path)
			return
		}
		d.fail(path, key, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return
	}
	v.Set(tmp.Elem())
}

// fractional reports whether n is a number with a fraction bound for an
// integer that does not decode itself.
func fractional(n *yaml.Node, t reflect.Type) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!float" || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
	default:
		return false
	}
	var f float64
	if err := n.Decode(&f); err != nil {
		return false
	}
	return f != math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f)
}

// mismatch records a value of the wrong kind for v. A null fits anything:
// it leaves a section or a value as it is and empties a list or a map, as
// in YAML.
func (d *document) mismatch(key, n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		switch v.Kind() {
		case reflect.Map, reflect.Slice, reflect.Pointer, reflect.Interface:
			v.Set(reflect.Zero(v.Type()))
		}
		return
	}
	want := describeType(v.Type())
	if v.Kind() == reflect.Slice && n.Kind == yaml.ScalarNode && len(n.Value) <= 40 && !strings.ContainsAny(n.Value, ",[]{}#&*!|>'\"%@`\n") {
		want += fmt.Sprintf(" such as [%s]", n.Value)
	}
	d.fail(path, key, "want %s, got %s", want, describeNode(n))
}

// unknown records a key that names no field of t, suggesting the closest
// name or else listing the names t has.
func (d *document) unknown(kn *yaml.Node, k string, t reflect.Type, path string) {
	names := keysOf(t)
	if s := closest(k, names); s != "" {
		d.fail(fieldPath(path, k), kn, "unknown field; did you mean %s?", s)
		return
	}
	d.fail(fieldPath(path, k), kn, "unknown field; allowed: %s", strings.Join(names, ", "))
}

func containsItself(n *yaml.Node) string {
	if n.Kind == yaml.AliasNode {
		return "alias *" + n.Value + " contains itself"
	}
	return "merge contains itself"
}

// isMerge reports whether a key is YAML's merge key, as YAML decides it.
func isMerge(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "<<" && (n.Tag == "" || n.Tag == "!" || n.ShortTag() == "!!merge")
}

func isNull(n *yaml.Node) bool {
	return n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

var textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
var yamlUnmarshaler = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// nullable reports whether YAML decodes a null into v (as nil).
func nullable(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
		return true
	}
	return false
}

// singleValue reports whether a value of t is one scalar in YAML: neither
// a collection nor a type that decodes itself from any node.
func singleValue(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(yamlUnmarshaler) {
		return false
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Array, reflect.Pointer, reflect.Interface:
		return false
	}
	return true
}

// isLeaf reports whether v is decoded by YAML as a whole: a type that
// decodes itself, a single value, or a map whose keys are not names.
func isLeaf(v reflect.Value) bool {
	pt := reflect.PointerTo(v.Type())
	if pt.Implements(textUnmarshaler) || pt.Implements(yamlUnmarshaler) {
		return true
	}
	switch v.Kind() {
	case reflect.Struct, reflect.Slice, reflect.Pointer:
		return false
	case reflect.Map:
		return v.Type().Key().Kind() != reflect.String
	}
	return true
}

// describeType says what a value of t looks like, for "want ...".
func describeType(t reflect.Type) string {
	if d, ok := reflect.Zero(t).Interface().(interface{ Describe() string }); ok {
		return d.Describe()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a map"
	case reflect.Pointer:
		return describeType(t.Elem())
	}
	return "a single value"
}

// describeNode says what a node is, for "got ...".
func describeNode(n *yaml.Node) string {
	switch {
	case n == nil:
		return "an alias that contains itself"
	case n.Kind == yaml.MappingNode:
		return "a map"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case isNull(n):
		return "null"
	case n.Kind == yaml.ScalarNode:
		if r := []rune(n.Value); len(r) > 60 {
			return strconv.Quote(string(r[:57])) + "..."
		}
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// fieldByKey returns the field of struct v whose YAML key is k.
func fieldByKey(v reflect.Value, k string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if name, ok := yamlKey(t.Field(i)); ok && name == k {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// keysOf lists the YAML keys of struct t, in order.
func keysOf(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		if name, ok := yamlKey(t.Field(i)); ok {
			out = append(out, name)
		}
	}
	return out
}

// yamlKey is the key of a struct field as YAML names it: its tag, or its
// name in lower case; none for unexported fields and "-".
func yamlKey(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch name {
	case "-":
		return "", false
	case "":
		return strings.ToLower(f.Name), true
	}
	return name, true
}

// plainKey matches keys that need no quoting in a path.
var plainKey = regexp.MustCompile(`^([A-Za-z0-9_-]+|<<)$`)

// fieldPath is the path of key k in the section at path; a key that is not
// a plain name is quoted.
func fieldPath(path, k string) string {
	if !plainKey.MatchString(k) {
		k = strconv.Quote(k)
	}
	return conf.Join(path, k)
}

// closest returns the name nearest to k by edit distance (ignoring case),
// if it is near enough to be what was meant.
func closest(k string, names []string) string {
	best, bestD := "", -1
	lk := strings.ToLower(k)
	for _, n := range names {
		dist := editDistance(lk, n)
		if bestD < 0 || dist < bestD {
			best, bestD = n, dist
		}
	}
	limit := len([]rune(k)) / 4
	if limit < 1 {
		limit = 1
	}
	if limit > 3 {
		limit = 3
	}
	if bestD < 0 || bestD > limit {
		return ""
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and swaps
// of adjacent characters that turn a into b (optimal string alignment).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 1 << 20
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// position returns where the field at path is in the file, if it is.
func (d *document) position(path string) (conf.Pos, bool) {
	p, ok := d.pos[path]
	return p, ok
}

// related reports whether a and b are the same path or one contains the
// other.
func related(a, b string) bool {
	return within(a, b) || within(b, a)
}

// within reports whether path is base or a path inside it.
func within(path, base string) bool {
	if !strings.HasPrefix(path, base) {
		return false
	}
	rest := path[len(base):]
	return rest == "" || base == "" || rest[0] == '.' || rest[0] == '['
}

// sortByPosition orders errs as their positions are in the file; errors
// without a position keep their order, after the others.
func sortByPosition(errs []error) {
	pos := func(e error) conf.Pos {
		var fe *conf.FieldError
		var pe *posError
		switch {
		case errors.As(e, &fe):
			return fe.Pos
		case errors.As(e, &pe):
			return pe.Pos
		}
		return conf.Pos{}
	}
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := pos(errs[i]), pos(errs[j])
		switch {
		case a.Line == 0:
			return false
		case b.Line == 0:
			return true
		case a.Line != b.Line:
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}
