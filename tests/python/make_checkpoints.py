"""Writes tiny checkpoints in the layouts the field publishes, and reference outputs from a plain-PyTorch forward
written here after the official code, for GraftLab's import tests (no network: the real files cannot be fetched).

Layouts, with the key names, prefixes, nesting and extra entries of the official save code:
  mae_encoder.pth      facebookresearch/mae released encoder: {'model': timm-named encoder}            (zip)
  mae_visualize.pth    MAE visualisation checkpoint: encoder + decoder_* + mask_token                  (legacy format)
  mae_train.pth        MAE main_pretrain.py save_model: {'model', 'optimizer', 'epoch', 'scaler', 'args': Namespace}
  mocov3.pth.tar       facebookresearch/moco-v3 main_moco.py: {'epoch', 'arch', 'state_dict': module.base_encoder.*
                       (projector in head.*), module.momentum_encoder.*, module.predictor.*, 'optimizer', 'scaler'}
  layer_grafted.pth.tar  VITA-Group/layerGraftedPretraining_ICLR23 (built on moco-v3's code): the same layout, legacy format
  dino.pth             DINO backbone: bare state dict, learned position embedding                       (zip)
  timm.safetensors     timm ViT: bare state dict with a classifier head.weight / head.bias
  conmim.pth           ConMIM (BEiT-style): layer scale, q/v biases, relative position bias (must be refused)
  evil_zip.pth, evil_legacy.pth   pickles that would run os.system (must be refused, run nothing)

Reference outputs (refs.safetensors): the input images, and per layout the final-norm tokens, the last block's
attention, and for the MAE layouts with a decoder the reconstruction for a fixed ids_keep.
Usage: make_checkpoints.py OUTDIR [EVIL_TARGET_FILE]
       make_checkpoints.py --vit-b FILE   a ViT-B/16 encoder at 224 px in the layout of MAE's released
                                          mae_pretrain_vit_base.pth ({'model': ...}, random weights), for benchmarks
"""
import argparse
import json
import math
import os
import struct
import sys
from collections import OrderedDict

import torch
import torch.nn.functional as F

torch.manual_seed(0)
if sys.argv[1] == "--vit-b":
    sd = OrderedDict()
    D, depth, p, grid = 768, 12, 16, 14
    sd["cls_token"] = torch.randn(1, 1, D) * 0.02
    sd["pos_embed"] = torch.randn(1, 1 + grid * grid, D) * 0.02
    sd["patch_embed.proj.weight"] = torch.randn(D, 3, p, p) * 0.02
    sd["patch_embed.proj.bias"] = torch.zeros(D)
    for i in range(depth):
        b = f"blocks.{i}."
        for name, shape in (("norm1.weight", (D,)), ("norm1.bias", (D,)), ("attn.qkv.weight", (3 * D, D)), ("attn.qkv.bias", (3 * D,)),
                            ("attn.proj.weight", (D, D)), ("attn.proj.bias", (D,)), ("norm2.weight", (D,)), ("norm2.bias", (D,)),
                            ("mlp.fc1.weight", (4 * D, D)), ("mlp.fc1.bias", (4 * D,)), ("mlp.fc2.weight", (D, 4 * D)), ("mlp.fc2.bias", (D,))):
            sd[b + name] = torch.randn(*shape) * (0.02 if len(shape) > 1 else 0.01) + (1.0 if "norm" in name and "weight" in name else 0.0)
    sd["norm.weight"] = torch.ones(D)
    sd["norm.bias"] = torch.zeros(D)
    torch.save({"model": sd}, sys.argv[2])
    sys.exit(0)
OUT = sys.argv[1]
EVIL_TARGET = sys.argv[2] if len(sys.argv) > 2 else os.path.join(OUT, "pwned")
os.makedirs(OUT, exist_ok=True)
refs = OrderedDict()


def rnd(*shape, s=0.2):
    return torch.randn(*shape) * s


