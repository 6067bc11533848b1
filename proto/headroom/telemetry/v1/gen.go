// Package telemetryv1 is the report an agent streams to the pickers
// (telemetry.proto), its generated Go code, and the contract both ends
// keep: the limits (limits.go), what names a node (nodename.go) and
// Validate (validate.go), which the picker applies to every report it
// receives and the agent's tests to every report the agent builds. It
// imports nothing of headroom's. Regenerate the code with `make
// generate`: it needs Debian's protoc and uses the protoc-gen-go and
// protoc-gen-go-grpc versions pinned as tools in go.mod.
package telemetryv1

//go:generate sh -c "protoc --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --plugin=protoc-gen-go-grpc=$(go tool -n protoc-gen-go-grpc) --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative telemetry.proto"
