#pragma once
// Vision Transformer as in timm / MAE: pre-norm blocks, LayerNorm eps 1e-6, class token, fixed 2-D sin-cos
// position embedding. Parameter names follow timm (patch_embed.proj.weight, blocks.0.attn.qkv.weight, ...)
// so exported encoders load into Python code that expects them.
#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "model/Linear.h"

namespace graftlab {

struct VitConfig {
    int imageSize = 28;
    int patchSize = 4;
    int inChans = 1;
    int embedDim = 192;
    int depth = 6;
    int numHeads = 3;
    double mlpRatio = 4.0;
    int gridSize() const { return imageSize / patchSize; }
    int numPatches() const { return gridSize() * gridSize(); }
};

// The layer of an encoder parameter, by its timm name (MAE's util/lr_decay.py get_layer_id_for_vit): 0 for the
// embedding (patch_embed.*, cls_token, pos_embed), 1 + b for blocks.b.*, depth + 1 for what follows the blocks (the
// final norm). The one place a block number is read from a name: lr multipliers, init_blocks, probe groups and
// layer-wise lr decay all ask it.
int vitLayerId(const std::string& name, int depth);

class AttentionImpl : public torch::nn::Module {
public:
    AttentionImpl(int dim, int numHeads);
    torch::Tensor forward(const torch::Tensor& x);

    torch::nn::Linear qkv{nullptr}, proj{nullptr};
    int numHeads;
    double scale;
    // Probes set this to keep the last attention weights (B x heads x N x N); off during training.
    bool recordAttention = false;
    torch::Tensor lastAttention;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
public:
    MlpImpl(int dim, int hidden);
    torch::Tensor forward(const torch::Tensor& x);
    torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

class BlockImpl : public torch::nn::Module {
public:
    BlockImpl(int dim, int numHeads, double mlpRatio);
    torch::Tensor forward(const torch::Tensor& x);
    torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
    Attention attn{nullptr};
    Mlp mlp{nullptr};
};
TORCH_MODULE(Block);

// Conv2d(C, D, p, stride p) computed as one matmul on the patch pixels (same weights, same result).
class PatchEmbedImpl : public torch::nn::Module {
public:
    PatchEmbedImpl(int patchSize, int inChans, int embedDim);
    torch::Tensor forward(const torch::Tensor& imgs);  // (N, C, H, W) -> (N, L, D)
    torch::nn::Conv2d proj{nullptr};
    int patchSize;
};
TORCH_MODULE(PatchEmbed);

struct MaskSample {
    torch::Tensor idsKeep;     // (N, keep) indices of visible patches
    torch::Tensor mask;        // (N, L) 0 = visible, 1 = masked, in the original patch order
    torch::Tensor idsRestore;  // (N, L) argsort of the shuffle: un-shuffles decoder tokens
};

// MAE's random_masking: per-sample uniform noise, argsort, keep the int(L * (1 - ratio)) smallest.
// With shards > 1 (data-parallel ranks), the noise is drawn for the global batch of n * shards images and the
// rows of `shard` are kept: ranks together mask exactly as one process with the whole batch would.
MaskSample randomMasking(int64_t n, int64_t numPatches, double maskRatio, at::Generator& gen, const torch::Device& device,
                         int shard = 0, int shards = 1);

class VisionTransformerImpl : public torch::nn::Module {
public:
    explicit VisionTransformerImpl(const VitConfig& cfg);

    // Patch tokens with their position embedding, no class token: (N, L, D).
    torch::Tensor embedPatches(const torch::Tensor& imgs);
    // Prepends the class token (with its position embedding).
    torch::Tensor prependClassToken(const torch::Tensor& tokens);
    // Blocks then final norm.
    torch::Tensor runBlocks(torch::Tensor x);
    // All tokens of the full image after the final norm: (N, 1 + L, D).
    torch::Tensor forward(const torch::Tensor& imgs);
    // MAE encoder: only visible tokens go through the blocks. Returns (N, 1 + keep, D).
    torch::Tensor forwardVisible(const torch::Tensor& imgs, const MaskSample& mask);

    const VitConfig& config() const { return cfg; }

    VitConfig cfg;
    PatchEmbed patch_embed{nullptr};
    torch::Tensor cls_token;
    torch::Tensor pos_embed;  // fixed buffer (1, 1 + L, D)
    torch::nn::ModuleList blocks{nullptr};
    torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(VisionTransformer);

// A Linear layer through graftlab::linear (model/Linear.h): oneDNN's sgemm on CPU float32, at::linear (one
// addmm on a flat view; the C++ frontend's F::linear runs matmul and a separate bias add) elsewhere.
inline torch::Tensor applyLinear(const torch::nn::Linear& l, const torch::Tensor& x) { return graftlab::linear(x, l->weight, l->bias); }
// A Sequential whose Linear layers go through applyLinear.
torch::Tensor applySequential(torch::nn::Sequential& s, torch::Tensor x);

// MAE weight init: xavier-uniform Linear weights (patch projection as a flattened matrix), zero biases,
// LayerNorm 1/0, N(0, 0.02) tokens. Uses torch's global generator (seeded by the trainer).
void initMaeWeights(torch::nn::Module& m);

}  // namespace graftlab
