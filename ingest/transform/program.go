package transform

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/transform/dedup"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/schema"
)

// Program is a transform compiled against its input schema: the filter,
// the output columns and where each comes from. It is immutable and shared;
// each worker evaluates it with a Runner of its own.
type Program struct {
	in     *iceberg.Schema
	vars   map[string]variable
	filter cel.Program
	// outs are the output columns, in order.
	outs []outCol
	// window, if set, aggregates the output rows into windows: the
	// table's rows are the windows.
	window *windowPlan
	// dedup, if set, drops duplicates (see DedupConfig).
	dedup *dedupPlan
}

// outCol is one output column: an input column passed through (from >= 0)
// or a computed one.
type outCol struct {
	field iceberg.NestedField
	from  int
	// computed columns:
	index int // in Config.Columns
	prg   cel.Program
	kind  outKind
}

// Compile checks cfg against the input schema (the pipeline's declared
// columns and Kafka metadata columns) and compiles its expressions. Every
// problem is reported, by field relative to the transform section: a
// column that does not exist, an expression that does not parse or
// type-check, a type a computed column cannot take.
func Compile(cfg Config, in *iceberg.Schema) (*Program, error) {
	var pr conf.Problems
	env, vars, err := newEnv(in)
	if err != nil {
		return nil, err
	}
	p := &Program{in: in, vars: vars}
	if cfg.Filter != "" {
		ast, iss := env.Compile(cfg.Filter)
		switch {
		case iss.Err() != nil:
			pr.Addf("filter", "%s", exprError(iss.Err(), in))
		case !boolKind(ast.OutputType().Kind()):
			pr.Addf("filter", "must be a boolean expression, got %s", ast.OutputType())
		default:
			if p.filter, err = program(env, ast); err != nil {
				pr.Addf("filter", "%v", err)
			}
		}
	}
	inNames := map[string]bool{}
	for _, f := range in.Fields() {
		inNames[f.Name] = true
	}
	dropped := map[string]bool{}
	for i, name := range cfg.Drop {
		switch {
		case !inNames[name]:
			pr.Addf(fmt.Sprintf("drop[%d]", i), "no input column %q (the columns are %s)", name, columnList(in))
		case dropped[name]:
			pr.Addf(fmt.Sprintf("drop[%d]", i), "column %q is listed twice", name)
		case cfg.Rename[name] != "":
			pr.Addf(fmt.Sprintf("drop[%d]", i), "column %q is also renamed", name)
		}
		dropped[name] = true
	}
	names := map[string]string{} // output name -> where it comes from, for messages
	for _, from := range sortedKeys(cfg.Rename) {
		to := cfg.Rename[from]
		field := "rename." + from
		switch {
		case !inNames[from]:
			pr.Addf(field, "no input column %q (the columns are %s)", from, columnList(in))
		case to == "":
			pr.Addf(field, "must name the column's new name")
		case to != from && inNames[to] && cfg.Rename[to] == "" && !dropped[to]:
			pr.Addf(field, "the output already has a column %q (drop or rename that one)", to)
		case names[to] != "":
			pr.Addf(field, "the output already has a column %q (from %s)", to, names[to])
		default:
			names[to] = "rename." + from
		}
	}
	for i, f := range in.Fields() {
		if dropped[f.Name] {
			continue
		}
		out := f
		out.Name = cmpOr(cfg.Rename[f.Name], f.Name)
		if cfg.Rename[f.Name] == "" {
			names[out.Name] = "the input"
		}
		p.outs = append(p.outs, outCol{field: out, from: i})
	}
	for i, c := range cfg.Columns {
		field := fmt.Sprintf("columns[%d]", i)
		switch {
		case c.Name == "":
			pr.Addf(field+".name", "must not be empty")
			continue
		case names[c.Name] != "":
			pr.Addf(field+".name", "the output already has a column %q (from %s); drop or rename that one first", c.Name, names[c.Name])
			continue
		case strings.TrimSpace(c.Expr) == "":
			pr.Addf(field+".expr", "must not be empty")
			continue
		}
		names[c.Name] = field
		ast, iss := env.Compile(c.Expr)
		if iss.Err() != nil {
			pr.Addf(field+".expr", "%s", exprError(iss.Err(), in))
			continue
		}
		kind := ast.OutputType().Kind()
		typ := c.Type
		if typ == "" {
			var ok bool
			if typ, ok = defaultOutType(kind); !ok {
				pr.Addf(field+".type", "the expression's type is %s; declare the column's type (%s)", ast.OutputType(), outTypeNames)
				continue
			}
		}
		ot, ok := outTypes[typ]
		if !ok {
			pr.Addf(field+".type", "must be %s, got %q", outTypeNames, typ)
			continue
		}
		if !ot.kind.accepts(kind) {
			pr.Addf(field+".type", "a %s column cannot hold the expression's %s", typ, ast.OutputType())
			continue
		}
		prg, err := program(env, ast)
		if err != nil {
			pr.Addf(field+".expr", "%v", err)
			continue
		}
		p.outs = append(p.outs, outCol{
			field: iceberg.NestedField{Name: c.Name, Type: ot.typ, Doc: "computed: " + c.Expr},
			from:  -1, index: i, prg: prg, kind: ot.kind,
		})
	}
	if cfg.Dedup != nil {
		p.dedup = compileDedup(&pr, env, in, cfg.Dedup)
	}
	if cfg.Window != nil && pr.Err() == nil {
		p.window = compileWindow(&pr, cfg.Window, cfg.State, p.outs)
	} else if cfg.Window == nil && cfg.State != (StateConfig{}) {
		pr.Addf("state", "applies to window aggregation only (window:)")
	}
	if err := pr.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// program plans an expression. CEL has no unbounded loops (a comprehension
// runs over a list, here made of the record's own values), so an
// evaluation's work is bounded by the expression and the record; CEL's cost
// tracking, which would bound it further, costs more than the evaluation
// itself and is left off.
func program(env *cel.Env, ast *cel.Ast) (cel.Program, error) {
	return env.Program(ast, cel.EvalOptions(cel.OptOptimize))
}

func boolKind(k types.Kind) bool {
	return k == types.BoolKind || k == types.DynKind
}

// exprError says what is wrong with an expression, and which columns
// expressions can read when it names another.
func exprError(err error, in *iceberg.Schema) string {
	msg := strings.TrimSpace(err.Error())
	if strings.Contains(msg, "undeclared reference") {
		msg += fmt.Sprintf(" (expressions read the top-level columns %s; struct, list and map columns, "+
			"and names that are not identifiers, cannot be read)", readableList(in))
	}
	return msg
}

func readableList(in *iceberg.Schema) string {
	var names []string
	for _, f := range in.Fields() {
		if celIdent.MatchString(f.Name) && !slices.Contains(celReserved, f.Name) && celType(f) != nil {
			names = append(names, f.Name)
		}
	}
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}

func columnList(in *iceberg.Schema) string {
	names := make([]string, 0, in.NumFields())
	for _, f := range in.Fields() {
		names = append(names, f.Name)
	}
	return strings.Join(names, ", ")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Columns lists the output columns' names, in order.
func (p *Program) Columns() []string {
	names := make([]string, len(p.outs))
	for i, o := range p.outs {
		names[i] = o.field.Name
	}
	return names
}

// Passes reports whether output column name is input column name passed
// through unchanged (not renamed, not computed).
func (p *Program) Passes(name string) bool {
	for _, o := range p.outs {
		if o.from >= 0 && o.field.Name == name && p.in.Field(o.from).Name == name {
			return true
		}
	}
	return false
}

// Filters reports whether the program has a filter.
func (p *Program) Filters() bool { return p.filter != nil }

// TableSchema is the schema of the table the program writes to, with fresh
// field ids: the output's with key as its identifier fields, or a window
// table's (key must then be empty: a window table is keyed by its group
// columns and window_start).
func (p *Program) TableSchema(key []string) (*iceberg.Schema, error) {
	if p.window == nil {
		return p.OutputSchema(key)
	}
	if len(key) > 0 {
		return nil, fmt.Errorf("key: a window table is keyed by its group columns and %s; remove key", ColWindowStart)
	}
	return p.windowSchema()
}

// OutputSchema is the schema of the transform's output rows (before any
// window aggregation), with fresh field ids and key as its identifier
// fields.
func (p *Program) OutputSchema(key []string) (*iceberg.Schema, error) {
	fields := make([]iceberg.NestedField, len(p.outs))
	for i, o := range p.outs {
		fields[i] = o.field
		fields[i].ID = 0
	}
	fresh, err := iceberg.AssignFreshSchemaIDs(iceberg.NewSchema(0, fields...), nil)
	if err != nil {
		return nil, fmt.Errorf("transform: output schema: %w", err)
	}
	ids := make([]int, 0, len(key))
	for i, k := range key {
		f, ok := fresh.FindFieldByName(k)
		if !ok || slices.IndexFunc(fresh.Fields(), func(t iceberg.NestedField) bool { return t.Name == k }) < 0 {
			return nil, fmt.Errorf("key[%d]: the transform's output has no top-level column %q", i, k)
		}
		if err := schema.CheckIdentifier(f); err != nil {
			return nil, fmt.Errorf("key[%d]: %w", i, err)
		}
		ids = append(ids, f.ID)
	}
	return iceberg.NewSchemaWithIdentifiers(0, ids, fresh.Fields()...), nil
}

// Runner evaluates a Program on the rows of one decoder, and appends its
// output rows to builders of a table's schema. It is used by one goroutine.
type Runner struct {
	p   *Program
	dec *decode.JSONDecoder
	act activation
	// src[j] is the output column of table field j, -1 for a table column
	// the output does not have (it gets nulls).
	src []int
	// cells holds the computed columns' values of the row Eval computed,
	// by output column.
	cells []decode.Cell
	arena []byte
	proj  *decode.Projector
	// computed lists the table fields of computed columns, with their
	// output columns; nulls the table fields that get nulls.
	computed [][2]int
	nulls    []int
	hasher   dedup.Hasher
}

// NewRunner binds p to dec, a decoder of p's input schema, and to tbl, the
// schema of the table the rows go to. The table must have every output
// column, by name and with its type; a table column the output does not
// have must be optional (it is null in every row the program writes).
func (p *Program) NewRunner(dec *decode.JSONDecoder, tbl *iceberg.Schema) (*Runner, error) {
	asc, err := table.SchemaToArrowSchema(tbl, nil, true, false)
	if err != nil {
		return nil, err
	}
	r := &Runner{p: p, dec: dec, act: activation{vars: p.vars, row: dec}, cells: make([]decode.Cell, len(p.outs))}
	byName := map[string]int{}
	for i, o := range p.outs {
		byName[o.field.Name] = i
	}
	var problems []string
	var from, to []int
	for j, f := range tbl.Fields() {
		i, ok := byName[f.Name]
		if !ok {
			r.src = append(r.src, -1)
			if f.Required {
				problems = append(problems, fmt.Sprintf("the table's required column %q is not in the output", f.Name))
			}
			r.nulls = append(r.nulls, j)
			continue
		}
		delete(byName, f.Name)
		r.src = append(r.src, i)
		o := p.outs[i]
		if !o.field.Type.Equals(f.Type) {
			problems = append(problems, fmt.Sprintf("column %q is %s in the table, %s in the output", f.Name, f.Type, o.field.Type))
			continue
		}
		if o.from >= 0 {
			if f.Required && !o.field.Required {
				problems = append(problems, fmt.Sprintf("column %q is required in the table, optional in the output", f.Name))
			}
			from, to = append(from, o.from), append(to, j)
		} else {
			if f.Required {
				problems = append(problems, fmt.Sprintf("computed column %q is required in the table (computed columns can be null)", f.Name))
			}
			r.computed = append(r.computed, [2]int{j, i})
		}
	}
	for _, name := range sortedIntKeys(byName) {
		problems = append(problems, fmt.Sprintf("the table has no column %q", name))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("transform: the table's columns do not fit the transform's output: %s", strings.Join(problems, "; "))
	}
	if r.proj, err = dec.Projector(asc, from, to); err != nil {
		return nil, err
	}
	return r, nil
}

func sortedIntKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Eval runs the program on the decoder's last parsed row: keep is false
// when the filter leaves the record out. An error (an expression that
// fails on this row, a value its column cannot hold) is a *decode.DecodeError
// naming the column: the record belongs in the dead-letter table. It is
// Keep then Compute.
func (r *Runner) Eval() (keep bool, err error) {
	if keep, err = r.Keep(); !keep || err != nil {
		return keep, err
	}
	return true, r.Compute()
}

// Keep runs the filter on the decoder's last parsed row: keep is false
// when it leaves the record out.
func (r *Runner) Keep() (keep bool, err error) {
	if r.p.filter != nil {
		v, _, err := r.p.filter.Eval(&r.act)
		if err != nil {
			return false, &decode.DecodeError{Reason: "transform filter failed: " + err.Error()}
		}
		b, ok := v.(types.Bool)
		if !ok && v != types.NullValue {
			return false, &decode.DecodeError{Reason: fmt.Sprintf("transform filter gave %s, not a boolean", v.Type().TypeName())}
		}
		if !bool(b) {
			return false, nil
		}
	}
	return true, nil
}

// Compute computes the output columns of the decoder's last parsed row,
// which the filter kept.
func (r *Runner) Compute() error {
	r.arena = r.arena[:0]
	for i := range r.p.outs {
		o := &r.p.outs[i]
		if o.from >= 0 {
			continue
		}
		v, _, err := o.prg.Eval(&r.act)
		if err != nil {
			return &decode.DecodeError{Field: o.field.Name, Reason: fmt.Sprintf("transform columns[%d] failed: %v", o.index, err)}
		}
		if r.cells[i], r.arena, err = o.kind.cell(v, r.arena); err != nil {
			return &decode.DecodeError{Field: o.field.Name, Reason: fmt.Sprintf("transform columns[%d]: %v", o.index, err)}
		}
	}
	return nil
}

// Cell returns top-level column j of the table of the row Eval computed
// (for choosing its partition).
func (r *Runner) Cell(j int) decode.Cell {
	i := r.src[j]
	switch {
	case i < 0:
		return decode.Cell{Null: true}
	case r.p.outs[i].from >= 0:
		return r.dec.Cell(r.p.outs[i].from)
	}
	return r.cells[i]
}

// Append appends the row Eval computed to b, a builder of the table's
// Arrow schema.
func (r *Runner) Append(b *array.RecordBuilder) {
	r.proj.Append(b)
	for _, j := range r.nulls {
		b.Field(j).AppendNull()
	}
	for _, c := range r.computed {
		appendCell(b.Field(c[0]), r.p.outs[c[1]].kind, r.cells[c[1]])
	}
}

func appendCell(b array.Builder, k outKind, c decode.Cell) {
	if c.Null {
		b.AppendNull()
		return
	}
	switch k {
	case outLong:
		b.(*array.Int64Builder).Append(c.Int)
	case outInt:
		b.(*array.Int32Builder).Append(int32(c.Int))
	case outDouble:
		b.(*array.Float64Builder).Append(c.Float)
	case outFloat:
		b.(*array.Float32Builder).Append(float32(c.Float))
	case outBool:
		b.(*array.BooleanBuilder).Append(c.Int != 0)
	case outString:
		b.(*array.StringBuilder).BinaryBuilder.Append(c.Bytes)
	case outBinary:
		b.(*array.BinaryBuilder).Append(c.Bytes)
	case outTimestamp:
		b.(*array.TimestampBuilder).Append(arrow.Timestamp(c.Int))
	case outDate:
		b.(*array.Date32Builder).Append(arrow.Date32(c.Int))
	}
}
