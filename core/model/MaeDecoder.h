#pragma once
#include "model/Vit.h"

namespace graftlab {

struct MaeDecoderConfig {
    int numPatches = 49;
    int encoderDim = 192;
    int embedDim = 128;
    int depth = 2;
    int numHeads = 4;
    double mlpRatio = 4.0;
    int patchSize = 4;
    int inChans = 1;
};

// MAE's light decoder: project visible tokens, append mask tokens, un-shuffle with ids_restore, add its own
// sin-cos position embedding, transformer blocks, predict the p*p*C pixels of every patch.
class MaeDecoderImpl : public torch::nn::Module {
public:
    explicit MaeDecoderImpl(const MaeDecoderConfig& cfg);
    // latent: (N, 1 + keep, encoderDim) -> prediction (N, L, p*p*C)
    torch::Tensor forward(const torch::Tensor& latent, const torch::Tensor& idsRestore);

    MaeDecoderConfig cfg;
    torch::nn::Linear embed{nullptr};
    torch::Tensor mask_token;
    torch::Tensor pos_embed;
    torch::nn::ModuleList blocks{nullptr};
    torch::nn::LayerNorm norm{nullptr};
    torch::nn::Linear pred{nullptr};
};
TORCH_MODULE(MaeDecoder);

}  // namespace graftlab
