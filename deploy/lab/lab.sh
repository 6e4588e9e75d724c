#!/usr/bin/env bash
# The test lab: real Docker Engine, Podman REST service, a single-node SLURM cluster and a local registry mirror
# seeded with locally built images, on one Debian 12 machine, as root, without systemd and without internet.
#
#   lab.sh up [--no-kubernetes]
#                  install what is missing (apt), write the host config, start what is not running, seed images;
#                  then build (once per version) and start the two Kubernetes clusters of kube.sh: the main one
#                  (control plane, interLink API server and virtual kubelet, a dispatcher with all three backends
#                  behind them) and, beside it, the remote one (the same chain on other ports, a Docker-only
#                  dispatcher: the cluster the Kubernetes backend offloads to)
#   lab.sh up --remote-only
#                  only the remote cluster (the engines and the main cluster are left as they are)
#   lab.sh status  one line per service: up/down, version, address (the remote cluster's say remote-)
#   lab.sh down [--remote-only]
#                  stop the services this script started (by PID), nothing else; or the remote cluster's only
#   lab.sh restart docker|podman|slurmctld
#                  stop one engine and start it again as `up` does (the fault-injection tests' engine restart)
#   lab.sh kubeconfig [remote]
#                  print the path of the main (or the remote) cluster's admin kubeconfig
#   lab.sh kubectl [--remote] ARGS...
#                  run the lab's kubectl with it
#
# Every service runs as a plain background process. What the script starts is recorded under $LAB_STATE/pids,
# so `down` stops only those. Logs are in $LAB_STATE/logs. See the README ("The test lab") for what it changes.
set -euo pipefail

LAB_STATE=${LAB_STATE:-/var/lib/interlink-lab}
PIDS=$LAB_STATE/pids
LOGS=$LAB_STATE/logs
REGISTRY_ADDR=127.0.0.1:5000
DOCKER_SOCK=/var/run/docker.sock
PODMAN_SOCK=/run/podman/podman.sock
# systemd: its systemd-analyze checks deploy/systemd's units (deploy/systemd/systemd_test.go); nothing here runs
# it as PID 1.
PACKAGES=(docker.io podman catatonit slurm-wlm munge docker-registry busybox-static debootstrap prometheus
	iproute2 curl ca-certificates openssl systemd tmux)
# The docker CLI that matches the engine; another one may come first on PATH.
DOCKER=/usr/bin/docker
MARK="# written by interlink-dispatcher deploy/lab/lab.sh"

# shellcheck source=deploy/lab/kube.sh
source "$(dirname "${BASH_SOURCE[0]}")/kube.sh"

say() { printf '[lab] %s\n' "$*"; }
die() { printf '[lab] FAILED: %s\n' "$*" >&2; exit 1; }

# fail SERVICE LOGFILE REASON: report a service that did not come up, with the tail of its log.
fail() {
	local svc=$1 log=$2 reason=$3
	printf '[lab] FAILED: %s did not come up: %s\n' "$svc" "$reason" >&2
	if [ -f "$log" ]; then
		printf '[lab] last lines of %s:\n' "$log" >&2
		tail -n 25 "$log" | sed 's/^/[lab]   /' >&2
	fi
	exit 1
}

# wait_for SECONDS CMD...: retry CMD every half second until it succeeds or time runs out.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.5
	done
}

# start_time PID: when the process started (clock ticks since boot, /proc/PID/stat field 22), or nothing.
start_time() { awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null || true; }

# start NAME LOGFILE CMD...: start CMD detached, in its own session, and record its PID as ours, with its
# start time, so that a PID reused by another process after a reboot is never taken for it.
start() {
	local name=$1 log=$2
	shift 2
	mkdir -p "$PIDS" "$LOGS"
	# 9>&-: a service must not hold lab.sh's lock (fd 9) for as long as it runs.
	setsid "$@" >>"$log" 2>&1 </dev/null 9>&- &
	echo $! >"$PIDS/$name"
	start_time $! >"$PIDS/$name.start"
}

