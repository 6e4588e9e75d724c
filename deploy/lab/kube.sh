# shellcheck shell=bash
# The lab's Kubernetes chains, sourced by lab.sh: two one-node control planes on loopback (etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl), each with interLink's API server and
# virtual kubelet and a dispatcher of this checkout behind them:
#
#   main:   kubectl ── kube-apiserver :6443 ── virtual kubelet (node interlink-lab, kubelet port :10250)
#              └─unix socket─ interLink API server ─unix socket─ dispatcher lab-kube (docker, podman, slurm)
#   remote: kubectl ── kube-apiserver :7443 ── virtual kubelet (node interlink-remote, kubelet port :10350)
#              └─unix socket─ interLink API server ─unix socket─ dispatcher lab-remote (docker)
#
# The remote cluster is the "other cluster" of the Kubernetes backend (backends/kubernetes): its pods really
# run, in the lab's Docker Engine, under their own dispatcher instance. One set of functions serves both:
# kube_cluster selects which one they act on.
#
# Everything is built from the Go module proxy, once for both clusters: Kubernetes and etcd from the module
# deploy/lab/kube, interLink from deploy/lab/interlink, the dispatcher from this checkout. Built binaries are kept
# under $LAB_STATE/kube/bin and $LAB_STATE/interlink/bin in a folder named after the version and a hash of the
# module's go.mod and go.sum, so a second `up` builds nothing unless one of those changed. Certificates are made
# with openssl under each cluster's kube/pki; etcd and the API servers answer only on 127.0.0.1, with TLS and
# client certificates.

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$LAB_DIR/../.." && pwd)

# kube_cluster main|remote: point the functions below at one of the lab's two clusters. They share the built
# binaries and differ in state folder, ports, names and the dispatcher behind their virtual node:
#   main    state $LAB_STATE, API server :6443, node interlink-lab, dispatcher lab-kube (config.yaml's docker,
#           podman and slurm, and its kubernetes, turned on here, toward the remote cluster)
#   remote  state $LAB_STATE/remote, API server :7443, node interlink-remote, dispatcher lab-remote (Docker only):
#           the "other cluster" the Kubernetes backend offloads pods to (lab.sh kubeconfig remote)
# The remote cluster has its own CA, so that no credential of one cluster is accepted by the other: a test or
# backend handed the wrong kubeconfig fails at once instead of quietly talking to the wrong cluster.
kube_cluster() {
	CLUSTER=$1
	case $1 in
	main)
		CLUSTER_STATE=$LAB_STATE SVC= CLUSTER_NAME=interlink-lab ADMIN_USER=lab-admin ETCD_NAME=lab ETCD_PORT=2379
		APISERVER_PORT=6443 CTRL_PORT=10257 SCHED_PORT=10259 VK_NODE=interlink-lab VK_PORT=10250
		KDISP_INSTANCE=lab-kube KDISP_BACKENDS=(docker podman slurm kubernetes)
		;;
	remote)
		CLUSTER_STATE=$LAB_STATE/remote SVC=remote- CLUSTER_NAME=interlink-remote ADMIN_USER=remote-admin
		ETCD_NAME=remote ETCD_PORT=2479 APISERVER_PORT=7443 CTRL_PORT=10357 SCHED_PORT=10359
		VK_NODE=interlink-remote VK_PORT=10350 KDISP_INSTANCE=lab-remote KDISP_BACKENDS=(docker)
		;;
	*) die "no cluster named $1 (main or remote)" ;;
	esac
	KUBE_STATE=$CLUSTER_STATE/kube
	PKI=$KUBE_STATE/pki
	ADMIN_KUBECONFIG=$KUBE_STATE/admin.kubeconfig
	APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
	ETCD_CLIENT_URL=https://127.0.0.1:$ETCD_PORT
	ETCD_PEER_URL=https://127.0.0.1:$((ETCD_PORT + 1))
	ETCD_METRICS_URL=http://127.0.0.1:$((ETCD_PORT + 2))
	INTERLINK_STATE=$CLUSTER_STATE/interlink
	# interLink's API server listens on a socket in a directory only root enters: on loopback TCP any local user
	# could create pods through it, whatever the dispatcher socket's mode.
	INTERLINK_SOCK=$INTERLINK_STATE/run/interlink.sock
	# The dispatcher the lab runs for interLink: its own data directory, instance name and socket, so that it
	# never meets a dispatcher started by deploy/run.sh (127.0.0.1:4000, /var/lib/interlink-dispatcher), by the
	# tests, or the other cluster's.
	KDISP_STATE=$CLUSTER_STATE/dispatcher
	KDISP_SOCK=$KDISP_STATE/api.sock
}
# The services of one cluster (named with its $SVC prefix) in the order `up` starts them; `down` stops them in
# reverse.
KUBE_SERVICES=(etcd kube-apiserver kube-controller-manager kube-scheduler dispatcher interlink virtual-kubelet)
# Where the dispatcher of this checkout is built, once per `up`, for both clusters' dispatchers.
DISPATCHER_BUILD=$LAB_STATE/dispatcher-build
export PATH=$PATH:/usr/local/go/bin

