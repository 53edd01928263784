#include "model/Vit.h"
#include "model/FusedAttention.h"
#include "model/PosEmbed.h"
#include "util/DeviceCopy.h"

#include <torch/torch.h>

namespace graftlab {

AttentionImpl::AttentionImpl(int dim, int heads) : numHeads(heads), scale(1.0 / std::sqrt(double(dim / heads))) {
    qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(true)));
    proj = register_module("proj", torch::nn::Linear(dim, dim));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
    const int64_t B = x.size(0), N = x.size(1), C = x.size(2);
    auto fused = applyLinear(qkv, x);
    if (fusedAttentionUsable(fused)) {
        torch::Tensor probs;
        auto out = fusedAttention(fused, numHeads, scale, recordAttention ? &probs : nullptr);
        if (recordAttention) lastAttention = probs.detach();
        return applyLinear(proj, out);
    }
    if (!recordAttention && sdpaUsable(fused)) return applyLinear(proj, sdpaAttention(fused, numHeads, scale));
    auto t = fused.reshape({B, N, 3, numHeads, C / numHeads}).permute({2, 0, 3, 1, 4});
    auto q = t[0], k = t[1], v = t[2];
    auto attn = torch::matmul(q * scale, k.transpose(-2, -1)).softmax(-1);
    if (recordAttention) lastAttention = attn.detach();
    auto out = torch::matmul(attn, v).transpose(1, 2).reshape({B, N, C});
    return applyLinear(proj, out);
}

MlpImpl::MlpImpl(int dim, int hidden) {
    fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
    fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return applyLinear(fc2, torch::gelu(applyLinear(fc1, x))); }

torch::Tensor applySequential(torch::nn::Sequential& s, torch::Tensor x) {
    for (auto& m : *s) {
        if (auto* lin = m.ptr()->as<torch::nn::Linear>()) x = graftlab::linear(x, lin->weight, lin->bias);
        else x = m.forward(x);
    }
    return x;
}

BlockImpl::BlockImpl(int dim, int heads, double mlpRatio) {
    norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
    attn = register_module("attn", Attention(dim, heads));
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
    mlp = register_module("mlp", Mlp(dim, static_cast<int>(dim * mlpRatio)));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
    auto y = x + attn(norm1(x));
    return y + mlp(norm2(y));
}

PatchEmbedImpl::PatchEmbedImpl(int p, int inChans, int embedDim) : patchSize(p) {
    proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(inChans, embedDim, p).stride(p)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& imgs) {
    const int64_t n = imgs.size(0), c = imgs.size(1), h = imgs.size(2) / patchSize, w = imgs.size(3) / patchSize;
    // (N, C, h, p, w, p) -> (N, h, w, C, p, p): the order of the flattened conv kernel
    auto x = imgs.reshape({n, c, h, patchSize, w, patchSize}).permute({0, 2, 4, 1, 3, 5}).reshape({n, h * w, -1});
    auto weight = proj->weight.reshape({proj->weight.size(0), -1});
    return graftlab::linear(x, weight, proj->bias);
}

MaskSample randomMasking(int64_t n, int64_t L, double maskRatio, at::Generator& gen, const torch::Device& device, int shard,
                         int shards) {
    const int64_t keep = static_cast<int64_t>(L * (1.0 - maskRatio));
    auto noise = torch::rand({n * std::max(1, shards), L}, gen, torch::TensorOptions().dtype(torch::kFloat32));
    if (shards > 1) noise = noise.slice(0, shard * n, (shard + 1) * n);
    auto idsShuffle = torch::argsort(noise, /*dim=*/1, /*descending=*/false);
    auto idsRestore = torch::argsort(idsShuffle, /*dim=*/1, /*descending=*/false);
    MaskSample m;
    m.idsKeep = toDeviceAsync(idsShuffle.slice(1, 0, keep).contiguous(), device);
    auto mask = torch::ones({n, L});
    mask.slice(1, 0, keep).zero_();
    m.mask = toDeviceAsync(torch::gather(mask, 1, idsRestore), device);
    m.idsRestore = toDeviceAsync(idsRestore, device);
    return m;
}

