// Package failpoint names the durable steps of floe's write path so tests
// can crash a real process exactly there. A failpoint costs one atomic load
// when none is armed, which is always the case in production.
//
// Arm failpoints with the FLOE_FAILPOINTS environment variable, read once at
// start: a comma-separated list of name=action@n, where action is "crash"
// (SIGKILL to self: no deferred function, no flush, like a power cut) or
// "error" (the step returns ErrInjected), and n is the hit on which it fires
// (1 = first). Example:
//
//	FLOE_FAILPOINTS=commit/after-catalog=crash@3
//
// Names in use:
//
//	fileio/after-write      a row batch was written to an open data file
//	fileio/after-close      a data file was completed, not yet committed
//	commit/before-catalog   a commit is staged (manifests written), not sent
//	commit/after-catalog    the catalog accepted the commit, floe does not know yet
//	writer/before-report    a table writer's commit landed, the ledger not told yet
//	cluster/after-propose   the ledger accepted a segment, its proposer not told yet
//	upsert/rebuild          a key index rebuild from the table starts (an error fails it)
//	schema/before-catalog   a schema change is staged, not sent
//	schema/after-catalog    the catalog accepted a schema change, the member asking not told yet
package failpoint

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// ErrInjected is returned by an armed "error" failpoint.
var ErrInjected = errors.New("failpoint: injected error")

type point struct {
	action string
	at     int64
	hits   atomic.Int64
}

var (
	armed  atomic.Bool
	mu     sync.Mutex
	points map[string]*point
)

func init() {
	if v := os.Getenv("FLOE_FAILPOINTS"); v != "" {
		if err := Set(v); err != nil {
			fmt.Fprintln(os.Stderr, "floe:", err)
			os.Exit(2)
		}
	}
}

// Set arms failpoints from a specification (see the package comment),
// replacing any armed before. An empty spec disarms all.
func Set(spec string) error {
	ps := map[string]*point{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, rest, ok := strings.Cut(item, "=")
		if !ok {
			return fmt.Errorf("failpoint %q: want name=action@n", item)
		}
		action, nStr, ok := strings.Cut(rest, "@")
		if !ok {
			nStr = "1"
		}
		n, err := strconv.ParseInt(nStr, 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("failpoint %q: hit count must be a positive integer", item)
		}
		if action != "crash" && action != "error" {
			return fmt.Errorf("failpoint %q: action must be crash or error", item)
		}
		ps[name] = &point{action: action, at: n}
	}
	mu.Lock()
	points = ps
	mu.Unlock()
	armed.Store(len(ps) > 0)
	return nil
}

// Hit marks that the named step was reached. It crashes the process or
// returns ErrInjected when the failpoint is armed for this hit.
func Hit(name string) error {
	if !armed.Load() {
		return nil
	}
	mu.Lock()
	p := points[name]
	mu.Unlock()
	if p == nil {
		return nil
	}
	if p.hits.Add(1) != p.at {
		return nil
	}
	switch p.action {
	case "crash":
		fmt.Fprintf(os.Stderr, "floe: failpoint %s: crashing\n", name)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	default:
		return fmt.Errorf("%w at %s", ErrInjected, name)
	}
}

// Hits returns how often the named failpoint was reached since it was
// armed (0 when it is not armed), so a test can assert that it fired.
func Hits(name string) int64 {
	mu.Lock()
	p := points[name]
	mu.Unlock()
	if p == nil {
		return 0
	}
	return p.hits.Load()
}