# module_version DIR MODULE: the version of MODULE that DIR's go.mod requires.
module_version() {
	awk -v m="$2" '$1 == "require" { $1 = ""; $0 = $0 } $1 == m && $2 ~ /^v/ { print $2; exit }' "$1/go.mod"
}

# build_dir STATE DIR VERSION LDFLAGS: where the binaries built from the module in DIR with LDFLAGS are kept:
# named after the version and a hash of go.mod, go.sum, the flags and the Go toolchain.
build_dir() {
	local sum
	sum=$({ cat "$2/go.mod" "$2/go.sum"; echo "$4"; go env GOVERSION 2>/dev/null; } | sha256sum | cut -c1-12)
	printf '%s/bin/%s-%s' "$1" "$3" "$sum"
}

# go_build NAME DIR OUT LDFLAGS PKG...: build PKGs of the module in DIR into OUT (all or nothing), unless done.
go_build() {
	local name=$1 dir=$2 out=$3 ldflags=$4 started=$SECONDS
	shift 4
	if [ -f "$out/.complete" ]; then
		say "$name: binaries already built in $out"
		return
	fi
	command -v go >/dev/null || die "$name: go is not on PATH (expected /usr/local/go/bin)"
	say "$name: building $* (from empty Go caches this takes 20-30 minutes; log $LOGS/$name-build.log)"
	rm -rf "$out.tmp"
	mkdir -p "$out.tmp"
	(cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp/" "$@") >"$LOGS/$name-build.log" 2>&1 ||
		fail "$name build" "$LOGS/$name-build.log" "go build failed"
	touch "$out.tmp/.complete"
	rm -rf "$out"
	mv "$out.tmp" "$out"
	say "$name: built in $((SECONDS - started)) s"
	# Earlier builds of this module (other versions or go.sum) go: Kubernetes' take 450 MB each. What runs
	# from them keeps running until `up` restarts it from the new folder.
	find "$(dirname "$out")" -mindepth 1 -maxdepth 1 ! -path "$out" -exec rm -rf {} +
}

KUBE_VERSION=$(module_version "$LAB_DIR/kube" k8s.io/kubernetes)
INTERLINK_VERSION=$(module_version "$LAB_DIR/interlink" github.com/interlink-hq/interlink)
# Without the version stamps the Kubernetes binaries call themselves v0.0.0-master, which clients and kubectl's
# skew check refuse.
KUBE_LDFLAGS="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	KUBE_LDFLAGS="$KUBE_LDFLAGS -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) -X $p.gitTreeState=clean"
done
INTERLINK_LDFLAGS="-s -w -X github.com/interlink-hq/interlink/pkg/virtualkubelet.KubeletVersion=$INTERLINK_VERSION"
KUBE_BIN=$(build_dir "$LAB_STATE/kube" "$LAB_DIR/kube" "$KUBE_VERSION" "$KUBE_LDFLAGS")
INTERLINK_BIN=$(build_dir "$LAB_STATE/interlink" "$LAB_DIR/interlink" "$INTERLINK_VERSION" "$INTERLINK_LDFLAGS")
KUBECTL=$KUBE_BIN/kubectl

