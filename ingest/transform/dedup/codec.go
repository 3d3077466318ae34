package dedup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// The file format, little-endian:
//
//	magic "FLDD", version 1
//	uvarint sections
//	per section: uvarint len(id), id, varint clock, uvarint keys,
//	             keys × (16-byte key, varint clock)
//	crc32 (Castagnoli) of everything before it
var magic = []byte("FLDD\x01")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode writes sections in the file format.
func Encode(sections []Section) []byte {
	n := len(magic) + 8
	for _, s := range sections {
		n += len(s.ID) + 24 + len(s.Keys)*26
	}
	b := make([]byte, 0, n)
	b = append(b, magic...)
	b = binary.AppendUvarint(b, uint64(len(sections)))
	for _, s := range sections {
		b = binary.AppendUvarint(b, uint64(len(s.ID)))
		b = append(b, s.ID...)
		b = binary.AppendVarint(b, s.Clock)
		b = binary.AppendUvarint(b, uint64(len(s.Keys)))
		for _, e := range s.Keys {
			b = append(b, e.Key[:]...)
			b = binary.AppendVarint(b, e.At)
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// ErrCorrupt is returned for bytes that are not a dedup state file.
var ErrCorrupt = errors.New("dedup: not a dedup state file, or a damaged one")

// Decode reads a file Encode wrote.
func Decode(b []byte) ([]Section, error) {
	if len(b) < len(magic)+4 || !bytes.Equal(b[:len(magic)], magic) {
		return nil, ErrCorrupt
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	r := reader{b: body[len(magic):]}
	ns := r.uvarint()
	if r.err != nil || ns > uint64(len(r.b)) {
		return nil, ErrCorrupt
	}
	out := make([]Section, 0, ns)
	for range ns {
		var s Section
		idLen := r.uvarint()
		s.ID = string(r.take(idLen))
		s.Clock = r.varint()
		nk := r.uvarint()
		if r.err != nil || nk > uint64(len(r.b))/17 {
			return nil, ErrCorrupt
		}
		s.Keys = make([]Entry, nk)
		for i := range s.Keys {
			copy(s.Keys[i].Key[:], r.take(16))
			s.Keys[i].At = r.varint()
		}
		if r.err != nil {
			return nil, ErrCorrupt
		}
		out = append(out, s)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: trailing bytes", ErrCorrupt)
	}
	return out, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = ErrCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = ErrCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) take(n uint64) []byte {
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = ErrCorrupt
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int { return bytes.Compare(a.Key[:], b.Key[:]) })
}