# alive NAME: the process this script recorded as NAME is running (the same PID, started at the same time).
alive() {
	local pid
	[ -f "$PIDS/$1" ] || return 1
	pid=$(cat "$PIDS/$1")
	kill -0 "$pid" 2>/dev/null || return 1
	[ ! -s "$PIDS/$1.start" ] || [ "$(start_time "$pid")" = "$(cat "$PIDS/$1.start")" ]
}

# own NAME PIDFILE: record as ours a daemon that wrote its own pidfile after forking.
own() {
	local name=$1 pidfile=$2
	mkdir -p "$PIDS"
	if wait_for 15 test -s "$pidfile"; then
		cp "$pidfile" "$PIDS/$name"
		start_time "$(cat "$pidfile")" >"$PIDS/$name.start"
	fi
}

# write_file PATH CONTENT: write a host config file, keeping a backup of a file we did not write.
write_file() {
	local path=$1 content=$2
	if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then return 0; fi
	mkdir -p "$(dirname "$path")"
	if [ -f "$path" ] && ! grep -qF "$MARK" "$path"; then
		cp -p "$path" "$path.before-interlink-lab"
		say "backed up $path to $path.before-interlink-lab"
	fi
	printf '%s\n' "$content" >"$path"
	WROTE=$path
	say "wrote $path"
}

http_ok() { curl -fsS -o /dev/null --max-time 10 "$@" 2>/dev/null; }
docker_up() { http_ok --unix-socket "$DOCKER_SOCK" http://d/_ping; }
podman_up() { http_ok --unix-socket "$PODMAN_SOCK" http://d/v4.0.0/libpod/_ping; }
podman_lists() { curl -fsS -o /dev/null --max-time 30 --unix-socket "$PODMAN_SOCK" 'http://d/v4.0.0/libpod/containers/json?all=true' 2>/dev/null; }
registry_up() { http_ok "http://$REGISTRY_ADDR/v2/"; }
munge_up() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }
slurmctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
# A node is up unless out of service; busy states (mixed, allocated, completing, planned) count as up.
slurmd_up() { sinfo -h -N -o '%T' 2>/dev/null | grep -Evq '^(down|drain|fail|future|inval|unknown|maint|reboot|power)'; }

install_packages() {
	local missing=()
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "packages: all present"
		return
	fi
	say "packages: installing ${missing[*]} (apt-get; a few minutes on a fresh machine)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >"$LOGS/apt.log" 2>&1 || fail apt "$LOGS/apt.log" "apt-get update failed"
	apt-get install -y -qq "${missing[@]}" >>"$LOGS/apt.log" 2>&1 ||
		fail apt "$LOGS/apt.log" "apt-get install failed"
}

up_registry() {
	if registry_up; then say "registry: already up on $REGISTRY_ADDR"; return; fi
	mkdir -p "$LAB_STATE/registry"
	cat >"$LAB_STATE/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $LAB_STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
	say "registry: starting docker-registry on $REGISTRY_ADDR"
	start registry "$LOGS/registry.log" docker-registry serve "$LAB_STATE/registry.yml"
	wait_for 30 registry_up || fail registry "$LOGS/registry.log" "no answer on http://$REGISTRY_ADDR/v2/"
}

up_docker() {
	write_file /etc/docker/daemon.json "{
  \"iptables\": false,
  \"registry-mirrors\": [\"http://$REGISTRY_ADDR\"],
  \"insecure-registries\": [\"$REGISTRY_ADDR\"]
}"
	if docker_up; then say "docker: already up on $DOCKER_SOCK"; return; fi
	say "docker: starting dockerd on $DOCKER_SOCK"
	start docker "$LOGS/dockerd.log" dockerd
	wait_for 60 docker_up || fail docker "$LOGS/dockerd.log" "no answer on $DOCKER_SOCK"
}