build_kube() {
	# One go build for all five: they share most packages, and it compiles on every core.
	go_build kubernetes "$LAB_DIR/kube" "$KUBE_BIN" "$KUBE_LDFLAGS" k8s.io/kubernetes/cmd/kube-apiserver \
		k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
		k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3
	# go names the binary of go.etcd.io/etcd/server/v3 "server".
	if [ ! -x "$KUBE_BIN/etcd" ] && [ -x "$KUBE_BIN/server" ]; then mv "$KUBE_BIN/server" "$KUBE_BIN/etcd"; fi
}

build_interlink() {
	go_build interlink "$LAB_DIR/interlink" "$INTERLINK_BIN" "$INTERLINK_LDFLAGS" \
		github.com/interlink-hq/interlink/cmd/interlink github.com/interlink-hq/interlink/cmd/virtual-kubelet
}

# cert NAME SUBJECT EXTENSIONS: a key and a certificate signed by the lab's CA, made once.
cert() {
	local name=$1 subj=$2 ext=$3
	[ -s "$PKI/$name.crt" ] && [ -s "$PKI/$name.key" ] && return
	openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" \
		>>"$LOGS/pki.log" 2>&1 || fail pki "$LOGS/pki.log" "openssl cannot make the key of $name"
	openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 3650 \
		-extfile <(printf '%s\n' "$ext") -out "$PKI/$name.crt" >>"$LOGS/pki.log" 2>&1 ||
		fail pki "$LOGS/pki.log" "openssl cannot sign the certificate of $name"
	rm -f "$PKI/$name.csr"
	chmod 600 "$PKI/$name.key"
}

