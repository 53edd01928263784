#!/usr/bin/env bash
# Copies the header-only dependencies the GPU machine lacks (spdlog, fmt, nlohmann/json, gloo, zlib headers) into
# .gpu-deps/include, from this Debian machine's packages. Run it here, then carry .gpu-deps to the device:
#   run(command="bash tests/gpu/run_on_device.sh", carry=[".gpu-deps"])
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dest="$root/.gpu-deps/include"
rm -rf "$root/.gpu-deps"
mkdir -p "$dest"
# gloo: torch/csrc/distributed/c10d/ProcessGroupGloo.hpp includes gloo/algorithm.h, which pip's torch does not ship
for d in spdlog fmt nlohmann gloo; do cp -r "/usr/include/$d" "$dest/"; done
cp /usr/include/zlib.h /usr/include/zconf.h "$dest/"
du -sh "$root/.gpu-deps"
