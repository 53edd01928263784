#include "model/MaeDecoder.h"
#include "model/PosEmbed.h"

#include <torch/torch.h>

namespace graftlab {

MaeDecoderImpl::MaeDecoderImpl(const MaeDecoderConfig& c) : cfg(c) {
    int grid = static_cast<int>(std::lround(std::sqrt(double(cfg.numPatches))));
    embed = register_module("embed", torch::nn::Linear(cfg.encoderDim, cfg.embedDim));
    mask_token = register_parameter("mask_token", torch::zeros({1, 1, cfg.embedDim}));
    pos_embed = register_buffer("pos_embed", sincos2d(cfg.embedDim, grid, true).unsqueeze(0));
    blocks = register_module("blocks", torch::nn::ModuleList());
    for (int i = 0; i < cfg.depth; ++i) blocks->push_back(Block(cfg.embedDim, cfg.numHeads, cfg.mlpRatio));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.embedDim}).eps(1e-6)));
    pred = register_module("pred", torch::nn::Linear(cfg.embedDim, cfg.patchSize * cfg.patchSize * cfg.inChans));
    initMaeWeights(*this);
}

torch::Tensor MaeDecoderImpl::forward(const torch::Tensor& latent, const torch::Tensor& idsRestore) {
    auto x = applyLinear(embed, latent);
    const int64_t n = x.size(0), L = idsRestore.size(1), D = x.size(2);
    auto maskTokens = mask_token.expand({n, L + 1 - x.size(1), D});
    auto tokens = torch::cat({x.slice(1, 1), maskTokens}, 1);
    tokens = torch::gather(tokens, 1, idsRestore.unsqueeze(-1).expand({-1, -1, D}));
    x = torch::cat({x.slice(1, 0, 1), tokens}, 1) + pos_embed;
    for (const auto& b : *blocks) x = b->as<Block>()->forward(x);
    x = applyLinear(pred, norm(x));
    return x.slice(1, 1);
}

}  // namespace graftlab