make_pki() {
	mkdir -p "$PKI"
	chmod 700 "$PKI"
	if [ ! -s "$PKI/ca.crt" ] || [ ! -s "$PKI/ca.key" ]; then
		say "kubernetes ($CLUSTER): making the cluster's CA and certificates in $PKI"
		# A new CA: every certificate the old one signed goes too.
		rm -f "$PKI"/*.crt "$PKI"/*.key "$PKI"/*.srl
		openssl req -x509 -new -nodes -newkey rsa:2048 -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 3650 \
			-subj "/CN=$CLUSTER_NAME-ca" >>"$LOGS/pki.log" 2>&1 || fail pki "$LOGS/pki.log" "openssl cannot make the CA"
		chmod 600 "$PKI/ca.key"
	fi
	local server="keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth"
	cert etcd "/CN=etcd" "$server
subjectAltName=IP:127.0.0.1,DNS:localhost"
	cert apiserver "/CN=kube-apiserver" "$server
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
	cert admin "/O=system:masters/CN=$ADMIN_USER" "keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
	if [ ! -s "$PKI/sa.key" ]; then
		{ openssl genrsa -out "$PKI/sa.key" 2048 && openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"; } \
			>>"$LOGS/pki.log" 2>&1 || fail pki "$LOGS/pki.log" "openssl cannot make the service-account key pair"
		chmod 600 "$PKI/sa.key"
	fi
	# The admin kubeconfig (lab.sh kubeconfig [remote]): kubectl, the tests, and the components below use it.
	cat >"$ADMIN_KUBECONFIG.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $CLUSTER_NAME
  cluster:
    server: $APISERVER_URL
    certificate-authority: $PKI/ca.crt
users:
- name: $ADMIN_USER
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: $CLUSTER_NAME
  context: {cluster: $CLUSTER_NAME, user: $ADMIN_USER}
current-context: $CLUSTER_NAME
EOF
	chmod 600 "$ADMIN_KUBECONFIG.tmp"
	mv "$ADMIN_KUBECONFIG.tmp" "$ADMIN_KUBECONFIG"
}


etcd_up() {
	curl -fsS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
		"$ETCD_CLIENT_URL/health" 2>/dev/null | grep -q '"health":"true"'
}
apiserver_get() {
	curl -fsS --max-time 10 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$APISERVER_URL$1" 2>/dev/null
}
apiserver_up() { [ "$(apiserver_get /readyz)" = ok ]; }
component_up() { curl -fsSk --max-time 5 "https://127.0.0.1:$1/healthz" 2>/dev/null | grep -q ok; }
kdisp_up() { curl -fsS --max-time 5 --unix-socket "$KDISP_SOCK" http://unix/healthz >/dev/null 2>&1; }
# interLink's ping answers 200 once its plugin (the dispatcher) answers.
interlink_up() { curl -fsS -o /dev/null --max-time 10 --unix-socket "$INTERLINK_SOCK" -X POST http://unix/pinglink 2>/dev/null; }
# The virtual kubelet's kubelet port has no route at /: a 404 from it is its answer.
kubelet_up() { [ "$(curl -sSk -o /dev/null -w '%{http_code}' --max-time 5 "https://127.0.0.1:$VK_PORT/" 2>/dev/null)" = 404 ]; }
# node_ready: the virtual node's Ready condition, as the API server has it ("True", "False", "Unknown", or "").
node_ready() {
	"$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" get node "$VK_NODE" \
		-o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true
}
node_is_ready() { [ "$(node_ready)" = True ]; }
default_sa() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" -n default get serviceaccount default >/dev/null 2>&1; }

# up_component NAME CHECK TIMEOUT CMD...: start CMD as NAME unless CHECK already passes for the same command
# line (a new build or other flags restart it), then wait for CHECK.
up_component() {
	local name=$1 check=$2 timeout=$3
	shift 3
	# A busy machine can miss one answer: a process of ours gets 20 s before it counts as hung.
	# shellcheck disable=SC2086 # CHECK is a command and its arguments
	if $check || { alive "$name" && wait_for 20 $check; }; then
		if ! alive "$name"; then
			say "$name: answered by a process this script did not start; leaving it as it is"
			return
		fi
		if [ "$(cat "$PIDS/$name.cmd" 2>/dev/null)" = "$*" ]; then say "$name: already up"; return; fi
		say "$name: its binary, flags or configuration changed; restarting it"
	elif alive "$name"; then
		say "$name: recorded PID $(cat "$PIDS/$name") does not answer; restarting it"
	fi
	if alive "$name"; then stop_pid "$name"; fi
	say "$name: starting"
	start "$name" "$LOGS/$name.log" "$@"
	printf '%s' "$*" >"$PIDS/$name.cmd"
	# shellcheck disable=SC2086 # CHECK is a command and its arguments
	wait_for "$timeout" $check || fail "$name" "$LOGS/$name.log" "no healthy answer in ${timeout}s"
	alive "$name" || fail "$name" "$LOGS/$name.log" "it exited (something else answers in its place?)"
}

up_etcd() {
	mkdir -p "$KUBE_STATE/etcd"
	chmod 700 "$KUBE_STATE/etcd"
	up_component "${SVC}etcd" etcd_up 60 "$KUBE_BIN/etcd" --name "$ETCD_NAME" --data-dir "$KUBE_STATE/etcd" \
		--listen-client-urls "$ETCD_CLIENT_URL" --advertise-client-urls "$ETCD_CLIENT_URL" \
		--listen-peer-urls "$ETCD_PEER_URL" --initial-advertise-peer-urls "$ETCD_PEER_URL" \
		--initial-cluster "$ETCD_NAME=$ETCD_PEER_URL" --listen-metrics-urls "$ETCD_METRICS_URL" \
		--client-cert-auth --trusted-ca-file "$PKI/ca.crt" --cert-file "$PKI/etcd.crt" --key-file "$PKI/etcd.key" \
		--peer-client-cert-auth --peer-trusted-ca-file "$PKI/ca.crt" --peer-cert-file "$PKI/etcd.crt" \
		--peer-key-file "$PKI/etcd.key"
}

up_apiserver() {
	# --endpoint-reconciler-type=none: a loopback advertise address fails the kubernetes Service's Endpoints
	# validation. The virtual node's only address is its InternalIP (127.0.0.1, its kubelet port for logs).
	up_component "${SVC}kube-apiserver" apiserver_up 120 "$KUBE_BIN/kube-apiserver" \
		--advertise-address 127.0.0.1 --bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
		--etcd-servers "$ETCD_CLIENT_URL" --etcd-cafile "$PKI/ca.crt" --etcd-certfile "$PKI/apiserver.crt" \
		--etcd-keyfile "$PKI/apiserver.key" \
		--client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
		--kubelet-client-certificate "$PKI/apiserver.crt" --kubelet-client-key "$PKI/apiserver.key" \
		--kubelet-preferred-address-types InternalIP \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
		--service-cluster-ip-range 10.96.0.0/16 --authorization-mode Node,RBAC --allow-privileged=true \
		--endpoint-reconciler-type none --profiling=false
}

up_controllers() {
	# --use-service-account-credentials and the service-account key: without them no namespace gets its
	# default ServiceAccount, and every pod is refused.
	up_component "${SVC}kube-controller-manager" "component_up $CTRL_PORT" 60 "$KUBE_BIN/kube-controller-manager" \
		--kubeconfig "$ADMIN_KUBECONFIG" --authentication-kubeconfig "$ADMIN_KUBECONFIG" \
		--authorization-kubeconfig "$ADMIN_KUBECONFIG" --bind-address 127.0.0.1 --secure-port "$CTRL_PORT" \
		--leader-elect=false --use-service-account-credentials \
		--service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
		--cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" --profiling=false
	up_component "${SVC}kube-scheduler" "component_up $SCHED_PORT" 60 "$KUBE_BIN/kube-scheduler" \
		--kubeconfig "$ADMIN_KUBECONFIG" --authentication-kubeconfig "$ADMIN_KUBECONFIG" \
		--authorization-kubeconfig "$ADMIN_KUBECONFIG" --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" \
		--leader-elect=false --profiling=false
	wait_for 60 default_sa || fail "${SVC}kube-controller-manager" "$LOGS/${SVC}kube-controller-manager.log" \
		"the default ServiceAccount did not appear"
}

# dispatcher_key: what the dispatcher's build depends on, as one hash: the checkout's commit, the status and
# the content of every changed or untracked file, and the Go toolchain. Nothing when this is no git checkout.
dispatcher_key() {
	local head
	head=$(git -C "$REPO_DIR" rev-parse HEAD 2>/dev/null) || return 0
	{
		echo "$head"
		go env GOVERSION GOFLAGS GOARCH 2>&1
		git -C "$REPO_DIR" status --porcelain=v1 --untracked-files=all 2>&1
		git -C "$REPO_DIR" ls-files -z -m -o --exclude-standard | (cd "$REPO_DIR" && xargs -0 -r sha256sum 2>&1)
	} | sha256sum | cut -c1-16
}

# build_dispatcher KEY: the commands of this checkout, into $DISPATCHER_BUILD, for both clusters. A fresh folder
# each time: the dispatchers run from hard links to it. It runs beside the control planes' start;
# $DISPATCHER_BUILD.done says when it ended, and how ("ok KEY" or "failed"), to up_dispatcher and to the next
# `up`, which builds nothing when the key is the same (go would compile nothing, but link every command again:
# half a minute on a busy machine). The caller removes it before.
build_dispatcher() {
	local version commit started=$SECONDS
	version=$(git -C "$REPO_DIR" describe --tags --always --dirty 2>/dev/null || echo dev)
	commit=$(git -C "$REPO_DIR" rev-parse HEAD 2>/dev/null || echo unknown)
	rm -rf "$DISPATCHER_BUILD"
	# -buildvcs=false: the version comes from -X; git refuses VCS stamping in a checkout another user owns.
	if (cd "$REPO_DIR" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-X main.version=$version -X main.commit=$commit" \
		-o "$DISPATCHER_BUILD/" ./cmd/...) >"$LOGS/dispatcher-build.log" 2>&1; then
		echo "ok $1" >"$DISPATCHER_BUILD.done"
		say "dispatcher: built ./cmd/... in $((SECONDS - started)) s into $DISPATCHER_BUILD"
	else
		echo failed >"$DISPATCHER_BUILD.done"
	fi
}

# kdisp_config: the configuration of the cluster's dispatcher. The main one runs its own copy of config.yaml (the
# checkout, a CI clone say, may be gone while it runs); the remote one a config of its own with the Docker
# backend only. Instance, data directory, listeners and binaries come from the environment up_dispatcher sets.
kdisp_config() {
	if [ "$CLUSTER" = main ]; then
		cat "$REPO_DIR/config.yaml"
		return
	fi
	cat <<EOF
# The dispatcher behind the lab's remote cluster (deploy/lab/kube.sh): what the Kubernetes backend offloads to.
routing:
  annotation: dispatcher.interlink.eu/backend
  default: docker
backends:
  - name: docker
    binary: bin/backend-docker
    enabled: true
    config:
      pods: 500          # the remote virtual node offers 500 pods; the backend's default (110) would refuse the rest
EOF
}

# up_dispatcher: the dispatcher of this checkout (build_dispatcher) for the cluster, with its backends
# ($KDISP_BACKENDS), on a unix socket. It is restarted when its binaries or configuration changed.
up_dispatcher() {
	local bin=$KDISP_STATE/bin sum b env=()
	mkdir -p "$KDISP_STATE/data"
	# From empty Go caches the build takes minutes.
	wait_for 1800 test -s "$DISPATCHER_BUILD.done" || fail dispatcher "$LOGS/dispatcher-build.log" "go build ./cmd/... did not end"
	[ "$(cut -d' ' -f1 "$DISPATCHER_BUILD.done")" = ok ] || fail dispatcher "$LOGS/dispatcher-build.log" "go build ./cmd/... failed"
	rm -rf "$bin.new"
	cp -al "$DISPATCHER_BUILD" "$bin.new"
	kdisp_config >"$KDISP_STATE/config.yaml.new"
	sum=$(cat "$bin.new"/* "$KDISP_STATE/config.yaml.new" | sha256sum | cut -c1-12)
	if kdisp_up && [ "$(cat "$KDISP_STATE/running" 2>/dev/null)" = "$sum" ]; then
		rm -rf "$bin.new" "$KDISP_STATE/config.yaml.new"
		say "${SVC}dispatcher: already up on $KDISP_SOCK"
		return
	fi
	if alive "${SVC}dispatcher"; then
		say "${SVC}dispatcher: its binaries or configuration changed; restarting it"
		stop_pid "${SVC}dispatcher"
	fi
	rm -rf "$bin"
	mv "$bin.new" "$bin"
	mv "$KDISP_STATE/config.yaml.new" "$KDISP_STATE/config.yaml"
	# Every backend listed is turned on: config.yaml ships the kubernetes one off (it needs a remote cluster).
	for b in "${KDISP_BACKENDS[@]}"; do
		env+=("INTERLINK_DISPATCHER_BACKENDS_${b^^}_BINARY=$bin/backend-$b" "INTERLINK_DISPATCHER_BACKENDS_${b^^}_ENABLED=true")
	done
	say "${SVC}dispatcher: starting on $KDISP_SOCK (instance $KDISP_INSTANCE, backends ${KDISP_BACKENDS[*]}; data in $KDISP_STATE/data)"
	start "${SVC}dispatcher" "$LOGS/${SVC}dispatcher.log" env \
		INTERLINK_DISPATCHER_INSTANCE=$KDISP_INSTANCE INTERLINK_DISPATCHER_DATA_DIR="$KDISP_STATE/data" \
		INTERLINK_DISPATCHER_LISTEN_TCP= INTERLINK_DISPATCHER_LISTEN_UNIX="$KDISP_SOCK" "${env[@]}" \
		"$bin/interlink-dispatcher" --config "$KDISP_STATE/config.yaml"
	wait_for 90 kdisp_up || fail "${SVC}dispatcher" "$LOGS/${SVC}dispatcher.log" "no answer on $KDISP_SOCK"
	echo "$sum" >"$KDISP_STATE/running"
}

up_interlink() {
	mkdir -p "$INTERLINK_STATE/data" "$(dirname "$INTERLINK_SOCK")"
	chmod 700 "$(dirname "$INTERLINK_SOCK")"
	cat >"$INTERLINK_STATE/InterLinkConfig.yaml" <<EOF
# interLink's API server: the virtual kubelet reaches it on its socket, it reaches the dispatcher on the
# dispatcher's socket.
InterlinkAddress: unix://$INTERLINK_SOCK
InterlinkPort: "0"
SidecarURL: unix://$KDISP_SOCK
SidecarPort: "0"
VerboseLogging: false
ErrorsOnlyLogging: false
DataRootFolder: $INTERLINK_STATE/data/
EOF
	# interLink removes its socket only on SIGTERM: one left by a killed process would refuse the new listener.
	if ! interlink_up && ! alive "${SVC}interlink"; then rm -f "$INTERLINK_SOCK"; fi
	# CONFIG_SUM (unused by interLink) puts the configuration's content into the recorded command line.
	up_component "${SVC}interlink" interlink_up 30 env CONFIG_SUM="$(sha256sum <"$INTERLINK_STATE/InterLinkConfig.yaml" | cut -c1-12)" INTERLINKCONFIGPATH="$INTERLINK_STATE/InterLinkConfig.yaml" \
		"$INTERLINK_BIN/interlink"
	cat >"$INTERLINK_STATE/VirtualKubeletConfig.yaml" <<EOF
# interLink's virtual kubelet for node $VK_NODE. Resources: what the node offers the scheduler.
InterlinkURL: unix://$INTERLINK_SOCK
InterlinkPort: "0"
VerboseLogging: false
ErrorsOnlyLogging: false
HTTP:
  Insecure: true
KubeletHTTP:
  Insecure: true
Resources:
  CPU: "16"
  Memory: 64Gi
  Pods: "500"
EOF
	# It serves the kubelet API (logs) on 127.0.0.1:$VK_PORT with a self-signed certificate, and registers the
	# node with interLink's label virtual-node.interlink/type=virtual-kubelet and taint
	# virtual-node.interlink/no-schedule.
	up_component "${SVC}virtual-kubelet" kubelet_up 60 env CONFIG_SUM="$(sha256sum <"$INTERLINK_STATE/VirtualKubeletConfig.yaml" | cut -c1-12)" NODENAME=$VK_NODE KUBELET_URL=127.0.0.1 KUBELET_PORT=$VK_PORT \
		POD_IP=127.0.0.1 CONFIGPATH="$INTERLINK_STATE/VirtualKubeletConfig.yaml" KUBECONFIG="$ADMIN_KUBECONFIG" \
		"$INTERLINK_BIN/virtual-kubelet"
	wait_for 90 node_is_ready ||
		fail "${SVC}virtual-kubelet" "$LOGS/${SVC}virtual-kubelet.log" "node $VK_NODE is not Ready"
}

# up_cluster: the current cluster (kube_cluster) from its certificates to its Ready virtual node.
up_cluster() {
	make_pki
	up_etcd
	up_apiserver
	up_controllers
	up_dispatcher
	up_interlink
	say "kubernetes ($CLUSTER): node $VK_NODE is Ready; kubectl: bash $LAB_DIR/lab.sh kubectl${SVC:+ --remote} get nodes"
}

# cmd_up_kubernetes [main|remote]: build what is missing, then bring up both clusters (or only the one named):
# the remote one in a background subshell beside the main one, as their start-ups mostly wait (an API server's
# readiness, the default ServiceAccount, the node's first ping), and the dispatcher's build beside both control
# planes, which do not need it. The remote cluster's lines say "remote-".
cmd_up_kubernetes() {
	local only=${1:-} remote= build= key
	build_interlink
	build_kube
	key=$(dispatcher_key)
	if [ -n "$key" ] && [ -d "$DISPATCHER_BUILD" ] && [ "$(cat "$DISPATCHER_BUILD.done" 2>/dev/null)" = "ok $key" ]; then
		say "dispatcher: already built in $DISPATCHER_BUILD (same commit, changes and Go)"
	else
		rm -f "$DISPATCHER_BUILD.done"
		build_dispatcher "$key" &
		build=$!
	fi
	if [ "$only" != main ]; then
		(
			kube_cluster remote
			up_cluster
		) &
		remote=$!
	fi
	if [ "$only" != remote ]; then up_cluster; fi
	if [ -n "$remote" ] && ! wait "$remote"; then die "the remote cluster did not come up (its lines above say why)"; fi
	if [ -n "$build" ]; then wait "$build"; fi
}

# status_cluster: one line per component of the current cluster, named with its prefix.
status_cluster() {
	local v
	if etcd_up; then
		v=$("$KUBE_BIN/etcd" --version 2>/dev/null | sed -n 's/^etcd Version: //p' || true)
		line "${SVC}etcd" up "${v:-?}" "$ETCD_CLIENT_URL"
	else line "${SVC}etcd" down - "$ETCD_CLIENT_URL"; fi
	if apiserver_up; then
		v=$(apiserver_get /version | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' || true)
		line "${SVC}apiserver" up "${v:-?}" "$APISERVER_URL"
	else line "${SVC}apiserver" down - "$APISERVER_URL"; fi
	if component_up "$CTRL_PORT"; then line "${SVC}ctrl-mgr" up "$KUBE_VERSION" "https://127.0.0.1:$CTRL_PORT"; else line "${SVC}ctrl-mgr" down - "https://127.0.0.1:$CTRL_PORT"; fi
	if component_up "$SCHED_PORT"; then line "${SVC}scheduler" up "$KUBE_VERSION" "https://127.0.0.1:$SCHED_PORT"; else line "${SVC}scheduler" down - "https://127.0.0.1:$SCHED_PORT"; fi
	if kdisp_up; then line "${SVC}dispatcher" up "$KDISP_INSTANCE" "unix://$KDISP_SOCK"; else line "${SVC}dispatcher" down - "unix://$KDISP_SOCK"; fi
	if interlink_up; then line "${SVC}interlink" up "${INTERLINK_VERSION##*-}" "unix://$INTERLINK_SOCK"; else line "${SVC}interlink" down - "unix://$INTERLINK_SOCK"; fi
	v=
	if apiserver_up; then v=$(node_ready); fi
	case "$v" in
	True) line "${SVC}node" up "Ready" "$VK_NODE (kubelet https://127.0.0.1:$VK_PORT)" ;;
	'') line "${SVC}node" down - "$VK_NODE not registered" ;;
	*) line "${SVC}node" down "Ready=$v" "$VK_NODE (kubelet https://127.0.0.1:$VK_PORT)" ;;
	esac
}

status_kubernetes() {
	status_cluster
	(kube_cluster remote && status_cluster)
}

# down_kubernetes [main|remote]: stop both clusters' services (or the named one's), each in reverse order of start.
down_kubernetes() {
	local c i name
	for c in remote main; do
		if [ -n "${1:-}" ] && [ "$1" != "$c" ]; then continue; fi
		kube_cluster "$c"
		for ((i = ${#KUBE_SERVICES[@]} - 1; i >= 0; i--)); do
			name=$SVC${KUBE_SERVICES[i]}
			if [ -f "$PIDS/$name" ]; then STOPPED=1; stop_pid "$name"; fi
		done
	done
	kube_cluster main
}

# cmd_kubeconfig [remote]: the path of the main cluster's admin kubeconfig, or the remote cluster's.
cmd_kubeconfig() {
	case "${1:-}" in
	'' | main) ;;
	remote) kube_cluster remote ;;
	*) die "kubeconfig takes no argument but remote" ;;
	esac
	[ -s "$ADMIN_KUBECONFIG" ] || die "no $CLUSTER cluster in this lab yet ($ADMIN_KUBECONFIG is missing): run lab.sh up"
	echo "$ADMIN_KUBECONFIG"
}

# cmd_kubectl [--remote] ARGS...: the lab's kubectl with the main cluster's admin kubeconfig, or the remote's.
cmd_kubectl() {
	if [ "${1:-}" = --remote ]; then
		shift
		kube_cluster remote
	fi
	[ -x "$KUBECTL" ] || die "kubectl is not built yet ($KUBECTL): run lab.sh up"
	cmd_kubeconfig "$CLUSTER" >/dev/null
	exec "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"
}

kube_cluster main
