#!/usr/bin/env python3
"""The same training steps as `graftlab-cli bench`, in plain eager PyTorch (Debian's python3-torch).

Reads a recipe with every field filled in (`graftlab-cli recipe --recipe bench_mae_tiny > r.json`), builds the
same model as GraftLab's core (ViT with fused qkv, pre-norm blocks, GELU MLP; MAE decoder; MoCo v3 projector /
predictor with BatchNorm and a momentum encoder; ConMIM with a mask token, projector and slow model), and
times `--steps` steps after `--warmup` on one fixed in-memory batch: forward, backward, AdamW (decay on
matrices only), momentum / EMA update. Prints images/s and writes the figures as JSON.

    /usr/bin/python3 benchmarks/pytorch_reference.py r.json --threads 2 --steps 20 --json out.json

What a PyTorch 2.x user runs (the GPU comparison, tests/gpu/run_on_device.sh):

    python3 benchmarks/pytorch_reference.py r.json --device cuda --bf16 --attention sdpa --optimizer fused [--compile]

--attention sdpa: F.scaled_dot_product_attention (flash / memory-efficient kernels) instead of the explicit
softmax(q k^T) v; --optimizer fused: torch.optim.AdamW(fused=True); --compile: torch.compile of the loss (forward
and, through AOTAutograd, backward). On CUDA the steps are timed with CUDA events and nothing is read back inside
the timed loop (the losses are read at the end).
"""
import argparse
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


SDPA = False  # --attention sdpa


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if SDPA:
            x = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, C)
        else:
            attn = torch.matmul(q * self.scale, k.transpose(-2, -1)).softmax(-1)
            x = torch.matmul(attn, v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, m, image_size, channels):
        super().__init__()
        self.patch = m["patch_size"]
        D = m["embed_dim"]
        self.num_patches = (image_size // self.patch) ** 2
        self.patch_embed = nn.Conv2d(channels, D, self.patch, self.patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + 1, D), requires_grad=False)
        self.blocks = nn.ModuleList([Block(D, m["num_heads"], m["mlp_ratio"]) for _ in range(m["depth"])])
        self.norm = nn.LayerNorm(D, eps=1e-6)

    def embed(self, imgs):
        return self.patch_embed(imgs).flatten(2).transpose(1, 2) + self.pos_embed[:, 1:]

    def prepend_cls(self, x):
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        return torch.cat([cls, x], 1)

    def run_blocks(self, x):
        for b in self.blocks:
            x = b(x)
        return self.norm(x)

    def forward(self, imgs):
        return self.run_blocks(self.prepend_cls(self.embed(imgs)))


def patchify(imgs, p):
    N, C, H, W = imgs.shape
    h, w = H // p, W // p
    x = imgs.reshape(N, C, h, p, w, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(N, h * w, p * p * C)


class MAE(nn.Module):
    def __init__(self, r, channels):
        super().__init__()
        m = r["model"]
        self.encoder = ViT(m, r["data"]["image_size"], channels)
        Dd, L = m["decoder_embed_dim"], self.encoder.num_patches
        self.embed = nn.Linear(m["embed_dim"], Dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, Dd))
        self.dec_pos = nn.Parameter(torch.zeros(1, L + 1, Dd), requires_grad=False)
        self.blocks = nn.ModuleList([Block(Dd, m["decoder_num_heads"], m["mlp_ratio"]) for _ in range(m["decoder_depth"])])
        self.norm = nn.LayerNorm(Dd, eps=1e-6)
        self.pred = nn.Linear(Dd, m["patch_size"] ** 2 * channels)
        self.ratio = r["mae"]["mask_ratio"]
        self.norm_pix = r["mae"]["norm_pix_loss"]

    def noise(self, views, gen):
        return torch.rand(views.shape[0], self.encoder.num_patches, generator=gen, device=gen.device)

    def loss(self, imgs, noise):
        enc = self.encoder
        x = enc.embed(imgs)
        N, L, D = x.shape
        keep = L - int(L * self.ratio)
        ids_shuffle = torch.argsort(noise, 1)
        ids_restore = torch.argsort(ids_shuffle, 1)
        ids_keep = ids_shuffle[:, :keep]
        x = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, D))
        mask = torch.ones(N, L)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, ids_restore)
        latent = enc.run_blocks(enc.prepend_cls(x))
        y = self.embed(latent)
        Dd = y.shape[2]
        tokens = torch.cat([y[:, 1:], self.mask_token.expand(N, L + 1 - y.shape[1], Dd)], 1)
        tokens = torch.gather(tokens, 1, ids_restore.unsqueeze(-1).expand(-1, -1, Dd))
        y = torch.cat([y[:, :1], tokens], 1) + self.dec_pos
        for b in self.blocks:
            y = b(y)
        pred = self.pred(self.norm(y))[:, 1:]
        target = patchify(imgs, enc.patch)
        if self.norm_pix:
            mean = target.mean(-1, keepdim=True)
            var = target.var(-1, keepdim=True)
            target = (target - mean) / (var + 1e-6) ** 0.5
        per_patch = (pred - target).pow(2).mean(-1)
        return (per_patch * mask).sum() / mask.sum()

    def after_step(self, step, total):
        pass


