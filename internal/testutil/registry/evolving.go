package registry

// EvolvingAvro are the writer schemas of a topic whose schema changes three
// times, in order, as the schema evolution tests produce them: a field
// added (note); two types widened (n int to long, price float to double);
// a nested record (geo), a list (tags) and a wider decimal (amount 9 to
// 12 digits) added. Register them with compatibility NONE: Avro calls the
// wider decimal incompatible, Iceberg takes it.
var EvolvingAvro = []string{
	`{"type":"record","name":"Click","namespace":"floe.test","fields":[
		{"name":"id","type":"long"},
		{"name":"n","type":"int"},
		{"name":"price","type":"float"},
		{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}}]}`,
	`{"type":"record","name":"Click","namespace":"floe.test","fields":[
		{"name":"id","type":"long"},
		{"name":"n","type":"int"},
		{"name":"price","type":"float"},
		{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
		{"name":"note","type":["null","string"],"default":null}]}`,
	`{"type":"record","name":"Click","namespace":"floe.test","fields":[
		{"name":"id","type":"long"},
		{"name":"n","type":"long"},
		{"name":"price","type":"double"},
		{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
		{"name":"note","type":["null","string"],"default":null}]}`,
	`{"type":"record","name":"Click","namespace":"floe.test","fields":[
		{"name":"id","type":"long"},
		{"name":"n","type":"long"},
		{"name":"price","type":"double"},
		{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
		{"name":"note","type":["null","string"],"default":null},
		{"name":"geo","type":["null",{"type":"record","name":"Geo","fields":[{"name":"lat","type":"double","default":0}]}],"default":null},
		{"name":"tags","type":{"type":"array","items":"string"},"default":[]}]}`,
}