up_podman() {
	# Podman's default ulimits cannot be set in this sandbox; use the hard limits we have.
	local nofile nproc
	nofile=$(ulimit -Hn)
	nproc=$(ulimit -Hu)
	[ "$nofile" = unlimited ] && nofile=1048576
	[ "$nproc" = unlimited ] && nproc=4096
	[ "$nproc" -gt 4096 ] && nproc=4096
	write_file /etc/containers/containers.conf "$MARK
[containers]
default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]"
	write_file /etc/containers/registries.conf.d/50-interlink-lab.conf "$MARK
unqualified-search-registries = [\"docker.io\"]

[[registry]]
prefix = \"docker.io\"
location = \"docker.io\"

[[registry.mirror]]
location = \"$REGISTRY_ADDR\"
insecure = true

[[registry]]
prefix = \"$REGISTRY_ADDR\"
location = \"$REGISTRY_ADDR\"
insecure = true"
	if podman_up; then
		if podman_lists; then say "podman: already up on $PODMAN_SOCK"; return; fi
		# The ping needs no lock, a list takes every container's: when one is held for good (see below),
		# every call touching it hangs. Only a restart with fresh locks gets the service back.
		say "podman: the service answers but a container list hangs (a lock held for good); restarting it"
		reset_podman
	fi
	if ! pgrep -x podman >/dev/null; then
		# A podman process killed while it held a container's or volume's lock leaves that lock taken in
		# Podman's shared memory for good (renumber alone does not release it), and the next object given
		# that lock hangs every call touching it. With no podman process running, a fresh lock memory is safe.
		say "podman: fresh locks (rm /dev/shm/libpod_lock; podman system renumber)"
		rm -f /dev/shm/libpod_lock
		timeout 120 podman system renumber || fail podman "$LOGS/podman.log" "podman system renumber failed"
	fi
	say "podman: starting the REST service on $PODMAN_SOCK"
	mkdir -p "$(dirname "$PODMAN_SOCK")"
	rm -f "$PODMAN_SOCK"
	start podman "$LOGS/podman.log" podman system service --time=0 "unix://$PODMAN_SOCK"
	wait_for 30 podman_up || fail podman "$LOGS/podman.log" "no answer on $PODMAN_SOCK"
}

# stop_everywhere stops every process named name: the one this script recorded (stop_pid), then any other
# with signal sig, failing if one still runs after secs seconds.
stop_everywhere() {
	local name=$1 sig=$2 secs=$3
	if [ -f "$PIDS/$name" ]; then stop_pid "$name"; fi
	if pgrep -x "$name" >/dev/null; then
		say "$name: stopping the ones this script did not start (SIG$sig)"
		pkill "-$sig" -x "$name" || true
		wait_for "$secs" bash -c "! pgrep -x $name >/dev/null" || fail "$name" "$LOGS/$name.log" "$name does not stop"
	fi
}

# reset_podman stops every podman process (the service and the cleanups conmon started, not the containers'
# conmon; KILL, as one hung on a lock does not end on TERM), so that up_podman starts the service again on
# fresh locks.
reset_podman() { stop_everywhere podman KILL 10; }