def encoder_sd(D, depth, p, C, grid, qkv_bias=True, mlp=4):
    sd = OrderedDict()
    sd["cls_token"] = rnd(1, 1, D, s=0.02)
    # random, not sin-cos: the import must take the stored values, never recompute them
    sd["pos_embed"] = rnd(1, 1 + grid * grid, D, s=0.1)
    sd["patch_embed.proj.weight"] = rnd(D, C, p, p, s=0.1)
    sd["patch_embed.proj.bias"] = rnd(D, s=0.02)
    for i in range(depth):
        b = f"blocks.{i}."
        sd[b + "norm1.weight"] = 1 + rnd(D, s=0.1)
        sd[b + "norm1.bias"] = rnd(D, s=0.05)
        sd[b + "attn.qkv.weight"] = rnd(3 * D, D, s=D ** -0.5)
        if qkv_bias:
            sd[b + "attn.qkv.bias"] = rnd(3 * D, s=0.05)
        sd[b + "attn.proj.weight"] = rnd(D, D, s=D ** -0.5)
        sd[b + "attn.proj.bias"] = rnd(D, s=0.05)
        sd[b + "norm2.weight"] = 1 + rnd(D, s=0.1)
        sd[b + "norm2.bias"] = rnd(D, s=0.05)
        sd[b + "mlp.fc1.weight"] = rnd(mlp * D, D, s=D ** -0.5)
        sd[b + "mlp.fc1.bias"] = rnd(mlp * D, s=0.05)
        sd[b + "mlp.fc2.weight"] = rnd(D, mlp * D, s=(mlp * D) ** -0.5)
        sd[b + "mlp.fc2.bias"] = rnd(D, s=0.05)
    sd["norm.weight"] = 1 + rnd(D, s=0.1)
    sd["norm.bias"] = rnd(D, s=0.05)
    return sd


def decoder_sd(D, Dd, depth, p, C, grid):
    sd = OrderedDict()
    sd["mask_token"] = rnd(1, 1, Dd, s=0.02)
    sd["decoder_embed.weight"] = rnd(Dd, D, s=D ** -0.5)
    sd["decoder_embed.bias"] = rnd(Dd, s=0.05)
    sd["decoder_pos_embed"] = rnd(1, 1 + grid * grid, Dd, s=0.1)
    for k, v in encoder_sd(Dd, depth, p, C, grid).items():
        if k.startswith("blocks."):
            sd["decoder_" + k] = v
    sd["decoder_norm.weight"] = 1 + rnd(Dd, s=0.1)
    sd["decoder_norm.bias"] = rnd(Dd, s=0.05)
    sd["decoder_pred.weight"] = rnd(p * p * C, Dd, s=Dd ** -0.5)
    sd["decoder_pred.bias"] = rnd(p * p * C, s=0.05)
    return sd


