package pod

// ReasonStartError is the kubelet's reason for a container whose command could not be started (not found, not
// executable); the shim (shared/shim) writes the same word when it cannot start a command.
const ReasonStartError = "StartError"
