package registry

import (
	"encoding/binary"
	"fmt"
)

// HeaderSize is the length of the wire format's header: the magic byte and
// the schema id.
const HeaderSize = 5

// magicByte starts every value in the wire format.
const magicByte = 0

// Header splits a record value in the schema registry wire format into the
// schema id and the rest (for Avro the datum, for Protobuf the message
// indexes and the message). rest shares value's memory.
//
// A value too short for the header, or that does not start with the magic
// byte 0, is an error wrapping ErrNotFramed whose message says what the
// value looks like instead, for the dead-letter table.
func Header(value []byte) (id uint32, rest []byte, err error) {
	if len(value) >= HeaderSize && value[0] == magicByte {
		return binary.BigEndian.Uint32(value[1:HeaderSize]), value[HeaderSize:], nil
	}
	return 0, nil, notFramed(value)
}

// AppendHeader appends the wire format's header for schema id to dst: what a
// serializer writes before the payload.
func AppendHeader(dst []byte, id uint32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, magicByte), id)
}

// notFramed explains why value is not in the wire format. It is on the error
// path only.
func notFramed(value []byte) error {
	if len(value) == 0 {
		return fmt.Errorf("%w: the value is empty; a schema registry value starts with the magic byte 0 and a 4-byte schema id", ErrNotFramed)
	}
	if value[0] != magicByte {
		return fmt.Errorf("%w: the value does not start with the schema registry's magic byte 0 (its first byte is %s): %s",
			ErrNotFramed, describeByte(value[0]), hint(value))
	}
	return fmt.Errorf("%w: the value is %d bytes, too short for the schema registry header (the magic byte 0 and a 4-byte schema id: %d bytes)",
		ErrNotFramed, len(value), HeaderSize)
}

// hint guesses what a value that is not in the wire format is.
func hint(value []byte) string {
	i := 0
	for i < len(value) && (value[i] == ' ' || value[i] == '\t' || value[i] == '\r' || value[i] == '\n') {
		i++
	}
	if i < len(value) {
		switch value[i] {
		case '{', '[', '"':
			return "is the topic JSON? set format: json"
		}
	}
	return "was it written without a schema registry serializer? check the producer and the pipeline's format"
}

func describeByte(b byte) string {
	if b >= 0x20 && b < 0x7f {
		return fmt.Sprintf("0x%02x %q", b, rune(b))
	}
	return fmt.Sprintf("0x%02x", b)
}
