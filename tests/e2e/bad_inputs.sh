#!/usr/bin/env bash
# Table-driven: every bad input gets a non-zero exit and a message naming the field or file at fault.
set -uo pipefail
cli=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
tiny="--set data.dataset=synthetic --set data.synthetic_size=64 --set data.image_size=16 --set model.embed_dim=32
      --set model.depth=2 --set model.num_heads=2 --set model.decoder_embed_dim=32 --set model.decoder_depth=1
      --set model.decoder_num_heads=2 --set optim.batch_size=16 --set probes.every=0"
# check NAME EXPECTED_FRAGMENT COMMAND...: the command must fail (not crash) and print the fragment
check() {
  local name=$1 want=$2
  shift 2
  "$@" > "$work/out.txt" 2>&1
  local rc=$?
  if [ $rc -eq 0 ]; then
    echo "FAIL [$name]: exit 0"; failures=$((failures + 1)); return
  fi
  if [ $rc -ge 128 ]; then
    echo "FAIL [$name]: crashed (status $rc)"; tail -3 "$work/out.txt"; failures=$((failures + 1)); return
  fi
  if ! grep -qF -- "$want" "$work/out.txt"; then
    echo "FAIL [$name]: message lacks \"$want\":"; tail -3 "$work/out.txt"; failures=$((failures + 1)); return
  fi
  echo "ok   [$name] ($rc): $(grep -F -m1 -- "$want" "$work/out.txt" | cut -c1-110)"
}

# --- recipes
printf '{\n  "name": "x",\n  "optim": { "batch_size": 16,, }\n}\n' > "$work/malformed.json"
check "malformed JSON: line and column" "malformed.json:3:" "$cli" train --recipe "$work/malformed.json" --out "$work/r1"
# found by fuzzing: a number too large for a double used to escape as a raw JSON library error without a position
printf '{\n  "name": "x",\n  "optim": { "lr": 1e999 }\n}\n' > "$work/overflow.json"
check "number overflow: line and column" "overflow.json:3:20: malformed JSON (number overflow parsing '1e999'" \
  "$cli" train --recipe "$work/overflow.json" --out "$work/r1b"
printf '{ "name": "x", "optim": { "batchsize": 16 } }\n' > "$work/unknown.json"
check "unknown key named" "optim.batchsize" "$cli" train --recipe "$work/unknown.json" --out "$work/r2"
check "value out of range" "optim.batch_size" "$cli" train --recipe mae --out "$work/r3" $tiny --set optim.batch_size=0
check "mask ratio out of range" "mae.mask_ratio" "$cli" train --recipe mae --out "$work/r4" $tiny --set mae.mask_ratio=1.5
check "ConMIM with mask ratio 0" "conmim.mask_ratio" "$cli" train --recipe conmim --out "$work/r5" $tiny --set conmim.mask_ratio=0
check "patch size must divide the image" "model.patch_size" "$cli" train --recipe mae --out "$work/r6" $tiny --set model.patch_size=5
check "wrong type" "optim.base_lr" "$cli" train --recipe mae --out "$work/r7" $tiny --set optim.base_lr='"fast"'
check "no such recipe file" "nothere.json" "$cli" train --recipe "$work/nothere.json" --out "$work/r8"

# --- datasets
mkdir -p "$work/fm"
printf '\x00\x00\x08\x03\x00\x00\x00\x05\x00\x00\x00\x1c\x00\x00\x00\x1c\x01\x02\x03' > "$work/fm/train-images-idx3-ubyte"
printf '\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02\x03\x04\x05' > "$work/fm/train-labels-idx1-ubyte"
check "truncated IDX file" "train-images-idx3-ubyte" "$cli" train --recipe mae --out "$work/d1" --set data.dataset=fashion_mnist \
  --set data.root="$work/fm" --set data.fallback_to_synthetic=false --set probes.every=0
printf 'not an idx file at all' > "$work/fm/train-images-idx3-ubyte"
check "IDX with a bad magic number" "train-images-idx3-ubyte" "$cli" train --recipe mae --out "$work/d2" --set data.dataset=fashion_mnist \
  --set data.root="$work/fm" --set data.fallback_to_synthetic=false --set probes.every=0
mkdir -p "$work/cifar"
head -c 1000 /dev/zero > "$work/cifar/data_batch_1.bin"
check "truncated CIFAR batch" "data_batch" "$cli" train --recipe mae --out "$work/d3" --set data.dataset=cifar10 \
  --set data.root="$work/cifar" --set data.fallback_to_synthetic=false --set probes.every=0
