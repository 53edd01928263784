"""The field's formats written by graftlab-cli, read with plain Python (Debian's python3-torch and numpy):
  safetensors  parsed by hand (8-byte header size, JSON header, raw little-endian tensors), metadata included;
               the encoder, fed Fashion-MNIST test images normalised with the metadata's own mean/std, must give
               GraftLab's features (embed) to 1e-4; the .pt export and its .json metadata must agree with it.
  npz          numpy.load without pickle: probe arrays by name, JSON metadata beside them.
Usage: check_formats.py ENC.safetensors ENC.pt ENC.json FEATS.pt FASHION_DIR PROBE.npz RUN_PROBES.npz"""
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vit_reference import vit_tokens  # noqa: E402

st_path, pt_path, json_path, feats_path, fashion, probe_npz, run_npz = sys.argv[1:8]

# --- safetensors, by hand
raw = open(st_path, "rb").read()
(n,) = struct.unpack_from("<Q", raw, 0)
assert n % 8 == 0, "header not padded to 8 bytes"
header = json.loads(raw[8:8 + n])
meta = header.pop("__metadata__")
assert all(isinstance(v, str) for v in meta.values()), "safetensors metadata values must be strings"
sd = {}
end = 0
for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
    b, e = info["data_offsets"]
    assert b == end, f"{name}: offsets not contiguous"
    end = e
    assert info["dtype"] == "F32", info
    arr = np.frombuffer(raw[8 + n + b:8 + n + e], dtype="<f4").reshape(info["shape"])
    sd[name] = torch.from_numpy(arr.copy())
assert 8 + n + end == len(raw), "trailing bytes after the last tensor"
for k in ["patch_size", "embed_dim", "depth", "num_heads", "img_size", "in_chans", "mean", "std", "recipe", "format"]:
    assert k in meta, f"metadata lacks {k}: {sorted(meta)}"
assert meta["format"] == "pt"
heads, img, chans = int(meta["num_heads"]), int(meta["img_size"]), int(meta["in_chans"])
mean, std = json.loads(meta["mean"]), json.loads(meta["std"])
assert len(mean) == chans == len(std) == 1, (mean, std, chans)
assert sd["cls_token"].shape[-1] == int(meta["embed_dim"])
assert 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks.")) == int(meta["depth"])

# Fashion-MNIST test images straight from the IDX file, normalised with the exported numbers alone.
with gzip.open(os.path.join(fashion, "t10k-images-idx3-ubyte.gz")) as f:
    data = f.read()
magic, count, rows, cols = struct.unpack(">IIII", data[:16])
assert magic == 2051 and rows == img == cols
pixels = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, 1, rows, cols)[:32]
x = (torch.from_numpy(pixels.astype(np.float32)) / 255.0 - mean[0]) / std[0]
feats = torch.load(feats_path)
with torch.no_grad():
    ours = vit_tokens(sd, x, heads)[:, 0]
err = (ours - feats["features"][:32]).abs().max().item()
assert err < 1e-4, f"the exported encoder with the exported normalisation differs from GraftLab's features by {err}"
# a wrong normalisation must not pass: the check can tell
with torch.no_grad():
    wrong = vit_tokens(sd, torch.from_numpy(pixels.astype(np.float32)) / 255.0, heads)[:, 0]
assert (wrong - feats["features"][:32]).abs().max().item() > 1e-3

# --- .pt export and its metadata file agree with the safetensors one
pt = torch.load(pt_path)
assert sorted(pt) == sorted(sd), "the .pt and .safetensors exports hold different tensors"
assert max((pt[k].float() - sd[k]).abs().max().item() for k in sd) == 0.0
pmeta = json.load(open(json_path))
assert pmeta["mean"] == mean and pmeta["std"] == std and pmeta["num_heads"] == heads and pmeta["img_size"] == img, pmeta

# --- npz: one checkpoint's probe, and a whole run's probe history
z = np.load(probe_npz)  # allow_pickle stays False: nothing in it needs pickle
m = json.loads(z["meta"].item())
assert m["kind"] == "gradcos", m
cos = z["cos"]
assert cos.dtype == np.float32 and cos.ndim == 2 and cos.shape[0] == len(m["meta"]["groups"]), (cos.shape, m["meta"]["groups"])
assert np.all(np.abs(cos[np.isfinite(cos)]) <= 1 + 1e-5)
assert z["summary"].shape[0] == cos.shape[0]
r = np.load(run_npz)
index = json.loads(r["index"].item())
assert index and all(set(e) >= {"kind", "step", "arrays"} for e in index), index[:2]
kinds = {e["kind"] for e in index}
for e in index:
    for a in e["arrays"]:
        assert a in r.files, f"{a} listed in the index but not in the archive"
first = index[0]
assert json.loads(r[f"{first['kind']}/{first['step']:09d}/meta"].item())["step"] == first["step"]
print(f"formats check OK: safetensors {len(sd)} tensors, features max |diff| {err:.2e} with the exported mean/std; "
      f"probe npz {sorted(z.files)}; run npz {len(index)} snapshots of {sorted(kinds)}")
