#!/usr/bin/env bash
# The LibTorch 2.x code paths (scaled-dot-product attention, the fused AdamW, device-side loss checks, the untagged
# .pt export, the libuv-less TCPStore) are compiled out of the default build (Debian 12's LibTorch 1.13) and their
# tests skip there. This builds GraftLab against Debian 13's LibTorch 2.6 (CPU) in a chroot and runs every test:
#   sudo bash tests/torch2/run_in_trixie.sh [CHROOT_DIR]      (default /var/tmp/graftlab-trixie; ~1.5 GB, 2 cores:
#                                                             debootstrap 3 min, packages 5 min, build 15 min)
# TORCH_DIR=1 builds through GRAFTLAB_TORCH_DIR (python3-torch's package layout, as a pip PyTorch is linked)
# instead of find_package(Torch).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
ch=${1:-/var/tmp/graftlab-trixie}
[ "$(id -u)" = 0 ] || { echo "needs root (debootstrap, chroot, mounts)"; exit 1; }
command -v debootstrap > /dev/null || apt-get install -y -q debootstrap
if [ ! -x "$ch/usr/bin/apt-get" ]; then
  debootstrap --variant=minbase --include=ca-certificates trixie "$ch" http://deb.debian.org/debian
fi
mkdir -p "$ch/src"
mountpoint -q "$ch/proc" || mount --bind /proc "$ch/proc"
mountpoint -q "$ch/dev" || mount --bind /dev "$ch/dev"
mountpoint -q "$ch/src" || mount --bind "$root" "$ch/src"
trap 'umount "$ch/src" "$ch/dev" "$ch/proc" 2> /dev/null || true' EXIT
pk=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$root/packaging/debian-packages.txt" | grep -v '^$' | tr '\n' ' ')
chroot "$ch" bash -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q --no-install-recommends $pk python3-numpy git > /dev/null"
torch="system"; [ "${TORCH_DIR:-0}" = 1 ] && torch=/usr/lib/python3/dist-packages/torch
chroot "$ch" bash -c "git config --global --add safe.directory /src; cd /src && make test BUILD=build-trixie TORCH=$torch"
