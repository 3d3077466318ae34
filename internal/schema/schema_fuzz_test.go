package schema

import "testing"

// FuzzParseType: type strings come from user configuration. Invariants:
// ParseType never panics, and an accepted type's canonical rendering parses
// again (for the forms the grammar shares with Iceberg's String()).
func FuzzParseType(f *testing.F) {
	for _, s := range []string{"long", "decimal(10,2)", "list<struct<a:int,b!:string>>", "map<string,list<long>>", "fixed[16]", "struct<", "decimal(99,1)", "list<<>>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		typ, err := ParseType(s)
		if err != nil {
			return
		}
		if typ == nil {
			t.Fatalf("nil type without error for %q", s)
		}
		switch typ.String() {
		case "boolean", "int", "long", "float", "double", "date", "time", "timestamp", "timestamptz", "string", "uuid", "binary":
			again, err := ParseType(typ.String())
			if err != nil || !again.Equals(typ) {
				t.Fatalf("%q → %s does not parse back: %v", s, typ, err)
			}
		}
	})
}