up_slurm() {
	# munge: a key readable by munge only, the daemon running as munge.
	if [ ! -s /etc/munge/munge.key ]; then
		say "munge: generating /etc/munge/munge.key"
		dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
	fi
	chown munge:munge /etc/munge/munge.key
	chmod 0400 /etc/munge/munge.key
	if munge_up; then
		say "munge: already up"
	else
		say "munge: starting munged"
		mkdir -p /run/munge /var/log/munge /var/lib/munge
		chown munge:munge /run/munge /var/log/munge /var/lib/munge
		rm -f /run/munge/munged.pid
		runuser -u munge -- /usr/sbin/munged >>"$LOGS/munged.log" 2>&1 9>&- || fail munge "$LOGS/munged.log" "munged exited"
		own munge /run/munge/munged.pid
		wait_for 15 munge_up || fail munge /var/log/munge/munged.log "munge -n | unmunge fails"
	fi

	# slurm.conf for this host, from what slurmd itself detects (a RealMemory above it drains the node), except
	# the CPUs: a job holds at least one whole core, so a 2-CPU node runs two jobs at a time and the tests, which
	# mostly wait, would queue behind each other. The node declares LAB_SLURM_CPUS CPUs (default 8 per real
	# CPU, at least 16) and slurmd believes the config (SlurmdParameters=config_overrides), as test clusters do.
	# At 8 the node was full (a 1-CPU job pending with reason Resources) for about half of a SLURM package run
	# with the other packages' tests beside it, and jobs waited minutes behind sleeping pods.
	local host node real cpus
	host=$(hostname -s)
	node=$(slurmd -C | head -n 1)
	real=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$node")
	cpus=${LAB_SLURM_CPUS:-$(( real * 8 > 16 ? real * 8 : 16 ))}
	node=$(sed -E "s/ CPUs=[0-9]+/ CPUs=$cpus/; s/ Boards=[0-9]+/ Boards=1/; s/ SocketsPerBoard=[0-9]+/ SocketsPerBoard=1/; s/ CoresPerSocket=[0-9]+/ CoresPerSocket=$cpus/; s/ ThreadsPerCore=[0-9]+/ ThreadsPerCore=1/" <<<"$node")
	WROTE=
	write_file /etc/slurm/slurm.conf "$MARK
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SlurmdParameters=config_overrides
MinJobAge=30
KillWait=30
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP"
	mkdir -p /var/spool/slurmctld /var/spool/slurmd "$LOGS"
	if [ -n "$WROTE" ] && slurmctld_up; then
		say "slurmctld: reading the new slurm.conf (scontrol reconfigure)"
		if ! scontrol reconfigure; then
			# Node changes (CPUs, memory) are read only at start.
			say "slurm: this change needs slurmctld and slurmd restarted; stopping them"
			restart_slurm_daemons
		fi
	fi
	if slurmctld_up; then
		say "slurmctld: already up"
	else
		say "slurmctld: starting"
		rm -f /run/slurmctld.pid
		slurmctld >>"$LOGS/slurmctld.out" 2>&1 || fail slurmctld "$LOGS/slurmctld.log" "slurmctld exited"
		own slurmctld /run/slurmctld.pid
		wait_for 30 slurmctld_up || fail slurmctld "$LOGS/slurmctld.log" "scontrol ping does not answer UP"
	fi
	if pgrep -x slurmd >/dev/null; then
		say "slurmd: already running"
	else
		say "slurmd: starting"
		rm -f /run/slurmd.pid
		slurmd >>"$LOGS/slurmd.out" 2>&1 || fail slurmd "$LOGS/slurmd.log" "slurmd exited"
		own slurmd /run/slurmd.pid
	fi
	if ! wait_for 30 slurmd_up; then
		# A node left down or drained by an earlier run comes back once told so.
		scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
		wait_for 20 slurmd_up || fail slurmd "$LOGS/slurmd.log" "node $host is not idle: $(sinfo -h -N -o '%T %E' 2>&1)"
	fi
	say "slurm: node $host $(sinfo -h -N -o '%T' | head -n 1)"
}

# restart_slurm_daemons stops slurmd and slurmctld (by the PIDs this script recorded, else by name) so that
# up_slurm starts them again on the new slurm.conf; jobs survive in StateSaveLocation.
restart_slurm_daemons() {
	stop_everywhere slurmd TERM 20
	stop_everywhere slurmctld TERM 20
}