def moco_mlp(layers, d_in, hidden, d_out, last_bn=True):
    mods = []
    for l in range(layers):
        d1 = d_in if l == 0 else hidden
        d2 = d_out if l == layers - 1 else hidden
        mods.append(nn.Linear(d1, d2, bias=False))
        if l < layers - 1:
            mods += [nn.BatchNorm1d(d2), nn.ReLU(inplace=True)]
        elif last_bn:
            mods.append(nn.BatchNorm1d(d2, affine=False))
    return nn.Sequential(*mods)


def cosine_ramp(step, total, start, end):
    return end - (end - start) * (math.cos(math.pi * min(step, total) / max(1, total)) + 1) / 2


@torch.no_grad()
def ema_update(pairs, m):
    """The momentum / slow model follows the online one: q = m q + (1 - m) p, module pair by module pair."""
    for online, follower in pairs:
        for p, q in zip(online.parameters(), follower.parameters()):
            q.mul_(m).add_(p.detach(), alpha=1 - m)


class MocoV3(nn.Module):
    def __init__(self, r, channels):
        super().__init__()
        m, c = r["model"], r["moco"]
        D = m["embed_dim"]
        self.encoder = ViT(m, r["data"]["image_size"], channels)
        self.projector = moco_mlp(3, D, c["hidden_dim"], c["out_dim"])
        self.predictor = moco_mlp(2, c["out_dim"], c["hidden_dim"], c["out_dim"])
        self.momentum_encoder = ViT(m, r["data"]["image_size"], channels)
        self.momentum_projector = moco_mlp(3, D, c["hidden_dim"], c["out_dim"])
        self.momentum_encoder.load_state_dict(self.encoder.state_dict())
        self.momentum_projector.load_state_dict(self.projector.state_dict())
        for p in list(self.momentum_encoder.parameters()) + list(self.momentum_projector.parameters()):
            p.requires_grad = False
        if c["frozen_patch_embed"]:
            for p in self.encoder.patch_embed.parameters():
                p.requires_grad = False
        self.T = c["temperature"]
        self.m0 = c["momentum"]

    def contrast(self, q, k):
        q = F.normalize(q, dim=1)
        k = F.normalize(k, dim=1)
        logits = q @ k.t() / self.T
        return F.cross_entropy(logits, torch.arange(logits.shape[0])) * (2 * self.T)

    def noise(self, views, gen):
        return None

    def loss(self, views, noise):
        v1, v2 = views
        n = v1.shape[0]
        both = torch.cat([v1, v2], 0)
        cls = self.encoder(both)[:, 0]
        q1 = self.predictor(self.projector(cls[:n]))
        q2 = self.predictor(self.projector(cls[n:]))
        with torch.no_grad():
            mcls = self.momentum_encoder(both)[:, 0]
            k1 = self.momentum_projector(mcls[:n])
            k2 = self.momentum_projector(mcls[n:])
        return self.contrast(q1, k2) + self.contrast(q2, k1)

    def after_step(self, step, total):
        ema_update(((self.encoder, self.momentum_encoder), (self.projector, self.momentum_projector)),
                   cosine_ramp(step, total, self.m0, 1.0))


