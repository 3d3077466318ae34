package decode

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProtoFileFromSource(t *testing.T) {
	common := `syntax = "proto3";
package acme.common;
message Money { string currency = 1; int64 units = 2; }
enum Status { STATUS_UNSPECIFIED = 0; OPEN = 1; PAID = 2; }`
	orders := `syntax = "proto3";
package acme.orders;
import "acme/common.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

message Order {
  string id = 1;
  acme.common.Money total = 2;
  acme.common.Status status = 3;
  google.protobuf.Timestamp created = 4;
  repeated Line lines = 5;
  map<string, string> labels = 6;
  google.protobuf.StringValue note = 7;
  message Line { string sku = 1; uint32 qty = 2; }
}
message Refund { string order_id = 1; }`
	fd, err := ProtoFileFromSource("schema.proto", orders, map[string]string{"acme/common.proto": common})
	require.NoError(t, err)

	// The map field's entry message comes first among Order's nested types; Confluent does not count it.
	assert.Equal(t, "LabelsEntry", string(fd.Messages().Get(0).Messages().Get(0).Name()))
	md, err := ProtoMessage(fd, []int{0, 0})
	require.NoError(t, err)
	assert.Equal(t, "acme.orders.Order.Line", string(md.FullName()))
	md, err = ProtoMessage(fd, []int{1})
	require.NoError(t, err)
	assert.Equal(t, "acme.orders.Refund", string(md.FullName()))
	md, err = ProtoMessage(fd, []int{0})
	require.NoError(t, err)
	schema, err := ProtoIceberg(md)
	require.NoError(t, err)
	d, err := NewProtoDecoder(schema, md)
	require.NoError(t, err)
	wire := wireFromJSON(t, md, `{"id":"o1","total":{"currency":"EUR","units":"12"},"status":"PAID",
		"created":"2026-11-22T10:00:00Z","lines":[{"sku":"a","qty":2}],"labels":{"k":"v"}}`)
	row := decodeProtoRows(t, d, wire)[0]
	want, err := protoGoRow(md, wire)
	require.NoError(t, err)
	assert.Equal(t, want, row)
	assert.Equal(t, "PAID", row["status"])
	assert.Nil(t, row["note"])

	_, err = ProtoFileFromSource("schema.proto", `syntax = "proto3"; message X { int32 a = 1 }`, nil)
	assert.ErrorContains(t, err, "schema.proto:1:")
	_, err = ProtoFileFromSource("schema.proto", `syntax = "proto3"; import "missing.proto"; message X { int32 a = 1; }`, nil)
	assert.ErrorContains(t, err, "missing.proto")
}