image_in_registry() { http_ok -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://$REGISTRY_ADDR/v2/$1/manifests/$2"; }

# The images the tests use, by Docker Hub name, and the root folder each is made from. The interLink community's
# pod test set names alpine, python and nginx tags: offline, they are stand-ins made from the same Debian root
# (bookworm's Python is 3.11), each with the CMD of the image it stands for.
IMAGES=(
	"library/busybox:latest busybox [\"sh\"]"
	"library/busybox:1.36 busybox [\"sh\"]"
	"library/busybox:stable busybox [\"sh\"]"
	"library/python:3-slim debian [\"python3\"]"
	"library/python:3.11 debian [\"python3\"]"
	"library/python:3.11-alpine debian [\"python3\"]"
	"library/python:alpine debian [\"python3\"]"
	"library/alpine:latest debian [\"/bin/sh\"]"
	"library/alpine:3 debian [\"/bin/sh\"]"
	"library/alpine:3.19 debian [\"/bin/sh\"]"
	"library/nginx:alpine debian [\"nginx\",\"-g\",\"daemon off;\"]"
	"library/nginx:latest debian [\"nginx\",\"-g\",\"daemon off;\"]"
)

# seed_images: for each image the registry lacks, build its root folder once, import it once per CMD (a tag
# with the same root and CMD is the same image), and push it.
declare -A IMPORTED=()
seed_images() {
	local entry repo tag root cmd ref dest
	for entry in "${IMAGES[@]}"; do
		read -r ref root cmd <<<"$entry"
		repo=${ref%%:*}
		tag=${ref#*:}
		if image_in_registry "$repo" "$tag"; then continue; fi
		dest="$REGISTRY_ADDR/$repo:$tag"
		if [ -n "${IMPORTED[$root $cmd]:-}" ]; then
			$DOCKER tag "${IMPORTED[$root $cmd]}" "$dest"
		else
			build_root "$root"
			say "images: importing $repo:$tag"
			tar -C "$LAB_STATE/build/$root" -c . |
				$DOCKER import --change "CMD $cmd" --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$dest" >>"$LOGS/images.log" 2>&1 ||
				fail images "$LOGS/images.log" "docker import of $repo:$tag failed"
			IMPORTED[$root $cmd]=$dest
		fi
		$DOCKER push "$dest" >>"$LOGS/images.log" 2>&1 || fail images "$LOGS/images.log" "docker push of $dest failed"
		say "images: pushed $dest"
	done
	say "images: ${#IMAGES[@]} images in the registry"
}

# build_root NAME: build the root folder NAME once per run of this script (it is reused by every tag made from it).
declare -A BUILT=()
build_root() {
	local name=$1 root="$LAB_STATE/build/$1"
	[ -z "${BUILT[$name]:-}" ] || return 0
	say "images: building the $name root folder in $root"
	rm -rf "$root"
	mkdir -p "$root"
	"build_$name" "$root" >>"$LOGS/images.log" 2>&1 || fail images "$LOGS/images.log" "building the $name root folder failed"
	BUILT[$name]=1
}

build_busybox() {
	local root=$1
	mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/tmp" "$root/etc" "$root/root" \
		"$root/proc" "$root/sys" "$root/dev" "$root/var/www"
	chmod 1777 "$root/tmp"
	cp /bin/busybox "$root/bin/busybox"
	chroot "$root" /bin/busybox --install -s
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\n' >"$root/etc/group"
}

# build_debian: a bookworm minbase with the full python3 (python3-minimal lacks json and http.server) and nginx.
build_debian() {
	local root=$1 mirror
	mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
	debootstrap --variant=minbase --include=python3,nginx-light,procps bookworm "$root" "$mirror"
	ln -sf python3 "$root/usr/bin/python"
	# nginx logs to the container's output, as the official image does.
	ln -sf /dev/stdout "$root/var/log/nginx/access.log"
	ln -sf /dev/stderr "$root/var/log/nginx/error.log"
	rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*
}

cmd_up() {
	[ "$(id -u)" = 0 ] || die "run as root"
	mkdir -p "$LAB_STATE" "$PIDS" "$LOGS"
	# Services inherit the working directory; keep whatever they drop there (conmon writes an "oom" file on
	# OOM kills) out of the caller's checkout.
	cd "$LAB_STATE"
	if [ "${1:-}" = --remote-only ]; then
		cmd_up_kubernetes remote
		say "remote cluster is up"
		cmd_status
		return
	fi
	install_packages
	up_registry
	up_docker
	up_podman
	up_slurm
	seed_images
	case "${1:-}" in
	--no-kubernetes) say "kubernetes: both clusters left as they are (--no-kubernetes)" ;;
	'') cmd_up_kubernetes ;;
	*) die "up takes no argument but --no-kubernetes or --remote-only" ;;
	esac
	say "lab is up"
	cmd_status
}