class ConMIM(nn.Module):
    def __init__(self, r, channels):
        super().__init__()
        m, c = r["model"], r["conmim"]
        D = m["embed_dim"]
        self.encoder = ViT(m, r["data"]["image_size"], channels)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, D))
        self.projector = nn.Sequential(nn.Linear(D, D), nn.GELU(), nn.Linear(D, c["proj_dim"]))
        self.slow_encoder = ViT(m, r["data"]["image_size"], channels)
        self.slow_projector = nn.Sequential(nn.Linear(D, D), nn.GELU(), nn.Linear(D, c["proj_dim"]))
        self.slow_encoder.load_state_dict(self.encoder.state_dict())
        self.slow_projector.load_state_dict(self.projector.state_dict())
        for p in list(self.slow_encoder.parameters()) + list(self.slow_projector.parameters()):
            p.requires_grad = False
        self.T = c["temperature"]
        self.ratio = c["mask_ratio"]
        self.m0 = c["momentum"]

    def noise(self, views, gen):
        return torch.rand(views[0].shape[0], self.encoder.num_patches, generator=gen, device=gen.device)

    def loss(self, views, noise):
        online, full = views
        enc = self.encoder
        n, L = online.shape[0], enc.num_patches
        masked = int(L * self.ratio)
        order = torch.argsort(noise, 1)
        mask = torch.zeros(n, L).scatter_(1, order[:, :masked], 1.0)
        x = enc.patch_embed(online).flatten(2).transpose(1, 2)
        w = mask.unsqueeze(-1)
        x = x * (1 - w) + self.mask_token * w
        x = x + enc.pos_embed[:, 1:]
        tokens = enc.run_blocks(enc.prepend_cls(x))[:, 1:]
        feats = F.normalize(self.projector(tokens), dim=-1)
        with torch.no_grad():
            keys = F.normalize(self.slow_projector(self.slow_encoder(full)[:, 1:]), dim=-1)
        sim = torch.bmm(feats, keys.transpose(1, 2)) / self.T
        labels = torch.arange(L).repeat(n)
        per_patch = F.cross_entropy(sim.reshape(n * L, L), labels, reduction="none")
        m = mask.reshape(n * L)
        return (per_patch * m).sum() / m.sum().clamp_min(1)

    def after_step(self, step, total):
        ema_update(((self.encoder, self.slow_encoder), (self.projector, self.slow_projector)),
                   cosine_ramp(step, total, self.m0, 1.0))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", help="recipe JSON with every field (graftlab-cli recipe --recipe NAME)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0 = the recipe's, 0 there = every core)")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (cuda: PyTorch >= 2.0, for torch.set_default_device)")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast in the forward pass, as train.precision = bf16")
    ap.add_argument("--attention", choices=("explicit", "sdpa"), default="explicit",
                    help="explicit softmax(q k^T) v (timm's code before 2.0) or F.scaled_dot_product_attention (PyTorch >= 2.0)")
    ap.add_argument("--optimizer", choices=("default", "foreach", "fused"), default="default",
                    help="torch.optim.AdamW as constructed by default, with foreach=True, or with fused=True")
    ap.add_argument("--compile", action="store_true", help="torch.compile the loss (PyTorch >= 2.0)")
    a = ap.parse_args()
    global SDPA
    SDPA = a.attention == "sdpa"
    if SDPA and not hasattr(F, "scaled_dot_product_attention"):
        sys.exit(f"--attention sdpa needs PyTorch >= 2.0 (this is {torch.__version__})")
    if a.compile and not hasattr(torch, "compile"):
        sys.exit(f"--compile needs PyTorch >= 2.0 (this is {torch.__version__})")
    if a.device != "cpu":
        torch.set_default_device(a.device)  # every tensor and module below is made there
    cuda = a.device.startswith("cuda")
    r = json.load(open(a.recipe))
    import os
    threads = a.threads or r.get("threads", 0) or os.cpu_count()
    torch.set_num_threads(threads)
    torch.manual_seed(r.get("seed", 0))
    method = r["stages"][0]["method"] if r.get("stages") else r["method"]
    channels, size, batch = 1, r["data"]["image_size"], r["optim"]["batch_size"]
    model = {"mae": MAE, "mocov3": MocoV3, "conmim": ConMIM}[method](r, channels)
    images = torch.rand(batch, channels, size, size)
    views = images if method == "mae" else (torch.rand(batch, channels, size, size), torch.rand(batch, channels, size, size))
    o = r["optim"]
    lr = o["base_lr"] * batch / 256
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    extra = {"foreach": {"foreach": True}, "fused": {"fused": True}}.get(a.optimizer, {})
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": o["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(o["beta1"], o["beta2"]), **extra)
    loss_fn = torch.compile(model.loss) if a.compile else model.loss
    total = a.warmup + a.steps

    # Marks on the device's clock: CUDA events (no wait inside the loop), the host clock on the CPU.
    if cuda:
        def mark():
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e

        def elapsed_ms(e0, e1):
            return e0.elapsed_time(e1)
    else:
        mark = time.perf_counter

        def elapsed_ms(t0, t1):
            return 1000 * (t1 - t0)

    marks, losses = [], []
    start = None
    for i in range(total):
        if i == a.warmup:
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
        gen = torch.Generator(device=a.device).manual_seed(1000003 * r.get("seed", 0) + i)
        noise = model.noise(views, gen)
        m0 = mark()
        opt.zero_grad(set_to_none=False)
        with torch.autocast(device_type=a.device.split(":")[0], dtype=torch.bfloat16, enabled=a.bf16):
            loss = loss_fn(views, noise)
        m1 = mark()
        loss.backward()
        m2 = mark()
        opt.step()
        m3 = mark()
        model.after_step(i, total)
        m4 = mark()
        if i >= a.warmup:
            marks.append((m0, m1, m2, m3, m4))
        losses.append(loss.detach())
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    split = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0, "momentum_update": 0.0}
    step_times = []
    for ms in marks:
        parts = [elapsed_ms(ms[k], ms[k + 1]) / 1000 for k in range(4)]
        for k, v in zip(split, parts):
            split[k] += v
        step_times.append(sum(parts))
    losses = [float(l) for l in losses]
    step_times.sort()
    out = {"recipe": r["name"], "method": method, "threads": threads, "batch": batch, "steps": a.steps,
           "seconds": seconds, "images_per_s": batch * a.steps / seconds, "step_ms_median": 1000 * step_times[len(step_times) // 2],
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "first_loss": losses[0], "last_loss": losses[-1],
           "torch": torch.__version__, "device": a.device, "precision": "bf16" if a.bf16 else "fp32",
           "attention": a.attention, "optimizer": a.optimizer, "compile": a.compile, "timing": "cuda events" if cuda else "host clock",
           "split_ms_per_step": {k: 1000 * v / a.steps for k, v in split.items()}}
    flavour = f"{a.attention} attention, {a.optimizer} AdamW" + (", torch.compile" if a.compile else "")
    print(f"pytorch {torch.__version__} [{flavour}] {out['recipe']} ({method}), {threads} threads, batch {batch}: {out['images_per_s']:.1f} images/s, "
          f"median step {out['step_ms_median']:.1f} ms ("
          + " · ".join(f"{k} {v:.1f} ms" for k, v in out["split_ms_per_step"].items()) + f"), peak RSS {out['peak_rss_mb']:.0f} MB, loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
