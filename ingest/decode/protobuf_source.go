package decode

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ProtoFileFromSource compiles a Protobuf schema given as .proto source text,
// as the schema registry serves it, into a file descriptor for ProtoMessage.
// path names the file (the registry does not name a schema's own file: any
// name that none of its imports uses will do, e.g. "schema.proto"); imports
// maps the import paths the source (and its imports, transitively) names to
// their source text: the registry's schema references, each reference's
// name to the text of the subject version it points to. The well-known
// google/protobuf/*.proto files are built in and need not be given.
func ProtoFileFromSource(path, source string, imports map[string]string) (protoreflect.FileDescriptor, error) {
	if path == "" {
		return nil, errors.New("ingest: protobuf schema needs a file name")
	}
	srcs := make(map[string]string, len(imports)+1)
	maps.Copy(srcs, imports)
	srcs[path] = source
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(srcs),
		}),
	}
	files, err := c.Compile(context.Background(), path)
	if err != nil {
		return nil, fmt.Errorf("ingest: compiling protobuf schema %q: %w", path, err)
	}
	return files[0], nil
}