line() { printf '%-17s %-5s %-22s %s\n' "$@"; }

# engine_version prints the Version an engine's REST API answers at url, or nothing: a busy engine slow to
# answer makes its status line say "?", never ends the status.
engine_version() {
	curl -fsS --max-time 10 --unix-socket "$1" "$2" 2>/dev/null | sed -n 's/.*"Version":"\([^"]*\)".*/\1/p' | head -n 1 || true
}

cmd_status() {
	local v
	if registry_up; then v=$(docker-registry --version 2>/dev/null | awk '{print $3}'); line registry up "${v:-?}" "http://$REGISTRY_ADDR"; else line registry down - "http://$REGISTRY_ADDR"; fi
	if docker_up; then
		v=$(engine_version "$DOCKER_SOCK" http://d/version)
		line docker up "${v:-?}" "unix://$DOCKER_SOCK"
	else line docker down - "unix://$DOCKER_SOCK"; fi
	if podman_up; then
		v=$(engine_version "$PODMAN_SOCK" http://d/v4.0.0/libpod/version)
		line podman up "${v:-?}" "unix://$PODMAN_SOCK"
	else line podman down - "unix://$PODMAN_SOCK"; fi
	if munge_up; then line munge up "$(munged --version 2>/dev/null | awk '{print $1}' | sed 's/munge-//')" /run/munge/munge.socket.2; else line munge down - /run/munge/munge.socket.2; fi
	v=$(sinfo --version 2>/dev/null | awk '{print $2}')
	if slurmctld_up; then line slurmctld up "${v:-?}" "$(hostname -s):6817"; else line slurmctld down - "$(hostname -s):6817"; fi
	if slurmd_up; then line slurmd up "${v:-?}" "$(hostname -s):6818"; else line slurmd down - "$(hostname -s):6818 $(sinfo -h -N -o '%T' 2>/dev/null | head -n 1)"; fi
	status_kubernetes
}

stop_pid() {
	local name=$1 pid
	pid=$(cat "$PIDS/$name")
	if alive "$name"; then
		say "$name: stopping PID $pid"
		kill -TERM "$pid" 2>/dev/null || true
		wait_for 20 bash -c "! kill -0 $pid" || { say "$name: PID $pid did not stop, killing it"; kill -KILL "$pid" 2>/dev/null || true; }
	else
		say "$name: PID $pid is not running (or is another process now)"
	fi
	rm -f "$PIDS/$name" "$PIDS/$name.cmd" "$PIDS/$name.start"
}

# stop_service NAME PROC SECS: stop the service this script recorded as NAME (SIGTERM, SIGKILL after SECS
# seconds), then any other process PROC matches (pgrep -f) the same way: a service started before the
# script recorded it is stopped too.
stop_service() {
	local name=$1 proc=$2 secs=$3 pid
	if [ -f "$PIDS/$name" ]; then
		pid=$(cat "$PIDS/$name")
		if alive "$name"; then
			say "$name: stopping PID $pid"
			kill -TERM "$pid" 2>/dev/null || true
			wait_for "$secs" bash -c "! kill -0 $pid" || { say "$name: PID $pid did not stop in ${secs}s, killing it"; kill -KILL "$pid" 2>/dev/null || true; }
		fi
		rm -f "$PIDS/$name" "$PIDS/$name.cmd" "$PIDS/$name.start"
	fi
	if pgrep -f "$proc" >/dev/null; then
		say "$name: stopping the ones this script did not start"
		pkill -TERM -f "$proc" || true
		wait_for "$secs" bash -c "! pgrep -f '$proc' >/dev/null" || { pkill -KILL -f "$proc" || true; }
		wait_for 10 bash -c "! pgrep -f '$proc' >/dev/null" || fail "$name" "$LOGS/$name.log" "$name does not stop"
	fi
}

# cmd_restart SERVICE: stop one engine and start it again exactly as `up` starts it (same command, log, PID
# record and checks). Pods survive as each engine lets them: dockerd stops its containers, the Podman
# service and slurmctld leave theirs running.
cmd_restart() {
	[ "$(id -u)" = 0 ] || die "run as root"
	mkdir -p "$LAB_STATE" "$PIDS" "$LOGS"
	cd "$LAB_STATE"
	case "${1:-}" in
	docker)
		# dockerd stops every container first, each within its own stop timeout.
		stop_service docker '^([^ ]*/)?dockerd( |$)' 90
		up_docker
		;;
	podman)
		# Only the REST service: podman processes of running containers and jobs are left alone.
		stop_service podman '^([^ ]*/)?podman system service' 30
		up_podman
		;;
	slurmctld)
		# Jobs survive in StateSaveLocation; slurmd keeps running them meanwhile.
		stop_service slurmctld '^([^ ]*/)?slurmctld( |$)' 30
		up_slurm
		;;
	*) die "restart takes one of: docker, podman, slurmctld" ;;
	esac
	cmd_status
}