mkdir -p "$work/folder/train/cats" "$work/folder/train/dogs"
printf 'garbage, not a PNG' > "$work/folder/train/cats/a.png"
printf 'garbage, not a PNG' > "$work/folder/train/dogs/b.png"
check "ImageFolder class without a readable image" "cats: class folder has no readable image" "$cli" train --recipe mae --out "$work/d4" --set data.dataset=image_folder \
  --set data.root="$work/folder" --set data.fallback_to_synthetic=false --set probes.every=0

# --- checkpoints
"$cli" train --recipe mae --out "$work/good" --steps 2 $tiny --set train.checkpoint_every=2 > /dev/null 2>&1 || { echo "FAIL: setup run"; exit 1; }
ckpt="$work/good/checkpoints/step-00000002.ckpt"
head -c $(( $(stat -c %s "$ckpt") / 2 )) "$ckpt" > "$work/truncated.ckpt"
check "truncated checkpoint (eval)" "truncated.ckpt" "$cli" eval --ckpt "$work/truncated.ckpt" --protocol knn
check "truncated checkpoint (export)" "truncated.ckpt" "$cli" export --ckpt "$work/truncated.ckpt" --out "$work/e.pt"
# one byte flipped in the middle (a bad disk, a bad copy): caught by the archive's CRC-32, not by torch's parser
cp "$ckpt" "$work/flipped.ckpt"
python3 - "$work/flipped.ckpt" <<'PY'
import struct, sys, zipfile
b = bytearray(open(sys.argv[1], "rb").read())
info = max(zipfile.ZipFile(sys.argv[1]).infolist(), key=lambda i: i.file_size)  # the largest tensor's bytes
name_len, extra_len = struct.unpack_from("<HH", b, info.header_offset + 26)
b[info.header_offset + 30 + name_len + extra_len + info.file_size // 2] ^= 0x5A
open(sys.argv[1], "wb").write(bytes(b))
PY
check "checkpoint with a flipped byte" "fails its CRC-32 check" "$cli" eval --ckpt "$work/flipped.ckpt" --protocol knn
# an input libFuzzer found: before the CRC check it made torch's TorchScript type parser throw past our handler
check "fuzz regression: damaged TorchScript type" "checkpoint-torchscript-type-parse.ckpt" "$cli" export \
  --ckpt "$(dirname "$0")/../fuzz/regressions/fuzz_checkpoint/checkpoint-torchscript-type-parse.ckpt" --out "$work/f.pt"
printf 'hello' > "$work/text.ckpt"
check "not a checkpoint" "text.ckpt" "$cli" reconstruct --ckpt "$work/text.ckpt" --out "$work/g.png"
check "missing checkpoint" "missing.ckpt" "$cli" eval --ckpt "$work/missing.ckpt"
check "negative eval threads" "--threads must be 0 (all cores) to" "$cli" eval --ckpt "$work/missing.ckpt" --threads -1
# a run whose recipe now describes another architecture than its checkpoint
cp -r "$work/good" "$work/other"
python3 - "$work/other/recipe.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); r["model"]["embed_dim"] = 64; r["model"]["num_heads"] = 4; r["train"]["steps"] = 4
json.dump(r, open(sys.argv[1], "w"))
PY
check "checkpoint of another architecture" "step-00000002.ckpt" "$cli" resume "$work/other"

# --- run directories
check "run directory under a file" "hostname" "$cli" train --recipe mae --out /etc/hostname/run $tiny
check "run directory holding a run" "already holds a run" "$cli" train --recipe mae --out "$work/good" $tiny
check "resume of a directory without a run" "recipe.json" "$cli" resume "$work/nothing-here"

# --- a loss that becomes non-finite stops before the optimizer step, keeping the last checkpoint
check "NaN loss stops the run" "loss is" "$cli" train --recipe mae --out "$work/nan" $tiny --steps 50 --set optim.base_lr=1e12 \
  --set optim.warmup_steps=0 --set train.checkpoint_every=1

# --- checked before the first step
check "train threads 100000" "threads: at most" "$cli" train --recipe mae --out "$work/t100k" $tiny --set threads=100000
check "eval --threads 100000" "--threads must be 0 (all cores) to" "$cli" eval --ckpt "$work/good" --threads 100000
check "bench --threads 100000" "--threads must be 0 (all cores) to" "$cli" bench --recipe mae --threads 100000
check "sweep: a grid key twice" "is given twice" "$cli" sweep --recipe mae --out "$work/sw1" $tiny --grid optim.base_lr=1e-3 --grid optim.base_lr=2e-3
check "sweep: an empty grid value" "an empty value" "$cli" sweep --recipe mae --out "$work/sw2" $tiny --grid optim.base_lr=1e-3,,2e-3
check "sweep: a trailing comma" "an empty value" "$cli" sweep --recipe mae --out "$work/sw2" $tiny --grid optim.base_lr=1e-3,
check "sweep --seeds 0" "--seeds must be in 1..100" "$cli" sweep --recipe mae --out "$work/sw5" $tiny --grid optim.base_lr=1e-3 --seeds 0
check "table --seeds 101" "--seeds must be in 1..100" "$cli" table --recipes mae --out "$work/tb5" $tiny --seeds 101
check "table --pool max" "--pool must be cls or mean, got \"max\"" "$cli" table --recipes mae --out "$work/tb6" $tiny --pool max
check "sweep: a bad last grid point, found first" "sweep point" "$cli" sweep --recipe mae --out "$work/sw3" $tiny --grid optim.batch_size=16,-3
[ ! -d "$work/sw3/optim.batch_size=16" ] && echo "ok   [sweep trained nothing before refusing]" || { echo "FAIL [sweep trained a point before finding the bad one]"; failures=$((failures + 1)); }
check "sweep: a last point's batch larger than the data" "batch size 128 is larger than the training set (64 images) of the run optim.batch_size=128" \
  "$cli" sweep --recipe mae --out "$work/sw4" $tiny --grid optim.batch_size=16,128
[ ! -d "$work/sw4/optim.batch_size=16" ] || { echo "FAIL [sweep trained a point before finding a batch too large]"; failures=$((failures + 1)); }
# a table's recipes checked before the first trains: the second recipe's batch does not fit the data
"$cli" recipe --recipe mae $tiny > "$work/small_batch.json"
"$cli" recipe --recipe mocov3 $tiny --set optim.batch_size=128 > "$work/big_batch.json"
check "table: a later recipe's batch larger than the data" "of the run big_batch; nothing was trained" \
  "$cli" table --recipes "$work/small_batch.json,$work/big_batch.json" --out "$work/tb1" --budget tiny --no-baselines --protocol knn
[ ! -d "$work/tb1/small_batch" ] || { echo "FAIL [table trained a recipe before finding a batch too large]"; failures=$((failures + 1)); }
"$cli" recipe --recipe layer_grafted > "$work/lg.json"
python3 - "$work/lg.json" << 'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["stages"] = []
json.dump(r, open(sys.argv[1], "w"))
PY
check "stages: []" "stages: an empty list" "$cli" train --recipe "$work/lg.json" --out "$work/lg" $tiny
check "train --out ''" "--out is empty" "$cli" train --recipe mae --out "" $tiny
check "eval --ckpt ''" "--ckpt is empty" "$cli" eval --ckpt ""
check "export --out=''" "--out is empty" "$cli" export --ckpt "$work/good" --out=
check "report ''" "an empty argument" "$cli" report ""

check "sweep --out under a file" "error: /etc/hostname/sweep: cannot create the directory: Not a directory" "$cli" sweep --recipe mae --out /etc/hostname/sweep $tiny --grid optim.base_lr=1e-3
python3 -c "import zipfile; zipfile.ZipFile('$work/probe.npz', 'w').writestr('cos.npy', b'x')"
check "an .npz as a checkpoint" "a zip archive without data.pkl" "$cli" export --ckpt "$work/probe.npz" --out "$work/x.pt"
grep -q "Could this error message be improved" "$work/out.txt" && { echo "FAIL [npz]: LibTorch's words reached the user"; failures=$((failures + 1)); }

# --- answers that cannot be right are flagged: an evaluation on one class
mkdir -p "$work/oneclass/only"
python3 - "$work/oneclass/only" << 'PY'
import struct, sys, zlib
for i in range(20):
    raw = b"".join(b"\x00" + bytes((x * i + y) % 256 for x in range(16)) for y in range(16))
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    open(f"{sys.argv[1]}/{i}.png", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 0, 0, 0, 0)) +
                                            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
