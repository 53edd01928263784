"""Loads graftlab-cli's exported encoder and features with Debian's PyTorch and checks them against a plain
timm-style ViT forward pass written here: names, shapes, and the class-token features to 1e-4.
Usage: check_export.py ENCODER.pt FEATS.pt NUM_HEADS"""
import sys

import os

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vit_reference import vit_tokens  # noqa: E402

enc_path, feats_path, heads = sys.argv[1], sys.argv[2], int(sys.argv[3])
sd = torch.load(enc_path)
feats = torch.load(feats_path)
assert isinstance(sd, dict) and isinstance(feats, dict), "expected dicts of tensors"

for name in ["patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "pos_embed", "blocks.0.norm1.weight",
             "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias", "blocks.0.attn.proj.weight", "blocks.0.norm2.bias",
             "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc2.weight", "norm.weight", "norm.bias"]:
    assert name in sd, f"missing {name}; have {sorted(sd)[:8]}..."
depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
D = sd["cls_token"].shape[-1]
w = sd["patch_embed.proj.weight"]
p = w.shape[-1]
assert w.shape[0] == D and w.dim() == 4, w.shape
assert sd["blocks.0.attn.qkv.weight"].shape == (3 * D, D)
assert sd["blocks.0.mlp.fc1.weight"].shape[1] == D

x = feats["inputs"][:16].float()
N = x.shape[0]
assert sd["pos_embed"].shape[1] == 1 + (x.shape[-1] // p) ** 2, "pos_embed does not match the image size"


with torch.no_grad():
    ours = vit_tokens(sd, x, heads)[:, 0]
theirs = feats["features"][:16]
assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
err = (ours - theirs).abs().max().item()
assert err < 1e-4, f"forward pass differs from graftlab's by {err}"
assert feats["labels"].shape[0] == feats["features"].shape[0]
print(f"python export check OK: {len(sd)} tensors, depth {depth}, dim {D}, max |diff| {err:.2e}")