def blocks(sd, t, heads, prefix="blocks."):
    """timm / MAE Block: pre-norm attention and MLP, LayerNorm eps 1e-6; returns tokens and the last attention."""
    N, L, D = t.shape
    depth = 1 + max(int(k[len(prefix):].split(".")[0]) for k in sd if k.startswith(prefix))
    attn = None
    for i in range(depth):
        b = f"{prefix}{i}."
        h = F.layer_norm(t, (D,), sd[b + "norm1.weight"], sd[b + "norm1.bias"], 1e-6)
        qkv = F.linear(h, sd[b + "attn.qkv.weight"], sd.get(b + "attn.qkv.bias")).reshape(N, L, 3, heads, D // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = ((q * (D // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        o = (attn @ v).transpose(1, 2).reshape(N, L, D)
        t = t + F.linear(o, sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"])
        h = F.layer_norm(t, (D,), sd[b + "norm2.weight"], sd[b + "norm2.bias"], 1e-6)
        t = t + F.linear(F.gelu(F.linear(h, sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"])), sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"])
    return t, attn


def encoder_forward(sd, x, heads, ids_keep=None):
    """models_mae.forward_encoder (ids_keep given) or the timm forward_features (ids_keep None)."""
    D = sd["cls_token"].shape[-1]
    w = sd["patch_embed.proj.weight"]
    t = F.conv2d(x, w, sd["patch_embed.proj.bias"], stride=w.shape[-1]).flatten(2).transpose(1, 2)
    t = t + sd["pos_embed"][:, 1:]
    if ids_keep is not None:
        t = torch.gather(t, 1, ids_keep.unsqueeze(-1).repeat(1, 1, D))
    cls = (sd["cls_token"] + sd["pos_embed"][:, :1]).expand(x.shape[0], -1, -1)
    t, attn = blocks(sd, torch.cat([cls, t], 1), heads)
    return F.layer_norm(t, (D,), sd["norm.weight"], sd["norm.bias"], 1e-6), attn


def mae_reconstruct(sd, x, heads, dec_heads, ids_keep, ids_restore):
    """models_mae.forward_decoder after forward_encoder: predicted patches (N, L, p*p*C)."""
    latent, _ = encoder_forward(sd, x, heads, ids_keep)
    t = F.linear(latent, sd["decoder_embed.weight"], sd["decoder_embed.bias"])
    N, L = ids_restore.shape
    mask_tokens = sd["mask_token"].repeat(N, L + 1 - t.shape[1], 1)
    t_ = torch.cat([t[:, 1:, :], mask_tokens], dim=1)
    t_ = torch.gather(t_, 1, ids_restore.unsqueeze(-1).repeat(1, 1, t.shape[2]))
    t = torch.cat([t[:, :1, :], t_], dim=1) + sd["decoder_pos_embed"]
    t, _ = blocks(sd, t, dec_heads, prefix="decoder_blocks.")
    Dd = t.shape[-1]
    t = F.layer_norm(t, (Dd,), sd["decoder_norm.weight"], sd["decoder_norm.bias"], 1e-6)
    return F.linear(t, sd["decoder_pred.weight"], sd["decoder_pred.bias"])[:, 1:, :]


def moco_mlp(num_layers, input_dim, mlp_dim, output_dim, last_bn=True):
    """moco-v3 builder.py _build_mlp."""
    mlp = []
    for l in range(num_layers):
        dim1 = input_dim if l == 0 else mlp_dim
        dim2 = output_dim if l == num_layers - 1 else mlp_dim
        mlp.append(torch.nn.Linear(dim1, dim2, bias=False))
        if l < num_layers - 1:
            mlp.append(torch.nn.BatchNorm1d(dim2))
            mlp.append(torch.nn.ReLU(inplace=True))
        elif last_bn:
            mlp.append(torch.nn.BatchNorm1d(dim2, affine=False))
    m = torch.nn.Sequential(*mlp)
    with torch.no_grad():  # running statistics as after training, so that they are not the defaults
        for mod in m:
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.copy_(rnd(mod.num_features, s=0.1))
                mod.running_var.copy_(1 + rnd(mod.num_features, s=0.1).abs())
                mod.num_batches_tracked.fill_(1234)
    return m


def add_refs(name, sd, heads, images):
    tokens, attn = encoder_forward(sd, images, heads)
    refs[name + ".tokens"] = tokens
    refs[name + ".attn_last"] = attn


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for k, t in tensors.items():
        b = t.detach().contiguous().float().numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


C, p, grid = 3, 4, 4
img = p * grid
images = torch.rand(2, C, img, img)
images = (images - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
refs["images"] = images  # already normalised with ImageNet's mean and std

# --- MAE: released encoder (zip), visualisation checkpoint (legacy), training checkpoint (zip, args Namespace) ---
D, depth, heads, Dd, ddepth, dheads = 32, 2, 4, 32, 1, 16  # the decoder's 16 heads: models_mae.py's default
mae = encoder_sd(D, depth, p, C, grid)
mae_dec = decoder_sd(D, Dd, ddepth, p, C, grid)
torch.save({"model": mae}, os.path.join(OUT, "mae_encoder.pth"))
full = OrderedDict(list(mae.items()) + list(mae_dec.items()))
torch.save({"model": full}, os.path.join(OUT, "mae_visualize.pth"), _use_new_zipfile_serialization=False)
L = grid * grid
noise = torch.rand(2, L)
ids_shuffle = torch.argsort(noise, dim=1)
ids_restore = torch.argsort(ids_shuffle, dim=1)
ids_keep = ids_shuffle[:, : int(L * 0.25)]
refs["mae.ids_keep"] = ids_keep.float()
add_refs("mae", mae, heads, images)
refs["mae.pred"] = mae_reconstruct(full, images, heads, dheads, ids_keep, ids_restore)
args = argparse.Namespace(batch_size=64, epochs=800, accum_iter=1, model="mae_vit_tiny_patch4", input_size=img, mask_ratio=0.75,
                          norm_pix_loss=True, weight_decay=0.05, lr=None, blr=1.5e-4, min_lr=0.0, warmup_epochs=40,
                          data_path="/datasets01/imagenet_full_size/061417/", output_dir="./output_dir", device="cuda", seed=0,
                          resume="", start_epoch=0, num_workers=10, pin_mem=True, world_size=64, local_rank=-1,
                          dist_on_itp=False, dist_url="env://", distributed=True, rank=0, gpu=0, dist_backend="nccl")
model = torch.nn.Linear(2, 2)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
model(torch.ones(1, 2)).sum().backward()
opt.step()
scaler_state = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000, "_growth_tracker": 17}
torch.save({"model": full, "optimizer": opt.state_dict(), "epoch": 799, "scaler": scaler_state, "args": args},
           os.path.join(OUT, "mae_train.pth"))

# --- MoCo v3 (zip) and Layer Grafted (legacy): arch 'vit_small' (12 heads in moco-v3's vits.py, not the 6 of timm's table) ---
Dm, mdepth, mgrid, mp = 384, 1, 2, 16
base = encoder_sd(Dm, mdepth, mp, C, mgrid)
momentum = encoder_sd(Dm, mdepth, mp, C, mgrid)
projector = moco_mlp(3, Dm, 64, 32)
momentum_projector = moco_mlp(3, Dm, 64, 32)
predictor = moco_mlp(2, 32, 64, 32)  # moco-v3 builder.py: the predictor ends in an affine-free BN too
sd = OrderedDict()
for k, v in base.items():
    sd["module.base_encoder." + k] = v
for k, v in projector.state_dict().items():
    sd["module.base_encoder.head." + k] = v
for k, v in momentum.items():
    sd["module.momentum_encoder." + k] = v
for k, v in momentum_projector.state_dict().items():
    sd["module.momentum_encoder.head." + k] = v
for k, v in predictor.state_dict().items():
    sd["module.predictor." + k] = v
moco_images = torch.randn(2, C, mp * mgrid, mp * mgrid)
refs["moco.images"] = moco_images
add_refs("moco", base, 12, moco_images)
projector.eval()
predictor.eval()
refs["moco.q"] = predictor(projector(refs["moco.tokens"][:, 0]))  # the query branch, BatchNorm on running statistics
for name, legacy in (("mocov3.pth.tar", False), ("layer_grafted.pth.tar", True)):
    torch.save({"epoch": 300, "arch": "vit_small", "state_dict": sd, "optimizer": opt.state_dict(), "scaler": scaler_state},
               os.path.join(OUT, name), _use_new_zipfile_serialization=not legacy)

# --- DINO backbone (zip, learned position embedding, width 192: timm's table gives 3 heads) ---
dino = encoder_sd(192, 1, 8, C, 2)
dino_images = torch.randn(2, C, 16, 16)
refs["dino.images"] = dino_images
add_refs("dino", dino, 3, dino_images)
torch.save(dino, os.path.join(OUT, "dino.pth"))
# DINO's training checkpoint (main_dino.py): the DDP student, the teacher with its DINO head, args with arch
# 'vit_small' (6 heads in DINO's vision_transformer.py, 12 in moco-v3's), and a numpy scalar beside
import numpy as np
dino_s = encoder_sd(384, 1, 8, C, 2)
dino_head = OrderedDict([("head.mlp.0.weight", rnd(64, 384)), ("head.mlp.0.bias", rnd(64)), ("head.last_layer.weight_g", rnd(1, 16))])
teacher = OrderedDict([("backbone." + k, v) for k, v in dino_s.items()] + list(dino_head.items()))
student = OrderedDict([("module." + k, v) for k, v in teacher.items()])
refs["dino_s.images"] = dino_images
add_refs("dino_s", dino_s, 6, dino_images)
torch.save({"student": student, "teacher": teacher, "epoch": 100, "best": np.float64(0.75),
            "args": argparse.Namespace(arch="vit_small", patch_size=8, out_dim=65536, momentum_teacher=0.996)},
           os.path.join(OUT, "dino_train.pth"))

# --- timm safetensors with a classifier head (dropped on import), no qkv bias (qkv_bias=False) ---
tm = encoder_sd(48, 1, 4, C, 2, qkv_bias=False)
tm["head.weight"] = rnd(10, 48)
tm["head.bias"] = rnd(10)
timm_images = torch.randn(2, C, 8, 8)
refs["timm.images"] = timm_images
add_refs("timm", tm, 1, timm_images)
save_safetensors(os.path.join(OUT, "timm.safetensors"), tm)

# --- ConMIM / BEiT-style: layer scale, separate q/v biases, relative position bias ---
cm = encoder_sd(32, 1, 4, C, 2, qkv_bias=False)
del cm["pos_embed"]
cm["blocks.0.gamma_1"] = torch.full((32,), 0.1)
cm["blocks.0.gamma_2"] = torch.full((32,), 0.1)
cm["blocks.0.attn.q_bias"] = torch.zeros(32)
cm["blocks.0.attn.v_bias"] = torch.zeros(32)
cm["blocks.0.attn.relative_position_bias_table"] = torch.zeros(13, 4)
cm["blocks.0.attn.relative_position_index"] = torch.zeros(5, 5, dtype=torch.long)
cm["mask_token"] = torch.zeros(1, 1, 32)
torch.save({"model": cm}, os.path.join(OUT, "conmim.pth"))


# --- pickles that would run a command: torch.load(weights_only=False) would create EVIL_TARGET ---
class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + EVIL_TARGET,))


torch.save({"model": mae, "x": Evil()}, os.path.join(OUT, "evil_zip.pth"))
torch.save({"model": mae, "x": Evil()}, os.path.join(OUT, "evil_legacy.pth"), _use_new_zipfile_serialization=False)

# --- the user's own images: a non-square colour PNG and a grey one ---
def write_png(path, pixels, colour):
    import zlib
    h, w = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(v for px in row for v in (px if colour else (px,))) for row in pixels)
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2 if colour else 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


os.makedirs(os.path.join(OUT, "images"), exist_ok=True)
write_png(os.path.join(OUT, "images", "colour.png"),
          [[((x * 7) % 256, (y * 11) % 256, ((x + y) * 5) % 256) for x in range(40)] for y in range(26)], True)
write_png(os.path.join(OUT, "images", "grey.png"), [[(x * y) % 256 for x in range(20)] for y in range(20)], False)

save_safetensors(os.path.join(OUT, "refs.safetensors"), refs)
print("wrote", len(os.listdir(OUT)), "files to", OUT)