"$cli" train --recipe mae --out "$work/oc" --steps 2 $tiny --set data.dataset=image_folder --set data.root="$work/oneclass" > "$work/oc.log" 2>&1 \
  || { echo "FAIL [one-class setup]:"; tail -3 "$work/oc.log"; failures=$((failures + 1)); }
"$cli" eval --ckpt "$work/oc" --protocol knn > "$work/oc-eval.log" 2>&1
grep -q "warning: the training split of image_folder holds 1 class" "$work/oc-eval.log" && echo "ok   [one-class evaluation flagged]" \
  || { echo "FAIL [one-class evaluation not flagged]:"; tail -3 "$work/oc-eval.log"; failures=$((failures + 1)); }

# ... and one whose test split shares images with its training split (a user's folder copied into both)
python3 - "$work/leaky" << 'PY'
import os, struct, sys, zlib
def png(path, f):
    raw = b"".join(b"\x00" + bytes(f(x, y) % 256 for x in range(16)) for y in range(16))
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 0, 0, 0, 0)) +
                           chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
for i in range(1, 11):
    png(f"{sys.argv[1]}/train/a/{i}.png", lambda x, y: x * i + y)
    png(f"{sys.argv[1]}/train/b/{i}.png", lambda x, y: 7 * x + y * i + 50)