VisionTransformerImpl::VisionTransformerImpl(const VitConfig& c) : cfg(c) {
    patch_embed = register_module("patch_embed", PatchEmbed(cfg.patchSize, cfg.inChans, cfg.embedDim));
    cls_token = register_parameter("cls_token", torch::zeros({1, 1, cfg.embedDim}));
    pos_embed = register_buffer("pos_embed", sincos2d(cfg.embedDim, cfg.gridSize(), true).unsqueeze(0));
    blocks = register_module("blocks", torch::nn::ModuleList());
    for (int i = 0; i < cfg.depth; ++i) blocks->push_back(Block(cfg.embedDim, cfg.numHeads, cfg.mlpRatio));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.embedDim}).eps(1e-6)));
    initMaeWeights(*this);
}

torch::Tensor VisionTransformerImpl::embedPatches(const torch::Tensor& imgs) {
    return patch_embed(imgs) + pos_embed.slice(1, 1);
}

torch::Tensor VisionTransformerImpl::prependClassToken(const torch::Tensor& tokens) {
    auto cls = (cls_token + pos_embed.slice(1, 0, 1)).expand({tokens.size(0), -1, -1});
    return torch::cat({cls, tokens}, 1);
}

torch::Tensor VisionTransformerImpl::runBlocks(torch::Tensor x) {
    for (const auto& b : *blocks) x = b->as<Block>()->forward(x);
    return norm(x);
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& imgs) {
    return runBlocks(prependClassToken(embedPatches(imgs)));
}

torch::Tensor VisionTransformerImpl::forwardVisible(const torch::Tensor& imgs, const MaskSample& mask) {
    auto x = embedPatches(imgs);
    auto idx = mask.idsKeep.unsqueeze(-1).expand({-1, -1, x.size(2)});
    x = torch::gather(x, 1, idx);
    return runBlocks(prependClassToken(x));
}

void initMaeWeights(torch::nn::Module& root) {
    torch::NoGradGuard ng;
    for (auto& m : root.modules(/*include_self=*/false)) {
        if (auto* lin = m->as<torch::nn::Linear>()) {
            torch::nn::init::xavier_uniform_(lin->weight);
            if (lin->bias.defined()) lin->bias.zero_();
        } else if (auto* ln = m->as<torch::nn::LayerNorm>()) {
            ln->weight.fill_(1.0);
            ln->bias.zero_();
        } else if (auto* pe = m->as<PatchEmbed>()) {
            auto w = pe->proj->weight;
            auto flat = torch::empty({w.size(0), w[0].numel()});
            torch::nn::init::xavier_uniform_(flat);
            w.copy_(flat.view_as(w));
            pe->proj->bias.zero_();
        }
    }
    for (auto& p : root.named_parameters(/*recurse=*/true)) {
        const auto& name = p.key();
        if (name.size() >= 9 && (name.compare(name.size() - 9, 9, "cls_token") == 0))
            torch::nn::init::normal_(p.value(), 0.0, 0.02);
        if (name.size() >= 10 && name.compare(name.size() - 10, 10, "mask_token") == 0)
            torch::nn::init::normal_(p.value(), 0.0, 0.02);
    }
}

int vitLayerId(const std::string& name, int depth) {
    if (name.rfind("patch_embed.", 0) == 0 || name == "cls_token" || name == "pos_embed") return 0;
    if (name.rfind("blocks.", 0) == 0) {
        const size_t dot = name.find('.', 7);
        int block = 0;
        for (size_t i = 7; i < dot && i < name.size(); ++i) {
            if (name[i] < '0' || name[i] > '9') return depth + 1;  // not a numbered block
            block = block * 10 + (name[i] - '0');
        }
        return 1 + block;
    }
    return depth + 1;
}

}  // namespace graftlab
