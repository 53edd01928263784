#!/usr/bin/env bash
# `make bench-import`: opening a released model on a laptop-class CPU. A ViT-B/16 encoder at 224 px in the layout of
# MAE's mae_pretrain_vit_base.pth (random weights, written by tests/python/make_checkpoints.py --vit-b), then
#   1. graftlab-cli import FILE --out DIR                        wall time, peak RSS
#   2. graftlab-cli probe --ckpt DIR --kind attention --image X  (load + attention of one image + PNG) wall, peak RSS
# beside what a user of PyTorch (Debian's python3-torch) runs for the same: torch.load(weights_only=True when the
# version has it) and the same ViT's forward with attention for one image, in one process.
# Usage: benchmarks/import_bench.sh CLI [OUT_DIR]   (env: THREADS, default all cores)
set -euo pipefail
cli=${1:?usage: import_bench.sh CLI [OUT_DIR]}
out=${2:-benchmarks/out/import}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
threads=${THREADS:-$(nproc)}
mkdir -p "$out"
file="$out/mae_pretrain_vit_base-layout.pth"
[ -s "$file" ] || "$py" "$here/../tests/python/make_checkpoints.py" --vit-b "$file"
"$py" - "$out/image.png" << 'PY'
import struct, sys, zlib
w, h = 320, 240
raw = b"".join(b"\x00" + bytes(v for x in range(w) for v in ((x * 3) % 256, (y * 5) % 256, ((x ^ y) * 7) % 256)) for y in range(h))
def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                              chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
size_mb=$(( $(stat -c %s "$file") / 1000000 ))
measure() {  # measure NAME command...: prints "NAME wall_s peak_MB"
  local name=$1
  shift
  sync
  /usr/bin/time -f "%e %M" -o "$out/$name.time" "$@" > "$out/$name.log" 2>&1 || { cat "$out/$name.log"; exit 1; }
  read -r wall kb < "$out/$name.time"
  printf "%-44s %8.2f s %8d MB %6.2fx the file\n" "$name" "$wall" $((kb / 1024)) "$(awk -v k="$kb" -v s="$size_mb" "BEGIN { print k / 1024 / s }")"
}
echo "file: $file ($size_mb MB, ViT-B/16 224 px encoder, {'model': ...}), $threads threads, $(nproc) cores"
printf "%-44s %10s %11s %s\n" step "wall" "peak RSS" "(peak / file size)"
rm -rf "$out/model"
export OMP_NUM_THREADS=$threads
measure "graftlab import" "$cli" import "$file" --out "$out/model"
measure "graftlab probe attention, 1 image (+load)" "$cli" probe --ckpt "$out/model" --kind attention --out "$out/probe" --image "$out/image.png"
measure "pytorch torch.load" "$py" -c "import torch, sys; torch.set_num_threads($threads); sd = torch.load('$file', map_location='cpu')"
measure "pytorch torch.load + attention, 1 image" "$py" - "$file" "$here/../tests/python" "$threads" << 'PY'
import sys, torch
sys.path.insert(0, sys.argv[2])
torch.set_num_threads(int(sys.argv[3]))
from vit_reference import vit_tokens
sd = torch.load(sys.argv[1], map_location="cpu")["model"]
with torch.no_grad():
    vit_tokens(sd, torch.randn(1, 3, 224, 224), 12)
PY