for i in range(1, 4):  # three copies of training images
    png(f"{sys.argv[1]}/test/a/{i}.png", lambda x, y: x * i + y)
for i in range(20, 25):
    png(f"{sys.argv[1]}/test/b/{i}.png", lambda x, y: 7 * x + y * i + 50)
PY
"$cli" train --recipe mae --out "$work/leak" --steps 2 $tiny --set data.dataset=image_folder --set data.root="$work/leaky" > "$work/leak.log" 2>&1 \
  || { echo "FAIL [leaky setup]:"; tail -3 "$work/leak.log"; failures=$((failures + 1)); }
"$cli" eval --ckpt "$work/leak" --protocol knn > "$work/leak-eval.log" 2>&1
grep -q "warning: 3 of the 8 test images of image_folder (37.5 %) are also in its training split" "$work/leak-eval.log" \
  && grep -q "also in its training split" "$work/leak/checkpoints/eval.json" && echo "ok   [train/test overlap flagged, in eval.json too]" \
  || { echo "FAIL [train/test overlap not flagged]:"; tail -3 "$work/leak-eval.log"; failures=$((failures + 1)); }
grep -q "also in its training split" "$work/oc-eval.log" && { echo "FAIL [overlap flagged on disjoint splits]"; failures=$((failures + 1)); }

check "bench --profile to an unwritable place" "/nonexistent-dir/x.json: cannot be written" "$cli" bench --recipe mae --steps 1 --warmup 0 $tiny --profile /nonexistent-dir/x.json
grep -q "Exception raised from" "$work/out.txt" && { echo "FAIL [bench --profile]: a LibTorch stack trace"; failures=$((failures + 1)); }

# --- report on damaged files: each named with its line, exit non-zero; a killed run's torn last line is not damage
cp -r "$work/good" "$work/damaged"
{ head -1 "$work/good/metrics.jsonl"; printf '\x00\x01binary\xff\n'; echo '{"step": "three", "loss": 1}'; echo '{"step": 9, "lo'; } > "$work/damaged/metrics.jsonl"
echo "garbage{" > "$work/damaged/checkpoints/eval.json"
check "report: binary metrics line" "metrics.jsonl:2: not JSON" "$cli" report "$work/damaged"
check "report: a step that is not a number" "metrics.jsonl:3: \"step\" is not a whole number" "$cli" report "$work/damaged"
check "report: a garbage eval.json" "eval.json: not JSON" "$cli" report "$work/damaged"
grep -q "metrics.jsonl:4" "$work/out.txt" && { echo "FAIL [report]: a torn last line counted as damage"; failures=$((failures + 1)); }
"$cli" train --recipe mae --out "$work/probed" --steps 2 $tiny --set probes.every=1 > /dev/null 2>&1 || { echo "FAIL: probed setup run"; failures=$((failures + 1)); }
snap="$work/probed/snapshots/reconstruction/000000002.snap"
truncate -s $(( $(stat -c %s "$snap") / 2 )) "$snap"
check "report: a truncated probe snapshot" "000000002.snap: snapshot is truncated" "$cli" report "$work/probed"
# resume rewrites the history through the same reader: the lines it drops are named, not lost without a word
"$cli" resume "$work/damaged" --steps 4 > "$work/resume-damaged.log" 2>&1 || { echo "FAIL [resume of a damaged history]:"; tail -3 "$work/resume-damaged.log"; failures=$((failures + 1)); }
grep -q "metrics.jsonl:2: not JSON, row skipped (not kept" "$work/resume-damaged.log" && grep -q "metrics.jsonl:3: \"step\" is not a whole number" "$work/resume-damaged.log" \
  && echo "ok   [resume names the history lines it drops]" || { echo "FAIL [resume dropped damaged lines silently]:"; tail -3 "$work/resume-damaged.log"; failures=$((failures + 1)); }
