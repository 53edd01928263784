"""Loads graftlab-cli's exported encoder and features with Debian's PyTorch and checks them against a plain
timm-style ViT forward pass written here: names, shapes, and the class-token features to 1e-4.
Usage: check_export.py ENCODER.pt FEATS.pt NUM_HEADS"""
import sys

import torch
import torch.nn.functional as F

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


def vit(x):
    t = F.conv2d(x, w, sd["patch_embed.proj.bias"], stride=p).flatten(2).transpose(1, 2)
    t = t + sd["pos_embed"][:, 1:]
    cls = (sd["cls_token"] + sd["pos_embed"][:, :1]).expand(N, -1, -1)
    t = torch.cat([cls, t], 1)
    L = t.shape[1]
    for i in range(depth):
        b = f"blocks.{i}."
        h = F.layer_norm(t, (D,), sd[b + "norm1.weight"], sd[b + "norm1.bias"], 1e-6)
        qkv = F.linear(h, sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"]).reshape(N, L, 3, heads, D // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        a = ((q * (D // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        o = (a @ v).transpose(1, 2).reshape(N, L, D)
        t = t + F.linear(o, sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"])
        h = F.layer_norm(t, (D,), sd[b + "norm2.weight"], sd[b + "norm2.bias"], 1e-6)
        h = F.linear(F.gelu(F.linear(h, sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"])), sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"])
        t = t + h
    return F.layer_norm(t, (D,), sd["norm.weight"], sd["norm.bias"], 1e-6)


with torch.no_grad():
    ours = vit(x)[:, 0]
theirs = feats["features"][:16]
assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
err = (ours - theirs).abs().max().item()
assert err < 1e-4, f"forward pass differs from graftlab's by {err}"
assert feats["labels"].shape[0] == feats["features"].shape[0]
print(f"python export check OK: {len(sd)} tensors, depth {depth}, dim {D}, max |diff| {err:.2e}")
