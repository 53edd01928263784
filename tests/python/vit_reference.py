"""A plain timm-style ViT forward pass over a state dict with timm's names, written here independently of
GraftLab: the yardstick for every exported encoder. Returns the final-norm tokens (N, 1 + L, D)."""
import torch
import torch.nn.functional as F


def vit_tokens(sd, x, heads):
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    D = sd["cls_token"].shape[-1]
    w = sd["patch_embed.proj.weight"]
    p = w.shape[-1]
    N = x.shape[0]
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