"$cli" report "$work/good" > "$work/out.txt" 2>&1 && echo "ok   [report of an intact run exits 0]" || { echo "FAIL [report of an intact run]"; failures=$((failures + 1)); }

# --- one writer per run directory (base/run/RunLock.h): a second writer is refused at once, naming the holder; nothing of
# the first run is lost; a kill -9 leaves no stale lock
waitrows() {  # waitrows FILE N: until FILE has N lines (at most 60 s)
  for _ in $(seq 600); do [ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ] && return 0; sleep 0.1; done
  return 1
}
slow="--set train.log_every=1 --set train.checkpoint_every=5"
"$cli" train --recipe mae --out "$work/busy" $tiny $slow --steps 100000 > "$work/busy.log" 2>&1 &
writer=$!
waitrows "$work/busy/metrics.jsonl" 8 || { echo "FAIL [writer]: no metrics"; failures=$((failures + 1)); }
check "resume while train writes" "is being written by PID $writer" "$cli" resume "$work/busy"
check "train --force while train writes" "is being written by PID $writer" "$cli" train --recipe mae --out "$work/busy" --force $tiny
check "the refusal names the command" "train --recipe mae --out $work/busy" "$cli" resume "$work/busy"
kill -0 $writer 2> /dev/null || { echo "FAIL [writer]: the first train died"; failures=$((failures + 1)); }
kill -9 $writer; wait $writer 2> /dev/null
rows=$(wc -l < "$work/busy/metrics.jsonl")
first=$(head -c 40 "$work/busy/metrics.jsonl")
# no stale lock after kill -9: resume takes over (and is itself the writer now, the other order)
"$cli" resume "$work/busy" --steps 100000 > "$work/busy2.log" 2>&1 &
writer=$!
for _ in $(seq 600); do grep -q "$writer" "$work/busy/.graftlab-writer" 2> /dev/null && break; sleep 0.1; done
sleep 1
check "train --force while resume writes" "is being written by PID $writer" "$cli" train --recipe mae --out "$work/busy" --force $tiny
kill -TERM $writer; wait $writer
if [ "$(head -c 40 "$work/busy/metrics.jsonl")" != "$first" ]; then echo "FAIL [one writer]: the run's history was replaced"; failures=$((failures + 1)); fi
grep -q "resum" "$work/busy2.log" || { echo "FAIL [resume after kill -9]:"; tail -3 "$work/busy2.log"; failures=$((failures + 1)); }
echo "     [two writers] $rows metrics rows when the first writer was killed -9"
# a sweep (or table) job holds its --out for its whole life: a second job on it is refused, not mixed in
"$cli" sweep --recipe mae --out "$work/swbusy" $tiny --grid optim.base_lr=1e-3,2e-3 --budget xlarge > "$work/swbusy.log" 2>&1 &
writer=$!
for _ in $(seq 600); do grep -q "PID $writer" "$work/swbusy/.graftlab-writer" 2> /dev/null && break; sleep 0.1; done
check "sweep while a sweep writes its --out" "swbusy: is being written by PID $writer" "$cli" sweep --recipe mae --out "$work/swbusy" $tiny --grid optim.base_lr=1e-3,2e-3 --budget tiny
check "table while a sweep writes that --out" "swbusy: is being written by PID $writer" "$cli" table --recipes mae --out "$work/swbusy" $tiny --budget tiny
kill -TERM $writer; wait $writer 2> /dev/null
# --force replaces the run's own files only
echo "notes" > "$work/busy/checkpoints/my-notes.txt"
"$cli" train --recipe mae --out "$work/busy" --force $tiny --steps 2 > "$work/force.log" 2>&1 || { echo "FAIL [force]:"; tail -3 "$work/force.log"; failures=$((failures + 1)); }
[ -f "$work/busy/checkpoints/my-notes.txt" ] && grep -q "did not write" "$work/force.log" \
  && echo "ok   [--force keeps foreign files]" || { echo "FAIL [--force deleted a file GraftLab did not write]"; failures=$((failures + 1)); }

[ $failures -eq 0 ] || { echo "$failures bad inputs not handled"; exit 1; }
echo "e2e.bad_inputs: every bad input named"
