#pragma once
// Where and how a model runs: the device a recipe asks for, bf16 autocast, LibTorch's thread count.
#include <torch/types.h>

#include <string>

namespace graftlab {

// The device a recipe asks for ("auto" = CUDA when available). Throws RecipeError for "cuda" without CUDA.
torch::Device resolveDevice(const std::string& device);
// Whether train.precision asks for bf16 autocast on `device` ("auto" = on CUDA only).
bool useBf16Autocast(const std::string& precision, const torch::Device& device);

// Whether data.augment_on makes the views on `device` rather than on the CPU ("auto" = on CUDA only).
bool augmentOnDevice(const std::string& augmentOn, const torch::Device& device);

// bf16 autocast for the forward pass on `device` while alive (CUDA or CPU autocast); does nothing when off.
// The backward pass runs outside it, as torch.autocast recommends.
class AutocastScope {
public:
    AutocastScope(bool enabled, const torch::Device& device);
    ~AutocastScope();
    AutocastScope(const AutocastScope&) = delete;
    AutocastScope& operator=(const AutocastScope&) = delete;

private:
    bool enabled_ = false, cuda_ = false, previous_ = false;
    c10::ScalarType previousDtype_ = c10::ScalarType::Float;
};
// Applies recipe.threads (0 = all cores) to LibTorch's intra-op pool.
void applyThreadSetting(int threads);

}  // namespace graftlab
