package backend

import (
	"fmt"
	"regexp"
	"strconv"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// ProtocolVersion is the version of the contract this build of the dispatcher and of its backends speak.
// Raise it on any change a backend built against the previous version would get wrong; go-plugin then
// refuses to pair a dispatcher and a backend of different versions at the handshake. Version 2 carries
// Kubernetes objects in their protobuf encoding where version 1 carried their JSON.
const ProtocolVersion = 2

// PluginName is the name the backend is dispensed under in the go-plugin plugin set.
const PluginName = "backend"

// Handshake is the go-plugin handshake every backend binary and the dispatcher share. The magic cookie is
// not a secret: it makes a backend binary run by hand say that it is a plugin instead of hanging.
var Handshake = plugin.HandshakeConfig{
	MagicCookieKey:   "INTERLINK_DISPATCHER_BACKEND",
	MagicCookieValue: "c1b6e0c4-4a43-4f0e-9d9c-5f1a2f6b7d3e",
}

// maxMessageSize bounds one gRPC message each way. gRPC's default of 4 MiB on receipt is less than the
// dispatcher accepts in one create body (10 MiB by default, configurable): a pod with large configMaps, or a
// status batch of hundreds of pods, must still pass.
const maxMessageSize = 256 << 20

// newGRPCServer is the gRPC server a backend is served on, go-plugin's own with the message bound raised; a
// backend process (Serve) and an in-process one (ServeInProcess) get the same.
func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	return plugin.DefaultGRPCServer(append(opts, grpc.MaxRecvMsgSize(maxMessageSize),
		grpc.MaxSendMsgSize(maxMessageSize)))
}

// dialOptions are the dispatcher side's gRPC options toward a backend, beyond go-plugin's own.
func dialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(maxMessageSize), grpc.MaxCallSendMsgSize(maxMessageSize))}
}

// pluginSets are the plugin sets by protocol version that this build serves and accepts: only its own, so
// that go-plugin refuses a binary of another version.
func pluginSets(impl Backend) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		ProtocolVersion: {PluginName: &GRPCPlugin{Impl: impl}},
	}
}

var pluginVersionRE = regexp.MustCompile(`Plugin version: (\d+)`)

// versionMismatch rewrites go-plugin's handshake refusal into a sentence naming both versions; it returns
// nil when err is not such a refusal.
func versionMismatch(name, path string, err error) error {
	m := pluginVersionRE.FindStringSubmatch(err.Error())
	if m == nil {
		return nil
	}
	theirs, _ := strconv.Atoi(m[1])
	return versionError(name, path, theirs)
}

func versionError(name, path string, theirs int) error {
	return fmt.Errorf("backend %q (%s) speaks backend protocol version %d, but this dispatcher speaks "+
		"version %d: install a backend binary built for protocol version %d, or a dispatcher of version %d",
		name, path, theirs, ProtocolVersion, ProtocolVersion, theirs)
}
