#!/usr/bin/env bash
# Prints the path of a helm binary built from the Go module proxy, building it first if needed:
#   bash deploy/helm/helm.sh            # → /var/lib/interlink-lab/helm/bin/v3.22.0-<hash>/helm
#   "$(bash deploy/helm/helm.sh)" lint deploy/helm/interlink-dispatcher
# helm is built from the module deploy/helm/tool (go.mod: tool helm.sh/helm/v3/cmd/helm), as deploy/lab/kube.sh
# builds Kubernetes: once, into a folder named after helm's version and a hash of the module's go.mod and
# go.sum, so a second call builds nothing unless one of those changed. From empty Go caches the build takes
# 3-10 minutes (about 80 MB of modules); its log is kept beside the binary's folder.
# HELM_STATE overrides the cache folder (default /var/lib/interlink-lab/helm, the lab's state; a user who
# cannot write there gets ${XDG_CACHE_HOME:-~/.cache}/interlink-dispatcher/helm).
set -euo pipefail
TOOL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/tool" && pwd)
export PATH=$PATH:/usr/local/go/bin

if [ -n "${HELM_STATE:-}" ]; then
	state=$HELM_STATE
elif mkdir -p /var/lib/interlink-lab/helm 2>/dev/null && [ -w /var/lib/interlink-lab/helm ]; then
	state=/var/lib/interlink-lab/helm
else
	state=${XDG_CACHE_HOME:-$HOME/.cache}/interlink-dispatcher/helm
fi
module_version() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$TOOL_DIR/go.mod"; }
version=$(module_version helm.sh/helm/v3)
client_go=$(module_version k8s.io/client-go)
[ -n "$version" ] && [ -n "$client_go" ] ||
	{ echo "helm.sh: $TOOL_DIR/go.mod requires no helm.sh/helm/v3 or k8s.io/client-go" >&2; exit 1; }
# helm's Makefile: the Kubernetes version helm lint and helm template assume is client-go's v0.N → 1.N.
IFS=. read -r kmajor kminor _ <<<"${client_go#v}"
kmajor=$((kmajor + 1))
sum=$(cat "$TOOL_DIR/go.mod" "$TOOL_DIR/go.sum" | sha256sum | cut -c1-12)
out=$state/bin/$version-$sum
if [ -f "$out/.complete" ] && [ -x "$out/helm" ]; then
	echo "$out/helm"
	exit 0
fi
command -v go >/dev/null || { echo "helm.sh: go is not on PATH (expected /usr/local/go/bin)" >&2; exit 1; }
mkdir -p "$state/bin"
log=$state/build.log
# One build at a time: two test processes calling this at once wait for each other.
exec 9>"$state/build.lock"
flock 9
if [ -f "$out/.complete" ] && [ -x "$out/helm" ]; then
	echo "$out/helm"
	exit 0
fi
echo "helm.sh: building helm $version into $out (log $log)" >&2
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
# Without these -X, helm calls itself v3.22 and assumes Kubernetes v1.20, which fails every chart that asks
# for a newer kubeVersion.
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
	ldflags="$ldflags -X $p.k8sVersionMajor=$kmajor -X $p.k8sVersionMinor=$kminor"
done
if ! (cd "$TOOL_DIR" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" \
	-o "$out.tmp/" helm.sh/helm/v3/cmd/helm) >"$log" 2>&1; then
	echo "helm.sh: go build failed:" >&2
	tail -20 "$log" >&2
	exit 1
fi
touch "$out.tmp/.complete"
rm -rf "$out"
mv "$out.tmp" "$out"
# Earlier builds (other versions or go.sum) go.
find "$state/bin" -mindepth 1 -maxdepth 1 ! -path "$out" -exec rm -rf {} +
echo "$out/helm"
