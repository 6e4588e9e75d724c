#!/usr/bin/env bash
# Builds the interlink-dispatcher image (`make image`) with the local Docker Engine and nothing from any
# registry: every cmd/ binary is built static (CGO_ENABLED=0) and stamped with its version, then put with
# passwd, group, the host's CA bundle and the default config on an empty base (deploy/image/Dockerfile).
#   IMAGE   repository name (default interlink-dispatcher)
#   TAG     the tag (default: the version, git describe); without TAG, IMAGE:latest is tagged too
#   VERSION, COMMIT  what the binaries' --version says (default: git describe, git rev-parse HEAD)
#   DOCKER  the docker CLI (default docker)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
IMAGE=${IMAGE:-interlink-dispatcher}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
DOCKER=${DOCKER:-docker}
tags=(-t "$IMAGE:${TAG:-$(printf %s "$VERSION" | tr -c 'A-Za-z0-9_.-' '-')}")
[[ -n "${TAG:-}" ]] || tags+=(-t "$IMAGE:latest")

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
mkdir -p "$root/usr/local/bin" "$root/etc/interlink-dispatcher" "$root/etc/ssl/certs" "$root/tmp" "$ctx/data"
chmod 1777 "$root/tmp"
chmod 0700 "$ctx/data"

echo "[image] building the binaries (version $VERSION, commit $COMMIT)"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT" \
	-o "$root/usr/local/bin/" ./cmd/...

# uid/gid 65532 (the "nonroot" of distroless images); its home is the data directory.
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
interlink:x:65532:65532:interlink-dispatcher:/var/lib/interlink-dispatcher:/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
interlink:x:65532:
GROUP
# For the TLS the binaries themselves speak (a Docker Engine or Podman service over TCP/TLS, say).
if [[ -r /etc/ssl/certs/ca-certificates.crt ]]; then
	cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
fi
install -m 0644 deploy/image/config.yaml "$root/etc/interlink-dispatcher/config.yaml"
cp deploy/image/Dockerfile "$ctx/"

echo "[image] docker build ${tags[*]}"
# The classic builder: FROM scratch needs no registry, and BuildKit may not be installed.
DOCKER_BUILDKIT=0 "$DOCKER" build --build-arg VERSION="$VERSION" --build-arg COMMIT="$COMMIT" "${tags[@]}" "$ctx"
