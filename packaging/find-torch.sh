#!/usr/bin/env bash
# Which LibTorch `make` builds against; prints the CMake arguments for it (and says so on stderr).
#   find-torch.sh ""        auto: the PyTorch of python3 when it is a CUDA build (pip or conda: the usual way to
#                           get CUDA LibTorch), else Debian's LibTorch (libtorch-dev, CPU)
#   find-torch.sh system    Debian's LibTorch
#   find-torch.sh DIR       the torch package at DIR (.../site-packages/torch) or a python executable whose
#                           torch to take (e.g. ~/venv/bin/python)
# Everything else (Qt, OpenCV, spdlog, gloo's headers, ...) comes from Debian's packages either way.
set -euo pipefail
want=${1:-}
py=${PYTHON:-python3}
probe() {  # $1 = python; prints "dir abi version cuda" of its torch, nothing when it has none
  "$1" - <<'PY' 2>/dev/null || true
import os, torch
print(os.path.dirname(torch.__file__), int(torch._C._GLIBCXX_USE_CXX11_ABI), torch.__version__, torch.version.cuda or "none")
PY
}
args_for() {  # $1 dir $2 abi $3 version $4 cuda
  [ -f "$1/lib/libtorch.so" ] && [ -d "$1/include/torch" ] || { echo "find-torch: $1 has no lib/libtorch.so and include/torch (not a torch package with its C++ library)" >&2; exit 1; }
  echo "find-torch: building against PyTorch $3 at $1 (CUDA: $4; C++11 ABI $2); the rest from Debian" >&2
  echo "-DGRAFTLAB_TORCH_DIR=$1 -DGRAFTLAB_TORCH_CXX11_ABI=$2"
}
case "$want" in
  system)
    echo "find-torch: Debian's LibTorch (libtorch-dev)" >&2
    echo "-DGRAFTLAB_TORCH_DIR="
    ;;
  "")
    read -r dir abi ver cuda <<< "$(probe "$py")" || true
    if [ -n "${dir:-}" ] && [ "${cuda:-none}" != none ] && [ -f "$dir/lib/libtorch.so" ]; then
      args_for "$dir" "$abi" "$ver" "$cuda"
    else
      echo "find-torch: Debian's LibTorch (no CUDA PyTorch in $py; TORCH=DIR picks another)" >&2
      echo "-DGRAFTLAB_TORCH_DIR="
    fi
    ;;
  *)
    if [ -x "$want" ] && [ ! -d "$want" ]; then py=$want; else py=""; fi
    if [ -n "$py" ]; then
      read -r dir abi ver cuda <<< "$(probe "$py")" || true
      [ -n "${dir:-}" ] || { echo "find-torch: $want cannot import torch" >&2; exit 1; }
    else
      [ -d "$want" ] || { echo "find-torch: TORCH=$want is neither a torch package folder nor a python executable" >&2; exit 1; }
      dir=$(cd "$want" && pwd)
      # the ABI and version of a torch package without importing it (its python may not be ours)
      abi=1
      if grep -q "_GLIBCXX_USE_CXX11_ABI=0" "$dir/share/cmake/Torch/TorchConfig.cmake" 2>/dev/null; then abi=0; fi
      ver=$(sed -n "s/^__version__ = '\(.*\)'.*/\1/p" "$dir/version.py" 2>/dev/null || true)
      cuda=$(sed -n "s/^cuda[^=]*= '\(.*\)'.*/\1/p" "$dir/version.py" 2>/dev/null || true)
      ver=${ver:-unknown}; cuda=${cuda:-none}
    fi
    args_for "$dir" "$abi" "$ver" "$cuda"
    ;;
esac
