#pragma once
// The probes of what a ViT learns, computed in the core so that the GUI and the CLI see the same numbers:
// per-layer gradient cosines between the MIM and CL losses, class-token attention and rollout, patch-token
// similarity (and ConMIM's dictionary look-up), and MAE reconstructions. Each returns a Snapshot.
#include "data/Dataset.h"
#include "methods/ConMim.h"
#include "methods/MocoV3.h"
#include "probes/Reconstruction.h"
#include "base/probes/Snapshot.h"

#include <functional>
#include <optional>
#include <set>

namespace graftlab {

// The MIM head (an MAE decoder) and the CL head (MoCo v3's projector, predictor and momentum branch) that the
// two-loss probes put around the encoder being trained; `origin` says where each came from.
struct MimHead {
    MaeDecoder decoder{nullptr};
    MaeConfig cfg;
    int patchSize = 4;
    std::string origin;
};
struct ClHead {
    MocoHeads heads{nullptr};
    std::string origin;
};
struct ProbeHeads {
    std::optional<MimHead> mim;
    std::optional<ClHead> cl;
    std::string mimMissing, clMissing;  // why a head is not there
};

// Heads of `current` (MAE: decoder; MoCo v3: heads; MTL: both) completed from `previous` (the objective of the
// stage before, or heads attached by the CLI), described as `previousName` in origins.
ProbeHeads findProbeHeads(Objective& current, Objective* previous, const std::string& previousName);

// Per-sample MAE loss (mean squared error over each image's masked patches), shape (n).
torch::Tensor mimLossPerSample(VisionTransformer& encoder, MimHead head, const torch::Tensor& x, const MaskSample& mask);
// Per-sample MoCo v3 loss (MocoHeadsImpl::perSampleLoss): sample i's share of the symmetric InfoNCE
// (2T * (CE_i(q1, k2) + CE_i(q2, k1))), the heads' BatchNorm with its running statistics so that sample i's value
// does not depend on the other samples. Shape (n).
torch::Tensor clLossPerSample(VisionTransformer& encoder, ClHead head, const torch::Tensor& v1, const torch::Tensor& v2);

// Parameter groups of an encoder: "embed" (patch projection, class token), "blocks.0" ..., "norm" (final norm),
// and "encoder" (all of them).
std::vector<std::pair<std::string, std::vector<torch::Tensor>>> encoderParameterGroups(VisionTransformer& encoder);

// C(x) = cos(grad_theta L_A(x), grad_theta L_B(x)) per sample x and per parameter group theta. lossA and lossB
// each return per-sample losses (n); every encoder parameter takes part, frozen ones included (their
// requires_grad is restored). Returns (G, n); NaN where a gradient is zero.
struct GradCosResult {
    std::vector<std::string> groups;
    torch::Tensor cos;       // (G, n)
    torch::Tensor batchCos;  // (G): cos(grad mean L_A, grad mean L_B), the whole batch's
};
// Gradients of summed losses, added up over calls (a probe over many images in chunks): per parameter, float64.
struct GradSums {
    std::vector<torch::Tensor> a, b;
    void add(const std::vector<torch::Tensor>& ga, const std::vector<torch::Tensor>& gb);
};
// With `sums`, the gradients of the summed losses of this call are added to it.
GradCosResult gradientCosines(VisionTransformer& encoder, const std::function<torch::Tensor()>& lossA,
                              const std::function<torch::Tensor()>& lossB, GradSums* sums = nullptr);
// The cosine per group of the summed gradients: the whole-probe cosine over every chunk. (G).
torch::Tensor summedGradientCosines(VisionTransformer& encoder, const GradSums& sums);

// Attention rollout (Abnar & Zuidema 2020): per block the head-averaged attention plus the identity (residual),
// rows renormalised, multiplied from the first block up. attn: per block (n, N, N). Returns (n, N, N).
torch::Tensor attentionRollout(const std::vector<torch::Tensor>& attn);

// Cosine similarity between the patch tokens (class token excluded) after block `block` (-1 = last, after the
// final norm) of the full image x. Returns (n, L, L).
torch::Tensor patchCosineSimilarity(VisionTransformer& encoder, const torch::Tensor& x, int block);

// Summary of one group's per-sample cosines, in the columns of CosineSummaryColumn (base/probes/Snapshot.h).
std::vector<double> cosineSummary(const std::vector<float>& values);

struct ProbeImages {
    torch::Tensor images01;  // (n, C, H, W) in [0, 1]
    std::vector<int64_t> indices;
    std::vector<int64_t> labels;
};
// n images evenly spaced over the dataset (the same every time for the same dataset).
// The seed of the probes' fixed masks (reconstruction, the two-loss probe, ConMIM's look-up).
constexpr uint64_t kProbeMaskSeed = 12345;

ProbeImages pickProbeImages(const Dataset& data, int n);

// Runs the probes a recipe asks for on fixed images; reports a probe that cannot run (no CL head, ...) once per
// stage as a snapshot whose meta says why.
class ProbeRunner {
public:
    ProbeRunner(const Recipe& recipe, const Dataset& data, torch::Device device);

    // `previous` may be null; previousName describes it ("stage 1 (mae)").
    std::vector<Snapshot> run(int64_t step, int stage, Objective& current, Objective* previous, const std::string& previousName);

    // Single probes (the CLI's `probe` command); each throws nothing for an unavailable probe but returns a
    // snapshot whose unavailable() says why.
    Snapshot gradcos(int64_t step, int stage, Objective& current, Objective* previous, const std::string& previousName);
    Snapshot attention(int64_t step, int stage, Objective& current);
    Snapshot similarity(int64_t step, int stage, Objective& current, int block = -2, double temperature = -1);
    Snapshot reconstruction(int64_t step, int stage, Objective& current, Objective* previous, const std::string& previousName);

    const ProbeImages& images() const { return images_; }
    // The reconstruction probe's mask: its ratio (default: the MAE head's mae.mask_ratio) and seed.
    void setReconstructionMask(double maskRatio, uint64_t seed) {
        maskRatio_ = maskRatio;
        maskSeed_ = seed;
    }

private:
    Snapshot base(const std::string& kind, int64_t step, int stage) const;
    Recipe recipe_;
    ProbeConfig cfg_;
    ProbeImages images_;
    ProbeImages gradImages_;  // the gradient-cosine probe's (probes.gradcos_samples)
    std::vector<float> mean_, std_;
    torch::Device device_;
    std::set<std::pair<std::string, int>> reported_;
    double maskRatio_ = -1;
    uint64_t maskSeed_;
};

// Tensor <-> snapshot array (float32, contiguous, CPU).
SnapshotArray toArray(const std::string& name, const torch::Tensor& t);

}  // namespace graftlab
