package transform

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/apache/iceberg-go"

	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/transform/dedup"
	"github.com/floelake/floe/internal/conf"
)

// DedupDir is where workers write the keys they kept per segment, under
// the table's location (state files: they outlive the commit, referenced
// by the table's floe.dedup manifest until past the horizon).
const DedupDir = dedup.Dir

// MaxDedupHorizon bounds dedup.horizon: the state of a horizon is held in
// memory (about 55 bytes per key kept within it).
const MaxDedupHorizon = 30 * 24 * time.Hour

// PartitionID is how transform state names a Kafka partition.
func PartitionID(topic string, partition int32) string {
	return topic + "/" + strconv.Itoa(int(partition))
}

// dedupPlan is a DedupConfig compiled against the input schema.
type dedupPlan struct {
	keys    []cel.Program
	exprs   []string
	horizon int64 // µs
}

// compileDedup checks d, adding problems to pr under "dedup".
func compileDedup(pr *conf.Problems, env *cel.Env, in *iceberg.Schema, d *DedupConfig) *dedupPlan {
	plan := &dedupPlan{horizon: time.Duration(d.Horizon).Microseconds()}
	switch h := time.Duration(d.Horizon); {
	case h <= 0:
		pr.Addf("dedup.horizon", "must be set: how long a key is remembered, e.g. 1h")
	case h > MaxDedupHorizon:
		pr.Addf("dedup.horizon", "must be at most %s (the keys within it are held in memory), got %s", MaxDedupHorizon, h)
	}
	if len(d.Key) == 0 {
		pr.Addf("dedup.key", "must list the key: one or more CEL expressions over the input columns (a column name is one; the columns are %s)", columnList(in))
	}
	for i, e := range d.Key {
		field := fmt.Sprintf("dedup.key[%d]", i)
		if strings.TrimSpace(e) == "" {
			pr.Addf(field, "must not be empty")
			continue
		}
		ast, iss := env.Compile(e)
		if iss.Err() != nil {
			pr.Addf(field, "%s", exprError(iss.Err(), in))
			continue
		}
		switch k := ast.OutputType().Kind(); k {
		case types.BoolKind, types.IntKind, types.UintKind, types.DoubleKind, types.StringKind, types.BytesKind,
			types.TimestampKind, types.DurationKind, types.NullTypeKind, types.DynKind:
		default:
			pr.Addf(field, "a key value must be a boolean, number, string, bytes, timestamp or duration, got %s", ast.OutputType())
			continue
		}
		prg, err := program(env, ast)
		if err != nil {
			pr.Addf(field, "%v", err)
			continue
		}
		plan.keys, plan.exprs = append(plan.keys, prg), append(plan.exprs, e)
	}
	return plan
}

// DedupSignature describes what the dedup's keys are made of: a state
// built with another signature does not apply.
func (p *Program) DedupSignature() string {
	if p == nil || p.dedup == nil {
		return ""
	}
	return "key=[" + strings.Join(p.dedup.exprs, "; ") + "]"
}

// Dedups reports whether the program drops duplicates, and returns the
// horizon in microseconds.
func (p *Program) Dedups() (horizon int64, ok bool) {
	if p == nil || p.dedup == nil {
		return 0, false
	}
	return p.dedup.horizon, true
}

// DedupKey computes the dedup key of the decoder's last parsed row. An
// expression that fails is a *decode.DecodeError: the record belongs in
// the dead-letter table.
func (r *Runner) DedupKey() (dedup.Key, error) {
	h := &r.hasher
	h.Reset()
	for i, prg := range r.p.dedup.keys {
		v, _, err := prg.Eval(&r.act)
		if err == nil {
			err = hashValue(h, v)
		}
		if err != nil {
			return dedup.Key{}, &decode.DecodeError{Reason: fmt.Sprintf("transform dedup.key[%d] (%s) failed: %v", i, r.p.dedup.exprs[i], err)}
		}
	}
	return h.Sum(), nil
}

func hashValue(h *dedup.Hasher, v ref.Val) error {
	switch v := v.(type) {
	case types.Null:
		h.Null()
	case types.Bool:
		h.Bool(bool(v))
	case types.Int:
		h.Int(int64(v))
	case types.Uint:
		h.Uint(uint64(v))
	case types.Double:
		h.Double(float64(v))
	case types.String:
		h.String(string(v))
	case types.Bytes:
		h.Bytes(v)
	case types.Timestamp:
		h.Timestamp(v.UnixNano())
	case types.Duration:
		h.Duration(int64(v.Duration))
	case *types.Err:
		return v
	default:
		return fmt.Errorf("a key value must be a boolean, number, string, bytes, timestamp or duration, got %s", v.Type().TypeName())
	}
	return nil
}