cmd_down() {
	[ "$(id -u)" = 0 ] || die "run as root"
	STOPPED=
	case "${1:-}" in
	--remote-only)
		down_kubernetes remote
		[ -n "$STOPPED" ] || say "nothing of the remote cluster is recorded in $PIDS"
		cmd_status
		return
		;;
	'') ;;
	*) die "down takes no argument but --remote-only" ;;
	esac
	# Reverse order of start: the Kubernetes chains before the engines their dispatchers use, SLURM before
	# munge, engines before the registry they pull from.
	down_kubernetes
	for name in slurmd slurmctld munge podman docker registry; do
		if [ -f "$PIDS/$name" ]; then STOPPED=1; stop_pid "$name"; fi
	done
	[ -n "$STOPPED" ] || say "nothing started by this script is recorded in $PIDS"
	rm -f "$PODMAN_SOCK"
	cmd_status
}

# One lab.sh at a time changes the lab: a second up, down or restart waits for the first (a Kubernetes build
# in progress, say) instead of starting the same service twice or removing a half-built folder.
case "${1:-}" in
up | down | restart)
	[ "$(id -u)" = 0 ] || die "run as root"
	mkdir -p "$LAB_STATE"
	exec 9>"$LAB_STATE/lab.lock"
	if ! flock -n 9; then
		say "another lab.sh is changing the lab; waiting for it"
		flock 9
	fi
	;;
esac

case "${1:-}" in
up) cmd_up "${2:-}" ;;
status) cmd_status ;;
down) cmd_down "${2:-}" ;;
restart) cmd_restart "${2:-}" ;;
kubeconfig) cmd_kubeconfig "${2:-}" ;;
kubectl)
	shift
	cmd_kubectl "$@"
	;;
*)
	echo "usage: $0 up [--no-kubernetes|--remote-only]|status|down [--remote-only]|restart docker|podman|slurmctld|kubeconfig [remote]|kubectl [--remote] ARGS..." >&2
	exit 2
	;;
esac
