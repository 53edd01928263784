#pragma once
// Analytic FLOPs of one training image (forward + backward; backward counted as twice the forward of the parts that
// receive gradients, forward only for momentum / slow models). Multiply-add = 2 FLOPs. Counts the linear layers,
// the patch embedding and the attention matmuls; elementwise work is not counted. Each objective counts its own
// parts (Objective::countFlops); `graftlab-cli bench` reports them.
#include "base/recipe/Recipe.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace graftlab {

struct FlopCount {
    double forward = 0;     // of everything run per image
    double trainStep = 0;   // forward + backward
    nlohmann::json parts;   // per component, for the report

    // A part run per image: its forward FLOPs and the factor of a training step (3 = forward + backward, 1 = forward).
    void add(const std::string& name, double fwd, double trainFactor) {
        forward += fwd;
        trainStep += fwd * trainFactor;
        parts[name] = {{"forward_gflop", fwd / 1e9}, {"train_factor", trainFactor}};
    }
};

namespace flops {
// One transformer block over T tokens of width D with MLP width H: qkv, proj, fc1, fc2 and the two attention
// matmuls (QK^T and AV).
inline double block(double T, double D, double H) { return T * 2.0 * (4.0 * D * D + 2.0 * D * H) + 4.0 * T * T * D; }
// An MLP of linear layers through `dims`.
inline double mlp(const std::vector<double>& dims) {
    double f = 0;
    for (size_t i = 0; i + 1 < dims.size(); ++i) f += 2.0 * dims[i] * dims[i + 1];
    return f;
}
inline double patchEmbed(const Recipe& r, int channels) {
    const double P = r.model.patchSize;
    return 2.0 * double(r.numPatches()) * P * P * channels * r.model.embedDim;
}
// The encoder over every patch and the class token.
inline double fullEncoder(const Recipe& r, int channels) {
    const double D = r.model.embedDim;
    return patchEmbed(r, channels) + r.model.depth * block(double(r.numPatches()) + 1, D, std::floor(r.model.mlpRatio * D));
}
}  // namespace flops

}  // namespace graftlab
