// Package pod is the pod layer every backend shares: it validates a pod against a backend's declared
// capabilities (Validate), materialises its volumes into the pod's own directory (MaterializeVolumes, Mounts),
// resolves its containers' environment (ResolveEnv, Expand), and builds the container statuses, resource
// figures, pull policies and labels every backend reports and uses in the same way.
//
// A backend calls, in Create: Validate, then MaterializeVolumes into its pod directory, then per container
// ResolveEnv, Expand on command and args, Mounts, ContainerResources and PullPolicy. In Status it reports with
// Waiting, Running and Terminated (and NotFoundStatus for pods it does not know).
package pod
