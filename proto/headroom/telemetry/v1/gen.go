// Package telemetryv1 is the report an agent streams to the pickers
// (telemetry.proto) and its generated Go code. Regenerate with `make
// generate`: it needs Debian's protoc and uses the protoc-gen-go and
// protoc-gen-go-grpc versions pinned as tools in go.mod.
package telemetryv1

//go:generate sh -c "protoc --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --plugin=protoc-gen-go-grpc=$(go tool -n protoc-gen-go-grpc) --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative telemetry.proto"
