package backend

// The generated code in proto/ is checked in; regenerate it after editing proto/backend.proto with protoc
// (Debian package protobuf-compiler) and the two plugins on PATH, installed outside go.mod:
//
//	GOBIN=/tmp/gobin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	GOBIN=/tmp/gobin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
//	PATH=/tmp/gobin:$PATH go generate ./shared/backend
//
//go:generate protoc --proto_path=proto --go_out=proto --go_opt=paths=source_relative --go-grpc_out=proto --go-grpc_opt=paths=source_relative proto/backend.proto
