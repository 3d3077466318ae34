package dedup

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// randSections returns up to 5 sections with random ids (the empty one
// included), clocks and entries, extremes of int64 included; some have no
// keys.
func randSections(r *rand.Rand) []Section {
	clocks := []int64{NoClock, math.MaxInt64, 0, -1, 1, 1 << 40, -(1 << 40)}
	pick := func() int64 {
		if r.IntN(3) == 0 {
			return clocks[r.IntN(len(clocks))]
		}
		return r.Int64() >> r.IntN(64)
	}
	out := make([]Section, r.IntN(6))
	for i := range out {
		s := Section{ID: strings.Repeat(string(rune('a'+r.IntN(26))), r.IntN(4)), Clock: pick()}
		if r.IntN(4) != 0 {
			s.Keys = make([]Entry, r.IntN(20))
			for j := range s.Keys {
				for b := range s.Keys[j].Key {
					s.Keys[j].Key[b] = byte(r.Uint32())
				}
				s.Keys[j].At = pick()
			}
		}
		out[i] = s
	}
	return out
}

// withCRC returns body followed by its checksum, as Encode ends a file.
func withCRC(body []byte) []byte {
	b := append([]byte(nil), body...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

func sampleFile() []byte {
	return Encode([]Section{
		{ID: "orders/0", Clock: 1_700_000_000_000_000, Keys: []Entry{{keyOf(1), 1_699_999_999_000_000}, {keyOf(2), 1_700_000_000_000_000}}},
		{ID: "orders/1", Clock: -5},
		{ID: "", Clock: NoClock, Keys: []Entry{{keyOf(3), math.MaxInt64}}},
	})
}

// TestCodecRoundTrip proves that Decode returns the sections Encode was
// given, for random sections, empty sections and no sections at all.
func TestCodecRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		secs := randSections(r)
		got, err := Decode(Encode(secs))
		if err != nil {
			t.Fatalf("case %d: Decode of Encode(%+v): %v", i, secs, err)
		}
		if !sectionsEqual(got, secs) {
			t.Fatalf("case %d: Encode then Decode of %+v gives %+v", i, secs, got)
		}
	}
	for _, secs := range [][]Section{nil, {}, {{}}, {{ID: "x"}, {ID: "x"}}} {
		got, err := Decode(Encode(secs))
		if err != nil || !sectionsEqual(got, secs) {
			t.Fatalf("Encode then Decode of %+v gives %+v, %v", secs, got, err)
		}
	}
}

// TestDecodeRejectsTruncated proves that every proper prefix of a file is
// rejected with ErrCorrupt.
func TestDecodeRejectsTruncated(t *testing.T) {
	for _, b := range [][]byte{sampleFile(), Encode(nil)} {
		for n := range len(b) {
			if secs, err := Decode(b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("prefix of %d of %d bytes: Decode = %+v, %v; want ErrCorrupt", n, len(b), secs, err)
			}
		}
	}
}

// TestDecodeRejectsFlippedByte proves that changing any byte of a file,
// checksum included, is caught.
func TestDecodeRejectsFlippedByte(t *testing.T) {
	b := sampleFile()
	if _, err := Decode(b); err != nil {
		t.Fatalf("sample file does not decode: %v", err)
	}
	for i := range b {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			c := append([]byte(nil), b...)
			c[i] ^= mask
			if secs, err := Decode(c); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("byte %d ^ %#x: Decode = %+v, %v; want ErrCorrupt", i, mask, secs, err)
			}
		}
	}
}

// TestDecodeRejectsMalformed proves that Decode rejects, with ErrCorrupt,
// files whose checksum is right but whose content is not the format: a
// wrong magic or version, trailing bytes, counts or lengths beyond the
// data, and unterminated varints.
func TestDecodeRejectsMalformed(t *testing.T) {
	good := sampleFile()
	body := good[:len(good)-4]
	key := make([]byte, 16)
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"magic only", []byte("FLDD\x01")},
		{"wrong magic", withCRC(append([]byte("FLDX\x01"), body[5:]...))},
		{"wrong version", withCRC(append([]byte("FLDD\x02"), body[5:]...))},
		{"lower case magic", withCRC(append([]byte("fldd\x01"), body[5:]...))},
		{"trailing byte", withCRC(append(append([]byte(nil), body...), 0))},
		{"trailing section", withCRC(append(append([]byte(nil), body...), 0, 0, 0))},
		{"no section count", withCRC([]byte("FLDD\x01"))},
		{"section count beyond data", withCRC([]byte("FLDD\x01\x02\x00\x00\x00"))},
		{"huge section count", withCRC(binary.AppendUvarint([]byte("FLDD\x01"), math.MaxUint64))},
		{"id longer than data", withCRC([]byte("FLDD\x01\x01\x09ab\x00\x00"))},
		{"no clock", withCRC([]byte("FLDD\x01\x01\x01a"))},
		{"no key count", withCRC([]byte("FLDD\x01\x01\x01a\x00"))},
		{"key count beyond data", withCRC(append(append([]byte("FLDD\x01\x01\x01a\x00\x02"), key...), 0))},
		{"huge key count", withCRC(binary.AppendUvarint([]byte("FLDD\x01\x01\x01a\x00"), math.MaxUint64))},
		{"key without clock", withCRC(append([]byte("FLDD\x01\x01\x01a\x00\x01"), append(key, 0xff)...))},
		{"unterminated varint", withCRC([]byte("FLDD\x01\x80"))},
		{"overlong varint", withCRC([]byte("FLDD\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if secs, err := Decode(tc.b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode(%q) = %+v, %v; want ErrCorrupt", tc.b, secs, err)
			}
		})
	}
	// The same construction accepts a well-formed body: the cases above
	// fail for their content, not for their checksum.
	if secs, err := Decode(withCRC(body)); err != nil || len(secs) != 3 {
		t.Fatalf("re-checksummed sample: %+v, %v", secs, err)
	}
	if secs, err := Decode(withCRC([]byte("FLDD\x01\x00"))); err != nil || len(secs) != 0 {
		t.Fatalf("file of no sections: %+v, %v", secs, err)
	}
}

// FuzzDecode proves that Decode never panics, that every error it returns
// is ErrCorrupt, and that whatever it accepts encodes back to bytes that
// decode to the same sections. Each input is also tried with its last four
// bytes replaced by the right checksum, so that changed content reaches
// the parsing behind the checksum.
func FuzzDecode(f *testing.F) {
	f.Add(sampleFile())
	f.Add(Encode(nil))
	f.Add(Encode([]Section{{ID: "p", Clock: 3}}))
	f.Add(withCRC([]byte("FLDD\x01\x01\x01a\x80\x00\x00")))
	f.Add([]byte("FLDD\x01"))
	f.Add([]byte{})
	r := rand.New(rand.NewPCG(5, 6))
	for range 8 {
		f.Add(Encode(randSections(r)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		if len(b) >= 4 {
			checkDecode(t, withCRC(b[:len(b)-4]))
		}
	})
}

func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	secs, err := Decode(b)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decode(%q): error %v is not ErrCorrupt", b, err)
		}
		if secs != nil {
			t.Fatalf("Decode(%q) returned sections %+v with error %v", b, secs, err)
		}
		return
	}
	again, err := Decode(Encode(secs))
	if err != nil {
		t.Fatalf("Decode accepted %q as %+v, whose encoding it rejects: %v", b, secs, err)
	}
	if !sectionsEqual(again, secs) {
		t.Fatalf("Decode accepted %q as %+v; encoded again it decodes to %+v", b, secs, again)
	}
}
