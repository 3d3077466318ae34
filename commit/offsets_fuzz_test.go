package commit_test

import (
	"testing"

	"github.com/floelake/floe/commit"
)

// FuzzParseOffsets: floe.offsets is read back from snapshots anyone can
// write. Invariants: ParseOffsets never panics; whatever it accepts has only
// non-negative partitions and offsets, and re-encodes to a value that parses
// to the same map (Encode is canonical).
func FuzzParseOffsets(f *testing.F) {
	for _, s := range []string{`{"t":{"0":1}}`, `{}`, `{"a":{"0":1,"10":2},"b":{"3":0}}`, `{"t":{"-1":1}}`, `[`, `{"t":{"0":1e3}}`, `{"\u00e9":{"1":2}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := commit.ParseOffsets(s)
		if err != nil {
			return
		}
		for topic, ps := range o {
			for p, v := range ps {
				if p < 0 || v < 0 {
					t.Fatalf("accepted negative %s/%d=%d from %q", topic, p, v, s)
				}
			}
		}
		enc := o.Encode()
		back, err := commit.ParseOffsets(enc)
		if err != nil {
			t.Fatalf("re-encoded %q does not parse: %v", enc, err)
		}
		if back.Encode() != enc || !back.Covers(o) || !o.Covers(back) {
			t.Fatalf("round trip changed %q to %q", enc, back.Encode())
		}
	})
}
