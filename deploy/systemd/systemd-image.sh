#!/usr/bin/env bash
# Prints the name of a local Docker image in which systemd runs as PID 1 (Debian 12: systemd, curl), building
# it first if needed, for systemd_test.go's TestUnitUnderSystemd: the machines this project runs on have no
# systemd as PID 1, so the units run under this one, in a container of the lab's Docker Engine.
# Built with debootstrap from the Debian mirror apt uses (about 2 minutes), named after a hash of this
# script, so a second call builds nothing. Nothing of it is pushed anywhere.
set -euo pipefail
sum=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)
image=interlink-dispatcher-systemd-check:$sum
if docker image inspect "$image" >/dev/null 2>&1; then
	echo "$image"
	exit 0
fi
command -v debootstrap >/dev/null || { echo "systemd-image.sh: debootstrap is missing (deploy/lab/lab.sh up installs it)" >&2; exit 1; }
mirror=$(awk '$1 == "URIs:" { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "systemd-image.sh: building $image from $mirror (log $work/debootstrap.log)" >&2
if ! debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,curl bookworm "$work/root" "$mirror" \
	>"$work/debootstrap.log" 2>&1; then
	tail -20 "$work/debootstrap.log" >&2
	exit 1
fi
# Nothing in the container needs a console login or the network of its own.
rm -f "$work"/root/etc/systemd/system/getty.target.wants/* \
	"$work"/root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service 2>/dev/null || true
tar -C "$work/root" -c . | docker import - "$image" >/dev/null
echo "$image"
